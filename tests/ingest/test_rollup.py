"""The 1-minute rollup on plain PostgreSQL: markers, refresh, and trends equal to the raw query.

Real PostgreSQL, readings written through ``ReadingWriter`` (which marks them as ingest does);
every summarised trend is compared with the same buckets computed from raw readings.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import psycopg
import pytest

from ingest import rollup
from ingest.repository import bucketed_raw, bucketed_readings
from tests.ingest.rollup_support import (
    BUCKETS,
    assert_rollup_complete,
    assert_same,
    columns,
    dt,
    make_points,
    needs_plain,
    now_minute_ms,
    pending,
    random_readings,
    random_windows,
    rollup_rows,
    same_float,
    write,
    write_one,
)


@pytest.fixture
def plain(conn: psycopg.Connection) -> psycopg.Connection:
    needs_plain(conn)
    rollup.refresh(conn)  # earlier tests' markers out of the way
    return conn


def test_a_live_batch_leaves_one_marker_for_all_points(plain: psycopg.Connection) -> None:
    a, b = make_points(plain, "MK1", 2)
    t = now_minute_ms() - 30_000
    write_one(plain, columns([a, b, a], [t, t + 400, t + 90_000], [1.0, 2.0, 3.0]))
    assert pending(plain) == [(None, dt(t), dt(t + 90_000))]


def test_readings_far_from_the_batch_get_markers_of_their_own(plain: psycopg.Connection) -> None:
    a, b, c = make_points(plain, "MK2", 3)
    t = now_minute_ms() - 600_000
    live = [(a, t), (b, t + 10), (c, t + 20), (a, t + 1000), (b, t + 1010), (c, t + 1020)]
    replay = [(a, t - 3_600_000), (a, t - 3_000_000), (a, t - 3_500_000)]  # a's gateway buffer
    ahead = [(b, t + 300_000)]  # a clock five minutes fast
    rows = live + replay + ahead
    write_one(plain, columns([p for p, _ in rows], [ts for _, ts in rows], [1.0] * len(rows)))
    assert sorted(pending(plain), key=lambda r: (r[0] or 0, r[1])) == [
        (None, dt(t), dt(t + 1020)),
        (a, dt(t - 3_600_000), dt(t - 3_000_000)),
        (b, dt(t + 300_000), dt(t + 300_000)),
    ]


def test_a_batch_of_duplicates_leaves_no_marker(plain: psycopg.Connection) -> None:
    (a,) = make_points(plain, "MK3", 1)
    t = now_minute_ms() - 120_000
    cols = columns([a, a], [t, t + 1], [1.0, 2.0])
    assert write_one(plain, cols) == 2
    rollup.refresh(plain)
    assert write_one(plain, columns([a, a], [t, t + 1], [5.0, 6.0])) == 0  # redelivered
    assert pending(plain) == []
    assert bucketed_readings(plain, a, dt(t - 60_000), dt(t + 60_000), 60, 10)[0]["count"] == 2


def test_plan_merges_markers_into_whole_minutes_newest_first() -> None:
    m = 60_000
    t = now_minute_ms()
    markers = [
        (None, dt(t + 5_000), dt(t + 20_000)),
        (None, dt(t + 15_000), dt(t + m + 1)),  # overlaps: one range of two minutes
        (None, dt(t - 30 * m), dt(t - 30 * m)),
        (7, dt(t + 1_000), dt(t + 2_000)),  # inside an all-points range: dropped
        (7, dt(t - 50 * m + 1), dt(t - 49 * m)),
        (7, dt(t - 49 * m), dt(t - 48 * m - 1)),  # touches the one before: merged
        (8, dt(t - 20 * m), dt(t - 20 * m)),
    ]
    us = 1000
    p = rollup.plan(markers, max_minutes=2)
    assert p.every == [(t * us, (t + 2 * m) * us)]
    assert p.leftover == [((t - 30 * m) * us, (t - 29 * m) * us)]
    assert p.points == [(7, (t - 50 * m) * us, (t - 48 * m) * us),
                        (8, (t - 20 * m) * us, (t - 19 * m) * us)]
    cut = rollup.plan(markers[:2], max_minutes=1)  # the newest minute now, the older one later
    assert cut.every == [((t + m) * us, (t + 2 * m) * us)] and cut.leftover == [(t * us, (t + m) * us)]


def test_trends_equal_the_raw_query_through_refreshes_late_data_and_duplicates(
        plain: psycopg.Connection) -> None:
    rng = np.random.default_rng(7)
    pids = make_points(plain, "EQ", 4)
    minutes = 150
    t0 = now_minute_ms() - (minutes + 20) * 60_000 + int(rng.integers(0, 60_000))
    data = random_readings(rng, pids, t0, minutes)
    body = data.ts_ms < t0 + (minutes - 30) * 60_000
    write(plain, columns(data.point[body], data.ts_ms[body], data.value[body], data.quality[body]))
    assert rollup.refresh(plain) > 0
    assert pending(plain) == []
    # the last 30 minutes arrive after the refresh: a pending tail
    write(plain, columns(data.point[~body], data.ts_ms[~body], data.value[~body],
                         data.quality[~body]))
    # point 0's gateway replays readings from an hour ago along with live ones
    late_ts = np.unique(rng.integers(t0 + 20 * 60_000, t0 + 40 * 60_000, 40)) + 7
    live_ts = t0 + minutes * 60_000 + np.arange(60) * 1000
    live_p = np.resize(pids[1:], live_ts.size)
    write_one(plain, columns(np.r_[[pids[0]] * late_ts.size, live_p], np.r_[late_ts, live_ts],
                             rng.normal(0, 100, late_ts.size + live_ts.size)))
    # a gateway resends stored readings with other values (ignored), plus one new one
    old = np.flatnonzero(body)[:50]
    write_one(plain, columns(np.r_[data.point[old], pids[2]], np.r_[data.ts_ms[old], t0 + 1],
                             np.r_[np.full(old.size, 1e6), -5.0]))
    marks = pending(plain)
    assert any(p == pids[0] for p, _, _ in marks) and any(p is None for p, _, _ in marks)
    windows = random_windows(rng, t0, minutes, 30)
    windows.append((dt(t0 - 3_600_000), dt(t0 + 10 * 3_600_000)))
    for stage in ("pending", "refreshed"):
        buckets = 0
        for start, end in windows:
            for pid in pids:
                for b in BUCKETS:
                    buckets += assert_same(plain, pid, start, end, b, "readings_rollup_1m")
        assert buckets > 2000, stage
        plain.commit()
        rollup.refresh(plain)
        assert pending(plain) == []
    assert_rollup_complete(plain)


def test_one_minute_counts_each_reading_once(plain: psycopg.Connection) -> None:
    (a,) = make_points(plain, "ONCE", 1)
    t = now_minute_ms() - 10 * 60_000
    write_one(plain, columns([a] * 3, [t + 1, t + 2, t + 3], [1.0, 2.0, 6.0]))
    rollup.refresh(plain)
    write_one(plain, columns([a] * 4, [t + 1, t + 2, t + 3, t + 4], [9.0, 9.0, 9.0, 11.0]))
    for _ in range(2):  # pending, then refreshed
        [row] = bucketed_readings(plain, a, dt(t - 60_000), dt(t + 120_000), 60, 10)
        assert (row["count"], row["min"], row["max"], row["avg"]) == (4, 1.0, 11.0, 5.0)
        plain.commit()
        rollup.refresh(plain)


def test_refresh_is_idempotent(plain: psycopg.Connection) -> None:
    rng = np.random.default_rng(3)
    pids = make_points(plain, "IDEM", 2)
    t0 = now_minute_ms() - 40 * 60_000
    write(plain, random_readings(rng, pids, t0, 30))
    rollup.refresh(plain)
    before = rollup_rows(plain)
    assert rollup.refresh(plain) == 0
    plain.execute("INSERT INTO rollup_pending (point_id, lo, hi) VALUES (NULL, %s, %s), (%s, %s, %s)",
                  (dt(t0 - 86_400_000), dt(t0 + 86_400_000), pids[0], dt(t0), dt(t0 + 60_000)))
    plain.commit()
    rollup.refresh(plain, max_minutes=100_000)  # every minute recomputed
    after = rollup_rows(plain)
    assert pending(plain) == []
    assert [r[:3] + r[4:] for r in after] == [r[:3] + r[4:] for r in before]
    assert all(same_float(x[3], y[3], False) for x, y in zip(after, before, strict=True))  # sum:
    assert_rollup_complete(plain)  # up to the order of the additions


def test_a_backlog_is_refreshed_in_bounded_passes(plain: psycopg.Connection) -> None:
    rng = np.random.default_rng(4)
    pids = make_points(plain, "BACK", 2)
    t0 = now_minute_ms() - 100 * 60_000
    write(plain, random_readings(rng, pids, t0, 90))
    first = rollup.refresh_pass(plain, max_minutes=30)
    assert first.backlog and first.rows > 0
    assert pending(plain)  # the older minutes are marked again
    for start, end in random_windows(rng, t0, 90, 10):
        assert_same(plain, pids[0], start, end, 300, "readings_rollup_1m")
    plain.commit()
    rollup.refresh(plain, max_minutes=30)
    assert pending(plain) == []
    assert_rollup_complete(plain)


def test_non_finite_values_summarise_like_the_raw_query(plain: psycopg.Connection) -> None:
    """Ingest refuses them (decode: not a finite number), but a row written by hand must not
    make the rollup disagree with the raw query."""
    (a,) = make_points(plain, "NAN", 1)
    t = now_minute_ms() - 20 * 60_000
    values = [1.0, float("nan"), 2.0, float("inf"), 3.0, float("-inf"), float("inf"),
              float("-inf"), float("nan"), 4.0]
    ts = [t + i * 30_000 for i in range(len(values))]
    write_one(plain, columns([a] * len(ts), ts, values))
    for _ in range(2):
        for b in BUCKETS:
            assert_same(plain, a, dt(t), dt(t + 600_000), b)
        plain.commit()
        rollup.refresh(plain)


def test_an_overflowing_minute_does_not_stall_the_refresh(plain: psycopg.Connection) -> None:
    (a,) = make_points(plain, "BIG", 1)
    t = now_minute_ms() - 5 * 60_000
    write_one(plain, columns([a] * 3, [t + 1, t + 2, t + 60_001], [1.5e308, 1.5e308, 1.0]))
    # A float sum of the first minute overflows: the raw query answers with exact sums, both
    # straight from raw readings and through the (still pending) rollup's raw minutes.
    exact = [(2, 1.5e308, 1.5e308), (1, 1.0, 1.0)]
    for query in (bucketed_raw, bucketed_readings):
        rows = query(plain, a, dt(t), dt(t + 120_000), 60, 10)
        assert [(r["count"], r["max"], r["avg"]) for r in rows] == exact
    plain.commit()
    assert rollup.refresh(plain) > 0
    assert pending(plain) == []
    rows = bucketed_readings(plain, a, dt(t), dt(t + 120_000), 60, 10)
    assert [(r["count"], r["max"], r["avg"]) for r in rows] == [(2, 1.5e308, float("inf")),
                                                                (1, 1.0, 1.0)]


def test_the_rollup_path_is_taken_only_where_it_answers(plain: psycopg.Connection) -> None:
    from ingest.repository import bucketed_query

    t = dt(now_minute_ms())
    assert "readings_rollup_1m" in bucketed_query(plain, 1, t, t + timedelta(hours=1), 60, 1)[0]
    assert "readings_rollup_1m" in bucketed_query(plain, 1, t, t + timedelta(hours=1), 300, 1)[0]
    assert "readings_rollup_1m" not in bucketed_query(plain, 1, t, t + timedelta(hours=1), 90, 1)[0]
    short = t + timedelta(seconds=30)  # no whole minute inside
    assert "readings_rollup_1m" not in bucketed_query(plain, 1, short, short + timedelta(seconds=50),
                                                      60, 1)[0]

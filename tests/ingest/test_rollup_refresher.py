"""The rollup under concurrency and over its lifetime: refreshers racing each other and ingest,
the refresher thread surviving errors, retention, and the first fill after an upgrade."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import numpy as np
import psycopg
import pytest
from prometheus_client import CollectorRegistry

from hazmon.db import (
    Partitions,
    apply_retention,
    housekeeping,
    migrate,
    partition_name,
    storage_info,
)
from hazmon.settings import load_settings
from ingest import rollup
from ingest.metrics import IngestMetrics
from tests.conftest import drop_database, new_database
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
    write,
    write_one,
)
from tests.support import wait_for


@pytest.fixture
def plain(conn: psycopg.Connection) -> psycopg.Connection:
    needs_plain(conn)
    rollup.refresh(conn)
    return conn


def _relations(conn: psycopg.Connection, like: str) -> set[str]:
    names = {r[0] for r in conn.execute("SELECT relname FROM pg_class WHERE relname LIKE %s", (like,))}
    conn.commit()
    return names


def test_one_refresher_at_a_time(plain: psycopg.Connection, db_url: str) -> None:
    (a,) = make_points(plain, "LOCK", 1)
    t = now_minute_ms() - 5 * 60_000
    write_one(plain, columns([a, a], [t, t + 1000], [1.0, 2.0]))
    with psycopg.connect(db_url, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (rollup.REFRESH_LOCK,))
        assert rollup.refresh_pass(plain) == rollup.RefreshResult(busy=True)
        assert rollup.refresh(plain) == 0
        assert len(pending(plain)) == 1  # left for the refresher holding the lock
        other.execute("SELECT pg_advisory_unlock(%s)", (rollup.REFRESH_LOCK,))
    assert rollup.refresh_pass(plain).rows == 1
    assert pending(plain) == []


def test_racing_refreshers_and_ingest_leave_a_complete_rollup(plain: psycopg.Connection,
                                                             db_url: str) -> None:
    rng = np.random.default_rng(11)
    pids = make_points(plain, "RACE", 3)
    t0 = now_minute_ms() - 60 * 60_000
    data = random_readings(rng, pids, t0, 50)
    stop = threading.Event()
    results: list[rollup.RefreshResult] = []
    errors: list[BaseException] = []

    def refresher() -> None:
        try:
            with psycopg.connect(db_url) as c:
                while not stop.is_set():
                    results.append(rollup.refresh_pass(c, max_minutes=5))
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=refresher) for _ in range(2)]
    for th in threads:
        th.start()
    try:
        write(plain, data, batch_ms=20_000)
        late = np.unique(rng.integers(t0, t0 + 50 * 60_000, 200))
        write(plain, columns(np.resize(pids, late.size), late, rng.normal(0, 1, late.size)),
              batch_ms=600_000)
    finally:
        stop.set()
        for th in threads:
            th.join()
    assert not errors, errors
    assert any(r.busy for r in results) and sum(r.rows for r in results) > 0
    rollup.refresh(plain)
    assert pending(plain) == []
    assert_rollup_complete(plain)


def test_trends_stay_exact_while_ingest_and_refreshes_run(plain: psycopg.Connection,
                                                          db_url: str) -> None:
    """Each query compared with the raw one in the same snapshot, while the minutes it reads
    move from marked to refreshed under it."""
    rng = np.random.default_rng(12)
    pids = make_points(plain, "LIVE", 2)
    t0 = now_minute_ms() - 30 * 60_000
    data = random_readings(rng, pids, t0, 25)
    stop = threading.Event()
    refreshed: list[int] = []

    def ingest_and_refresh() -> None:
        own = np.random.default_rng(13)  # a Generator is not thread-safe
        with psycopg.connect(db_url) as c:
            step = 15_000
            for lo in range(t0, t0 + 25 * 60_000, step):
                sel = (data.ts_ms >= lo) & (data.ts_ms < lo + step)
                write_one(c, columns(data.point[sel], data.ts_ms[sel], data.value[sel]))
                if own.random() < 0.3:  # a late reading of one point
                    write_one(c, columns([pids[0]], [lo - 600_000 + 3], [own.normal()]))
                refreshed.append(rollup.refresh_pass(c).rows)
            stop.set()

    worker = threading.Thread(target=ingest_and_refresh)
    worker.start()
    queries = 0
    with psycopg.connect(db_url) as q:
        q.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        while not stop.is_set() or queries < 20:
            start, end = random_windows(rng, t0, 25, 1)[0]
            assert_same(q, pids[queries % 2], start, end, BUCKETS[queries % len(BUCKETS)])
            q.commit()
            queries += 1
    worker.join()
    assert sum(refreshed) > 0 and queries >= 20


def test_the_refresher_thread_keeps_the_rollup_fresh_and_survives_errors(
        plain: psycopg.Connection, db_url: str) -> None:
    (a,) = make_points(plain, "THREAD", 1)
    registry = CollectorRegistry()
    refresher = rollup.Refresher(db_url, interval_s=0.05, metrics=IngestMetrics(registry))
    refresher.start()
    try:
        t = now_minute_ms() - 10 * 60_000
        write_one(plain, columns([a], [t], [1.0]))
        wait_for(lambda: pending(plain) == [], what="markers taken")
        plain.execute("ALTER TABLE readings_rollup_1m ADD CONSTRAINT refuse CHECK (n < 0) NOT VALID")
        plain.commit()
        write_one(plain, columns([a], [t + 60_000], [2.0]))
        wait_for(lambda: (registry.get_sample_value("hazmon_rollup_refresh_errors_total") or 0) >= 2,
                 what="failed passes counted")
        assert len(pending(plain)) == 1  # a failed pass takes nothing
        plain.execute("ALTER TABLE readings_rollup_1m DROP CONSTRAINT refuse")
        plain.commit()
        wait_for(lambda: pending(plain) == [], what="refresher back at work")
        rows = bucketed(plain, a, t)
        assert rows == [(1.0, 1), (2.0, 1)]
        assert registry.get_sample_value("hazmon_rollup_minutes_written_total") >= 2
        assert registry.get_sample_value("hazmon_rollup_refresh_seconds_count") >= 2
    finally:
        refresher.stop()
    assert refresher._thread is not None and not refresher._thread.is_alive()


def bucketed(conn: psycopg.Connection, pid: int, t: int) -> list[tuple[float, int]]:
    rows = conn.execute("SELECT sum, n FROM readings_rollup_1m WHERE point_id = %s AND bucket >= %s "
                        "ORDER BY bucket", (pid, dt(t))).fetchall()
    conn.commit()
    return rows


def test_retention_drops_rollup_partitions_with_the_readings(plain: psycopg.Connection) -> None:
    (a,) = make_points(plain, "RET", 1)
    old = date(2021, 3, 4)
    day = (old - date(1970, 1, 1)).days
    Partitions().ensure_days(plain, [day])
    plain.commit()
    assert {partition_name(old), partition_name(old, "readings_rollup_1m")} <= _relations(
        plain, "readings%_p20210304")
    t = int(datetime(2021, 3, 4, 12, tzinfo=UTC).timestamp() * 1000)
    write_one(plain, columns([a] * 2, [t, t + 61_000], [1.0, 2.0]))
    rollup.refresh(plain)
    assert plain.execute("SELECT count(*) FROM readings_rollup_1m WHERE point_id = %s",
                         (a,)).fetchone() == (2,)
    apply_retention(plain, storage_info(plain), 30)
    plain.commit()
    assert _relations(plain, "readings%_p20210304") == set()
    assert plain.execute("SELECT count(*) FROM readings_rollup_1m WHERE point_id = %s",
                         (a,)).fetchone() == (0,)
    plain.commit()
    housekeeping(plain, False, load_settings(partitions_ahead_days=2))  # and ahead, both
    ahead = datetime.now(UTC).date() + timedelta(days=2)
    assert partition_name(ahead, "readings_rollup_1m") in _relations(plain, "readings_rollup_1m_p%")


@pytest.fixture
def fresh_db(pg_server: str) -> Iterator[str]:
    url = new_database(pg_server)
    yield url
    drop_database(pg_server, url)


def test_readings_stored_before_the_upgrade_are_summarised_in_the_background(
        fresh_db: str) -> None:
    rng = np.random.default_rng(5)
    with psycopg.connect(fresh_db) as conn:
        needs_plain(conn)
        pids = make_points(conn, "UPG", 2)
        t0 = now_minute_ms() - 26 * 3_600_000  # two days' partitions
        write(conn, random_readings(rng, pids, t0, 25 * 60), batch_ms=600_000)
        conn.execute("DROP TABLE readings_rollup_1m, rollup_pending")
        conn.execute("DROP INDEX readings_ts_brin")
        conn.execute("DELETE FROM schema_migrations WHERE version = 13")
        conn.commit()
    migrate(fresh_db)
    with psycopg.connect(fresh_db) as conn:
        marks = pending(conn)
        assert len(marks) >= 2 and {p for p, _, _ in marks} == {None}
        windows = random_windows(rng, t0, 25 * 60, 8)
        for start, end in windows:
            assert_same(conn, pids[0], start, end, 3600, "readings_rollup_1m")
        conn.commit()
        started = time.monotonic()
        assert rollup.refresh(conn, max_minutes=120) > 0
        assert time.monotonic() - started < 60
        assert pending(conn) == []
        assert_rollup_complete(conn)
        for start, end in windows:
            assert_same(conn, pids[1], start, end, 300, "readings_rollup_1m")


def test_a_paced_pass_works_in_ten_second_slices_and_stays_exact_while_paused(
        plain: psycopg.Connection, db_url: str) -> None:
    """Between slices the pass's transaction is open: trends (and ingest) go on meanwhile,
    reading the still marked minutes raw; the merge commits every minute at once."""
    a, b = make_points(plain, "SLICE", 2)
    t = now_minute_ms() - 10 * 60_000
    ts = [t + k * 7_000 for k in range(18)]  # 2 minutes: 12 slices of 10 s
    write_one(plain, columns([a] * 18 + [b] * 18, ts * 2, [float(k) for k in range(36)]))
    pauses: list[int] = []

    def pause() -> None:
        pauses.append(len(pauses))
        if len(pauses) == 3:  # mid-pass: queries and a new batch, from other connections
            with psycopg.connect(db_url) as q:
                assert_same(q, a, dt(t), dt(t + 180_000), 60)
                assert pending(q)  # the pass has not committed
            with psycopg.connect(db_url) as w:
                write_one(w, columns([b], [t + 30_500], [100.0]))
    with psycopg.connect(db_url) as c:
        result = rollup.refresh_pass(c, pause=pause)
    assert len(pauses) == 11 and result.rows == 4  # 2 points × 2 minutes
    assert pending(plain) == [(None, dt(t + 30_500), dt(t + 30_500))]  # the batch written meanwhile
    for pid in (a, b):
        assert_same(plain, pid, dt(t), dt(t + 180_000), 60)
    plain.commit()
    rollup.refresh(plain)
    assert_rollup_complete(plain)

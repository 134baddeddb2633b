"""TimescaleDB: trends of whole minutes come from the real-time continuous aggregate
``readings_1m`` and equal the raw query's."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest

from hazmon.db import storage_info
from tests.ingest.rollup_support import (
    BUCKETS,
    assert_same,
    columns,
    dt,
    make_points,
    now_minute_ms,
    random_readings,
    random_windows,
    write,
    write_one,
)


@pytest.fixture
def ts_conn(conn: psycopg.Connection) -> psycopg.Connection:
    info = storage_info(conn)
    has_cagg = conn.execute("SELECT to_regclass('readings_1m') IS NOT NULL").fetchone()[0]
    conn.commit()
    if not info.timescale:
        pytest.skip("TimescaleDB extension not available in this PostgreSQL "
                    "(set HAZMON_TEST_DATABASE_URL to a server that has it)")
    if not has_cagg:
        pytest.skip("Apache-only TimescaleDB: no continuous aggregates, trends read raw readings")
    return conn


def _materialize(db_url: str, until_ms: int) -> None:
    """Materialize whole minutes before ``until_ms``, as the aggregate's policy does (every
    minute, up to one minute ago)."""
    with psycopg.connect(db_url, autocommit=True) as c:  # CALL refuses a transaction block
        c.execute("CALL refresh_continuous_aggregate('readings_1m', NULL, %s)", (dt(until_ms),))


def test_the_aggregate_answers_in_real_time_and_ingest_leaves_no_markers(
        ts_conn: psycopg.Connection) -> None:
    row = ts_conn.execute(
        """SELECT materialized_only FROM timescaledb_information.continuous_aggregates
           WHERE view_name = 'readings_1m'""").fetchone()
    assert row == (False,)
    assert ts_conn.execute("SELECT to_regclass('rollup_pending')").fetchone() == (None,)
    ts_conn.commit()
    (a,) = make_points(ts_conn, "TSRT", 1)
    t = now_minute_ms() - 5 * 60_000
    write_one(ts_conn, columns([a] * 3, [t + 1, t + 2, t + 60_001], [1.0, 3.0, 7.0]))
    rows = ts_conn.execute("SELECT bucket, min, max, avg, count FROM readings_1m "
                           "WHERE point_id = %s ORDER BY 1", (a,)).fetchall()  # not materialized
    assert rows == [(dt(t), 1.0, 3.0, 2.0, 2), (dt(t + 60_000), 7.0, 7.0, 7.0, 1)]


def test_trends_from_the_aggregate_equal_the_raw_query(ts_conn: psycopg.Connection,
                                                       db_url: str) -> None:
    rng = np.random.default_rng(21)
    pids = make_points(ts_conn, "TSEQ", 3)
    minutes = 120
    watermark = now_minute_ms()  # the policy cannot reach it for another minute
    t0 = watermark - 100 * 60_000 + int(rng.integers(0, 60_000))
    data = random_readings(rng, pids, t0, minutes)
    body = data.ts_ms < watermark
    write(ts_conn, columns(data.point[body], data.ts_ms[body], data.value[body], data.quality[body]))
    _materialize(db_url, watermark)
    # minutes past the watermark: the aggregate answers them from raw readings
    write(ts_conn, columns(data.point[~body], data.ts_ms[~body], data.value[~body],
                           data.quality[~body]))
    windows = random_windows(rng, t0, minutes, 20)
    for start, end in windows:
        for pid in pids:
            for b in BUCKETS:
                assert_same(ts_conn, pid, start, end, b, "readings_1m")
    ts_conn.commit()
    # Readings arriving below the watermark count once the policy has refreshed their minutes
    # (TimescaleDB's invalidation log; every minute): until then a trend lacks them.
    late = np.unique(rng.integers(t0, t0 + 30 * 60_000, 50)) + 3
    write_one(ts_conn, columns([pids[0]] * late.size, late, rng.normal(0, 9, late.size)))
    _materialize(db_url, watermark)
    for start, end in windows:
        for b in BUCKETS:
            assert_same(ts_conn, pids[0], start, end, b, "readings_1m")

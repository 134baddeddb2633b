"""Readings storage: TimescaleDB when the extension exists, native daily partitions otherwise."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pytest

from hazmon.db import Partitions, apply_retention, migrate, partition_name, storage_info
from ingest.writer import ReadingColumns, ReadingWriter, copy_buffer


def _timescale(conn: psycopg.Connection) -> bool:
    return storage_info(conn).timescale


def test_migrations_are_idempotent(db_url: str) -> None:
    first = migrate(db_url)
    again = migrate(db_url)
    assert first == again
    with psycopg.connect(db_url) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]
    assert versions == sorted(set(versions)) and versions[0] == 1


def test_readings_unique_on_point_and_ts(conn: psycopg.Connection) -> None:
    conn.execute("INSERT INTO enterprises (code, name) VALUES ('S1', 's')")
    conn.execute("INSERT INTO points (enterprise_id, tag, kind) SELECT id, 'T', 'level' FROM enterprises WHERE code = 'S1'")
    pid = conn.execute("SELECT id FROM points WHERE tag = 'T'").fetchone()[0]
    writer = ReadingWriter(_timescale(conn))
    writer.prepare(conn)
    t = int(datetime.now(UTC).timestamp() * 1000)
    cols = ReadingColumns(np.array([pid, pid, pid], np.int32), np.array([t, t, t + 1], np.int64),
                          np.array([1.0, 2.0, 3.0]), np.array([0, 0, 1], np.int16))
    assert writer.write(conn, cols) == 2          # the duplicate within the batch collapses
    assert writer.write(conn, cols) == 0          # a redelivered batch stores nothing new
    conn.commit()
    rows = conn.execute("SELECT value, quality FROM readings WHERE point_id = %s ORDER BY ts", (pid,)).fetchall()
    assert rows == [(1.0, 0), (3.0, 1)]
    writer.write_latest(conn, cols)
    conn.commit()
    latest = conn.execute("SELECT value FROM point_latest WHERE point_id = %s", (pid,)).fetchone()
    assert latest == (3.0,)


def test_binary_copy_round_trips_times_to_the_millisecond(conn: psycopg.Connection) -> None:
    conn.execute("CREATE TEMP TABLE rt (point_id integer, ts timestamptz, value double precision, quality smallint)")
    ts = np.array([946_684_800_000, 1_763_892_000_123, 0, 4_102_444_800_999], np.int64)
    cols = ReadingColumns(np.arange(4, dtype=np.int32), ts, np.array([0.5, -1e300, 3.0, np.pi]),
                          np.array([0, 1, 0, 1], np.int16))
    with conn.cursor().copy("COPY rt FROM STDIN (FORMAT BINARY)") as copy:
        copy.write(copy_buffer(cols))
    rows = conn.execute("SELECT (extract(epoch FROM ts) * 1000)::bigint, value, quality FROM rt ORDER BY point_id").fetchall()
    assert [r[0] for r in rows] == ts.tolist()
    assert [r[1] for r in rows] == cols.value.tolist()


def test_plain_postgres_uses_daily_partitions_created_on_demand(conn: psycopg.Connection) -> None:
    if _timescale(conn):
        pytest.skip("TimescaleDB is installed here: readings is a hypertable, not partitioned")
    kind = conn.execute("SELECT relkind FROM pg_class WHERE relname = 'readings'").fetchone()[0]
    assert kind == "p"  # partitioned table
    parts = Partitions()
    old_day = datetime(2021, 3, 4, tzinfo=UTC)
    day_no = (old_day.date() - datetime(1970, 1, 1).date()).days
    parts.ensure_days(conn, [day_no])
    parts.ensure_days(conn, [day_no])  # idempotent
    conn.commit()
    names = {r[0] for r in conn.execute("SELECT relname FROM pg_class WHERE relname LIKE 'readings_p%'")}
    assert partition_name(old_day.date()) in names
    dropped = parts.drop_older_than(conn, datetime.now(UTC), keep_days=30)
    conn.commit()
    assert partition_name(old_day.date()) in dropped
    today = partition_name(datetime.now(UTC).date())
    assert today not in dropped


def test_retention_never_below_30_days() -> None:
    from pydantic import ValidationError

    from hazmon.settings import load_settings

    with pytest.raises(ValidationError):
        load_settings(retention_days=29)
    assert load_settings(retention_days=30).retention_days == 30


def _needs_timescale(conn: psycopg.Connection) -> None:
    if not _timescale(conn):
        pytest.skip("TimescaleDB extension not available in this PostgreSQL "
                    "(set HAZMON_TEST_DATABASE_URL to a server that has it)")


def _jobs(conn: psycopg.Connection, relation: str) -> dict[str, list[dict[str, object]]]:
    """proc_name -> configs of the jobs on a hypertable or continuous aggregate."""
    jobs: dict[str, list[dict[str, object]]] = {}
    for proc, config in conn.execute(
            "SELECT proc_name, config FROM timescaledb_information.jobs WHERE hypertable_name = %s",
            (relation,)):
        jobs.setdefault(proc, []).append(config)
    return jobs


def test_timescale_hypertable_compression_and_retention(conn: psycopg.Connection) -> None:
    _needs_timescale(conn)
    hyper = conn.execute(
        "SELECT compression_enabled FROM timescaledb_information.hypertables WHERE hypertable_name = 'readings'"
    ).fetchone()
    assert hyper == (True,)
    apply_retention(conn, storage_info(conn), 400)
    conn.commit()
    jobs = _jobs(conn, "readings")
    assert {"policy_compression", "policy_retention"} <= set(jobs)
    # refresh policies belong to the aggregates (the jobs view names them, not their source)
    views = {r[0] for r in conn.execute(
        "SELECT view_name FROM timescaledb_information.continuous_aggregates")}
    assert {"readings_1m", "readings_1h"} <= views
    for view in ("readings_1m", "readings_1h"):  # refreshed, and kept for a bounded time
        assert set(_jobs(conn, view)) == {"policy_refresh_continuous_aggregate", "policy_retention"}


def test_timescale_retention_policy_follows_the_setting(conn: psycopg.Connection) -> None:
    _needs_timescale(conn)
    for days in (400, 400, 30, 3650, 400):
        apply_retention(conn, storage_info(conn), days)
        conn.commit()
        policies = _jobs(conn, "readings")["policy_retention"]
        assert [p["drop_after"] for p in policies] == [f"{days} days"]


def test_timescale_duplicate_into_compressed_chunk_is_ignored(conn: psycopg.Connection) -> None:
    _needs_timescale(conn)
    conn.execute("INSERT INTO enterprises (code, name) VALUES ('C1', 'c')")
    conn.execute("INSERT INTO points (enterprise_id, tag, kind) "
                 "SELECT id, 'TC', 'level' FROM enterprises WHERE code = 'C1'")
    pid = conn.execute("SELECT id FROM points WHERE tag = 'TC'").fetchone()[0]
    writer = ReadingWriter(True)
    writer.prepare(conn)
    old = int((datetime.now(UTC) - timedelta(days=10)).timestamp() * 1000)
    ts = old + np.arange(100, dtype=np.int64) * 60_000
    cols = ReadingColumns(np.full(100, pid, np.int32), ts, np.arange(100, dtype=np.float64),
                          np.zeros(100, np.int16))
    assert writer.write(conn, cols) == 100
    conn.commit()
    chunks = [r[0] for r in conn.execute(
        "SELECT compress_chunk(c) FROM show_chunks('readings', older_than => interval '5 days') c")]
    conn.commit()
    assert chunks
    compressed = conn.execute(
        """SELECT bool_and(is_compressed) FROM timescaledb_information.chunks
           WHERE hypertable_name = 'readings' AND range_end < now() - interval '5 days'""").fetchone()
    assert compressed == (True,)
    # a redelivered batch (late readings from a gateway's buffer) plus one new reading
    again = ReadingColumns(np.full(101, pid, np.int32), np.append(ts, ts[-1] + 30_000),
                           np.full(101, -1.0), np.zeros(101, np.int16))
    assert writer.write(conn, again) == 1
    assert writer.write(conn, again) == 0
    conn.commit()
    rows = conn.execute(
        "SELECT count(*), sum(value) FROM readings WHERE point_id = %s", (pid,)).fetchone()
    assert rows == (101, float(sum(range(100))) - 1.0)  # stored values kept; only the new one added

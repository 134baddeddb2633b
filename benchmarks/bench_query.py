"""Trend query benchmark: a 24-hour trend of one point in 1-minute buckets over ≥ 50 M readings.

    python benchmarks/bench_query.py [--quick] [--database-url URL] [--write-md]

Starts PostgreSQL (embedded in a temporary directory, or a fresh database on
``--database-url``), mosquitto and a real ``hazmon serve``; registers ``--points`` points
through the API, then writes ``--points`` × one reading per ``--interval-s`` over
``--hours`` hours ending now straight into ``readings`` with binary COPY (the buffer
``ingest.writer.copy_buffer`` builds), in arrival order (every point's reading of a second,
then the next second), as ingest would have stored them. The COPY bypasses ingest, so the
1-minute rollup (``ingest.rollup``, plain PostgreSQL) is then built the way a database
upgraded to it is: one marker over the loaded readings and ``rollup.refresh`` (timed and
reported). One more pass is timed over the last minute of every point, what the refresher
does every 30 s in production, and the last minute is marked pending again: queries meet
a realistic unrefreshed tail, read raw. hazmon's own refresher is held off
(``HAZMON_ROLLUP_REFRESH_S``) so that it does not take the markers meant for these timings.
After ``VACUUM (ANALYZE)`` (what autovacuum does to day-old data) it times ``--requests``
requests of

    GET /api/v1/enterprises/QRY/points/{tag}/readings?start=<now-24h>&end=<now>&bucket=60

each for a random point, one at a time over HTTP with the admin token, and reports
p50/p95/p99 against the target p95 ≤ 50 ms, with the SQL alone timed the same way and the
plan of one query. Bytes per reading of the loaded table are reported too.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import numpy as np
import psycopg

from benchmarks.common import (
    command_line,
    machine,
    machine_line,
    percentile,
    readings_size,
    say,
    start_services,
    write_section,
)
from hazmon.db import DAY_MS, Partitions
from ingest import rollup
from ingest.repository import bucketed_query, bucketed_raw, bucketed_readings
from ingest.writer import ReadingColumns, copy_buffer
from tests.support import Hazmon

TARGET_P95_MS = 50.0
ENTERPRISE = "QRY"
CHUNK_S = 600  # seconds of readings per COPY


def _iso(d: datetime) -> str:
    return d.isoformat().replace("+00:00", "Z")


def tag_of(i: int) -> str:
    return f"Q{i:05d}"


def setup_points(hz: Hazmon, n: int) -> None:
    """Register the enterprise and its points through the API."""
    with hz.api() as api:
        r = api.post("/api/v1/enterprises", json={"code": ENTERPRISE, "name": "query bench"})
        assert r.status_code in (201, 409), r.text
        rows = "".join(f"{tag_of(i)},pressure,0,100,90\n" for i in range(n))
        r = api.put(f"/api/v1/enterprises/{ENTERPRISE}/points",
                    content="tag,kind,range_low,range_high,hi\n" + rows,
                    headers={"Content-Type": "text/csv"})
        assert r.status_code == 200, r.text


def point_ids(db_url: str, n: int) -> np.ndarray:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            """SELECT p.id FROM points p JOIN enterprises e ON e.id = p.enterprise_id
               WHERE e.code = %s ORDER BY p.tag""", (ENTERPRISE,)).fetchall()
    ids = np.array([r[0] for r in rows], np.int32)
    assert ids.size == n, (ids.size, n)
    return ids


def _load_range(db_url: str, ids: np.ndarray, t0_ms: int, seconds: range, interval_s: int,
                seed: int, done: list[int]) -> None:
    """COPY the readings of ``seconds`` (offsets from t0, stepping interval_s) in chunks."""
    rng = np.random.default_rng(seed)
    n = ids.size
    level = rng.uniform(20, 80, n)
    jitter = rng.integers(0, 1000, n)  # each point reports at its own millisecond
    with psycopg.connect(db_url) as conn:
        conn.execute("SET synchronous_commit = off")
        secs = list(seconds)
        for k in range(0, len(secs), CHUNK_S):
            block = np.array(secs[k:k + CHUNK_S], np.int64)
            m = block.size
            steps = rng.normal(0, 0.05, (m, n))
            values = level + np.cumsum(steps, axis=0)
            level = values[-1]
            ts = t0_ms + block[:, None] * (interval_s * 1000) + jitter[None, :]
            cols = ReadingColumns(np.tile(ids, m), ts.ravel(), values.ravel(),
                                  np.zeros(m * n, np.int16))
            with conn.cursor() as cur, cur.copy("COPY readings FROM STDIN (FORMAT BINARY)") as cp:
                cp.write(copy_buffer(cols))
            conn.commit()
            done.append(m * n)


def load(db_url: str, ids: np.ndarray, end_ms: int, hours: float, interval_s: int,
         workers: int) -> tuple[int, float]:
    """Write the readings (parallel COPY over time slices); (rows, seconds)."""
    steps = int(hours * 3600 / interval_s)
    t0_ms = end_ms - steps * interval_s * 1000
    with psycopg.connect(db_url) as conn:
        Partitions().ensure_days(conn, list(range(t0_ms // DAY_MS, end_ms // DAY_MS + 1)))
        conn.commit()
    done: list[int] = []
    started = time.monotonic()
    slices = np.array_split(np.arange(steps), workers)
    threads = [threading.Thread(target=_load_range, args=(
        db_url, ids, t0_ms, range(int(s[0]), int(s[-1]) + 1), interval_s, i, done))
        for i, s in enumerate(slices) if s.size]
    for t in threads:
        t.start()
    total = steps * ids.size
    last = 0.0
    while any(t.is_alive() for t in threads):
        time.sleep(0.5)
        if time.monotonic() - last >= 15:
            last = time.monotonic()
            rows = sum(done)
            say(f"  loaded {rows:,} of {total:,} readings "
                f"({rows / max(time.monotonic() - started, 1e-9):,.0f}/s)")
    for t in threads:
        t.join()
    assert sum(done) == total, (sum(done), total)
    return total, time.monotonic() - started


def time_http(hz: Hazmon, tags: list[str], start: str, end: str, n: int,
              seed: int) -> tuple[list[float], int]:
    """Milliseconds per request (sequential), and the bucket count of the last answer."""
    rnd = random.Random(seed)
    out, buckets = [], 0
    with httpx.Client(base_url=hz.url, timeout=60,
                      headers={"Authorization": f"Bearer {hz.token}"}) as client:
        for i in range(n + 5):
            tag = rnd.choice(tags)
            t = time.perf_counter()
            r = client.get(f"/api/v1/enterprises/{ENTERPRISE}/points/{tag}/readings",
                           params={"start": start, "end": end, "bucket": 60})
            ms = (time.perf_counter() - t) * 1000
            assert r.status_code == 200, r.text[:300]
            buckets = len(r.json()["items"])
            if i >= 5:  # the first few warm connections and caches
                out.append(ms)
    return out, buckets


def time_sql(db_url: str, ids: np.ndarray, start: datetime, end: datetime, n: int,
             seed: int, query: Callable[..., object] = bucketed_readings) -> tuple[list[float], str]:
    """Milliseconds per query through ``query`` (ingest.repository.bucketed_readings), and the
    plan of the statement it runs."""
    rnd = random.Random(seed)
    out = []
    with psycopg.connect(db_url) as conn:
        for i in range(n + 5):
            pid = int(rnd.choice(list(ids)))
            t = time.perf_counter()
            query(conn, pid, start, end, 60, 100_000)
            conn.commit()
            if i >= 5:
                out.append((time.perf_counter() - t) * 1000)
        plan = ""
        if query is bucketed_readings:
            sql, params = bucketed_query(conn, int(ids[len(ids) // 2]), start, end, 60, 100_000)
            plan = "\n".join(r[0] for r in conn.execute(
                "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql, params))  # type: ignore[arg-type]
    return out, plan


def build_rollup(db_url: str, t0_ms: int, end_ms: int) -> dict[str, float]:
    """Build the rollup of the loaded readings as the refresher would, leaving the last minute
    pending; the seconds of the first fill and of one steady-state pass, and the rows."""
    tail_ms = end_ms - 60_000
    out: dict[str, float] = {}
    with psycopg.connect(db_url) as conn:
        if conn.execute("SELECT to_regclass('rollup_pending')").fetchone() == (None,):
            conn.commit()
            return out  # TimescaleDB: its continuous aggregate, refreshed by its own policy
        mark = "INSERT INTO rollup_pending (point_id, lo, hi) VALUES (NULL, %s, %s)"
        conn.execute(mark, (_ms(t0_ms), _ms(tail_ms - 1)))
        conn.commit()
        t = time.monotonic()
        out["fill_minutes"] = rollup.refresh(conn)
        out["fill_s"] = time.monotonic() - t
        conn.execute(mark, (_ms(tail_ms), _ms(end_ms - 1)))
        conn.commit()
        t = time.monotonic()
        out["pass_minutes"] = rollup.refresh(conn)
        out["pass_s"] = time.monotonic() - t
        conn.execute("DELETE FROM readings_rollup_1m WHERE bucket >= %s", (_ms(tail_ms),))
        conn.execute(mark, (_ms(tail_ms), _ms(end_ms - 1)))  # the unrefreshed tail
        conn.commit()
    return out


def rollup_bytes(db_url: str) -> int:
    """Bytes of the rollup over all its partitions (0 without one)."""
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            """SELECT coalesce(sum(pg_total_relation_size(i.inhrelid)), 0) FROM pg_inherits i
               WHERE i.inhparent = to_regclass('readings_rollup_1m')""").fetchone()
    return int(row[0]) if row else 0


def _ms(ms: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="5 M readings, 50 requests")
    p.add_argument("--database-url", help="PostgreSQL server to create a fresh database on")
    p.add_argument("--work-dir", help="where the embedded services live (default: a temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the work dir / database")
    p.add_argument("--points", type=int, default=600)
    p.add_argument("--hours", type=float, default=24.5, help="hours of readings, ending now")
    p.add_argument("--interval-s", type=int, default=1, help="seconds between a point's readings")
    p.add_argument("--workers", type=int, default=2, help="parallel COPY connections")
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--raw-requests", type=int, default=0,
                   help="also time the SQL straight from raw readings this many times "
                   "(the query before the rollup)")
    p.add_argument("--no-vacuum", action="store_true", help="query right after the load")
    p.add_argument("--pg-sql", action="append", default=[], metavar="SQL",
                   help="run this SQL after hazmon's migrations, before the load (to measure a "
                   "schema change, e.g. UNIQUE (point_id, ts) INCLUDE (value))")
    p.add_argument("--write-md", action="store_true", help="write the results to BENCHMARKS.md")
    args = p.parse_args(argv)
    if args.quick:
        args.points, args.requests = 58, 50
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    say(f"command: {command_line()}")
    started, t0 = time.strftime("%Y-%m-%d %H:%M %Z"), time.monotonic()
    services = start_services(args.database_url, args.work_dir, args.keep)
    with services.stack:
        info = machine(services.db_url)
        say(f"machine: {machine_line(info)}")
        hz = Hazmon(data_dir=services.work / "hazmon", db_url=services.db_url,
                    mqtt_url=services.mqtt_url, extra_env={"HAZMON_ROLLUP_REFRESH_S": "86400"})
        hz.data_dir.mkdir(parents=True, exist_ok=True)
        hz.start(timeout=120)
        try:
            if args.pg_sql:
                with psycopg.connect(services.db_url, autocommit=True) as conn:
                    for sql in args.pg_sql:
                        conn.execute(sql)
                say(f"SQL after migrations: {' ; '.join(args.pg_sql)}")
            setup_points(hz, args.points)
            ids = point_ids(services.db_url, args.points)
            end_ms = time.time_ns() // 1_000_000 // 60_000 * 60_000
            say(f"loading {args.points} points x {args.hours} h, one reading per "
                f"{args.interval_s} s each, with {args.workers} COPY connections")
            rows, load_s = load(services.db_url, ids, end_ms, args.hours, args.interval_s,
                                args.workers)
            say(f"loaded {rows:,} readings in {load_s:.0f} s ({rows / load_s:,.0f}/s)")
            t0_ms = end_ms - int(args.hours * 3600 / args.interval_s) * args.interval_s * 1000
            roll = build_rollup(services.db_url, t0_ms, end_ms)
            if roll:
                say(f"rollup: first fill {roll['fill_minutes']:,.0f} point-minutes in "
                    f"{roll['fill_s']:.1f} s; a pass over the last minute of every point "
                    f"{roll['pass_s'] * 1000:.0f} ms; last minute left pending")
            vacuum_s = 0.0
            if not args.no_vacuum:
                t = time.monotonic()
                with psycopg.connect(services.db_url, autocommit=True) as conn:
                    conn.execute("VACUUM (ANALYZE) readings")
                    if roll:
                        conn.execute("VACUUM (ANALYZE) readings_rollup_1m")
                vacuum_s = time.monotonic() - t
                say(f"VACUUM (ANALYZE): {vacuum_s:.0f} s")
            size = readings_size(services.db_url)
            roll_bytes = rollup_bytes(services.db_url)
            end = datetime.fromtimestamp(end_ms / 1000, UTC)
            start = end - timedelta(hours=24)
            tags = [tag_of(i) for i in range(args.points)]
            http_ms, buckets = time_http(hz, tags, _iso(start), _iso(end), args.requests, 1)
            sql_ms, plan = time_sql(services.db_url, ids, start, end, args.requests, 2)
            raw_ms = (time_sql(services.db_url, ids, start, end, args.raw_requests, 3,
                               bucketed_raw)[0] if args.raw_requests else [])
        finally:
            hz.stop()
    per_point = int(24 * 3600 / args.interval_s)
    p = {q: percentile(http_ms, q) for q in (50, 95, 99)}
    s = {q: percentile(sql_ms, q) for q in (50, 95, 99)}
    r = {q: percentile(raw_ms, q) for q in (50, 95, 99)} if raw_ms else {}
    rollup_text = (
        f"1-minute rollup built as for a database upgraded to it: one marker over the loaded "
        f"readings, then `ingest.rollup.refresh`: {roll['fill_minutes']:,.0f} point-minutes in "
        f"{roll['fill_s']:.1f} s; one refresh pass over the last minute of all {args.points} "
        f"points (what the refresher does every minute, without its pauses) {roll['pass_s'] * 1000:.0f} ms; the last "
        f"minute then left pending, read raw by the queries. The rollup takes "
        f"{roll_bytes / 2**20:,.0f} MiB ({roll_bytes / max(rows, 1):.1f} bytes per reading). "
        if roll else "")
    met = "**met**" if p[95] <= TARGET_P95_MS else "**missed**"
    lines = [
        f"Command: `{command_line()}` (run {started}, took {(time.monotonic() - t0) / 60:.1f} min)",
        "",
        f"Machine: {machine_line(info)}", "",
        (f"Data: {rows:,} readings ({args.points} points × one reading per {args.interval_s} s × "
         f"{args.hours} h ending now), written with binary COPY in arrival order (all points' "
         f"readings of one second, then the next) at {rows / load_s:,.0f} readings/s "
         f"({args.workers} connections), then `VACUUM (ANALYZE)`"
         + (" (skipped)" if args.no_vacuum else f" ({vacuum_s:.0f} s)") + ". "
         + rollup_text
         + (f"Schema changed for this run: `{' ; '.join(args.pg_sql)}`. " if args.pg_sql else "")
         + "Plain PostgreSQL, daily partitions, UNIQUE (point_id, ts): "
         f"{size['bytes_per_reading']:.1f} bytes per reading ({size['heap_per_reading']:.1f} table + "
         f"{size['bytes_per_reading'] - size['heap_per_reading']:.1f} index), "
         f"{size['total_bytes'] / 2**30:.2f} GiB."), "",
        (f"Query: `GET /api/v1/enterprises/{ENTERPRISE}/points/{{tag}}/readings?start=<end-24h>"
         f"&end=<end>&bucket=60`, a random point per request ({per_point:,} readings → "
         f"{buckets} buckets), {len(http_ms)} requests one after another:"), "",
        "| | p50 | p95 | p99 | target |",
        "|---|---|---|---|---|",
        (f"| HTTP, end to end | {p[50]:.1f} ms | {p[95]:.1f} ms | {p[99]:.1f} ms | "
         f"p95 ≤ 50 ms: {met} |"),
        (f"| SQL alone (`ingest.repository.bucketed_readings`) | {s[50]:.1f} ms | "
         f"{s[95]:.1f} ms | {s[99]:.1f} ms | |"),
        *([(f"| SQL from raw readings only (`bucketed_raw`, {len(raw_ms)} queries) | "
            f"{r[50]:.1f} ms | {r[95]:.1f} ms | {r[99]:.1f} ms | |")] if raw_ms else []), "",
        "Plan of one query:", "", "```", plan, "```",
    ]
    say("\n".join(lines))
    if args.write_md:
        write_section("Trend query", "\n".join(lines))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())

"""TimescaleDB compression benchmark: bytes per reading of ``readings`` before and after.

    python benchmarks/bench_compression.py --database-url URL [--signal walk|noise|both]
        [--points 600] [--hours 24] [--interval-s 1] [--write-md]

Deployment sizing needs the compression ratio r of the ``readings`` hypertable. On the
TimescaleDB server ``--database-url`` a fresh database is created and migrated with
``hazmon.db.migrate`` (``readings`` becomes a hypertable of 1-day chunks, compressed with
segmentby point_id, orderby ts, by a policy after 2 days); the run stops with a message when
the extension cannot be created there or compression is not available (Apache-only license).
TimescaleDB's background jobs of that database (compression policy, continuous aggregate
refreshes, retention) are paused so that nothing but this script touches the chunks.

One enterprise and ``--points`` points are registered with plain SQL INSERTs, then
``--points`` × one reading per ``--interval-s`` × ``--hours`` hours, ending
``--end-days-ago`` days ago (older than the policy's 2 days), are written straight into
``readings`` with binary COPY (the buffer ``ingest.writer.copy_buffer`` builds) in arrival
order: every point's reading of a second, then the next second. Timestamps: each point at
its own millisecond phase, plus ±``--ts-jitter-ms`` of gateway timer jitter per reading.
Values, since compression depends on them (``--signal``):

* ``walk``: each point a slow mean-reverting random walk around its own set point, quantized
  to the sensor resolution (0.01), as a process variable behaves; ``--bad-share`` of the
  readings (0.1 %) have bad quality (1), keeping the value;
* ``noise``: uniform random doubles on [0, 100) at full precision, the worst case for
  TimescaleDB's float compression (same timestamps and qualities).

After ``VACUUM (ANALYZE)`` the size of the chunks (tables, indexes, TOAST:
``hypertable_detailed_size('readings')``) is taken, ``--queries`` 24-hour one-point
bucketed queries (``ingest.repository.bucketed_readings``, 1-minute buckets, a random point
each) are timed, then every chunk older than 2 days is compressed
(``compress_chunk`` over ``show_chunks(older_than => 2 days)``, timed), the size is taken again
(also ``hypertable_compression_stats``), and after ``ANALYZE`` the same queries are timed on the
compressed chunks. The continuous aggregate ``readings_1m`` has materialized nothing for these
days, so the queries read compressed raw readings (its real-time part): the worst case of the
trend query on old data. Reports r = bytes before / bytes after, bytes per reading after,
the compression time and the query p50/p95.

``--signal both`` runs walk then noise, each in its own fresh database. ``--write-md`` prints a
Markdown section "TimescaleDB compression" to paste into BENCHMARKS.md (this script does not
write BENCHMARKS.md) and saves it to /tmp/bench_compression.md. The database is dropped at the
end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import psycopg

from benchmarks.bench_query import time_sql
from benchmarks.common import (
    command_line,
    machine,
    machine_line,
    percentile,
    say,
    start_services,
)
from hazmon.db import migrate
from ingest.repository import bucketed_readings
from ingest.writer import ReadingColumns, copy_buffer

ENTERPRISE = "CMP"
TITLE = "TimescaleDB compression"
MD_COPY = Path("/tmp/bench_compression.md")
CHUNK_S = 600  # seconds of readings per COPY
SCALE = 100  # the walk is quantized to the sensor resolution 1 / SCALE
RESOLUTION = 1 / SCALE
WALK_SIGMA = 0.02  # random-walk step per second (standard deviation)
WALK_TAU_S = 1800.0  # mean reversion towards the set point, time constant
DAY_S = 86_400


class NoCompression(SystemExit):
    """The server cannot give ``readings`` TimescaleDB compression."""


@dataclass
class Result:
    """One signal's run."""

    signal: str
    rows: int = 0
    load_s: float = 0.0
    vacuum_s: float = 0.0
    chunks: int = 0
    before: dict[str, int] = field(default_factory=dict)
    after: dict[str, int] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=dict)
    compressed_chunks: int = 0
    compress_s: float = 0.0
    analyze_s: float = 0.0
    query_before_ms: list[float] = field(default_factory=list)
    query_after_ms: list[float] = field(default_factory=list)
    buckets: int = 0
    plan: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def r(self) -> float:
        return self.before["total_bytes"] / max(self.after["total_bytes"], 1)

    def per(self, size: dict[str, int], key: str = "total_bytes") -> float:
        return size[key] / self.rows if self.rows else float("nan")


# --- setup ------------------------------------------------------------------------------------


def require_compression(db_url: str) -> None:
    """Stop unless ``readings`` is a hypertable with compression; pause the database's jobs."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        ext = conn.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
        if not ext:
            avail = conn.execute("SELECT 1 FROM pg_available_extensions "
                                 "WHERE name = 'timescaledb'").fetchone()
            preload = conn.execute("SHOW shared_preload_libraries").fetchone()
            raise NoCompression(
                "error: the timescaledb extension could not be created in the fresh database "
                "(" + ("not installed in this PostgreSQL" if not avail else
                       f"installed, but shared_preload_libraries = {preload[0] if preload else ''!r}"
                       " must include timescaledb (then restart PostgreSQL)")
                + "); readings is a plain partitioned table, there is nothing to compress. "
                "Point --database-url at a server with TimescaleDB.")
        row = conn.execute(
            """SELECT compression_enabled FROM timescaledb_information.hypertables
               WHERE hypertable_name = 'readings'""").fetchone()
        if not row or not row[0]:
            lic = conn.execute("SELECT current_setting('timescaledb.license', true)").fetchone()
            raise NoCompression(
                f"error: TimescaleDB {ext[0]} is there but readings is not a hypertable with "
                f"compression (timescaledb.license = {lic[0] if lic else None!r}; compression "
                "needs the community 'timescale' license, not Apache-only).")
        conn.execute("SELECT alter_job(job_id, scheduled => false) "
                     "FROM timescaledb_information.jobs WHERE job_id >= 1000")


def register_points(db_url: str, n: int) -> np.ndarray:
    """One enterprise and its points with plain SQL; their ids in tag order."""
    with psycopg.connect(db_url) as conn:
        row = conn.execute("INSERT INTO enterprises (code, name) VALUES (%s, %s) RETURNING id",
                           (ENTERPRISE, "compression bench")).fetchone()
        assert row
        conn.execute(
            """INSERT INTO points (enterprise_id, tag, kind, range_low, range_high, hi)
               SELECT %s, 'C' || lpad(i::text, 5, '0'), 'pressure', 0, 100, 90
               FROM generate_series(0, %s - 1) i""", (row[0], n))
        ids = np.array([r[0] for r in conn.execute(
            "SELECT id FROM points WHERE enterprise_id = %s ORDER BY tag", (row[0],))], np.int32)
    assert ids.size == n, (ids.size, n)
    return ids


# --- the readings -----------------------------------------------------------------------------


def describe_signal(args: argparse.Namespace, signal: str) -> str:
    ts = (f"timestamps every {args.interval_s} s at a per-point millisecond phase"
          + (f" ± up to {args.ts_jitter_ms} ms jitter per reading" if args.ts_jitter_ms else ""))
    bad = f"{args.bad_share:.2%} of readings with bad quality (1, value kept)"
    if signal == "noise":
        return (f"uniform random doubles on [0, 100) at full precision (the worst case); "
                f"{bad}; {ts}")
    return (f"each point a slow random walk around its own set point (uniform 20…80 on a "
            f"0…100 range): steps N(0, {WALK_SIGMA}) per second, pulled back to the set point "
            f"with a {WALK_TAU_S / 60:.0f}-minute time constant (so ±{stationary_sd():.1f} typical), "
            f"quantized to the sensor resolution {RESOLUTION}; {bad}; {ts}")


def stationary_sd() -> float:
    theta = 1.0 / WALK_TAU_S
    return WALK_SIGMA / np.sqrt(2 * theta - theta * theta)


class Signal:
    """Values and qualities of every point, one second after the other."""

    def __init__(self, kind: str, n: int, interval_s: int, bad_share: float, seed: int) -> None:
        self.kind, self.n, self.bad_share = kind, n, bad_share
        self.rng = np.random.default_rng(seed)
        self.setpoint = self.rng.uniform(20, 80, n)
        # a stationary start, so that the first hours look like the others
        self.x = self.setpoint + self.rng.normal(0, stationary_sd(), n)
        steps = max(1, interval_s)
        self.theta = 1 - (1 - 1 / WALK_TAU_S) ** steps
        self.sigma = WALK_SIGMA * np.sqrt(steps)

    def block(self, m: int) -> tuple[np.ndarray, np.ndarray]:
        """(values, qualities) of the next ``m`` seconds, shape (m, n)."""
        if self.kind == "noise":
            values = self.rng.uniform(0, 100, (m, self.n))
        else:
            noise = self.rng.normal(0, self.sigma, (m, self.n))
            values = np.empty((m, self.n))
            x, sp, theta = self.x, self.setpoint, self.theta
            for i in range(m):
                x = x + theta * (sp - x) + noise[i]
                values[i] = x
            self.x = x
            # k / 100 is the double nearest to the decimal, as a parsed "43.27" would be
            values = np.rint(values * SCALE) / SCALE
        quality = (self.rng.random((m, self.n)) < self.bad_share).astype(np.int16)
        return values, quality


def load(db_url: str, ids: np.ndarray, t0_ms: int, steps: int, args: argparse.Namespace,
         signal: str) -> tuple[int, float]:
    """COPY the readings in arrival order; (rows, seconds)."""
    sig = Signal(signal, ids.size, args.interval_s, args.bad_share, args.seed)
    rng = np.random.default_rng(args.seed + 1)
    n = ids.size
    phase = rng.integers(0, 1000, n)  # each point reports at its own millisecond
    total, done, last = steps * n, 0, 0.0
    started = time.monotonic()
    with psycopg.connect(db_url) as conn:
        conn.execute("SET synchronous_commit = off")
        for k in range(0, steps, CHUNK_S):
            block = np.arange(k, min(k + CHUNK_S, steps), dtype=np.int64)
            m = block.size
            values, quality = sig.block(m)
            ts = t0_ms + block[:, None] * (args.interval_s * 1000) + phase[None, :]
            if args.ts_jitter_ms:
                ts = ts + rng.integers(-args.ts_jitter_ms, args.ts_jitter_ms + 1, (m, n))
            cols = ReadingColumns(np.tile(ids, m), ts.ravel(), values.ravel(), quality.ravel())
            with conn.cursor() as cur, cur.copy(
                    "COPY readings (point_id, ts, value, quality) FROM STDIN (FORMAT BINARY)") as cp:
                cp.write(copy_buffer(cols))
            conn.commit()
            done += m * n
            if time.monotonic() - last >= 15:
                last = time.monotonic()
                say(f"  loaded {done:,} of {total:,} readings "
                    f"({done / max(time.monotonic() - started, 1e-9):,.0f}/s)")
    return done, time.monotonic() - started


# --- sizes and compression ----------------------------------------------------------------------


def hypertable_size(conn: psycopg.Connection) -> dict[str, int]:
    """Bytes of every chunk of ``readings`` (compressed chunks included) and the parent."""
    row = conn.execute(
        """SELECT sum(table_bytes), sum(index_bytes), sum(toast_bytes), sum(total_bytes)
           FROM hypertable_detailed_size('readings')""").fetchone()
    assert row
    keys = ("table_bytes", "index_bytes", "toast_bytes", "total_bytes")
    return {k: int(v or 0) for k, v in zip(keys, row, strict=True)}


def compression_stats(conn: psycopg.Connection) -> dict[str, int]:
    cur = conn.execute("SELECT * FROM hypertable_compression_stats('readings')")
    row = cur.fetchone()
    names = [d.name for d in cur.description or []]
    return {k: int(v or 0) for k, v in zip(names, row or (), strict=False)
            if k != "node_name"}


def run_one(args: argparse.Namespace, signal: str) -> Result:
    res = Result(signal)
    services = start_services(args.database_url, None, args.keep)
    with services.stack:
        db = services.db_url
        migrate(db)
        require_compression(db)
        res.info = machine(db)
        say(f"[{signal}] database {db.rpartition('/')[2]}; machine: {machine_line(res.info)}")
        ids = register_points(db, args.points)
        steps = int(args.hours * 3600 / args.interval_s)
        end_ms = (time.time_ns() // 1_000_000 // 60_000 * 60_000
                  - int(args.end_days_ago * DAY_S * 1000))
        t0_ms = end_ms - steps * args.interval_s * 1000
        say(f"[{signal}] loading {args.points} points x {args.hours} h, one reading per "
            f"{args.interval_s} s, ending {_ms(end_ms):%Y-%m-%d %H:%M} UTC: "
            f"{describe_signal(args, signal)}")
        res.rows, res.load_s = load(db, ids, t0_ms, steps, args, signal)
        say(f"[{signal}] loaded {res.rows:,} readings in {res.load_s:.0f} s "
            f"({res.rows / res.load_s:,.0f}/s)")
        with psycopg.connect(db, autocommit=True) as conn:
            t = time.monotonic()
            conn.execute("VACUUM (ANALYZE) readings")
            res.vacuum_s = time.monotonic() - t
            conn.execute("CHECKPOINT")
            res.chunks = len(conn.execute("SELECT show_chunks('readings')").fetchall())
            res.before = hypertable_size(conn)
        say(f"[{signal}] before: {res.chunks} chunks, {_size(res.before, res.rows)}")
        end = _ms(end_ms)
        start = end - timedelta(hours=24)
        res.query_before_ms, _ = time_sql(db, ids, start, end, args.queries, 2)
        say(f"[{signal}] query on uncompressed chunks: p50 {percentile(res.query_before_ms, 50):.1f}"
            f" ms, p95 {percentile(res.query_before_ms, 95):.1f} ms")
        with psycopg.connect(db, autocommit=True) as conn:
            t = time.monotonic()
            row = conn.execute(
                """SELECT count(compress_chunk(c))
                   FROM show_chunks('readings', older_than => interval '2 days') c""").fetchone()
            res.compress_s = time.monotonic() - t
            res.compressed_chunks = int(row[0]) if row else 0
            t = time.monotonic()
            conn.execute("ANALYZE readings")
            res.analyze_s = time.monotonic() - t
            conn.execute("CHECKPOINT")
            res.after = hypertable_size(conn)
            res.stats = compression_stats(conn)
            left = conn.execute(
                """SELECT count(*) FROM timescaledb_information.chunks
                   WHERE hypertable_name = 'readings' AND NOT is_compressed""").fetchone()
            count = conn.execute("SELECT count(*) FROM readings").fetchone()
        if left and left[0]:
            say(f"[{signal}] WARNING: {left[0]} chunks were not compressed (newer than 2 days?)")
        assert count and int(count[0]) == res.rows, (count, res.rows)
        say(f"[{signal}] compressed {res.compressed_chunks} chunks in {res.compress_s:.1f} s "
            f"({res.rows / res.compress_s:,.0f} readings/s), ANALYZE {res.analyze_s:.1f} s")
        say(f"[{signal}] after: {_size(res.after, res.rows)}; r = {res.r:.2f}")
        say(f"[{signal}] hypertable_compression_stats: {res.stats}")
        res.query_after_ms, res.plan = time_sql(db, ids, start, end, args.queries, 2)
        with psycopg.connect(db) as conn:
            res.buckets = len(bucketed_readings(conn, int(ids[0]), start, end, 60, 100_000))
        say(f"[{signal}] query on compressed chunks: p50 {percentile(res.query_after_ms, 50):.1f}"
            f" ms, p95 {percentile(res.query_after_ms, 95):.1f} ms ({res.buckets} buckets)")
        if args.plan:
            say(f"[{signal}] plan of one query on compressed chunks:\n{res.plan}")
        if args.keep:
            say(f"[{signal}] kept: {db}")
    return res


def _size(size: dict[str, int], rows: int) -> str:
    return (f"{size['total_bytes'] / 2**20:,.1f} MiB = {size['total_bytes'] / rows:.2f} bytes per "
            f"reading ({size['table_bytes'] / rows:.2f} table + {size['index_bytes'] / rows:.2f} "
            f"index + {size['toast_bytes'] / rows:.2f} TOAST)")


def _ms(ms: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


# --- the report ---------------------------------------------------------------------------------


def markdown(args: argparse.Namespace, results: list[Result], started: str, minutes: float) -> str:
    rows = results[0].rows
    in_window = int(min(args.hours, 24) * 3600 / args.interval_s)
    signals = "; ".join(f"**{r.signal}**: {describe_signal(args, r.signal)}" for r in results)
    lines = [
        f"Command: `{command_line()}` (run {started}, took {minutes:.1f} min)", "",
        f"Machine: {machine_line(results[0].info)}", "",
        (f"Data: {rows:,} readings per signal ({args.points} points × one reading per "
         f"{args.interval_s} s × {args.hours:g} h, ending {args.end_days_ago:g} days before the "
         f"run), written with binary COPY in arrival order (all points' readings of one second, "
         f"then the next) into a fresh database migrated by `hazmon.db.migrate`: `readings` a "
         f"hypertable of 1-day chunks, compression segmentby point_id, orderby ts "
         f"(TimescaleDB's background jobs paused for the run). Signals: {signals}."), "",
        ("Sizes from `hypertable_detailed_size('readings')` (every chunk's table, indexes and "
         "TOAST) after `VACUUM (ANALYZE)`, before and after `compress_chunk` of every chunk older "
         "than 2 days (what the compression policy does):"), "",
        "| signal | before | after | r = before / after | compression |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.signal} | {r.per(r.before):.1f} B/reading ({r.per(r.before, 'table_bytes'):.1f} "
            f"table + {r.per(r.before, 'index_bytes'):.1f} index), "
            f"{r.before['total_bytes'] / 2**20:,.0f} MiB | {r.per(r.after):.2f} B/reading, "
            f"{r.after['total_bytes'] / 2**20:,.1f} MiB | **{r.r:.1f}** | {r.compressed_chunks} "
            f"chunk{'s' if r.compressed_chunks != 1 else ''} in {r.compress_s:.1f} s "
            f"({r.rows / r.compress_s / 1e6:.2f} M readings/s) |")
    lines += ["", ("`hypertable_compression_stats('readings')` (the compressed chunks alone, "
                   "without the emptied chunk tables): " + "; ".join(
                       f"{r.signal}: {r.stats.get('before_compression_total_bytes', 0) / 2**20:,.0f}"
                       f" MiB → {r.stats.get('after_compression_total_bytes', 0) / 2**20:,.1f} MiB "
                       f"(r = {r.stats.get('before_compression_total_bytes', 0) / max(r.stats.get('after_compression_total_bytes', 0), 1):.1f})"
                       for r in results) + "."), ""]
    lines += [
        (f"Trend query on the old data: `ingest.repository.bucketed_readings(conn, point, "
         f"end - 24 h, end, 60, 100000)`, a random point per query ({in_window:,} readings → "
         f"{results[0].buckets} one-minute buckets), {len(results[0].query_after_ms)} queries one "
         f"after another in SQL. `readings_1m` has materialized nothing for these days, so its "
         f"real-time part reads every raw reading: the worst case for old data."), "",
        "| signal | chunks | p50 | p95 |",
        "|---|---|---|---|",
    ]
    for r in results:
        for label, ms in (("uncompressed", r.query_before_ms), ("compressed", r.query_after_ms)):
            lines.append(f"| {r.signal} | {label} | {percentile(ms, 50):.1f} ms | "
                         f"{percentile(ms, 95):.1f} ms |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--database-url", required=True,
                   help="PostgreSQL server with TimescaleDB to create a fresh database on")
    p.add_argument("--keep", action="store_true", help="keep the database")
    p.add_argument("--signal", choices=("walk", "noise", "both"), default="walk")
    p.add_argument("--points", type=int, default=600)
    p.add_argument("--hours", type=float, default=24.0, help="hours of readings")
    p.add_argument("--interval-s", type=int, default=1, help="seconds between a point's readings")
    p.add_argument("--end-days-ago", type=float, default=3.0,
                   help="the readings end this many days ago (older than the policy's 2 days)")
    p.add_argument("--bad-share", type=float, default=0.001,
                   help="share of readings with bad quality")
    p.add_argument("--ts-jitter-ms", type=int, default=5,
                   help="± jitter of each reading's timestamp around its point's schedule")
    p.add_argument("--queries", type=int, default=50, help="trend queries timed before/after")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--plan", action="store_true", help="print the plan of one compressed query")
    p.add_argument("--write-md", action="store_true",
                   help=f"print the Markdown section '{TITLE}' and save it to {MD_COPY}")
    args = p.parse_args(argv)
    if args.end_days_ago < 3:
        p.error("--end-days-ago must be at least 3: the newest 1-day chunk must end more than "
                "2 days ago for the compression policy's show_chunks(older_than => 2 days)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    say(f"command: {command_line()}")
    started, t0 = time.strftime("%Y-%m-%d %H:%M %Z"), time.monotonic()
    results = []
    try:
        for signal in (("walk", "noise") if args.signal == "both" else (args.signal,)):
            results.append(run_one(args, signal))
    except NoCompression as exc:
        print(exc.code, file=sys.stderr)
        return 2
    text = markdown(args, results, started, (time.monotonic() - t0) / 60)
    if args.write_md:
        section = f"## {TITLE}\n\n{text}\n"
        MD_COPY.write_text(section)
        say(f"\n--- Markdown for BENCHMARKS.md (also in {MD_COPY}) ---\n\n{section}")
    else:
        say("\n" + text)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())

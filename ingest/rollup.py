"""The 1-minute rollup of readings on plain PostgreSQL, kept fresh like a real-time continuous
aggregate.

A 24-hour trend of one point in raw readings touches one heap page per reading (600 points'
readings arrive interleaved), so trends read per-minute summaries instead. With each batch of
readings, ingest commits a marker saying which readings may be missing from the rollup: one
row per batch for all points, or one per point for a replay much older (or newer) than the rest
of the batch, so that one gateway's store-and-forward replay does not mean recomputing an hour
of every point. The refresher takes the markers and recomputes the whole minutes they touch
from the raw readings, in one REPEATABLE READ transaction: a marker disappears in the very
commit that brings its minutes into the rollup. All points' minutes are grouped in 10-second
slices into a temporary table and merged at the end; the refresher pauses after each slice, so a
pass (a few seconds of one core per minute of a national load) runs gently beside ingest
instead of in one burst that held the alarm path up. A trend query (``ingest.repository``)
reads, in one statement, rollup minutes no marker covers and raw readings for the rest, so it
never counts a minute twice nor misses one, whatever the refresher is doing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import psycopg

from hazmon.db import ROLLUP_TABLE, connect
from hazmon.errors import DatabaseUnavailable
from hazmon.priority import lower_backend_priority

if TYPE_CHECKING:
    from ingest.metrics import IngestMetrics
    from ingest.writer import ReadingColumns

log = logging.getLogger(__name__)

REFRESH_LOCK = 0x68726F6C  # "hrol": one refresher at a time across all processes
REFRESH_INTERVAL_S = 30.0
LATE_MS = 120_000  # readings this far from the middle of their batch get markers of their own
WORK_MEM = "128MB"  # for the refresh's grouping only (SET LOCAL)
MAX_MINUTES = 15  # minutes of all points recomputed per transaction; older backlog waits a pass
MINUTE_US = 60_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01, the zero of PostgreSQL's binary timestamps
_US = timedelta(microseconds=1)

_MARKER_ROW = np.dtype([
    ("nfields", ">i2"), ("len_point", ">i4"), ("point", ">i4"),
    ("len_lo", ">i4"), ("lo", ">i8"), ("len_hi", ">i4"), ("hi", ">i8"),
])
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"

_UPSERT = f"""INSERT INTO {ROLLUP_TABLE} AS r (point_id, bucket, n, sum, min, max)
    {{select}}
    ON CONFLICT (point_id, bucket) DO UPDATE
    SET n = EXCLUDED.n, sum = EXCLUDED.sum, min = EXCLUDED.min, max = EXCLUDED.max
    WHERE (r.n, r.sum, r.min, r.max) IS DISTINCT FROM
          (EXCLUDED.n, EXCLUDED.sum, EXCLUDED.min, EXCLUDED.max)"""
_MINUTE = "date_bin('1 minute', x.ts, timestamptz '1970-01-01 00:00:00+00')"
_SOME_POINTS = _UPSERT.format(select=f"""
    SELECT m.p, {_MINUTE}, count(*), {{sum}}, min(x.value), max(x.value)
    FROM unnest(%s::integer[], %s::timestamptz[], %s::timestamptz[]) AS m(p, lo, hi)
    JOIN readings x ON x.point_id = m.p AND x.ts >= m.lo AND x.ts < m.hi GROUP BY 1, 2""")
# All points' minutes are grouped in time slices into a temporary table, then merged: each slice
# reads only its own seconds of readings, and the refresher pauses between slices.
_PARTS_TABLE = "rollup_parts"
_CREATE_PARTS = f"""CREATE TEMP TABLE IF NOT EXISTS {_PARTS_TABLE} (
    point_id integer, bucket timestamptz, n bigint, sum double precision,
    min double precision, max double precision) ON COMMIT DELETE ROWS"""
_SLICE = f"""INSERT INTO {_PARTS_TABLE}
    SELECT x.point_id, {_MINUTE}, count(*), {{sum}}, min(x.value), max(x.value)
    FROM readings x WHERE x.ts >= %s AND x.ts < %s GROUP BY 1, 2"""
_MERGE = _UPSERT.format(select=f"""
    SELECT point_id, bucket, sum(n), {{merge}}, min(min), max(max)
    FROM {_PARTS_TABLE} GROUP BY 1, 2""")
SLICE_US = 10_000_000  # 10 s of readings per slice (divides a minute)
SLICE_PAUSE_S = 1.0  # the refresher's pause after each slice
_FAST_SUM = "sum(x.value)"
_FAST_MERGE = "sum(sum)"
# A float8 sum raises on overflow (two readings of 1e308 in a minute): the pass is redone with
# an exact sum that saturates to ±Infinity, or one gateway could stall the rollup for good.
_SAFE_SUM = """CASE WHEN sum(x.value::numeric) = 'NaN' THEN 'NaN'::float8
    WHEN sum(x.value::numeric) > 1.7976931348623157e308 THEN 'Infinity'::float8
    WHEN sum(x.value::numeric) < -1.7976931348623157e308 THEN '-Infinity'::float8
    ELSE sum(x.value::numeric)::float8 END"""
_SAFE_MERGE = _SAFE_SUM.replace("x.value", "sum")


def _ts(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def _us(ts: datetime) -> int:
    return (ts - EPOCH) // _US


# -- marking (ingest's hot path) ------------------------------------------------------------------


def mark(cur: psycopg.Cursor, cols: ReadingColumns) -> None:
    """Record, in the caller's transaction, which readings of this batch the rollup lacks.

    Normally one marker for every point over [oldest, newest]. When the batch spans more than
    LATE_MS, readings further than LATE_MS from its median time (a replay, a gateway clock off)
    get one marker per point instead, so the all-points range stays as narrow as live data.
    """
    n = len(cols)
    if n == 0:
        return
    ts = cols.ts_ms
    lo, hi = int(ts.min()), int(ts.max())
    if hi - lo <= LATE_MS:
        _insert_all(cur, lo, hi)
        return
    mid = int(np.partition(ts, n // 2)[n // 2])
    near = np.abs(ts - mid) <= LATE_MS
    _insert_all(cur, int(ts[near].min()), int(ts[near].max()))
    p, t = cols.point[~near], ts[~near]
    order = np.lexsort((t, p))
    p, t = p[order], t[order]
    starts = np.ones(p.size, bool)
    starts[1:] = p[1:] != p[:-1]
    ends = np.ones(p.size, bool)
    ends[:-1] = starts[1:]
    rows = np.empty(int(starts.sum()), _MARKER_ROW)
    rows["nfields"], rows["len_point"], rows["len_lo"], rows["len_hi"] = 3, 4, 8, 8
    rows["point"] = p[starts]
    rows["lo"] = t[starts].astype(np.int64) * 1000 - PG_EPOCH_US
    rows["hi"] = t[ends].astype(np.int64) * 1000 - PG_EPOCH_US
    with cur.copy("COPY rollup_pending (point_id, lo, hi) FROM STDIN (FORMAT BINARY)") as copy:
        copy.write(_COPY_HEADER + rows.tobytes() + b"\xff\xff")


def _insert_all(cur: psycopg.Cursor, lo_ms: int, hi_ms: int) -> None:
    cur.execute("INSERT INTO rollup_pending (point_id, lo, hi) VALUES (NULL, %s, %s)",
                (_ts(lo_ms * 1000), _ts(hi_ms * 1000)))


# -- refreshing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RefreshPlan:
    """What one pass recomputes: whole minutes as epoch-µs [lo, hi) ranges."""

    every: list[tuple[int, int]]  # all points, within the pass's budget
    points: list[tuple[int, int, int]]  # (point, lo, hi): late readings outside those ranges
    leftover: list[tuple[int, int]]  # all-points minutes past the budget: markers again


@dataclass(frozen=True)
class RefreshResult:
    """One pass: rollup minutes written (new or changed) and markers taken."""

    rows: int = 0
    markers: int = 0
    backlog: bool = False  # markers were put back: another pass has work right away
    busy: bool = False  # another refresher held the lock: nothing done


def _minutes(lo: datetime, hi: datetime) -> tuple[int, int]:
    """The whole minutes holding [lo, hi]."""
    return _us(lo) // MINUTE_US * MINUTE_US, (_us(hi) // MINUTE_US + 1) * MINUTE_US


def _merge(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def plan(markers: Iterable[tuple[int | None, datetime, datetime]],
         max_minutes: int = MAX_MINUTES) -> RefreshPlan:
    """Merge markers into minute ranges; newest all-points minutes first, up to the budget.

    Newest first keeps the live tail fresh while a backlog (the rollup's first fill after an
    upgrade) is worked through backwards, recent days first: the ones trends look at.
    """
    markers = list(markers)
    every = _merge(_minutes(lo, hi) for p, lo, hi in markers if p is None)
    budget = max_minutes * MINUTE_US
    take: list[tuple[int, int]] = []
    leftover: list[tuple[int, int]] = []
    for lo, hi in reversed(every):
        cut = min(hi, max(lo, hi - max(budget, 0)))
        if cut < hi:
            take.append((cut, hi))
        if lo < cut:
            leftover.append((lo, cut))
        budget -= hi - cut
    per_point: dict[int, list[tuple[int, int]]] = {}
    for point, since, until in markers:
        if point is not None:
            per_point.setdefault(point, []).append(_minutes(since, until))
    points = [(p, lo, hi) for p, ranges in sorted(per_point.items()) for lo, hi in _merge(ranges)
              if not any(a <= lo and hi <= b for a, b in every)]
    return RefreshPlan(sorted(take), points, sorted(leftover))


def refresh_pass(conn: psycopg.Connection, max_minutes: int = MAX_MINUTES,
                 pause: Callable[[], object] | None = None) -> RefreshResult:
    """Take every marker and recompute the minutes they touch (``conn`` must be idle).

    ``pause`` is called after each 10-second slice of all points' readings (the refresher
    sleeps there, so the pass runs beside ingest at a gentle pace instead of in one burst).
    """
    try:
        return _pass(conn, max_minutes, (_FAST_SUM, _FAST_MERGE), pause)
    except psycopg.errors.NumericValueOutOfRange:
        log.warning("a rollup minute's sum overflows a float: recomputing with exact sums")
        return _pass(conn, max_minutes, (_SAFE_SUM, _SAFE_MERGE), pause)


def refresh(conn: psycopg.Connection, max_minutes: int = MAX_MINUTES) -> int:
    """Refresh until no backlog is left (or another refresher is at work); minutes written."""
    rows = 0
    while True:
        result = refresh_pass(conn, max_minutes)
        rows += result.rows
        if not result.backlog or result.busy:
            return rows


def _parts_table(conn: psycopg.Connection) -> None:
    """The temporary table of slice aggregates, with room in memory the first time."""
    row = conn.execute(f"SELECT to_regclass('pg_temp.{_PARTS_TABLE}') IS NULL").fetchone()
    if row and row[0]:  # temp_buffers can be set only before a session's first temp table
        conn.execute("SET temp_buffers = '64MB'")
    conn.execute(_CREATE_PARTS)


def _pass(conn: psycopg.Connection, max_minutes: int, sums: tuple[str, str],
          pause: Callable[[], object] | None) -> RefreshResult:
    sum_sql, merge_sql = sums
    isolation = conn.isolation_level
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    try:
        with conn.transaction():
            locked = conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (REFRESH_LOCK,)).fetchone()
            if not (locked and locked[0]):
                return RefreshResult(busy=True)
            # A minute of 100,000 points is 200,000 groups: with the default 4 MB the grouping
            # spills to temporary files and a pass takes seconds longer beside ingest.
            conn.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
            markers = conn.execute("DELETE FROM rollup_pending RETURNING point_id, lo, hi").fetchall()
            work = plan(markers, max_minutes)
            rows = 0
            with conn.cursor() as cur:
                if work.every:
                    _parts_table(conn)
                    slices = [(a, min(a + SLICE_US, hi)) for lo, hi in work.every
                              for a in range(lo, hi, SLICE_US)]
                    for k, (a, b) in enumerate(slices):
                        cur.execute(_SLICE.format(sum=sum_sql), (_ts(a), _ts(b)))
                        if pause is not None and k + 1 < len(slices):
                            pause()
                    cur.execute(_MERGE.format(merge=merge_sql))
                    rows += max(cur.rowcount, 0)
                if work.points:
                    cur.execute(_SOME_POINTS.format(sum=sum_sql),
                                ([p for p, _, _ in work.points], [_ts(a) for _, a, _ in work.points],
                                 [_ts(b) for _, _, b in work.points]))
                    rows += max(cur.rowcount, 0)
                if work.leftover:  # inclusive ends, as mark() writes them
                    cur.executemany(
                        "INSERT INTO rollup_pending (point_id, lo, hi) VALUES (NULL, %s, %s)",
                        [(_ts(lo), _ts(hi - 1)) for lo, hi in work.leftover])
            return RefreshResult(rows, len(markers), bool(work.leftover))
    except psycopg.errors.SerializationFailure:
        # The lock was taken after a refresher that just committed: its snapshot predates that
        # commit. The other one did the work; the next pass sees it.
        return RefreshResult(busy=True)
    finally:
        conn.isolation_level = isolation


class Refresher:
    """Refreshes the rollup every ``interval_s`` in a daemon thread with its own connection.

    Every ingest process runs one; the advisory lock lets one work at a time and the others
    return at once. Errors are logged and retried: the rollup only lags (queries read the
    pending minutes raw), it never goes wrong. Idle on a database without the rollup table
    (TimescaleDB: its continuous aggregate refreshes itself).
    """

    def __init__(self, db_url: str, *, interval_s: float = REFRESH_INTERVAL_S,
                 max_minutes: int = MAX_MINUTES, metrics: IngestMetrics | None = None,
                 background_nice: int = 0, slice_pause_s: float = SLICE_PAUSE_S) -> None:
        self.db_url = db_url
        self.background_nice = background_nice  # hazmon.priority
        self.slice_pause_s = slice_pause_s
        self.interval_s = interval_s
        self.max_minutes = max_minutes
        self.metrics = metrics
        self.stop_event = threading.Event()
        self.passes = 0  # passes that did work (tests and diagnostics)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.stop_event.clear()
        self._thread = threading.Thread(target=self._run, name="hazmon-rollup", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the thread to end after its current pass and wait for it."""
        self.stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        conn: psycopg.Connection | None = None
        try:
            while not self.stop_event.is_set():
                try:
                    if conn is None or conn.closed:
                        conn = connect(self.db_url)
                        lower_backend_priority(conn, self.background_nice)
                        if not _has_rollup(conn):
                            log.info("no readings rollup in this database: refresher idle")
                            return
                    if self._once(conn):
                        continue  # a backlog: go on at once
                except (psycopg.Error, DatabaseUnavailable) as exc:
                    self._failed(f"rollup refresh failed ({str(exc).strip()}); retrying")
                    _close(conn)
                    conn = None
                except Exception:  # the refresher must never die
                    log.exception("rollup refresher error; retrying")
                    self._failed(None)
                    _close(conn)
                    conn = None
                self.stop_event.wait(self.interval_s)
        finally:
            _close(conn)

    def _once(self, conn: psycopg.Connection) -> bool:
        t = time.perf_counter()
        result = refresh_pass(conn, self.max_minutes,
                              pause=lambda: self.stop_event.wait(self.slice_pause_s))
        if not result.busy:
            self.passes += 1
            if self.metrics is not None:
                self.metrics.rollup_refresh_seconds.observe(time.perf_counter() - t)
                self.metrics.rollup_minutes.inc(result.rows)
        return result.backlog and not result.busy

    def _failed(self, message: str | None) -> None:
        if message:
            log.warning(message)
        if self.metrics is not None:
            self.metrics.rollup_errors.inc()


def _has_rollup(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT to_regclass('rollup_pending') IS NOT NULL").fetchone()
    conn.commit()
    return bool(row and row[0])


def _close(conn: psycopg.Connection | None) -> None:
    if conn is not None:
        try:
            conn.close()
        except psycopg.Error:
            pass

"""Write columnar batches of readings with binary COPY, idempotently.

A batch is COPied (binary, built straight from numpy) straight into ``readings``; when that
meets a reading already stored (a redelivery), the batch goes through a per-connection staging
table and ``INSERT … ON CONFLICT DO NOTHING`` instead, so the duplicate collapses into the one
already stored. The caller owns the transaction: readings, rejections and alarm changes of one
batch commit together or not at all. ``point_latest`` (the newest reading per point) is written
by :class:`ingest.latest.LatestWriter` after the commit, off the critical path.
"""

from __future__ import annotations

from dataclasses import dataclass

import time
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import psycopg
import psycopg.errors

from hazmon.db import DAY_MS, Partitions, connect, savepoint
from hazmon.priority import lower_backend_priority
from ingest import rollup

PG_EPOCH_MS = 946_684_800_000  # 2000-01-01T00:00:00Z, the zero of PostgreSQL's binary timestamps
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
COPY_TRAILER = b"\xff\xff"
_COPY_READINGS = "COPY readings (point_id, ts, value, quality) FROM STDIN (FORMAT BINARY)"
# After a batch with an already stored reading, how long batches go through staging.
STAGING_AFTER_DUPLICATE_S = 30.0

_ROW = np.dtype([
    ("nfields", ">i2"),
    ("len_point", ">i4"), ("point", ">i4"),
    ("len_ts", ">i4"), ("ts", ">i8"),
    ("len_value", ">i4"), ("value", ">f8"),
    ("len_quality", ">i4"), ("quality", ">i2"),
])


@dataclass
class ReadingColumns:
    """Readings ready to store: point id, epoch ms, value, quality (0 good, 1 bad)."""

    point: np.ndarray
    ts_ms: np.ndarray
    value: np.ndarray
    quality: np.ndarray

    def __len__(self) -> int:
        return int(self.point.size)


def copy_buffer(cols: ReadingColumns) -> bytes:
    """The PostgreSQL binary COPY stream of these rows (four columns)."""
    rows = np.empty(len(cols), dtype=_ROW)
    rows["nfields"] = 4
    rows["len_point"] = 4
    rows["point"] = cols.point
    rows["len_ts"] = 8
    rows["ts"] = (cols.ts_ms.astype(np.int64) - PG_EPOCH_MS) * 1000
    rows["len_value"] = 8
    rows["value"] = cols.value
    rows["len_quality"] = 2
    rows["quality"] = cols.quality
    return COPY_HEADER + rows.tobytes() + COPY_TRAILER


def newest_per_point(cols: ReadingColumns) -> ReadingColumns:
    """For each point in the batch, its reading with the greatest timestamp."""
    if len(cols) == 0:
        return cols
    order = np.lexsort((cols.ts_ms, cols.point))
    p = cols.point[order]
    last = np.ones(p.size, dtype=bool)
    last[:-1] = p[1:] != p[:-1]
    pick = order[last]
    return ReadingColumns(cols.point[pick], cols.ts_ms[pick], cols.value[pick], cols.quality[pick])


class ReadingWriter:
    """Stores batches through one connection (owned by the ingest worker)."""

    def __init__(self, timescale: bool) -> None:
        self.timescale = timescale
        self.partitions = Partitions()
        self._prepared: set[int] = set()  # ids of connections that have the staging tables
        self._staging_until = 0.0  # monotonic time until which batches go through staging
        self.fallbacks = 0  # batches whose direct COPY met an already stored reading

    def prepare(self, conn: psycopg.Connection) -> None:
        """Create the staging tables of this connection and learn the partitions."""
        if id(conn) in self._prepared:
            return
        with conn.transaction():
            for name in ("readings_stage", "latest_stage"):
                conn.execute(
                    f"""CREATE TEMP TABLE IF NOT EXISTS {name} (
                           point_id integer, ts timestamptz, value double precision,
                           quality smallint) ON COMMIT DELETE ROWS"""
                )
            if not self.timescale:
                self.partitions.load(conn)
        self._prepared = {id(conn)}

    def reset(self) -> None:
        """Forget per-connection state (after a failure or reconnect)."""
        self._prepared.clear()
        self.partitions.known.clear()

    def write(self, conn: psycopg.Connection, cols: ReadingColumns) -> int:
        """Store readings (inside the caller's transaction); return how many were new.

        The fast path COPies straight into ``readings``: nothing to move afterwards, and on a
        busy server it is about twice as fast as staging. A batch holding a reading that is
        already stored (a redelivery after a restart, a gateway re-sending) makes that COPY
        fail on the unique key; the savepoint undoes it and the batch goes through staging and
        ``ON CONFLICT DO NOTHING``. Redeliveries come in bursts, so staging stays on for a
        while after such a batch instead of paying for a failed COPY each time.
        """
        if len(cols) == 0:
            return 0
        if not self.timescale:
            self._ensure_partitions(conn, cols.ts_ms)
        buf = copy_buffer(cols)
        with conn.cursor() as cur:
            stored = -1
            if time.monotonic() >= self._staging_until:
                stored = self._copy_direct(cur, buf, len(cols))
            if stored < 0:
                with cur.copy("COPY readings_stage FROM STDIN (FORMAT BINARY)") as copy:
                    copy.write(buf)
                cur.execute("INSERT INTO readings SELECT * FROM readings_stage ON CONFLICT DO NOTHING")
                stored = cur.rowcount
            if stored and not self.timescale:  # TimescaleDB's readings_1m tracks its own
                rollup.mark(cur, cols)
        return stored

    def _copy_direct(self, cur: psycopg.Cursor, buf: bytes, n: int) -> int:
        """COPY into ``readings``; -1 (and nothing written) when a reading is already stored.

        Under ``hazmon.db.savepoint``, not ``conn.transaction()``: when nothing ran yet in the
        batch's transaction, ``transaction()`` would commit the readings on their own, before
        their alarm changes and rollup markers.
        """
        try:
            with savepoint(cur, "hazmon_copy"), cur.copy(_COPY_READINGS) as copy:
                copy.write(buf)
        except psycopg.errors.UniqueViolation:
            self._staging_until = time.monotonic() + STAGING_AFTER_DUPLICATE_S
            self.fallbacks += 1
            return -1
        return n

    def write_latest(self, conn: psycopg.Connection, cols: ReadingColumns) -> None:
        """Upsert the newest of these readings per point into ``point_latest`` (newer wins)."""
        if len(cols) == 0:
            return
        latest = newest_per_point(cols)
        with conn.cursor() as cur:
            with cur.copy("COPY latest_stage FROM STDIN (FORMAT BINARY)") as copy:
                copy.write(copy_buffer(latest))
            cur.execute(
                """INSERT INTO point_latest (point_id, ts, value, quality)
                   SELECT point_id, ts, value, quality FROM latest_stage
                   ON CONFLICT (point_id) DO UPDATE
                   SET ts = EXCLUDED.ts, value = EXCLUDED.value, quality = EXCLUDED.quality,
                       received_at = now()
                   WHERE point_latest.ts < EXCLUDED.ts"""
            )

    def _ensure_partitions(self, conn: psycopg.Connection, ts_ms: np.ndarray) -> None:
        lo, hi = int(ts_ms.min()) // DAY_MS, int(ts_ms.max()) // DAY_MS
        if all(d in self.partitions.known for d in range(lo, hi + 1)):
            return
        days = np.unique(ts_ms // DAY_MS).tolist()
        self.partitions.ensure_days(conn, [int(d) for d in days])


class WriterConnection:
    """One connection with a :class:`ReadingWriter` prepared on it, reopened after a failure.

    The ingest worker, the side writer and the ``point_latest`` writer each own one.
    """

    def __init__(self, db_url: str, timescale: bool, autocommit: bool = False,
                 background_nice: int = 0) -> None:
        self.db_url = db_url
        self.autocommit = autocommit
        self.background_nice = background_nice  # >0: background work (hazmon.priority)
        self.writer = ReadingWriter(timescale)
        self.conn: psycopg.Connection | None = None

    def get(self) -> psycopg.Connection:
        """The open connection, opening (and preparing) one when there is none."""
        if self.conn is None or self.conn.closed:
            self.conn = connect(self.db_url, autocommit=self.autocommit)
            lower_backend_priority(self.conn, self.background_nice)
            self.writer.reset()
            self.writer.prepare(self.conn)
        return self.conn

    def drop(self) -> None:
        """Close and forget the connection (after a failure); the next get() opens a new one."""
        if self.conn is not None:
            try:
                self.conn.close()
            except psycopg.Error:
                pass
        self.conn = None
        self.writer.reset()


def split_by_parity(cols: ReadingColumns) -> tuple[ReadingColumns, ReadingColumns]:
    """Even and odd point ids: two halves that never touch the same index pages."""
    odd = (cols.point & 1).astype(bool)
    even = ~odd
    return (ReadingColumns(cols.point[even], cols.ts_ms[even], cols.value[even], cols.quality[even]),
            ReadingColumns(cols.point[odd], cols.ts_ms[odd], cols.value[odd], cols.quality[odd]))


class SideWriter:
    """A second connection storing half of each large batch beside the worker's own.

    One PostgreSQL backend stores readings on one core; the unique index (one hot page per
    point) makes that the ingest's limit. The worker gives this writer the odd points of a
    large batch, writes the even ones itself, waits for this transaction to commit and only then
    commits its own (which also holds the batch's alarm changes). So an alarm change is never
    committed before all the readings that caused it; if the worker's commit fails after this
    one succeeded, the batch is retried and the side's readings collapse as duplicates.
    """

    def __init__(self, db_url: str, timescale: bool) -> None:
        self.connection = WriterConnection(db_url, timescale)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="hazmon-write-side")

    def submit(self, cols: ReadingColumns) -> Future[int]:
        """Store and commit ``cols`` on the side connection; the future gives how many were new."""
        return self._pool.submit(self._write, cols)

    def _write(self, cols: ReadingColumns) -> int:
        try:
            conn = self.connection.get()
            stored = self.connection.writer.write(conn, cols)
            conn.commit()
            return stored
        except BaseException:
            self.drop()
            raise

    def drop(self) -> None:
        """Forget the connection (after a failure); the next batch opens a new one."""
        self.connection.drop()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.drop()

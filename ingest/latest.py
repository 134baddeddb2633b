"""Keep ``point_latest`` (the newest reading per point) current, off the ingest's critical path.

Upserting the newest reading of every point of every batch inside the batch's transaction cost
the single ingest connection as much as storing the readings themselves (100,000 points: one
row update per point per batch). Here the worker hands each committed batch over (``offer``) and
a thread of its own, with its own connection, upserts the newest per point every
``interval_s``: the database work runs beside the next batches instead of before them, and a
point reporting several times per interval is written once.

Each flush is written in small transactions paced over most of the interval (one upsert of
every point at once held up the alarm path's commits), so ``point_latest`` trails the
committed readings by up to about twice ``interval_s``. It is a cache of the readings table:
the readings themselves, the alarms and the engine never depend on it (the engine only reads
it to seed itself when it has no checkpoint). After a crash the newest readings of the last
interval may be missing from it until those points report again; :meth:`LatestWriter.repair`
(run at start) fills them from the readings table.
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np
import psycopg

from hazmon.errors import DatabaseUnavailable
from ingest.writer import ReadingColumns, WriterConnection, newest_per_point

log = logging.getLogger(__name__)

# Pending readings beyond this many are reduced to the newest per point at once (the database
# may be away for a while: memory stays bounded by the number of points).
_REDUCE_ABOVE = 2_000_000
CHUNK_ROWS = 5_000  # rows per point_latest transaction
SPREAD = 0.75  # share of the interval a flush's chunks are paced over


class LatestWriter:
    """Collects committed readings and upserts the newest per point into ``point_latest``."""

    def __init__(self, db_url: str, timescale: bool, interval_s: float = 1.0,
                 chunk_rows: int = CHUNK_ROWS, background_nice: int = 0) -> None:
        self.interval_s = interval_s
        self.chunk_rows = chunk_rows
        self.connection = WriterConnection(db_url, timescale, autocommit=True,
                                           background_nice=background_nice)
        self._parts: list[ReadingColumns] = []
        self._pending = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.flushed = 0  # batches of upserts written (for tests and metrics)

    def offer(self, cols: ReadingColumns) -> None:
        """Committed readings (any thread); the newest per point reaches the table soon."""
        if len(cols) == 0:
            return
        with self._lock:
            self._parts.append(cols)
            self._pending += len(cols)
            if self._pending > _REDUCE_ABOVE:
                reduced = newest_per_point(_concat(self._parts))
                self._parts, self._pending = [reduced], len(reduced)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="hazmon-latest", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Write what is pending (one last try) and stop."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(30)
        self.connection.drop()

    def flush(self, spread_s: float = 0.0) -> bool:
        """Upsert what is pending now; False on failure (what was not written stays pending).

        The rows go in chunks of ``chunk_rows``, each its own transaction, paced over
        ``spread_s`` seconds: one upsert of every point at once (100,000 rows, half a second of
        the database's CPU and a burst of WAL) made the alarm path's commits wait behind it.
        """
        with self._lock:
            parts, self._parts, self._pending = self._parts, [], 0
        if not parts:
            return True
        cols = newest_per_point(_concat(parts))  # ordered by point: chunks touch few pages
        starts = range(0, len(cols), self.chunk_rows)
        pause = spread_s / len(starts)
        for k, lo in enumerate(starts):
            chunk = _slice(cols, lo, lo + self.chunk_rows)
            try:
                conn = self.connection.get()
                with conn.transaction():
                    self.connection.writer.write_latest(conn, chunk)
            except (psycopg.Error, DatabaseUnavailable, OSError) as exc:
                log.warning("could not update point_latest (%s); retrying", str(exc).strip())
                self.connection.drop()
                with self._lock:  # keep them: older than anything offered meanwhile, newer wins
                    self._parts.insert(0, _slice(cols, lo, len(cols)))
                    self._pending += len(cols) - lo
                return False
            if k + 1 < len(starts) and pause > 0:
                self._stop.wait(pause)  # at stop: the rest at once
        self.flushed += 1
        return True

    def _run(self) -> None:
        delay = backoff = self.interval_s
        while not self._stop.is_set():
            self._wake.wait(delay)
            self._wake.clear()
            started = time.monotonic()
            try:
                ok = self.flush(spread_s=self.interval_s * SPREAD)
            except Exception:  # noqa: BLE001 - the thread must never die
                log.exception("point_latest writer error")
                ok = False
            if ok:  # flushes start an interval apart (at once after a longer one)
                backoff = self.interval_s
                delay = max(self.interval_s - (time.monotonic() - started), 0.0)
            else:
                delay = backoff = min(max(backoff * 2, 0.5), 10.0)
        self.flush()


def repair(conn: psycopg.Connection, window_s: float = 60.0) -> int:
    """Bring ``point_latest`` up to the readings table for the readings of the last moments.

    Run at start: a crash may have left the newest readings of the last interval out of the
    table. Those are at most one interval older than the newest time already there (during a
    database outage nothing commits, so nothing newer waits), so only readings from
    ``window_s`` before that time on are looked at.
    """
    t0 = time.monotonic()
    cur = conn.execute(
        """INSERT INTO point_latest (point_id, ts, value, quality)
           SELECT DISTINCT ON (r.point_id) r.point_id, r.ts, r.value, r.quality
           FROM readings r
           LEFT JOIN point_latest l ON l.point_id = r.point_id
           WHERE r.ts > (SELECT coalesce(max(ts), now()) FROM point_latest)
                        - make_interval(secs => %s)
             AND (l.ts IS NULL OR r.ts > l.ts)
             AND EXISTS (SELECT 1 FROM points p WHERE p.id = r.point_id)
           ORDER BY r.point_id, r.ts DESC
           ON CONFLICT (point_id) DO UPDATE
           SET ts = EXCLUDED.ts, value = EXCLUDED.value, quality = EXCLUDED.quality,
               received_at = now()
           WHERE point_latest.ts < EXCLUDED.ts""",
        (window_s,),
    )
    n = cur.rowcount
    if n:
        log.info("point_latest: %d points brought up to date from readings in %.1fs",
                 n, time.monotonic() - t0)
    return n


def _slice(cols: ReadingColumns, lo: int, hi: int) -> ReadingColumns:
    return ReadingColumns(cols.point[lo:hi], cols.ts_ms[lo:hi], cols.value[lo:hi],
                          cols.quality[lo:hi])


def _concat(parts: list[ReadingColumns]) -> ReadingColumns:
    if len(parts) == 1:
        return parts[0]
    return ReadingColumns(np.concatenate([p.point for p in parts]),
                          np.concatenate([p.ts_ms for p in parts]),
                          np.concatenate([p.value for p in parts]),
                          np.concatenate([p.quality for p in parts]))

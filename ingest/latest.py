"""Keep ``point_latest`` (the newest reading per point) current, off the ingest's critical path.

Upserting the newest reading of every point of every batch inside the batch's transaction cost
the single ingest connection as much as storing the readings themselves (100,000 points: one
row update per point per batch). Here the worker hands each committed batch over (``offer``) and
a thread of its own, with its own connection, upserts the newest per point every
``interval_s``: the database work runs beside the next batches instead of before them, and a
point reporting several times per interval is written once.

``point_latest`` therefore trails the committed readings by up to ``interval_s`` (plus the time
of one upsert). It is a cache of the readings table: the readings themselves, the alarms and
the engine never depend on it (the engine only reads it to seed itself when it has no
checkpoint). After a crash the newest readings of the last interval may be missing from it
until those points report again; :meth:`LatestWriter.repair` (run at start) fills them from the
readings table.
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


class LatestWriter:
    """Collects committed readings and upserts the newest per point into ``point_latest``."""

    def __init__(self, db_url: str, timescale: bool, interval_s: float = 1.0) -> None:
        self.interval_s = interval_s
        self.connection = WriterConnection(db_url, timescale, autocommit=True)
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

    def flush(self) -> bool:
        """Upsert what is pending now (the thread does this every interval); False on failure."""
        with self._lock:
            parts, self._parts, self._pending = self._parts, [], 0
        if not parts:
            return True
        cols = newest_per_point(_concat(parts))
        try:
            conn = self.connection.get()
            with conn.transaction():
                self.connection.writer.write_latest(conn, cols)
            self.flushed += 1
            return True
        except (psycopg.Error, DatabaseUnavailable, OSError) as exc:
            log.warning("could not update point_latest (%s); retrying", str(exc).strip())
            self.connection.drop()
            with self._lock:  # keep them: older than anything offered meanwhile, newer wins
                self._parts.insert(0, cols)
                self._pending += len(cols)
            return False

    def _run(self) -> None:
        backoff = self.interval_s
        while not self._stop.is_set():
            self._wake.wait(backoff)
            self._wake.clear()
            try:
                ok = self.flush()
            except Exception:  # noqa: BLE001 - the thread must never die
                log.exception("point_latest writer error")
                ok = False
            backoff = self.interval_s if ok else min(max(backoff * 2, 0.5), 10.0)
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


def _concat(parts: list[ReadingColumns]) -> ReadingColumns:
    if len(parts) == 1:
        return parts[0]
    return ReadingColumns(np.concatenate([p.point for p in parts]),
                          np.concatenate([p.ts_ms for p in parts]),
                          np.concatenate([p.value for p in parts]),
                          np.concatenate([p.quality for p in parts]))

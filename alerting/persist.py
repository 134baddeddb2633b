"""Restart safety for the engine: checkpoints plus replay of what was stored since.

Readings and the alarm changes they cause commit together, so the database is always the
truth. A checkpoint stores the engine's arrays (keyed by point id); on start the newest one is
loaded and every stored reading newer than a point's last judged reading is judged again in
order. Replayed transitions meet alarms that already reflect them, so recording them again
changes nothing; what they restore is the engine's memory (pending delays, run starts).
Without a checkpoint the engine is seeded from the open alarms and the newest readings.
"""

from __future__ import annotations

import io
import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import Callable

import numpy as np
import psycopg

from alerting.engine import NO_TIME, Engine, Transitions
from devices.registry import Registry
from hazmon.priority import lower_backend_priority

log = logging.getLogger(__name__)

REPLAY_HORIZON = timedelta(days=2)
REPLAY_CHUNK = 200_000


def save_checkpoint(conn: psycopg.Connection, engine: Engine, registry: Registry,
                    name: str = "default") -> None:
    """Store the engine's state keyed by point id (in the caller's transaction)."""
    save_state(conn, registry.point_ids, engine.export_state(), name)


def save_state(conn: psycopg.Connection, point_ids: np.ndarray, state: dict[str, np.ndarray],
               name: str = "default") -> None:
    """Store exported engine state (``Engine.export_state``) keyed by point id."""
    buf = io.BytesIO()
    np.savez(buf, point_ids=point_ids, **state)
    conn.execute(
        """INSERT INTO engine_checkpoints (name, taken_at, state) VALUES (%s, now(), %s)
           ON CONFLICT (name) DO UPDATE SET taken_at = EXCLUDED.taken_at, state = EXCLUDED.state""",
        (name, buf.getvalue()),
    )


def _load_checkpoint(conn: psycopg.Connection, engine: Engine, registry: Registry,
                     name: str) -> bool:
    row = conn.execute("SELECT state FROM engine_checkpoints WHERE name = %s", (name,)).fetchone()
    if row is None:
        return False
    saved = np.load(io.BytesIO(row[0]))
    ids = saved["point_ids"]
    current = engine.export_state()
    pos = np.searchsorted(ids, registry.point_ids)
    pos = np.minimum(pos, max(ids.size - 1, 0))
    found = (ids[pos] == registry.point_ids) if ids.size else np.zeros(len(registry), bool)
    for key, arr in current.items():
        if key in saved.files:  # a key added by a newer engine starts fresh
            arr[found] = saved[key][pos[found]]
    engine.import_state(current)
    return True


def _seed_from_alarms(conn: psycopg.Connection, engine: Engine, registry: Registry) -> None:
    """No checkpoint: active conditions from open alarms, newest judged time from point_latest."""
    state = engine.export_state()
    for pid, ts in conn.execute("SELECT point_id, ts FROM point_latest"):
        i = int(np.searchsorted(registry.point_ids, pid))
        if i < len(registry) and registry.point_ids[i] == pid:
            state["last_ts"][i] = int(ts.timestamp() * 1000)
    for pid, cond in conn.execute(
            "SELECT point_id, condition FROM alarms WHERE active AND point_id IS NOT NULL"):
        i = int(np.searchsorted(registry.point_ids, pid))
        if i < len(registry) and registry.point_ids[i] == pid and f"active_{cond}" in state:
            state[f"active_{cond}"][i] = True
            if f"raw_{cond}" in state:
                state[f"raw_{cond}"][i] = True
    engine.import_state(state)


def load_engine_state(engine: Engine, registry: Registry, conn: psycopg.Connection,
                      record: Callable[[Transitions], None] | None = None,
                      name: str = "default") -> int:
    """Resume the engine after a restart; return how many readings were replayed."""
    if not _load_checkpoint(conn, engine, registry, name):
        _seed_from_alarms(conn, engine, registry)
        return 0
    return _replay(conn, engine, registry, record)


def _replay(conn: psycopg.Connection, engine: Engine, registry: Registry,
            record: Callable[[Transitions], None] | None) -> int:
    last = engine.export_state()["last_ts"]
    horizon = datetime.now(UTC) - REPLAY_HORIZON
    judged = last != NO_TIME
    since = np.where(judged, last, int(horizon.timestamp() * 1000))
    rows = conn.execute(
        """SELECT r.point_id, (extract(epoch FROM r.ts) * 1000)::bigint, r.value, r.quality
           FROM readings r
           JOIN unnest(%s::int[], %s::bigint[]) AS s(pid, since_ms) ON r.point_id = s.pid
           WHERE r.ts > to_timestamp(s.since_ms / 1000.0) AND r.ts > %s
           ORDER BY r.ts""",
        (registry.point_ids.tolist(), since.tolist(), horizon),
    ).fetchall()
    if not rows:
        return 0
    arr = np.array(rows, dtype=np.float64)
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    for start in range(0, len(arr), REPLAY_CHUNK):
        part = arr[start:start + REPLAY_CHUNK]
        idx = registry.index_of(part[:, 0].astype(np.int32))
        j = engine.judge(idx, part[:, 1].astype(np.int64), part[:, 2], part[:, 3] != 0, now_ms)
        if record is not None:
            record(j.transitions)
        engine.apply(j)
    log.info("replayed %d readings stored since the last engine checkpoint", len(arr))
    return len(arr)


class CheckpointWriter:
    """Writes periodic checkpoints on a connection of its own, off the alarm path.

    With 100,000 points a checkpoint is several MB: serialising, compressing and committing it
    in the ingest worker held every batch behind it for a few hundred ms every interval. The
    worker now only copies the state (``offer``, a few ms) after a commit; this thread stores
    the newest copy offered. A copy describes committed readings only, and replay starts from
    each point's own last judged reading, so a checkpoint that lands late is still exact.
    """

    def __init__(self, db_url: str, name: str, background_nice: int = 0) -> None:
        self.db_url = db_url
        self.name = name
        self.background_nice = background_nice
        self.saved = 0  # checkpoints written (tests, diagnostics)
        self._pending: tuple[np.ndarray, dict[str, np.ndarray]] | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hazmon-checkpoint", daemon=True)
        self._conn: psycopg.Connection | None = None

    def start(self) -> None:
        self._thread.start()

    def offer(self, point_ids: np.ndarray, state: dict[str, np.ndarray]) -> None:
        """The newest state to store (any older one not yet written is dropped)."""
        with self._lock:
            self._pending = (point_ids, state)
        self._wake.set()

    def stop(self) -> None:
        """Write what is pending (one try) and stop; the caller's final checkpoint comes after."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(30)
        if self._conn is not None:
            self._conn.close()

    def _run(self) -> None:
        backoff = 0.5
        while True:
            self._wake.wait(backoff if self._pending is not None else None)
            self._wake.clear()
            stopping = self._stop.is_set()
            if self._write() or stopping:
                backoff = 0.5
                if stopping:
                    return
            else:
                backoff = min(backoff * 2, 10.0)

    def _write(self) -> bool:
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is None:
            return True
        try:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(self.db_url)
                lower_backend_priority(self._conn, self.background_nice)
            save_state(self._conn, pending[0], pending[1], self.name)
            self._conn.commit()
            self.saved += 1
            return True
        except (psycopg.Error, OSError) as exc:
            log.warning("could not save the engine checkpoint (%s); retrying", str(exc).strip())
            if self._conn is not None:
                self._conn.close()
            self._conn = None
            with self._lock:  # unless a newer one came meanwhile
                if self._pending is None:
                    self._pending = pending
            return False

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
from datetime import UTC, datetime, timedelta
from typing import Callable

import numpy as np
import psycopg

from alerting.engine import NO_TIME, Engine, Transitions
from devices.registry import Registry

log = logging.getLogger(__name__)

REPLAY_HORIZON = timedelta(days=2)
REPLAY_CHUNK = 200_000


def save_checkpoint(conn: psycopg.Connection, engine: Engine, registry: Registry,
                    name: str = "default") -> None:
    """Store the engine's state keyed by point id (in the caller's transaction)."""
    buf = io.BytesIO()
    np.savez(buf, point_ids=registry.point_ids, **engine.export_state())
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

"""Periodic engine checkpoints are stored by a thread of their own: newest wins, none lost."""

from __future__ import annotations

import io
import time

import numpy as np
import psycopg

from alerting.persist import CheckpointWriter


def _stored(conn: psycopg.Connection, name: str) -> dict[str, np.ndarray] | None:
    conn.commit()
    row = conn.execute("SELECT state FROM engine_checkpoints WHERE name = %s", (name,)).fetchone()
    return None if row is None else dict(np.load(io.BytesIO(row[0])))


def _state(v: int) -> dict[str, np.ndarray]:
    return {"last_ts": np.full(3, v, np.int64), "active": np.zeros((7, 3), bool)}


def _wait_saved(w: CheckpointWriter, n: int) -> None:
    deadline = time.monotonic() + 10
    while w.saved < n and time.monotonic() < deadline:
        time.sleep(0.01)
    assert w.saved >= n


def test_the_newest_state_offered_is_stored(db_url: str, conn: psycopg.Connection) -> None:
    w = CheckpointWriter(db_url, "cw-newest")
    ids = np.array([4, 7, 9], np.int32)
    w.offer(ids, _state(1))
    w.offer(ids, _state(2))  # before the thread runs: only this one is written
    w.start()
    _wait_saved(w, 1)
    saved = _stored(conn, "cw-newest")
    assert saved is not None and saved["point_ids"].tolist() == [4, 7, 9]
    assert saved["last_ts"].tolist() == [2, 2, 2]
    w.offer(ids, _state(3))
    _wait_saved(w, 2)
    assert _stored(conn, "cw-newest")["last_ts"].tolist() == [3, 3, 3]  # type: ignore[index]
    w.stop()
    assert w.saved == 2


def test_a_state_that_could_not_be_stored_is_retried_and_stop_writes_the_last(
        db_url: str, conn: psycopg.Connection) -> None:
    w = CheckpointWriter("postgresql://nobody@127.0.0.1:1/none", "cw-retry")
    w.start()
    w.offer(np.array([1], np.int32), _state(5))
    time.sleep(0.3)  # a failed try or two: kept
    assert w.saved == 0 and _stored(conn, "cw-retry") is None
    w.db_url = db_url
    _wait_saved(w, 1)
    assert _stored(conn, "cw-retry")["last_ts"].tolist() == [5, 5, 5]  # type: ignore[index]
    w.offer(np.array([1], np.int32), _state(6))
    w.stop()  # the pending one is written before the thread ends
    assert _stored(conn, "cw-retry")["last_ts"].tolist() == [6, 6, 6]  # type: ignore[index]

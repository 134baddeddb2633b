"""The write path: COPY straight into readings, staging when a reading is already stored."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

import numpy as np
import psycopg
import pytest

from hazmon.db import storage_info
from ingest.latest import LatestWriter, repair
from hazmon.errors import DatabaseUnavailable
from ingest.writer import (STAGING_AFTER_DUPLICATE_S, ReadingColumns, ReadingWriter, SideWriter,
                          split_by_parity)


@pytest.fixture
def points(conn: psycopg.Connection) -> list[int]:
    """Three points, and no readings (the database is shared by this module's tests)."""
    conn.execute("TRUNCATE enterprises, readings, point_latest, rejections CASCADE")
    conn.execute("INSERT INTO enterprises (code, name) VALUES ('W1', 'w')")
    conn.execute("INSERT INTO points (enterprise_id, tag, kind) "
                 "SELECT id, 'T' || g, 'level' FROM enterprises, generate_series(1, 3) g "
                 "WHERE code = 'W1'")
    conn.commit()
    return [r[0] for r in conn.execute("SELECT id FROM points WHERE tag LIKE 'T%' ORDER BY id")]


def _writer(conn: psycopg.Connection) -> ReadingWriter:
    w = ReadingWriter(storage_info(conn).timescale)
    w.prepare(conn)
    return w


def _cols(pids: list[int], ts: list[int], values: list[float]) -> ReadingColumns:
    return ReadingColumns(np.array(pids, np.int32), np.array(ts, np.int64),
                          np.array(values, np.float64), np.zeros(len(pids), np.int16))


def _now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000) - 60_000


def _stored(conn: psycopg.Connection) -> list[tuple[int, float]]:
    return [(int(p), float(v)) for p, v in
            conn.execute("SELECT point_id, value FROM readings ORDER BY ts, point_id")]


def test_new_readings_go_straight_in(conn: psycopg.Connection, points: list[int]) -> None:
    w = _writer(conn)
    t = _now_ms()
    assert w.write(conn, _cols(points, [t, t, t], [1.0, 2.0, 3.0])) == 3
    conn.commit()
    assert w.fallbacks == 0
    assert _stored(conn) == [(points[0], 1.0), (points[1], 2.0), (points[2], 3.0)]


def test_a_stored_reading_sends_the_batch_through_staging(conn: psycopg.Connection,
                                                          points: list[int]) -> None:
    w = _writer(conn)
    t = _now_ms()
    assert w.write(conn, _cols(points[:1], [t], [1.0])) == 1
    conn.commit()
    # redelivered reading + a new one: the new one is stored, the old value is kept
    assert w.write(conn, _cols([points[0], points[1]], [t, t], [9.0, 2.0])) == 1
    conn.commit()
    assert w.fallbacks == 1
    assert _stored(conn) == [(points[0], 1.0), (points[1], 2.0)]
    # staging stays on for a while: the next duplicate costs no failed COPY
    assert w.write(conn, _cols([points[1], points[2]], [t, t], [8.0, 3.0])) == 1
    conn.commit()
    assert w.fallbacks == 1
    assert _stored(conn) == [(points[0], 1.0), (points[1], 2.0), (points[2], 3.0)]


def test_direct_copy_returns_after_the_staging_period(conn: psycopg.Connection,
                                                      points: list[int],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    w = _writer(conn)
    t = _now_ms()
    w.write(conn, _cols(points[:1], [t], [1.0]))
    w.write(conn, _cols(points[:1], [t], [1.0]))  # duplicate: staging from now on
    conn.commit()
    assert w.fallbacks == 1
    later = time.monotonic() + STAGING_AFTER_DUPLICATE_S + 1
    monkeypatch.setattr("ingest.writer.time.monotonic", lambda: later)
    assert w.write(conn, _cols(points[:1], [t], [1.0])) == 0  # tried directly, fell back again
    assert w.fallbacks == 2
    assert w.write(conn, _cols(points[1:2], [t], [2.0])) == 1
    conn.commit()


def test_a_duplicate_inside_one_batch_is_stored_once(conn: psycopg.Connection,
                                                     points: list[int]) -> None:
    w = _writer(conn)
    t = _now_ms()
    assert w.write(conn, _cols([points[0], points[0], points[1]], [t, t, t], [1.0, 1.0, 2.0])) == 2
    conn.commit()
    assert _stored(conn) == [(points[0], 1.0), (points[1], 2.0)]


def test_a_failed_direct_copy_leaves_the_transaction_usable(conn: psycopg.Connection,
                                                            points: list[int]) -> None:
    """The savepoint undoes only the COPY: earlier work of the same transaction stays."""
    w = _writer(conn)
    t = _now_ms()
    w.write(conn, _cols(points[:1], [t], [1.0]))
    conn.commit()
    conn.execute("INSERT INTO rejections (code, reason, topic) VALUES ('x', 'y', 'z')")
    assert w.write(conn, _cols([points[0], points[2]], [t, t], [5.0, 3.0])) == 1
    conn.commit()
    assert conn.execute("SELECT count(*) FROM rejections WHERE code = 'x'").fetchone() == (1,)
    assert _stored(conn) == [(points[0], 1.0), (points[2], 3.0)]


@pytest.mark.parametrize("duplicate", [False, True], ids=["direct", "staging"])
def test_readings_commit_only_with_the_callers_transaction(db_url: str, conn: psycopg.Connection,
                                                          points: list[int], duplicate: bool) -> None:
    """A batch's readings become visible with its alarm changes, never before: written first
    in a fresh transaction, they are still uncommitted until the caller commits."""
    w = _writer(conn)
    t = _now_ms()
    if duplicate:
        w.write(conn, _cols(points[:1], [t], [1.0]))
    conn.commit()
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert w.write(conn, _cols(points, [t, t + 1, t + 2], [1.0, 2.0, 3.0])) == (2 if duplicate else 3)
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
    with psycopg.connect(db_url) as other:
        assert other.execute("SELECT count(*) FROM readings").fetchone() == (int(duplicate),)
    conn.rollback()
    assert len(_stored(conn)) == int(duplicate)


def _latest(conn: psycopg.Connection) -> dict[int, tuple[float, int]]:
    conn.commit()
    return {int(p): (float(v), int(ts.timestamp() * 1000)) for p, v, ts in
            conn.execute("SELECT point_id, value, ts FROM point_latest")}


def test_latest_writer_keeps_the_newest_per_point(db_url: str, conn: psycopg.Connection,
                                                  points: list[int]) -> None:
    lw = LatestWriter(db_url, storage_info(conn).timescale)
    t = _now_ms()
    lw.offer(_cols([points[0], points[0], points[1]], [t + 1000, t, t], [2.0, 1.0, 5.0]))
    lw.offer(_cols([points[0]], [t - 5000], [0.5]))  # older, arriving later: does not win
    assert _latest(conn) == {}  # nothing before a flush
    assert lw.flush()
    assert _latest(conn) == {points[0]: (2.0, t + 1000), points[1]: (5.0, t)}
    lw.offer(_cols([points[1]], [t - 1], [7.0]))  # older than the stored one
    lw.offer(_cols([points[0]], [t + 2000], [3.0]))
    assert lw.flush()
    assert _latest(conn) == {points[0]: (3.0, t + 2000), points[1]: (5.0, t)}


def test_latest_writer_thread_flushes_on_its_own_and_at_stop(db_url: str, conn: psycopg.Connection,
                                                             points: list[int]) -> None:
    lw = LatestWriter(db_url, storage_info(conn).timescale, interval_s=0.05)
    lw.start()
    t = _now_ms()
    try:
        lw.offer(_cols(points[:1], [t], [1.0]))
        deadline = time.monotonic() + 10
        while points[0] not in _latest(conn) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _latest(conn)[points[0]] == (1.0, t)
    finally:
        lw.interval_s = 3600.0  # from now on only the stop writes
        time.sleep(0.1)
        lw.offer(_cols(points[1:2], [t], [2.0]))
        lw.stop()
    assert _latest(conn)[points[1]] == (2.0, t)


def test_latest_writer_writes_in_chunks_and_keeps_the_unwritten_ones(
        db_url: str, conn: psycopg.Connection, points: list[int]) -> None:
    """A flush goes in small transactions; a failure after some keeps only the rest pending."""
    lw = LatestWriter(db_url, storage_info(conn).timescale, chunk_rows=1)
    t = _now_ms()
    lw.offer(_cols(points, [t, t, t], [1.0, 2.0, 3.0]))
    write, calls = lw.connection.writer.write_latest, []

    def second_fails(c: psycopg.Connection, cols: ReadingColumns) -> None:
        calls.append(cols.point.tolist())
        if len(calls) == 2:
            raise psycopg.OperationalError("connection lost (injected)")
        write(c, cols)
    lw.connection.writer.write_latest = second_fails  # type: ignore[method-assign]
    assert not lw.flush(spread_s=0.05)
    assert calls == [[points[0]], [points[1]]]  # one point per transaction, in point order
    assert _latest(conn) == {points[0]: (1.0, t)}
    assert lw.flush()  # the two not written, with what the next writer connection brings
    assert calls[2:] == [[points[1]], [points[2]]]
    assert _latest(conn) == {points[0]: (1.0, t), points[1]: (2.0, t), points[2]: (3.0, t)}


def test_latest_writer_runs_its_backend_as_background_work(db_url: str, conn: psycopg.Connection,
                                                          points: list[int]) -> None:
    lw = LatestWriter(db_url, storage_info(conn).timescale, background_nice=6)
    lw.offer(_cols(points[:1], [_now_ms()], [1.0]))
    assert lw.flush()
    backend = lw.connection.conn.info.backend_pid  # type: ignore[union-attr]
    assert os.getpriority(os.PRIO_PROCESS, backend) == 6
    lw.stop()


def test_latest_writer_keeps_what_it_could_not_write(conn: psycopg.Connection,
                                                     points: list[int], db_url: str) -> None:
    lw = LatestWriter("postgresql://nobody@127.0.0.1:1/none", storage_info(conn).timescale)
    t = _now_ms()
    lw.offer(_cols(points[:2], [t, t], [1.0, 2.0]))
    assert not lw.flush()  # the database is away: kept for the next try
    lw.connection.db_url = db_url
    lw.offer(_cols(points[:1], [t + 1], [3.0]))
    assert lw.flush()
    assert _latest(conn) == {points[0]: (3.0, t + 1), points[1]: (2.0, t)}


def test_repair_fills_point_latest_from_recent_readings(conn: psycopg.Connection,
                                                        points: list[int]) -> None:
    """After a crash between commit and the latest writer's flush."""
    w = _writer(conn)
    t = _now_ms()
    w.write(conn, _cols(points, [t, t, t - 10_000], [1.0, 2.0, 3.0]))
    w.write(conn, _cols(points[:1], [t + 1000], [4.0]))
    w.write_latest(conn, _cols(points[1:2], [t], [2.0]))  # only this one reached point_latest
    conn.commit()
    assert repair(conn) == 2
    assert _latest(conn) == {points[0]: (4.0, t + 1000), points[1]: (2.0, t),
                             points[2]: (3.0, t - 10_000)}
    assert repair(conn) == 0


def test_split_by_parity_keeps_every_reading_once() -> None:
    cols = _cols([1, 2, 3, 4, 4], [10, 20, 30, 40, 50], [1.0, 2.0, 3.0, 4.0, 5.0])
    even, odd = split_by_parity(cols)
    assert even.point.tolist() == [2, 4, 4] and even.ts_ms.tolist() == [20, 40, 50]
    assert odd.point.tolist() == [1, 3] and odd.value.tolist() == [1.0, 3.0]


def test_side_writer_commits_on_its_own_connection(db_url: str, conn: psycopg.Connection,
                                                   points: list[int]) -> None:
    side = SideWriter(db_url, storage_info(conn).timescale)
    t = _now_ms()
    try:
        assert side.submit(_cols(points[:2], [t, t], [1.0, 2.0])).result(30) == 2
        conn.commit()
        assert _stored(conn) == [(points[0], 1.0), (points[1], 2.0)]  # committed, visible
        # a redelivery collapses there too
        assert side.submit(_cols(points, [t, t, t], [9.0, 9.0, 3.0])).result(30) == 1
        conn.commit()
        assert _stored(conn) == [(points[0], 1.0), (points[1], 2.0), (points[2], 3.0)]
    finally:
        side.close()


def test_side_writer_failure_reaches_the_worker(conn: psycopg.Connection, points: list[int]) -> None:
    side = SideWriter("postgresql://nobody@127.0.0.1:1/none", storage_info(conn).timescale)
    try:
        with pytest.raises(DatabaseUnavailable):
            side.submit(_cols(points[:1], [_now_ms()], [1.0])).result(30)
    finally:
        side.close()

"""Helpers of the rollup tests: points, random readings written as ingest writes them, and the
comparison of summarised trends with the raw query's."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import numpy as np
import psycopg
import pytest

from hazmon.db import storage_info
from ingest.repository import bucketed_query, bucketed_raw, bucketed_readings
from ingest.writer import ReadingColumns, ReadingWriter

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
BUCKETS = (60, 300, 3600, 90)


def dt(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=int(ms))


def now_minute_ms() -> int:
    return time.time_ns() // 1_000_000 // 60_000 * 60_000


def needs_plain(conn: psycopg.Connection) -> None:
    timescale = storage_info(conn).timescale
    conn.commit()
    if timescale:
        pytest.skip("TimescaleDB here: trends use its continuous aggregate, not the plain rollup")


def make_points(conn: psycopg.Connection, code: str, n: int) -> list[int]:
    """An enterprise with ``n`` points; their ids."""
    conn.execute("INSERT INTO enterprises (code, name) VALUES (%s, %s)", (code, code))
    ids = [conn.execute(
        "INSERT INTO points (enterprise_id, tag, kind) SELECT id, %s, 'level' FROM enterprises "
        "WHERE code = %s RETURNING id", (f"{code}-{i}", code)).fetchone()[0] for i in range(n)]
    conn.commit()
    return ids


def columns(point: list[int] | np.ndarray, ts_ms: list[int] | np.ndarray,
            value: list[float] | np.ndarray, quality: np.ndarray | None = None) -> ReadingColumns:
    ts = np.asarray(ts_ms, np.int64)
    return ReadingColumns(np.asarray(point, np.int32), ts, np.asarray(value, np.float64),
                          np.zeros(ts.size, np.int16) if quality is None else quality)


def random_readings(rng: np.random.Generator, pids: list[int], t0_ms: int,
                    minutes: int) -> ReadingColumns:
    """Each point at its own rate with silent minutes, 10 % bad quality, in arrival order."""
    parts = []
    for pid in pids:
        n = int(rng.uniform(0.1, 1.5) * minutes * 60)
        ts = np.unique(rng.integers(t0_ms, t0_ms + minutes * 60_000, n))
        silent = rng.random(minutes) < 0.2
        ts = ts[~silent[(ts - t0_ms) // 60_000]]
        parts.append((np.full(ts.size, pid), ts))
    point = np.concatenate([p for p, _ in parts])
    ts = np.concatenate([t for _, t in parts])
    order = np.argsort(ts, kind="stable")
    value = np.round(rng.normal(50, 20, ts.size), 3)
    quality = (rng.random(ts.size) < 0.1).astype(np.int16)
    return columns(point[order], ts[order], value, quality)


def write(conn: psycopg.Connection, cols: ReadingColumns, batch_ms: int = 10_000) -> int:
    """Store readings in arrival-time batches, one transaction each, as ingest does."""
    writer = ReadingWriter(storage_info(conn).timescale)
    writer.prepare(conn)
    stored = 0
    if len(cols) == 0:
        return 0
    edges = np.searchsorted(cols.ts_ms, np.arange(cols.ts_ms[0], cols.ts_ms[-1] + batch_ms,
                                                  batch_ms), side="left")
    for a, b in pairwise(edges):
        if b > a:
            sl = slice(int(a), int(b))
            stored += writer.write(conn, ReadingColumns(cols.point[sl], cols.ts_ms[sl],
                                                        cols.value[sl], cols.quality[sl]))
            conn.commit()
    return stored


def write_one(conn: psycopg.Connection, cols: ReadingColumns) -> int:
    """Store readings as one batch."""
    writer = ReadingWriter(storage_info(conn).timescale)
    writer.prepare(conn)
    stored = writer.write(conn, cols)
    conn.commit()
    return stored


def same_float(a: float, b: float, exact: bool) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if exact or math.isinf(a) or math.isinf(b):
        return a == b
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-9)


def assert_same(conn: psycopg.Connection, pid: int, start: datetime, end: datetime,
                bucket_s: int, source: str | None = None) -> int:
    """The summarised buckets equal the raw query's; how many buckets."""
    if source is not None and bucket_s % 60 == 0 and end - start >= timedelta(minutes=2):
        assert source in bucketed_query(conn, pid, start, end, bucket_s, 1)[0]
    got = bucketed_readings(conn, pid, start, end, bucket_s, 100_000)
    want = bucketed_raw(conn, pid, start, end, bucket_s, 100_000)
    where = f"point {pid} [{start}, {end}) bucket {bucket_s}"
    assert [r["ts"] for r in got] == [r["ts"] for r in want], where
    for g, w in zip(got, want, strict=True):
        assert g["count"] == w["count"], (where, g, w)
        assert same_float(g["min"], w["min"], True), (where, g, w)
        assert same_float(g["max"], w["max"], True), (where, g, w)
        assert same_float(g["avg"], w["avg"], False), (where, g, w)
    return len(got)


def random_windows(rng: np.random.Generator, t0_ms: int, minutes: int,
                   n: int) -> list[tuple[datetime, datetime]]:
    """Windows over the data, half of their ends on minute boundaries, some shorter than one."""
    out = []
    for i in range(n):
        start = t0_ms - 120_000 + int(rng.integers(0, (minutes + 2) * 60_000))
        length = int(rng.integers(1, 90_000)) if i % 5 == 0 else int(
            rng.integers(60_000, (minutes + 4) * 60_000))
        end = start + length
        if rng.random() < 0.5:
            start = start // 60_000 * 60_000
        if rng.random() < 0.5:
            end = max(end // 60_000 * 60_000, start + 1)
        out.append((dt(start), dt(end)))
    return out


def rollup_rows(conn: psycopg.Connection) -> list[tuple[object, ...]]:
    rows = conn.execute("SELECT point_id, bucket, n, sum, min, max FROM readings_rollup_1m "
                        "ORDER BY 1, 2").fetchall()
    conn.commit()
    return rows


def recomputed(conn: psycopg.Connection) -> list[tuple[object, ...]]:
    """What the rollup must hold: every minute of every point, from scratch."""
    rows = conn.execute(
        """SELECT point_id, date_bin('1 minute', ts, timestamptz '1970-01-01 00:00:00+00') b,
                  count(*), sum(value), min(value), max(value)
           FROM readings GROUP BY 1, 2 ORDER BY 1, 2""").fetchall()
    conn.commit()
    return rows


def assert_rollup_complete(conn: psycopg.Connection) -> None:
    got, want = rollup_rows(conn), recomputed(conn)
    assert [r[:3] for r in got] == [r[:3] for r in want]
    for g, w in zip(got, want, strict=True):
        assert same_float(g[4], w[4], True) and same_float(g[5], w[5], True), (g, w)
        assert same_float(g[3], w[3], False), (g, w)


def pending(conn: psycopg.Connection) -> list[tuple[int | None, datetime, datetime]]:
    rows = conn.execute("SELECT point_id, lo, hi FROM rollup_pending ORDER BY id").fetchall()
    conn.commit()
    return rows

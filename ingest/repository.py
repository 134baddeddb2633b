"""SQL for rejections, gateway status and reading queries: ingest's only database layer."""

from __future__ import annotations

import weakref
from datetime import UTC, datetime, timedelta
from typing import Any, Sequence

import psycopg
import psycopg.errors
from psycopg.rows import dict_row

from hazmon.db import ROLLUP_TABLE, savepoint

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MINUTE = timedelta(minutes=1)
REJECTION_COLUMNS = ("enterprise", "gateway", "topic", "tag", "code", "reason", "excerpt")


def insert_rejections(conn: psycopg.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Record refused messages/readings (tuples in REJECTION_COLUMNS order)."""
    if not rows:
        return
    with conn.cursor() as cur:
        with cur.copy(f"COPY rejections ({', '.join(REJECTION_COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


def list_rejections(conn: psycopg.Connection, *, enterprise: str | None, since: datetime | None,
                    limit: int, scope: list[str] | None = None) -> list[dict[str, Any]]:
    """Rejections newest first, optionally of one enterprise and since a time; ``scope`` limits
    them to these enterprises (None = all)."""
    where: list[str] = []
    params: list[Any] = []
    if scope is not None:
        where.append("enterprise = ANY(%s)")
        params.append(scope)
    if enterprise is not None:
        where.append("enterprise = %s")
        params.append(enterprise)
    if since is not None:
        where.append("at >= %s")
        params.append(since)
    sql = ("SELECT at, enterprise, gateway, topic, tag, code, reason, excerpt FROM rejections"
           + (" WHERE " + " AND ".join(where) if where else "")
           + " ORDER BY at DESC, id DESC LIMIT %s")
    return conn.cursor(row_factory=dict_row).execute(sql, (*params, limit)).fetchall()


def set_gateway_status(conn: psycopg.Connection, enterprise_id: int, gateway: str,
                       status: str, at: datetime) -> None:
    """Remember a gateway's last reported status (online/offline)."""
    conn.execute(
        """INSERT INTO gateways (enterprise_id, code, status, status_at) VALUES (%s, %s, %s, %s)
           ON CONFLICT (enterprise_id, code) DO UPDATE
           SET status = EXCLUDED.status, status_at = EXCLUDED.status_at""",
        (enterprise_id, gateway, status, at),
    )


def raw_readings(conn: psycopg.Connection, point_id: int, start: datetime, end: datetime,
                 limit: int) -> list[dict[str, Any]]:
    """Readings of a point in [start, end), ascending."""
    return conn.cursor(row_factory=dict_row).execute(
        """SELECT ts, value, CASE WHEN quality = 0 THEN 'good' ELSE 'bad' END AS quality
           FROM readings WHERE point_id = %s AND ts >= %s AND ts < %s ORDER BY ts LIMIT %s""",
        (point_id, start, end, limit),
    ).fetchall()


def bucketed_readings(conn: psycopg.Connection, point_id: int, start: datetime, end: datetime,
                      bucket_s: int, limit: int) -> list[dict[str, Any]]:
    """Min/max/avg per epoch-aligned bucket in [start, end), only buckets holding readings.

    Buckets of whole minutes are built from 1-minute summaries (``ingest.rollup``; TimescaleDB's
    ``readings_1m``) plus raw readings where no summary can answer: the partial minutes at
    the edges and, on plain PostgreSQL, minutes the refresher has not caught up with.
    The results are the raw query's (avg up to float rounding).
    """
    sql, params = bucketed_query(conn, point_id, start, end, bucket_s, limit)
    return _run_buckets(conn, sql, params)


def bucketed_raw(conn: psycopg.Connection, point_id: int, start: datetime, end: datetime,
                 bucket_s: int, limit: int) -> list[dict[str, Any]]:
    """The same buckets straight from raw readings: what the summaries must reproduce."""
    params = {"p": point_id, "start": start, "end": end, "b": bucket_s, "limit": limit}
    return _run_buckets(conn, _RAW_BUCKETS, params)


def _run_buckets(conn: psycopg.Connection, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Run a bucket query; when a float sum overflows (readings near ±1.8e308 in one bucket),
    answer from the raw readings with exact numeric averages instead: slower, but a trend never
    fails on extreme values (TimescaleDB's real-time aggregate cannot be asked to sum exactly)."""
    cur = conn.cursor(row_factory=dict_row)
    try:
        with savepoint(cur, "hazmon_buckets"):  # the caller's transaction (snapshot) goes on
            return cur.execute(sql, params).fetchall()
    except psycopg.errors.NumericValueOutOfRange:
        return cur.execute(_RAW_EXACT_BUCKETS, params).fetchall()


def bucketed_query(conn: psycopg.Connection, point_id: int, start: datetime, end: datetime,
                   bucket_s: int, limit: int) -> tuple[str, dict[str, Any]]:
    """The statement ``bucketed_readings`` runs (the benchmark explains it)."""
    params: dict[str, Any] = {"p": point_id, "start": start, "end": end, "b": bucket_s,
                              "limit": limit}
    source = _minute_source(conn) if bucket_s % 60 == 0 else None
    first, last = _minute_after(start), _minute_before(end)  # the whole minutes inside
    if source is None or first >= last:
        return _RAW_BUCKETS, params
    params.update(ms=first, me=last)
    return (_ROLLUP_BUCKETS if source == "rollup" else _CAGG_BUCKETS), params


_EPOCH_SQL = "timestamptz '1970-01-01 00:00:00+00'"
_RAW_BUCKETS = f"""
    SELECT date_bin(make_interval(secs => %(b)s), ts, {_EPOCH_SQL}) AS ts,
           min(value) AS min, max(value) AS max, avg(value) AS avg, count(*) AS count
    FROM readings WHERE point_id = %(p)s AND ts >= %(start)s AND ts < %(end)s
    GROUP BY 1 ORDER BY 1 LIMIT %(limit)s"""
_RAW_EXACT_BUCKETS = _RAW_BUCKETS.replace("avg(value)", "avg(value::numeric)::float8")
_REBUCKET = f"""
    SELECT date_bin(make_interval(secs => %(b)s), bucket, {_EPOCH_SQL}) AS ts,
           min(min) AS min, max(max) AS max, sum(sum) / sum(n)::float8 AS avg,
           sum(n)::bigint AS count
    FROM minutes GROUP BY 1 ORDER BY 1 LIMIT %(limit)s"""
_RAW_MINUTES = f"""
    SELECT date_bin('1 minute', ts, {_EPOCH_SQL}) AS bucket, count(*) AS n, sum(value) AS sum,
           min(value) AS min, max(value) AS max
    FROM readings WHERE point_id = %(p)s AND ts >= {{lo}} AND ts < {{hi}} GROUP BY 1"""
# One statement, one snapshot: a refresh commits its minutes and deletes their markers at once,
# so each minute comes either from the rollup or (still marked) from raw readings.
_ROLLUP_BUCKETS = f"""
    WITH pending AS (
        SELECT coalesce(range_agg(tstzrange(
                   date_bin('1 minute', lo, {_EPOCH_SQL}),
                   date_bin('1 minute', hi, {_EPOCH_SQL}) + interval '1 minute')), '{{}}') AS mr
        FROM rollup_pending
        WHERE (point_id IS NULL OR point_id = %(p)s) AND hi >= %(start)s AND lo < %(end)s),
    raw AS (
        SELECT unnest((pending.mr + tstzmultirange(tstzrange(%(start)s, %(ms)s),
                                                   tstzrange(%(me)s, %(end)s)))
                      * tstzmultirange(tstzrange(%(start)s, %(end)s))) AS r
        FROM pending),
    minutes AS (
        SELECT m.bucket, m.n, m.sum, m.min, m.max
        FROM {ROLLUP_TABLE} m, pending
        WHERE m.point_id = %(p)s AND m.bucket >= %(ms)s AND m.bucket < %(me)s
          AND NOT pending.mr @> m.bucket
        UNION ALL
        SELECT x.* FROM raw CROSS JOIN LATERAL (
            {_RAW_MINUTES.format(lo="lower(raw.r)", hi="upper(raw.r)")}) x)
    {_REBUCKET}"""
# TimescaleDB: readings_1m is real-time (materialized_only = false); it stores avg and count.
_CAGG_BUCKETS = f"""
    WITH minutes AS (
        SELECT bucket, count AS n, avg * count AS sum, min, max FROM readings_1m
        WHERE point_id = %(p)s AND bucket >= %(ms)s AND bucket < %(me)s
        UNION ALL
        ({_RAW_MINUTES.format(lo="%(start)s", hi="%(ms)s")})
        UNION ALL
        ({_RAW_MINUTES.format(lo="%(me)s", hi="%(end)s")}))
    {_REBUCKET}"""

_sources: weakref.WeakKeyDictionary[psycopg.Connection, str | None] = weakref.WeakKeyDictionary()


def _minute_source(conn: psycopg.Connection) -> str | None:
    """'rollup' (plain PostgreSQL), 'cagg' (TimescaleDB) or None (Apache-only TimescaleDB)."""
    if conn not in _sources:
        row = conn.execute(f"SELECT to_regclass('{ROLLUP_TABLE}') IS NOT NULL, "
                           "to_regclass('readings_1m') IS NOT NULL").fetchone()
        rollup, cagg = row if row else (False, False)
        _sources[conn] = "rollup" if rollup else "cagg" if cagg else None
    return _sources[conn]


def _minute_after(t: datetime) -> datetime:
    """The first minute boundary at or after ``t``."""
    return _EPOCH + timedelta(minutes=-((_EPOCH - t) // _MINUTE))


def _minute_before(t: datetime) -> datetime:
    """The last minute boundary at or before ``t``."""
    return _EPOCH + timedelta(minutes=(t - _EPOCH) // _MINUTE)


def latest_arrivals(conn: psycopg.Connection) -> list[tuple[int, datetime, float]]:
    """(point id, newest reading time, value) per point, to seed the engine after a restart."""
    return [(int(p), ts, float(v)) for p, ts, v in
            conn.execute("SELECT point_id, ts, value FROM point_latest")]

"""SQL for rejections, gateway status and reading queries: ingest's only database layer."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence

import psycopg
from psycopg.rows import dict_row

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
    """Min/max/avg per epoch-aligned bucket in [start, end), only buckets holding readings."""
    return conn.cursor(row_factory=dict_row).execute(
        """SELECT date_bin(make_interval(secs => %s), ts, timestamptz '1970-01-01 00:00:00+00') AS ts,
                  min(value) AS min, max(value) AS max, avg(value) AS avg, count(*) AS count
           FROM readings WHERE point_id = %s AND ts >= %s AND ts < %s
           GROUP BY 1 ORDER BY 1 LIMIT %s""",
        (bucket_s, point_id, start, end, limit),
    ).fetchall()


def latest_arrivals(conn: psycopg.Connection) -> list[tuple[int, datetime, float]]:
    """(point id, newest reading time, value) per point, to seed the engine after a restart."""
    return [(int(p), ts, float(v)) for p, ts, v in
            conn.execute("SELECT point_id, ts, value FROM point_latest")]

"""SQL of the alarm performance report: counts over the alarm event log.

The figures and their edges are defined in ``alerting.report``. Every query reads one
snapshot (REPEATABLE READ, read only), so the shares of one report add up even while alarms
are being written. Range queries filter on ``coalesce(reading_ts, at)`` spelled exactly so,
so that an expression index on it serves them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import psycopg
from psycopg import pq
from psycopg.rows import dict_row

from alerting import report
from hazmon.errors import InputError

_EPOCH = "1970-01-01 00:00:00+00"
_MASKED = ["SHELVED", "SUPPRESSED", "OUT_OF_SERVICE"]

# Activations in [start, end) of the report's scope, with the alarm key and priority.
_ACT = """
    act AS (
        SELECT coalesce(ev.reading_ts, ev.at) AS t, ev.to_state, a.priority, a.condition,
               e.code AS enterprise, p.tag,
               CASE WHEN a.point_id IS NULL THEN a.gateway END AS gateway
        FROM alarm_events ev
        JOIN alarms a ON a.id = ev.alarm_id
        JOIN enterprises e ON e.id = a.enterprise_id
        LEFT JOIN points p ON p.id = a.point_id
        WHERE ev.action = 'activate'
          AND coalesce(ev.reading_ts, ev.at) >= %(start)s
          AND coalesce(ev.reading_ts, ev.at) < %(end)s
          AND (%(eid)s::integer IS NULL OR a.enterprise_id = %(eid)s::integer)
    )"""

_KEY = "enterprise, tag, gateway, condition"
_KEY_ORDER = "enterprise, tag NULLS LAST, gateway NULLS LAST, condition"

_TOTALS = f"""
    WITH {_ACT},
    win AS (SELECT date_bin(%(width)s, t, %(epoch)s::timestamptz) AS w, count(*) AS n
            FROM act GROUP BY 1)
    SELECT (SELECT count(*) FROM act) AS activations,
           (SELECT count(*) FROM act WHERE to_state = ANY(%(masked)s)) AS not_annunciated,
           (SELECT count(*) FROM act WHERE priority = 'high') AS high,
           (SELECT count(*) FROM act WHERE priority = 'medium') AS medium,
           (SELECT count(*) FROM act WHERE priority = 'low') AS low,
           (SELECT count(*) FROM win WHERE n > %(flood)s) AS flood_windows,
           (SELECT coalesce(max(n), 0) FROM win) AS peak_10min
"""

# The frame is closed: an activation exactly 60 s earlier is in it.
_CHATTERING = f"""
    WITH {_ACT},
    runs AS (SELECT {_KEY}, count(*) OVER (PARTITION BY {_KEY} ORDER BY t
                                           RANGE BETWEEN %(chatter)s PRECEDING AND CURRENT ROW) AS n
             FROM act),
    chat AS (SELECT {_KEY}, max(n) AS max_per_minute, count(*) AS activations
             FROM runs GROUP BY {_KEY} HAVING max(n) >= %(chatter_min)s)
    SELECT *, count(*) OVER () AS total FROM chat
    ORDER BY max_per_minute DESC, activations DESC, {_KEY_ORDER} LIMIT %(limit)s
"""

_TOP = f"""
    WITH {_ACT}
    SELECT {_KEY}, count(*) AS activations FROM act GROUP BY {_KEY}
    ORDER BY activations DESC, {_KEY_ORDER} LIMIT %(top)s
"""

# Candidates: alarms active now, and alarms that returned at or after `end` (so were active
# at `end` if at all). For each, `active_since` is its first activation after its last return
# before `end`; none means its condition was not active at `end`. Within one alarm, event ids
# are in reading-time order (the engine judges a point's readings in time order and never an
# older one), so "last" and "first" go by id: the (alarm_id, id) index answers both lookups
# whatever other indexes alarm_events has.
_STALE = """
    WITH cand AS (
        SELECT id FROM alarms WHERE active AND state <> 'CLOSED'  -- the partial index
        UNION
        SELECT alarm_id FROM alarm_events
        WHERE action = 'return' AND coalesce(reading_ts, at) >= %(end)s
    ),
    runs AS (
        SELECT a.id, e.code AS enterprise, p.tag,
               CASE WHEN a.point_id IS NULL THEN a.gateway END AS gateway,
               a.condition, a.priority, a.state, act.since AS active_since
        FROM cand
        JOIN alarms a ON a.id = cand.id
        JOIN enterprises e ON e.id = a.enterprise_id
        LEFT JOIN points p ON p.id = a.point_id
        LEFT JOIN LATERAL (
            SELECT r.id FROM alarm_events r
            WHERE r.alarm_id = a.id AND r.action = 'return'
              AND coalesce(r.reading_ts, r.at) < %(end)s
            ORDER BY r.id DESC LIMIT 1) ret ON true
        CROSS JOIN LATERAL (
            SELECT coalesce(s.reading_ts, s.at) AS since FROM alarm_events s
            WHERE s.alarm_id = a.id AND s.action = 'activate'
              AND coalesce(s.reading_ts, s.at) < %(end)s AND s.id > coalesce(ret.id, 0)
            ORDER BY s.id LIMIT 1) act
        WHERE %(eid)s::integer IS NULL OR a.enterprise_id = %(eid)s::integer
    )
    SELECT *, extract(epoch FROM %(end)s - active_since)::float8 AS active_s,
           count(*) OVER () AS total
    FROM runs WHERE active_since < %(end)s - %(stale)s
    ORDER BY active_since, id LIMIT %(limit)s
"""

_MASK_EVENTS = """
    SELECT count(*) FILTER (WHERE ev.to_state = 'SHELVED') AS shelve_events,
           count(*) FILTER (WHERE ev.to_state = 'SUPPRESSED') AS suppress_events
    FROM alarm_events ev JOIN alarms a ON a.id = ev.alarm_id
    WHERE ev.to_state IN ('SHELVED', 'SUPPRESSED') AND ev.from_state IS DISTINCT FROM ev.to_state
      AND coalesce(ev.reading_ts, ev.at) >= %(start)s AND coalesce(ev.reading_ts, ev.at) < %(end)s
      AND (%(eid)s::integer IS NULL OR a.enterprise_id = %(eid)s::integer)
"""

_MASKED_NOW = """
    SELECT count(*) FILTER (WHERE state = 'SHELVED') AS shelved_now,
           count(*) FILTER (WHERE state = 'SUPPRESSED') AS suppressed_now
    FROM alarms WHERE state <> 'CLOSED' AND state IN ('SHELVED', 'SUPPRESSED')
      AND (%(eid)s::integer IS NULL OR enterprise_id = %(eid)s::integer)
"""


@contextmanager
def read_snapshot(conn: psycopg.Connection) -> Iterator[None]:
    """One read-only snapshot for all of a report's queries (inside a caller's transaction,
    that transaction's view). The shift handover uses it too."""
    if conn.info.transaction_status != pq.TransactionStatus.IDLE:
        yield
        return
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield


def enterprise_filter(conn: psycopg.Connection, code: str | None) -> int | None:
    """The id to filter a report by (None: all enterprises); an unknown code is the caller's error."""
    if code is None:
        return None
    row = conn.execute("SELECT id FROM enterprises WHERE code = %s", (code,)).fetchone()
    if row is None:
        raise InputError(f"enterprise {code!r} is not known")
    return int(row[0])


def _rows(conn: psycopg.Connection, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    return conn.cursor(row_factory=dict_row).execute(sql, params).fetchall()  # type: ignore[arg-type]


def _listed(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """The rows without their window total, and that total (the count before the limit)."""
    total = int(rows[0]["total"]) if rows else 0
    return [{k: v for k, v in r.items() if k != "total"} for r in rows], total


def alarm_performance(conn: psycopg.Connection, *, start: datetime, end: datetime,
                      enterprise: str | None) -> report.ReportCounts:
    """Count what the report needs for ``[start, end)``, of one enterprise or all;
    InputError when the enterprise is unknown."""
    with read_snapshot(conn):
        params: dict[str, Any] = {
            "start": start, "end": end, "eid": enterprise_filter(conn, enterprise),
            "width": report.FLOOD_WINDOW, "epoch": _EPOCH, "flood": report.FLOOD_THRESHOLD,
            "chatter": report.CHATTER_WINDOW, "chatter_min": report.CHATTER_MIN,
            "stale": report.STALE_AFTER, "masked": _MASKED, "top": report.TOP_N,
            "limit": report.LIST_LIMIT,
        }
        totals = _rows(conn, _TOTALS, params)[0]
        chattering, chattering_count = _listed(_rows(conn, _CHATTERING, params))
        stale, stale_count = _listed(_rows(conn, _STALE, params))
        masks = {**_rows(conn, _MASK_EVENTS, params)[0], **_rows(conn, _MASKED_NOW, params)[0]}
        return report.ReportCounts(
            activations=totals["activations"], not_annunciated=totals["not_annunciated"],
            by_priority={p: totals[p] for p in report.PRIORITY_TARGETS},
            flood_windows=totals["flood_windows"], peak_10min=totals["peak_10min"],
            chattering=chattering, chattering_count=chattering_count,
            stale=stale, stale_count=stale_count, top=_rows(conn, _TOP, params), **masks)

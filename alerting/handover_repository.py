"""SQL of the shift handover (交接班): what a duty shift ``[start, end)`` raised, acknowledged,
left open, shelved and suppressed, read from the alarm event log.

Definitions (an event's time is ``coalesce(reading_ts, at)`` as in the alarm performance
report, spelled exactly so for the expression index; operator actions have no reading time,
so theirs is when hazmon recorded them):

- raised: alarms with at least one ``activate`` event in the shift, with how many, the first
  and the last, and how many of them were recorded while the alarm was shelved, suppressed or
  out of service (``masked``: the operator did not see those).
- acknowledged: every ``ack`` event in the shift: who, when, the comment, and how long after
  the activation before it (``response_s``).
- still open: alarms whose state at ``end`` (the ``to_state`` of their last event before
  ``end``) is not ``CLOSED``, with ``carried_over`` when their last activation before ``end``
  was before ``start`` (the shift inherited them).
- shelved: every event in the shift that put an alarm into ``SHELVED`` from another state, with
  the reason and duration the operator gave, and when (and how) the shelve ended before
  ``end``; ``ended_at`` null means it was still shelved at ``end``.
- suppressed: the same for ``SUPPRESSED`` and ``OUT_OF_SERVICE`` (a mode change, a point taken
  out of service, or an alarm raised while masked).

All queries read one snapshot (REPEATABLE READ, read only). Lists are cut at ``LIST_LIMIT``
rows; their counts are not.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from alerting.report_repository import enterprise_filter, read_snapshot

LIST_LIMIT = 1000
DEFAULT_SHIFT = timedelta(hours=8)
MAX_RANGE = timedelta(days=31)
MASKED = ["SHELVED", "SUPPRESSED", "OUT_OF_SERVICE"]
SUPPRESS_STATES = ["SUPPRESSED", "OUT_OF_SERVICE"]

# The alarm's key and names, for rows joined on `a` (alarms).
_KEY = """
    a.id, e.code AS enterprise, e.name AS enterprise_name, p.tag, p.name AS point_name,
    CASE WHEN a.point_id IS NULL THEN a.gateway END AS gateway, h.code AS hazard_source,
    h.name AS hazard_source_name, a.condition, a.priority"""
_JOIN = """
    JOIN enterprises e ON e.id = a.enterprise_id
    LEFT JOIN points p ON p.id = a.point_id
    LEFT JOIN hazard_sources h ON h.id = p.hazard_source_id"""
_SCOPE = """
    (%(eid)s::integer IS NULL OR a.enterprise_id = %(eid)s::integer)
    AND (%(scope)s::text[] IS NULL OR e.code = ANY(%(scope)s::text[]))"""
_IN_SHIFT = "coalesce(ev.reading_ts, ev.at) >= %(start)s AND coalesce(ev.reading_ts, ev.at) < %(end)s"
# The state of alarm `a` at `end`: the to_state of its last event before end.
_STATE_AT_END = """
    LEFT JOIN LATERAL (
        SELECT x.to_state FROM alarm_events x
        WHERE x.alarm_id = a.id AND coalesce(x.reading_ts, x.at) < %(end)s
        ORDER BY x.id DESC LIMIT 1) st ON true"""
_PRIORITY_RANK = "CASE a.priority WHEN 'high' THEN 0 WHEN 'medium' THEN 1 ELSE 2 END"

_RAISED = f"""
    WITH act AS (
        SELECT ev.alarm_id, count(*) AS activations,
               count(*) FILTER (WHERE ev.to_state = ANY(%(masked)s)) AS masked,
               min(coalesce(ev.reading_ts, ev.at)) AS first_at,
               max(coalesce(ev.reading_ts, ev.at)) AS last_at
        FROM alarm_events ev
        WHERE ev.action = 'activate' AND {_IN_SHIFT}
        GROUP BY ev.alarm_id)
    SELECT {_KEY}, act.activations, act.masked, act.first_at, act.last_at,
           st.to_state AS state_at_end,
           count(*) OVER () AS total, sum(act.activations) OVER () AS total_activations
    FROM act JOIN alarms a ON a.id = act.alarm_id {_JOIN} {_STATE_AT_END}
    WHERE {_SCOPE}
    ORDER BY act.first_at, a.id LIMIT %(limit)s
"""

_ACKED = f"""
    SELECT {_KEY}, ev.at AS acked_at, ev.actor AS acked_by, ev.comment, ev.from_state,
           ev.to_state, act.t AS activated_at,
           extract(epoch FROM ev.at - act.t)::float8 AS response_s,
           count(*) OVER () AS total
    FROM alarm_events ev JOIN alarms a ON a.id = ev.alarm_id {_JOIN}
    LEFT JOIN LATERAL (
        SELECT coalesce(s.reading_ts, s.at) AS t FROM alarm_events s
        WHERE s.alarm_id = ev.alarm_id AND s.action = 'activate' AND s.id < ev.id
        ORDER BY s.id DESC LIMIT 1) act ON true
    WHERE ev.action = 'ack' AND {_IN_SHIFT} AND {_SCOPE}
    ORDER BY ev.id LIMIT %(limit)s
"""

# Candidates: alarms open now (the partial index), and alarms with an event at or after end
# (they may have been open at end and closed since).
_OPEN = f"""
    WITH cand AS (
        SELECT id FROM alarms WHERE state <> 'CLOSED'
        UNION
        SELECT ev.alarm_id FROM alarm_events ev WHERE coalesce(ev.reading_ts, ev.at) >= %(end)s
    )
    SELECT {_KEY}, st.to_state AS state, act.t AS active_since,
           coalesce(act.t < %(start)s, true) AS carried_over,
           count(*) OVER () AS total,
           count(*) FILTER (WHERE st.to_state IN ('UNACK_ACTIVE', 'RTN_UNACK')) OVER () AS unacked
    FROM cand JOIN alarms a ON a.id = cand.id {_JOIN} {_STATE_AT_END}
    LEFT JOIN LATERAL (
        SELECT coalesce(s.reading_ts, s.at) AS t FROM alarm_events s
        WHERE s.alarm_id = a.id AND s.action = 'activate' AND coalesce(s.reading_ts, s.at) < %(end)s
        ORDER BY s.id DESC LIMIT 1) act ON true
    WHERE st.to_state IS NOT NULL AND st.to_state <> 'CLOSED' AND {_SCOPE}
    ORDER BY CASE st.to_state WHEN 'UNACK_ACTIVE' THEN 0 WHEN 'RTN_UNACK' THEN 1
                              WHEN 'ACK_ACTIVE' THEN 2 WHEN 'SHELVED' THEN 3 ELSE 4 END,
             {_PRIORITY_RANK}, act.t NULLS FIRST, a.id
    LIMIT %(limit)s
"""

# Events that put an alarm into one of %(states)s from another state, and the first later
# event before end that took it out again.
_MASKED_EVENTS = f"""
    SELECT {_KEY}, coalesce(ev.reading_ts, ev.at) AS at, ev.actor, ev.action, ev.from_state,
           ev.to_state AS state, ev.comment, nx.t AS ended_at, nx.actor AS ended_by,
           nx.action AS ended_action, st.to_state AS state_at_end,
           count(*) OVER () AS total
    FROM alarm_events ev JOIN alarms a ON a.id = ev.alarm_id {_JOIN}
    LEFT JOIN LATERAL (
        SELECT coalesce(n.reading_ts, n.at) AS t, n.actor, n.action FROM alarm_events n
        WHERE n.alarm_id = ev.alarm_id AND n.id > ev.id AND n.from_state = ev.to_state
          AND n.to_state <> ev.to_state AND coalesce(n.reading_ts, n.at) < %(end)s
        ORDER BY n.id LIMIT 1) nx ON true
    {_STATE_AT_END}
    WHERE ev.to_state = ANY(%(states)s) AND ev.from_state IS DISTINCT FROM ev.to_state
      AND {_IN_SHIFT} AND {_SCOPE}
    ORDER BY ev.id LIMIT %(limit)s
"""

# The comment operations.shelve writes: "<reason> (<duration> s)".
_SHELVE_COMMENT = re.compile(r"^(?P<reason>.*) \((?P<s>\d+) s\)$", re.S)


def _rows(conn: psycopg.Connection, sql: str, params: dict[str, Any],
          *window: str) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The rows without their window columns, and those columns' values (0 when no rows)."""
    rows = conn.cursor(row_factory=dict_row).execute(sql, params).fetchall()  # type: ignore[arg-type]
    totals = {w: int(rows[0][w]) if rows else 0 for w in window}
    return [{k: v for k, v in r.items() if k not in window} for r in rows], totals


def _shelve_details(row: dict[str, Any]) -> dict[str, Any]:
    """Split a shelve comment into the reason and the duration; the time it was to end."""
    m = _SHELVE_COMMENT.match(row.pop("comment") or "")
    if m:
        duration = int(m["s"])
        return {**row, "reason": m["reason"], "duration_s": duration,
                "until": row["at"] + timedelta(seconds=duration)}
    return {**row, "reason": None, "duration_s": None, "until": None}


def _with_reason(row: dict[str, Any]) -> dict[str, Any]:
    row["reason"] = row.pop("comment")
    return row


def shift_handover(conn: psycopg.Connection, *, start: datetime, end: datetime,
                   enterprise: str | None, scope: list[str] | None) -> dict[str, Any]:
    """The handover of ``[start, end)`` for one enterprise or all (``scope``: the enterprises
    the caller may see, None = all); InputError when the enterprise is unknown."""
    with read_snapshot(conn):
        params: dict[str, Any] = {"start": start, "end": end, "scope": scope,
                                  "eid": enterprise_filter(conn, enterprise), "masked": MASKED,
                                  "limit": LIST_LIMIT}
        raised, r_tot = _rows(conn, _RAISED, params, "total", "total_activations")
        acked, a_tot = _rows(conn, _ACKED, params, "total")
        still_open, o_tot = _rows(conn, _OPEN, params, "total", "unacked")
        shelved, s_tot = _rows(conn, _MASKED_EVENTS, {**params, "states": ["SHELVED"]}, "total")
        suppressed, p_tot = _rows(conn, _MASKED_EVENTS, {**params, "states": SUPPRESS_STATES},
                                  "total")
    for row in raised:
        row["masked"] = int(row["masked"])
    return {
        "start": start, "end": end, "enterprise": enterprise,
        "summary": {
            "raised": r_tot["total"], "activations": r_tot["total_activations"],
            "acknowledged": a_tot["total"], "still_open": o_tot["total"],
            "unacknowledged": o_tot["unacked"], "shelved": s_tot["total"],
            "suppressed": p_tot["total"],
        },
        "raised": raised,
        "acknowledged": acked,
        "still_open": still_open,
        "shelved": [_shelve_details(r) for r in shelved],
        "suppressed": [_with_reason(r) for r in suppressed],
        "list_limit": LIST_LIMIT,
    }

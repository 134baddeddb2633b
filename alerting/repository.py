"""SQL for alarms and their event log: the only place alerting talks to the database.

The lifecycle rules themselves live in ``alerting.lifecycle`` (pure); this module loads an
alarm row, asks the lifecycle what the next state is, and writes the change and its event
in the caller's transaction, announcing it on the ``hazmon_alarms`` channel.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from alerting import lifecycle
from hazmon.errors import Conflict, NotFound

ALARMS_CHANNEL = "hazmon_alarms"

ALARM_SELECT = """
    SELECT a.id, e.code AS enterprise, a.gateway, p.tag, h.code AS hazard_source,
           a.condition, a.priority, a.state, a.value, a.limit_value AS "limit",
           a.activated_at, a.cleared_at, a.acked_at, a.acked_by, a.active, a.activations,
           a.latched, a.shelved_until, a.shelved_by, a.shelve_reason, a.updated_at
    FROM alarms a
    JOIN enterprises e ON e.id = a.enterprise_id
    LEFT JOIN points p ON p.id = a.point_id
    LEFT JOIN hazard_sources h ON h.id = p.hazard_source_id
"""


def _event(cur: psycopg.Cursor[Any], alarm_id: int, actor: str, action: str, before: str | None,
           after: str, value: float | None = None, reading_ts: datetime | None = None,
           comment: str | None = None) -> None:
    cur.execute(
        """INSERT INTO alarm_events (alarm_id, actor, action, from_state, to_state, value,
                                     reading_ts, comment)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id""",
        (alarm_id, actor, action, before, after, value, reading_ts, comment),
    )
    event_id = cur.fetchone()["id"]  # type: ignore[index]
    cur.execute("SELECT pg_notify(%s, %s)", (ALARMS_CHANNEL, f"{alarm_id}:{event_id}"))


def record_condition(conn: psycopg.Connection, *, enterprise_id: int, point_id: int | None,
                     gateway: str | None, condition: str, priority: str, active: bool,
                     value: float | None, limit: float | None, at: datetime,
                     latching: bool = False) -> int | None:
    """Apply one engine transition (condition became active or returned); return the alarm id
    that changed, or None when nothing did."""
    with conn.cursor(row_factory=dict_row) as cur:
        if point_id is not None:
            cur.execute(
                """SELECT id, state, active, latched FROM alarms WHERE point_id = %s
                   AND condition = %s AND state <> 'CLOSED' FOR UPDATE""", (point_id, condition))
        else:
            cur.execute(
                """SELECT id, state, active, latched FROM alarms WHERE point_id IS NULL
                   AND enterprise_id = %s AND gateway = %s AND condition = %s
                   AND state <> 'CLOSED' FOR UPDATE""",
                (enterprise_id, gateway, condition))
        row = cur.fetchone()
        if row is None:
            return _new_alarm(cur, enterprise_id, point_id, gateway, condition, priority,
                              active, value, limit, at)
        before = row["state"]
        after, latched = lifecycle.on_condition(before, active, latching)
        if after == before and row["active"] == active and row["latched"] == latched:
            return None
        if active:
            cur.execute(
                """UPDATE alarms SET state = %s, active = true, latched = false, value = %s,
                       limit_value = %s,
                       activated_at = CASE WHEN %s THEN %s ELSE activated_at END,
                       cleared_at = NULL, activations = activations + (NOT active)::int,
                       updated_at = now() WHERE id = %s""",
                (after, value, limit, before != after, at, row["id"]))
        else:
            cur.execute(
                """UPDATE alarms SET state = %s, active = false, latched = %s, cleared_at = %s,
                       updated_at = now() WHERE id = %s""", (after, latched, at, row["id"]))
        _event(cur, row["id"], "engine", "activate" if active else "return", before, after, value, at)
        return int(row["id"])


def _new_alarm(cur: psycopg.Cursor[Any], enterprise_id: int, point_id: int | None,
               gateway: str | None, condition: str, priority: str, active: bool,
               value: float | None, limit: float | None, at: datetime) -> int | None:
    if not active:
        return None
    if point_id is not None:
        cur.execute("SELECT hazmon_point_mask(%s) AS mask", (point_id,))
    else:
        cur.execute("SELECT hazmon_gateway_mask(%s) AS mask", (enterprise_id,))
    state = lifecycle.initial_state(cur.fetchone()["mask"])  # type: ignore[index]
    cur.execute(
        """INSERT INTO alarms (enterprise_id, point_id, gateway, condition, priority, state,
                               active, value, limit_value, activated_at)
           VALUES (%s, %s, %s, %s, %s, %s, true, %s, %s, %s) RETURNING id""",
        (enterprise_id, point_id, gateway, condition, priority, state, value, limit, at))
    alarm_id = int(cur.fetchone()["id"])  # type: ignore[index]
    _event(cur, alarm_id, "engine", "activate", None, state, value, at)
    return alarm_id


def acknowledge(conn: psycopg.Connection, alarm_id: int, actor: str, comment: str | None) -> dict[str, Any]:
    """Acknowledge an alarm; Conflict when its state cannot be acknowledged."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute("SELECT state FROM alarms WHERE id = %s FOR UPDATE", (alarm_id,)).fetchone()
        if row is None:
            raise NotFound(f"alarm {alarm_id} does not exist")
        before = row["state"]
        after = lifecycle.on_ack(before)
        if after is None:
            raise Conflict(f"alarm {alarm_id} is {before} and cannot be acknowledged")
        cur.execute(
            """UPDATE alarms SET state = %s, acked_at = now(), acked_by = %s, updated_at = now()
               WHERE id = %s""", (after, actor, alarm_id))
        _event(cur, alarm_id, actor, "ack", before, after, comment=comment)
    return get_alarm(conn, alarm_id)


def get_alarm(conn: psycopg.Connection, alarm_id: int) -> dict[str, Any]:
    """One alarm as the API shows it; NotFound when unknown."""
    row = conn.cursor(row_factory=dict_row).execute(
        ALARM_SELECT + " WHERE a.id = %s", (alarm_id,)).fetchone()
    if row is None:
        raise NotFound(f"alarm {alarm_id} does not exist")
    return row


STATE_GROUPS = {
    "active": ("UNACK_ACTIVE", "ACK_ACTIVE"),
    "open": ("UNACK_ACTIVE", "ACK_ACTIVE", "RTN_UNACK", "SHELVED", "SUPPRESSED", "OUT_OF_SERVICE"),
}


def list_alarms(conn: psycopg.Connection, *, states: tuple[str, ...] | None = None,
                enterprise: str | None = None, hazard_source: str | None = None,
                tag: str | None = None, condition: str | None = None,
                limit: int = 500, scope: list[str] | None = None) -> list[dict[str, Any]]:
    """Alarms matching every given filter, newest first; ``scope`` limits them to these
    enterprises (None = all)."""
    where, params = [], []
    for clause, value in (("a.state = ANY(%s)", list(states) if states else None),
                          ("e.code = ANY(%s)", scope),
                          ("e.code = %s", enterprise), ("h.code = %s", hazard_source),
                          ("p.tag = %s", tag), ("a.condition = %s", condition)):
        if value is not None:
            where.append(clause)
            params.append(value)
    sql = ALARM_SELECT + (" WHERE " + " AND ".join(where) if where else "")
    sql += " ORDER BY a.activated_at DESC, a.id DESC LIMIT %s"
    return conn.cursor(row_factory=dict_row).execute(sql, (*params, limit)).fetchall()


def alarm_events(conn: psycopg.Connection, alarm_id: int) -> list[dict[str, Any]]:
    """The event log of one alarm, oldest first."""
    return conn.cursor(row_factory=dict_row).execute(
        """SELECT at, actor, action, from_state, to_state, value, reading_ts, comment
           FROM alarm_events WHERE alarm_id = %s ORDER BY id""", (alarm_id,)).fetchall()


def open_point_conditions(conn: psycopg.Connection) -> list[tuple[int, str]]:
    """(point id, condition) of every alarm whose condition is active now, to seed the engine."""
    return [(int(p), c) for p, c in conn.execute(
        "SELECT point_id, condition FROM alarms WHERE active AND point_id IS NOT NULL")]

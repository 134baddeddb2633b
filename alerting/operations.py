"""Operator and design actions on alarms (SQL): reset, shelve, modes and out of service.

Each function changes alarms in the caller's transaction, writes the event log (who, what,
when, why) and announces every change on the alarm channel, like the engine's changes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable

import psycopg
from psycopg.rows import dict_row

from alerting import lifecycle
from alerting.repository import _event, get_alarm
from hazmon.errors import Conflict, InputError, NotFound

MODES = ("normal", "maintenance", "shutdown")


def _lock(cur: psycopg.Cursor[Any], alarm_id: int) -> dict[str, Any]:
    row = cur.execute(
        "SELECT id, state, active, latched, priority, point_id, enterprise_id FROM alarms "
        "WHERE id = %s FOR UPDATE", (alarm_id,)).fetchone()
    if row is None:
        raise NotFound(f"alarm {alarm_id} does not exist")
    return row  # type: ignore[no-any-return]


def reset(conn: psycopg.Connection, alarm_id: int, actor: str, comment: str | None) -> dict[str, Any]:
    """Reset a latched alarm whose condition has returned."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = _lock(cur, alarm_id)
        after = lifecycle.on_reset(row["state"], row["active"], row["latched"])
        if after is None:
            why = ("its condition is still active" if row["active"] else
                   "it is not latched" if not row["latched"] else f"it is {row['state']}")
            raise Conflict(f"alarm {alarm_id} cannot be reset: {why}")
        cur.execute("UPDATE alarms SET state = %s, latched = false, updated_at = now() WHERE id = %s",
                    (after, alarm_id))
        _event(cur, alarm_id, actor, "reset", row["state"], after, comment=comment)
    return get_alarm(conn, alarm_id)


def shelve(conn: psycopg.Connection, alarm_id: int, actor: str, duration_s: int, reason: str,
           max_s: dict[str, int]) -> dict[str, Any]:
    """Shelve an annunciating alarm for a limited time (at most ``max_s[priority]``)."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = _lock(cur, alarm_id)
        if not lifecycle.can_shelve(row["state"]):
            raise Conflict(f"alarm {alarm_id} is {row['state']}; only "
                           f"{', '.join(lifecycle.ANNUNCIATING)} alarms can be shelved")
        limit = max_s[row["priority"]]
        if duration_s > limit:
            raise InputError(f"a {row['priority']}-priority alarm can be shelved for at most "
                             f"{limit} s; asked {duration_s} s")
        cur.execute(
            """UPDATE alarms SET state = 'SHELVED', shelved_until = now() + make_interval(secs => %s),
                   shelved_by = %s, shelve_reason = %s, updated_at = now() WHERE id = %s""",
            (duration_s, actor, reason, alarm_id))
        _event(cur, alarm_id, actor, "shelve", row["state"], "SHELVED",
               comment=f"{reason} ({duration_s} s)")
    return get_alarm(conn, alarm_id)


def _unshelve_row(cur: psycopg.Cursor[Any], row: dict[str, Any], actor: str, action: str) -> None:
    mask = _mask(cur, row)
    after = lifecycle.reevaluate("SHELVED", row["active"], mask)
    cur.execute(
        """UPDATE alarms SET state = %s, shelved_until = NULL, updated_at = now(),
               cleared_at = CASE WHEN %s = 'CLOSED' THEN coalesce(cleared_at, now()) ELSE cleared_at END
           WHERE id = %s""", (after, after, row["id"]))
    _event(cur, row["id"], actor, action, "SHELVED", after)


def unshelve(conn: psycopg.Connection, alarm_id: int, actor: str) -> dict[str, Any]:
    """End a shelve early: the alarm shows its condition again."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = _lock(cur, alarm_id)
        if row["state"] != "SHELVED":
            raise Conflict(f"alarm {alarm_id} is {row['state']}, not SHELVED")
        _unshelve_row(cur, row, actor, "unshelve")
    return get_alarm(conn, alarm_id)


def expire_shelves(conn: psycopg.Connection, now: datetime) -> int:
    """Unshelve every alarm whose shelve time is over; return how many."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            """SELECT id, state, active, latched, priority, point_id, enterprise_id FROM alarms
               WHERE state = 'SHELVED' AND shelved_until <= %s FOR UPDATE SKIP LOCKED""",
            (now,)).fetchall()
        for row in rows:
            _unshelve_row(cur, row, "system", "shelve expired")
    return len(rows)


def _mask(cur: psycopg.Cursor[Any], row: dict[str, Any]) -> str | None:
    if row["point_id"] is not None:
        cur.execute("SELECT hazmon_point_mask(%s) AS mask", (row["point_id"],))
    else:
        cur.execute("SELECT hazmon_gateway_mask(%s) AS mask", (row["enterprise_id"],))
    return cur.fetchone()["mask"]  # type: ignore[index, no-any-return]


def reevaluate(conn: psycopg.Connection, where: str, params: tuple[Any, ...], actor: str,
               reason: str | None) -> int:
    """Bring the open alarms selected by ``where`` in line with their masks (after a mode or
    service change); return how many changed. Shelved alarms stay shelved unless masked."""
    changed = 0
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT a.id, a.state, a.active, a.latched, a.priority, a.point_id, a.enterprise_id "
            f"FROM alarms a LEFT JOIN points p ON p.id = a.point_id WHERE a.state <> 'CLOSED' AND ({where}) "
            "FOR UPDATE OF a", params).fetchall()
        for row in rows:
            mask = _mask(cur, row)
            if row["state"] == "SHELVED" and mask is None:
                continue
            after = lifecycle.reevaluate(row["state"], row["active"], mask)
            if after == row["state"]:
                continue
            cur.execute(
                """UPDATE alarms SET state = %s, updated_at = now(),
                       cleared_at = CASE WHEN %s = 'CLOSED' THEN coalesce(cleared_at, now())
                                         ELSE cleared_at END WHERE id = %s""",
                (after, after, row["id"]))
            action = {"SUPPRESSED": "suppress", "OUT_OF_SERVICE": "out of service"}.get(after, "restore")
            _event(cur, row["id"], actor, action, row["state"], after, comment=reason)
            changed += 1
    return changed


def set_mode(conn: psycopg.Connection, table: str, key_id: int, mode: str, actor: str,
             reason: str | None, until: datetime | None) -> int:
    """Put an enterprise, hazard source or point into a mode and re-evaluate its alarms."""
    if table not in ("enterprises", "hazard_sources", "points"):
        raise ValueError(table)
    if mode not in MODES:
        raise InputError(f"mode must be one of {', '.join(MODES)}")
    conn.execute(
        f"""UPDATE {table} SET mode = %s, mode_reason = %s, mode_by = %s, mode_since = now(),
                mode_until = %s WHERE id = %s""",
        (mode, reason, actor, until if mode != "normal" else None, key_id))
    where = {"enterprises": "a.enterprise_id = %s", "hazard_sources": "p.hazard_source_id = %s",
             "points": "a.point_id = %s"}[table]
    return reevaluate(conn, where, (key_id,), actor, reason)


def set_service(conn: psycopg.Connection, point_id: int, in_service: bool, actor: str,
                reason: str | None, until: datetime | None) -> int:
    """Take a point out of service (or return it) and re-evaluate its alarms."""
    conn.execute(
        """UPDATE points SET in_service = %s, oos_reason = %s, oos_by = %s,
               oos_since = CASE WHEN %s THEN NULL ELSE now() END, oos_until = %s WHERE id = %s""",
        (in_service, None if in_service else reason, actor, in_service,
         None if in_service else until, point_id))
    return reevaluate(conn, "a.point_id = %s", (point_id,), actor, reason)


def expire_modes(conn: psycopg.Connection, now: datetime) -> int:
    """Return to normal whatever mode or out-of-service period has reached its end time."""
    changed = 0
    for table in ("enterprises", "hazard_sources", "points"):
        ids = [r[0] for r in conn.execute(
            f"SELECT id FROM {table} WHERE mode <> 'normal' AND mode_until <= %s", (now,))]
        for key in ids:
            changed += set_mode(conn, table, key, "normal", "system", "mode period ended", None)
    ids = [r[0] for r in conn.execute(
        "SELECT id FROM points WHERE NOT in_service AND oos_until <= %s", (now,))]
    for key in ids:
        changed += set_service(conn, key, True, "system", "out-of-service period ended", None)
    return changed


def modes_of(conn: psycopg.Connection, table: str, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Mode columns of rows, for the API."""
    rows = conn.cursor(row_factory=dict_row).execute(
        f"SELECT id, mode, mode_reason, mode_by, mode_since, mode_until FROM {table} "
        "WHERE id = ANY(%s)", (list(ids),)).fetchall()
    return {r.pop("id"): r for r in rows}

"""SQL of the notifier at run time: rules, channels, alarms, the notification log, the delivery log."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from alerting.notify.config import ChannelModel, load_channel
from alerting.notify.model import (
    PENDING_STATES,
    AlarmInfo,
    Delivery,
    LogEntry,
    Rule,
    Tier,
    WarningEvent,
)
from alerting.notify.retry import Outcome

log = logging.getLogger(__name__)

LogKey = tuple[int, str, str]
_PENDING = sorted(PENDING_STATES)

# The escalation clock of an alarm starts when it last became unacknowledged: at its activation
# when it was raised unacknowledged, else when it entered UNACK_ACTIVE/RTN_UNACK from a state
# that was not (unshelved, unsuppressed, back in service). Re-activation of an alarm that was
# never acknowledged (RTN_UNACK → UNACK_ACTIVE) does not restart it.
_ALARMS = """
    SELECT a.id, e.code AS enterprise, h.code AS hazard_source, h.level AS hazard_level,
           p.tag, p.name AS point_name, a.gateway, a.condition, a.priority, a.state, a.value,
           a.limit_value AS "limit", a.activated_at, a.acked_by,
           (SELECT CASE WHEN ev.from_state IS NULL THEN coalesce(ev.reading_ts, ev.at) ELSE ev.at END
              FROM alarm_events ev
             WHERE ev.alarm_id = a.id AND ev.to_state = ANY(%(pending)s)
               AND (ev.from_state IS NULL OR NOT ev.from_state = ANY(%(pending)s))
             ORDER BY ev.id DESC LIMIT 1) AS pending_since
    FROM alarms a
    JOIN enterprises e ON e.id = a.enterprise_id
    LEFT JOIN points p ON p.id = a.point_id
    LEFT JOIN hazard_sources h ON h.id = p.hazard_source_id
"""


def load_rules(conn: psycopg.Connection) -> list[Rule]:
    rows = conn.cursor(row_factory=dict_row).execute(
        """SELECT id, name, enabled, enterprises, hazard_sources, hazard_levels, priorities,
                  conditions, group_by, group_wait_s, group_interval_s, repeat_interval_s,
                  send_resolved, tiers FROM notify_rules ORDER BY id""").fetchall()
    return [Rule(
        id=r["id"], name=r["name"], enabled=r["enabled"],
        tiers=tuple(Tier(float(t["after_s"]), tuple(t["channels"])) for t in r["tiers"]),
        enterprises=frozenset(r["enterprises"]), hazard_sources=frozenset(r["hazard_sources"]),
        hazard_levels=frozenset(int(x) for x in r["hazard_levels"]),
        priorities=frozenset(r["priorities"]), conditions=frozenset(r["conditions"]),
        group_by=tuple(r["group_by"]), group_wait_s=r["group_wait_s"],
        group_interval_s=r["group_interval_s"], repeat_interval_s=r["repeat_interval_s"],
        send_resolved=r["send_resolved"]) for r in rows]


def load_channels(conn: psycopg.Connection) -> dict[str, ChannelModel]:
    """Enabled channels that validate (one that does not is logged and left out)."""
    out: dict[str, ChannelModel] = {}
    for name, kind, settings, secret in conn.execute(
            "SELECT name, kind, settings, secret FROM notify_channels WHERE enabled"):
        try:
            out[name] = load_channel(kind, settings, secret)
        except ValueError as exc:
            log.error("channel %s (%s) is invalid and is skipped: %s", name, kind,
                      str(exc).splitlines()[0])
    return out


def _alarm(row: dict[str, Any]) -> AlarmInfo:
    return AlarmInfo(**row)


def load_alarms(conn: psycopg.Connection, ids: Iterable[int]) -> list[AlarmInfo]:
    ids = sorted(set(ids))
    if not ids:
        return []
    rows = conn.cursor(row_factory=dict_row).execute(
        _ALARMS + " WHERE a.id = ANY(%(ids)s)", {"pending": _PENDING, "ids": ids}).fetchall()
    return [_alarm(r) for r in rows]


def pending_alarms(conn: psycopg.Connection) -> list[AlarmInfo]:
    rows = conn.cursor(row_factory=dict_row).execute(
        _ALARMS + " WHERE a.state = ANY(%(pending)s)", {"pending": _PENDING}).fetchall()
    return [_alarm(r) for r in rows]


def last_event_id(conn: psycopg.Connection) -> int:
    return int(conn.execute("SELECT coalesce(max(id), 0) FROM alarm_events").fetchone()[0])  # type: ignore[index]


def alarms_changed_after(conn: psycopg.Connection, event_id: int) -> tuple[set[int], int]:
    """Alarms with events after an event id, and the newest event id."""
    rows = conn.execute("SELECT id, alarm_id FROM alarm_events WHERE id > %s", (event_id,)).fetchall()
    return {int(a) for _, a in rows}, max((int(i) for i, _ in rows), default=event_id)


def load_log(conn: psycopg.Connection) -> dict[LogKey, LogEntry]:
    return {(r, k, c): LogEntry(at, frozenset(int(i) for i in firing)) for r, k, c, at, firing in
            conn.execute("SELECT rule_id, group_key, channel, sent_at, firing FROM notify_log")}


def save_log(conn: psycopg.Connection, key: LogKey, entry: LogEntry) -> None:
    conn.execute(
        """INSERT INTO notify_log (rule_id, group_key, channel, sent_at, firing)
           SELECT %s, %s, %s, %s, %s WHERE EXISTS (SELECT 1 FROM notify_rules WHERE id = %s)
           ON CONFLICT (rule_id, group_key, channel)
           DO UPDATE SET sent_at = excluded.sent_at, firing = excluded.firing""",
        (*key, entry.sent_at, sorted(entry.firing), key[0]))


def record_attempt(conn: psycopg.Connection, delivery: Delivery, kind: str, outcome: Outcome,
                   status: str) -> None:
    """One row of the delivery log."""
    m = delivery.message
    conn.execute(
        """INSERT INTO notify_deliveries (at, delivery, attempt, channel, channel_kind, rule,
               group_key, reason, tier, alarm_ids, warning_id, status, http_status, error,
               duration_ms)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
        (outcome.at, delivery.id, delivery.attempt, delivery.channel, kind, m.rule,
         delivery.group_key, m.reason, m.tier, list(delivery.alarm_ids), delivery.warning_id,
         status, outcome.http_status, (outcome.error or "")[:1000] or None, outcome.duration_ms))


def claim_warning(conn: psycopg.Connection, warning_id: int, step: str) -> bool:
    """True the first time a (warning, step) is seen: it is sent once."""
    return conn.execute(
        """INSERT INTO notify_warnings_seen (warning_id, step) VALUES (%s, %s)
           ON CONFLICT DO NOTHING""", (warning_id, step)).rowcount == 1


def recent_overdue_warnings(conn: psycopg.Connection, since: datetime) -> list[WarningEvent]:
    """Overdue warning steps announced since a time and not handled yet (announcements are
    lost while no notifier listens: after a takeover or a reconnect they are read back)."""
    try:
        rows = conn.execute(
            """SELECT o.warning_id, e.code, h.code, w.level, w.color, o.step, o.due_at
               FROM warning_overdue o
               JOIN warnings w ON w.id = o.warning_id
               JOIN enterprises e ON e.id = w.enterprise_id
               LEFT JOIN hazard_sources h ON h.id = w.hazard_source_id
               WHERE o.announced AND o.noted_at >= %s AND NOT EXISTS (
                   SELECT 1 FROM notify_warnings_seen s
                   WHERE s.warning_id = o.warning_id AND s.step = o.step)
               ORDER BY o.noted_at""", (since,)).fetchall()
    except psycopg.errors.UndefinedTable:
        return []  # a database without risk warnings
    return [WarningEvent(int(r[0]), r[1], r[2], r[3], r[4], r[5], r[6]) for r in rows]


_DELIVERY_COLS = """id, at, delivery, attempt, channel, channel_kind, rule, group_key, reason,
    tier, cardinality(alarm_ids) AS alarm_count, warning_id, status, http_status, error, duration_ms"""


def alarm_deliveries(conn: psycopg.Connection, alarm_id: int, limit: int) -> list[dict[str, Any]]:
    """Every attempt to tell someone about an alarm, oldest first."""
    return conn.cursor(row_factory=dict_row).execute(
        f"""SELECT {_DELIVERY_COLS} FROM notify_deliveries WHERE alarm_ids @> ARRAY[%s]::bigint[]
            ORDER BY at, id LIMIT %s""", (alarm_id, limit)).fetchall()


def deliveries_since(conn: psycopg.Connection, since: datetime, limit: int,
                     channel: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
    """Attempts at or after ``since``, oldest first."""
    where: list[str] = ["at >= %s"]
    params: list[object] = [since]
    for clause, value in (("channel = %s", channel), ("status = %s", status)):
        if value is not None:
            where.append(clause)
            params.append(value)
    return conn.cursor(row_factory=dict_row).execute(
        f"SELECT {_DELIVERY_COLS} FROM notify_deliveries WHERE {' AND '.join(where)} "
        "ORDER BY at, id LIMIT %s", (*params, limit)).fetchall()

"""SQL for risk warnings, incidents, dispatches and the response rules.

The rules themselves are in ``alerting.warnings`` and ``alerting.incidents`` (pure); this
module reads and writes rows in the caller's transaction. Times are passed in (``now``) so a
test clock drives them. Announcements with ``pg_notify``: overdue warning steps on
``hazmon_warnings`` (kind ``warning_overdue`` only, payload per ``warnings.overdue_payload``, for the
notification engine); everything else on ``hazmon_response``: ``warning_issued`` and
``warning_escalated`` (same shape, ``step``/``due_at`` of the step awaited), ``incident_opened``
and ``incident_report_overdue``. Every row returned carries its enterprise code.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from alerting import incidents, warnings
from hazmon.errors import Conflict, InputError, NotFound

log = logging.getLogger(__name__)

WARNINGS_CHANNEL = "hazmon_warnings"
RESPONSE_CHANNEL = "hazmon_response"
MAX_ATTACHMENTS = 20


def notify(conn: psycopg.Connection, channel: str, payload: dict[str, Any]) -> None:
    """Announce on a channel when the transaction commits."""
    conn.execute("SELECT pg_notify(%s, %s)", (channel, json.dumps(payload, ensure_ascii=False)))


# -- rules -----------------------------------------------------------------------------------

def load_rules_doc(conn: psycopg.Connection, name: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT value FROM response_config WHERE name = %s", (name,)).fetchone()
    return row[0] if row else None


def save_rules_doc(conn: psycopg.Connection, name: str, value: dict[str, Any], actor: str) -> None:
    conn.execute(
        """INSERT INTO response_config (name, value, updated_by) VALUES (%s, %s, %s)
           ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, updated_at = now(),
               updated_by = EXCLUDED.updated_by""", (name, Jsonb(value), actor))


def warning_rules(conn: psycopg.Connection) -> warnings.WarningRules:
    """The stored warning rules (validated when saved), else the defaults."""
    return _parsed(conn, "warnings", warnings.parse_rules, warnings.DEFAULTS)


def incident_rules(conn: psycopg.Connection) -> incidents.IncidentRules:
    return _parsed(conn, "incidents", incidents.parse_rules, incidents.DEFAULTS)


def _parsed(conn: psycopg.Connection, name: str, parse: Any, default: Any) -> Any:
    doc = load_rules_doc(conn, name)
    try:
        return parse(doc) if doc is not None else default
    except InputError as exc:  # validated on save; a hand-edited row must not stop the service
        log.error("stored %s rules are invalid (%s); using the defaults", name, exc)
        return default


# -- warnings --------------------------------------------------------------------------------

_WARNING = """
    SELECT w.id, e.code AS enterprise, h.code AS hazard_source, h.name AS hazard_source_name,
           w.level, w.color, w.live_color, w.state, w.reason, w.issued_at, w.acked_at, w.acked_by,
           w.ack_comment, w.feedback_at, w.feedback_by, w.cause, w.action, w.cleared_at,
           w.cleared_by, w.clear_comment, w.updated_at, w.enterprise_id, w.hazard_source_id,
           w.covered,
           coalesce((SELECT jsonb_agg(jsonb_build_object('step', o.step, 'due_at', o.due_at,
                                                         'noted_at', o.noted_at) ORDER BY o.due_at)
                     FROM warning_overdue o WHERE o.warning_id = w.id), '[]') AS overdue
    FROM warnings w JOIN enterprises e ON e.id = w.enterprise_id
    LEFT JOIN hazard_sources h ON h.id = w.hazard_source_id
"""


def scope_alarms(conn: psycopg.Connection, ent_id: int, hs_id: int | None) -> list[dict[str, Any]]:
    """The not-closed alarms of one warning scope (a hazard source, or the enterprise's alarms
    outside any hazard source) with what the matrix needs."""
    return conn.cursor(row_factory=dict_row).execute(
        """SELECT a.id, a.activations, a.state, a.condition, a.priority, p.kind, p.tag, a.gateway,
                  h.level
           FROM alarms a LEFT JOIN points p ON p.id = a.point_id
           LEFT JOIN hazard_sources h ON h.id = p.hazard_source_id
           WHERE a.enterprise_id = %(ent)s AND a.state <> 'CLOSED'
             AND (CASE WHEN %(hs)s::integer IS NULL THEN p.hazard_source_id IS NULL
                       ELSE p.hazard_source_id = %(hs)s::integer END)
           ORDER BY a.id""", {"ent": ent_id, "hs": hs_id}).fetchall()


def alarm_scope(conn: psycopg.Connection, alarm_id: int) -> tuple[int, int | None] | None:
    """(enterprise id, hazard source id) of an alarm; None when it is gone."""
    row = conn.execute("""SELECT a.enterprise_id, p.hazard_source_id FROM alarms a
                          LEFT JOIN points p ON p.id = a.point_id WHERE a.id = %s""",
                       (alarm_id,)).fetchone()
    return (int(row[0]), row[1]) if row else None


def all_scopes(conn: psycopg.Connection) -> list[tuple[int, int | None]]:
    """Every scope with a not-closed alarm or an open warning (for a full recompute)."""
    return [(int(e), h) for e, h in conn.execute(
        """SELECT DISTINCT a.enterprise_id, p.hazard_source_id FROM alarms a
           LEFT JOIN points p ON p.id = a.point_id WHERE a.state <> 'CLOSED'
           UNION SELECT enterprise_id, hazard_source_id FROM warnings WHERE state <> 'cleared'""")]


def open_warning(conn: psycopg.Connection, ent_id: int, hs_id: int | None) -> dict[str, Any] | None:
    """The scope's open warning, locked for update."""
    return conn.cursor(row_factory=dict_row).execute(
        """SELECT id, color, live_color, covered, state FROM warnings
           WHERE enterprise_id = %(ent)s AND state <> 'cleared'
             AND hazard_source_id IS NOT DISTINCT FROM %(hs)s::integer FOR UPDATE""",
        {"ent": ent_id, "hs": hs_id}).fetchone()


def cleared_covered(conn: psycopg.Connection, ent_id: int, hs_id: int | None) -> dict[int, int]:
    """What the scope's last cleared warning answered for."""
    row = conn.execute(
        """SELECT covered FROM warnings WHERE enterprise_id = %(ent)s AND state = 'cleared'
             AND hazard_source_id IS NOT DISTINCT FROM %(hs)s::integer
           ORDER BY cleared_at DESC, id DESC LIMIT 1""", {"ent": ent_id, "hs": hs_id}).fetchone()
    return {int(k): int(v) for k, v in (row[0] if row else {}).items()}


def _warning_event(conn: psycopg.Connection, warning_id: int, ent_id: int, at: datetime, actor: str,
                   action: str, before: str | None, after: str, color: str,
                   comment: str | None = None) -> None:
    conn.execute(
        """INSERT INTO warning_events (warning_id, enterprise_id, at, actor, action, from_state,
                                       to_state, color, comment)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)""",
        (warning_id, ent_id, at, actor, action, before, after, color, comment))


def issue_warning(conn: psycopg.Connection, ent_id: int, hs_id: int | None, level: int | None,
                  decision: warnings.Decision, reason: str, now: datetime) -> int:
    row = conn.execute(
        """INSERT INTO warnings (enterprise_id, hazard_source_id, level, color, live_color, state,
                                 reason, covered, issued_at, updated_at)
           VALUES (%s, %s, %s, %s, %s, 'issued', %s, %s, %s, %s) RETURNING id""",
        (ent_id, hs_id, level, decision.color, decision.live_color, reason,
         Jsonb({str(k): v for k, v in decision.covered.items()}), now, now)).fetchone()
    warning_id = int(row[0])  # type: ignore[index]
    _warning_event(conn, warning_id, ent_id, now, "system", "issue", None, "issued",
                   decision.color or "", reason)  # type: ignore[arg-type]
    return warning_id


def update_warning(conn: psycopg.Connection, current: dict[str, Any], ent_id: int,
                   level: int | None, decision: warnings.Decision, reason: str | None,
                   now: datetime) -> bool:
    """Apply an escalate/update decision; True when something changed."""
    covered = {str(k): v for k, v in decision.covered.items()}
    if (decision.action == "update" and current["live_color"] == decision.live_color
            and current["covered"] == covered):
        return False
    conn.execute(
        """UPDATE warnings SET color = %s, live_color = %s, covered = %s, level = %s,
               reason = coalesce(%s, reason), updated_at = %s WHERE id = %s""",
        (decision.color, decision.live_color, Jsonb(covered), level,
         reason if decision.action == "escalate" else None, now, current["id"]))
    if decision.action == "escalate":
        _warning_event(conn, current["id"], ent_id, now, "system", "escalate", current["state"],
                       current["state"], decision.color or "", reason)
    return True


def get_warning(conn: psycopg.Connection, warning_id: int) -> dict[str, Any]:
    row = conn.cursor(row_factory=dict_row).execute(_WARNING + " WHERE w.id = %s",
                                                    (warning_id,)).fetchone()
    if row is None:
        raise NotFound(f"warning {warning_id} does not exist")
    return row


def list_warnings(conn: psycopg.Connection, *, scope: list[str] | None, enterprise: str | None,
                  hazard_source: str | None, states: list[str] | None, color: str | None,
                  limit: int) -> list[dict[str, Any]]:
    """Warnings matching every given filter, newest first."""
    return conn.cursor(row_factory=dict_row).execute(
        _WARNING + """ WHERE (%(scope)s::text[] IS NULL OR e.code = ANY(%(scope)s::text[]))
            AND (%(ent)s::text IS NULL OR e.code = %(ent)s::text)
            AND (%(hs)s::text IS NULL OR h.code = %(hs)s::text)
            AND (%(states)s::text[] IS NULL OR w.state = ANY(%(states)s::text[]))
            AND (%(color)s::text IS NULL OR w.color = %(color)s::text)
            ORDER BY w.issued_at DESC, w.id DESC LIMIT %(limit)s""",
        {"scope": scope, "ent": enterprise, "hs": hazard_source, "states": states,
         "color": color, "limit": limit}).fetchall()


def warning_events(conn: psycopg.Connection, warning_id: int) -> list[dict[str, Any]]:
    return conn.cursor(row_factory=dict_row).execute(
        """SELECT at, actor, action, from_state, to_state, color, comment FROM warning_events
           WHERE warning_id = %s ORDER BY id""", (warning_id,)).fetchall()


def do_step(conn: psycopg.Connection, warning_id: int, step: str, actor: str, now: datetime,
            rules: warnings.WarningRules, fields: dict[str, Any]) -> None:
    """Do the next step of a warning's loop; Conflict when it is not the next one. A step done
    at or after its due instant is recorded as overdue (not announced: it is done)."""
    row = conn.cursor(row_factory=dict_row).execute(
        """SELECT id, enterprise_id, state, color, issued_at, acked_at, feedback_at FROM warnings
           WHERE id = %s FOR UPDATE""", (warning_id,)).fetchone()
    if row is None:
        raise NotFound(f"warning {warning_id} does not exist")
    after = warnings.transition(row["state"], step)
    if after is None:
        raise Conflict(f"warning {warning_id} is {row['state']}: it cannot {step} now")
    times = warnings.LoopTimes(row["state"], row["color"], row["issued_at"], row["acked_at"],
                               row["feedback_at"])
    due = warnings.overdue_step(rules, times, now)
    if due is not None:
        _record_overdue(conn, warning_id, row["enterprise_id"], due[0], due[1], now, announced=False)
    prefix = {"acknowledge": "acked", "feedback": "feedback", "clear": "cleared"}[step]
    values = {f"{prefix}_at": now, f"{prefix}_by": actor, **fields}
    sets = ", ".join(f"{k} = %({k})s" for k in values)
    conn.execute(f"UPDATE warnings SET state = %(state)s, {sets}, updated_at = %(now)s "
                 "WHERE id = %(id)s", {**values, "state": after, "now": now, "id": warning_id})
    comment = fields.get("ack_comment") or fields.get("clear_comment") or fields.get("cause")
    _warning_event(conn, warning_id, row["enterprise_id"], now, actor, step, row["state"], after,
                   row["color"], comment)


def _record_overdue(conn: psycopg.Connection, warning_id: int, ent_id: int, step: str,
                    due_at: datetime, now: datetime, *, announced: bool) -> bool:
    row = conn.execute(
        """INSERT INTO warning_overdue (warning_id, enterprise_id, step, due_at, noted_at, announced)
           VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING 1""",
        (warning_id, ent_id, step, due_at, now, announced)).fetchone()
    return row is not None


def loops_waiting(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """Open warnings whose current step has no overdue record yet."""
    return conn.cursor(row_factory=dict_row).execute(
        """SELECT w.id, w.enterprise_id, e.code AS enterprise, h.code AS hazard_source, w.level,
                  w.color, w.state, w.issued_at, w.acked_at, w.feedback_at
           FROM warnings w JOIN enterprises e ON e.id = w.enterprise_id
           LEFT JOIN hazard_sources h ON h.id = w.hazard_source_id
           WHERE w.state <> 'cleared' AND NOT EXISTS (
               SELECT 1 FROM warning_overdue o WHERE o.warning_id = w.id AND o.step =
                   CASE w.state WHEN 'issued' THEN 'acknowledge' WHEN 'acknowledged' THEN 'feedback'
                                ELSE 'clear' END)""").fetchall()


def mark_overdue(conn: psycopg.Connection, w: dict[str, Any], step: str, due_at: datetime,
                 now: datetime) -> bool:
    """Record an overdue step once and announce it on ``hazmon_warnings``."""
    if not _record_overdue(conn, w["id"], w["enterprise_id"], step, due_at, now, announced=True):
        return False
    _warning_event(conn, w["id"], w["enterprise_id"], now, "system", "overdue", w["state"],
                   w["state"], w["color"], f"{step} was due at {warnings.rfc3339(due_at)}")
    notify(conn, WARNINGS_CHANNEL, warnings.overdue_payload(
        w["id"], w["enterprise"], w["hazard_source"], w["level"], w["color"], step, due_at))
    return True


def add_attachment(conn: psycopg.Connection, warning: dict[str, Any], name: str,
                   content_type: str, data: bytes, actor: str, now: datetime) -> dict[str, Any]:
    count = conn.execute("SELECT count(*) FROM warning_attachments WHERE warning_id = %s",
                         (warning["id"],)).fetchone()[0]  # type: ignore[index]
    if count >= MAX_ATTACHMENTS:
        raise Conflict(f"warning {warning['id']} already has {MAX_ATTACHMENTS} attachments")
    return conn.cursor(row_factory=dict_row).execute(
        """INSERT INTO warning_attachments (warning_id, enterprise_id, name, content_type, size,
                                            sha256, data, uploaded_at, uploaded_by)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
           RETURNING id, name, content_type, size, sha256, uploaded_at, uploaded_by""",
        (warning["id"], warning["enterprise_id"], name, content_type, len(data),
         hashlib.sha256(data).hexdigest(), data, now, actor)).fetchone()  # type: ignore[return-value]


def attachments(conn: psycopg.Connection, warning_id: int) -> list[dict[str, Any]]:
    return conn.cursor(row_factory=dict_row).execute(
        """SELECT id, name, content_type, size, sha256, uploaded_at, uploaded_by
           FROM warning_attachments WHERE warning_id = %s ORDER BY id""", (warning_id,)).fetchall()


def attachment_data(conn: psycopg.Connection, warning_id: int, attachment_id: int) -> tuple[bytes, str, str]:
    row = conn.execute("SELECT data, name, content_type FROM warning_attachments "
                       "WHERE id = %s AND warning_id = %s", (attachment_id, warning_id)).fetchone()
    if row is None:
        raise NotFound(f"attachment {attachment_id} does not exist")
    return bytes(row[0]), row[1], row[2]


# -- incidents -------------------------------------------------------------------------------

_INCIDENT = """
    SELECT i.id, e.code AS enterprise, e.name AS enterprise_name, h.code AS hazard_source,
           h.name AS hazard_source_name, h.level, i.title, i.status, i.rule, i.opened_at,
           i.opened_by, i.occurred_at, i.report_due_at, i.reported_at, i.reported_by, i.report_to,
           i.report_note, i.report_overdue_at, i.closed_at, i.closed_by, i.updated_at,
           i.enterprise_id, i.hazard_source_id
    FROM incidents i JOIN enterprises e ON e.id = i.enterprise_id
    LEFT JOIN hazard_sources h ON h.id = i.hazard_source_id
"""
_ACTIVATION = """
    SELECT ev.id AS event_id, a.id AS alarm_id, a.point_id, p.hazard_source_id, h.level, p.kind,
           a.condition, coalesce(ev.reading_ts, ev.at) AS at
    FROM alarm_events ev JOIN alarms a ON a.id = ev.alarm_id
    JOIN points p ON p.id = a.point_id JOIN hazard_sources h ON h.id = p.hazard_source_id
    WHERE ev.action = 'activate' AND ev.to_state IN ('UNACK_ACTIVE', 'ACK_ACTIVE')
"""


def activation(conn: psycopg.Connection, event_id: int) -> incidents.Activation | None:
    """The event as an annunciated activation at a hazard source; None when it is not one."""
    row = conn.cursor(row_factory=dict_row).execute(_ACTIVATION + " AND ev.id = %s",
                                                    (event_id,)).fetchone()
    return incidents.Activation(**row) if row else None


def recent_activations(conn: psycopg.Connection, hs_id: int, start: datetime,
                       end: datetime) -> list[incidents.Activation]:
    rows = conn.cursor(row_factory=dict_row).execute(
        _ACTIVATION + """ AND p.hazard_source_id = %s
            AND coalesce(ev.reading_ts, ev.at) BETWEEN %s AND %s ORDER BY ev.id""",
        (hs_id, start, end)).fetchall()
    return [incidents.Activation(**r) for r in rows]


def linked_activations(conn: psycopg.Connection, event_ids: list[int]) -> set[int]:
    return {int(r[0]) for r in conn.execute(
        "SELECT activation_event_id FROM incident_alarms WHERE activation_event_id = ANY(%s)",
        (event_ids,))}


def open_incident_of_source(conn: psycopg.Connection, hs_id: int) -> int | None:
    row = conn.execute("""SELECT id FROM incidents WHERE hazard_source_id = %s AND status <> 'closed'
                          ORDER BY id DESC LIMIT 1 FOR UPDATE""", (hs_id,)).fetchone()
    return int(row[0]) if row else None


def incident_event(conn: psycopg.Connection, incident_id: int, ent_id: int, at: datetime,
                   actor: str, kind: str, text: str, data: dict[str, Any] | None = None) -> None:
    conn.execute(
        """INSERT INTO incident_events (incident_id, enterprise_id, at, actor, kind, text, data)
           VALUES (%s, %s, %s, %s, %s, %s, %s)""",
        (incident_id, ent_id, at, actor, kind, text, Jsonb(data) if data is not None else None))


def create_incident(conn: psycopg.Connection, *, ent_id: int, hs_id: int | None, title: str,
                    rule: str | None, actor: str, now: datetime, occurred_at: datetime,
                    report_due_at: datetime) -> int:
    row = conn.execute(
        """INSERT INTO incidents (enterprise_id, hazard_source_id, title, status, rule, opened_at,
                                  opened_by, occurred_at, report_due_at, updated_at)
           VALUES (%s, %s, %s, 'open', %s, %s, %s, %s, %s, %s) RETURNING id""",
        (ent_id, hs_id, title, rule, now, actor, occurred_at, report_due_at, now)).fetchone()
    incident_id = int(row[0])  # type: ignore[index]
    how = f"by rule {rule}" if rule else f"by {actor}"
    incident_event(conn, incident_id, ent_id, now, actor, "opened", f"incident opened {how}: {title}",
                   {"rule": rule})
    return incident_id


def link_alarm(conn: psycopg.Connection, incident_id: int, ent_id: int, alarm_id: int,
               activation_event_id: int | None, actor: str, now: datetime, why: str) -> bool:
    """Join an alarm (activation) to an incident and note it in the timeline; False when it
    already was."""
    row = conn.execute(
        """INSERT INTO incident_alarms (incident_id, alarm_id, activation_event_id, linked_at, linked_by)
           VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING 1""",
        (incident_id, alarm_id, activation_event_id, now, actor)).fetchone()
    if row is None:
        return False
    alarm = conn.execute(
        """SELECT p.tag, a.gateway, a.condition, a.priority, a.value, a.activated_at FROM alarms a
           LEFT JOIN points p ON p.id = a.point_id WHERE a.id = %s""", (alarm_id,)).fetchone()
    tag, gateway, condition, priority, value, activated_at = alarm  # type: ignore[misc]
    incident_event(conn, incident_id, ent_id, now, actor, "alarm",
                   f"alarm {alarm_id} {tag or gateway} {condition} ({priority}) value {value} {why}",
                   {"alarm_id": alarm_id, "tag": tag, "condition": condition,
                    "activated_at": activated_at.isoformat()})
    return True


def alarms_of_enterprise(conn: psycopg.Connection, alarm_ids: list[int]) -> list[dict[str, Any]]:
    """The given alarms with their enterprise, hazard source and activation time."""
    return conn.cursor(row_factory=dict_row).execute(
        """SELECT a.id, a.enterprise_id, e.code AS enterprise, p.hazard_source_id, a.activated_at
           FROM alarms a JOIN enterprises e ON e.id = a.enterprise_id
           LEFT JOIN points p ON p.id = a.point_id WHERE a.id = ANY(%s) ORDER BY a.id""",
        (alarm_ids,)).fetchall()


def get_incident(conn: psycopg.Connection, incident_id: int) -> dict[str, Any]:
    row = conn.cursor(row_factory=dict_row).execute(_INCIDENT + " WHERE i.id = %s",
                                                    (incident_id,)).fetchone()
    if row is None:
        raise NotFound(f"incident {incident_id} does not exist")
    return row


def list_incidents(conn: psycopg.Connection, *, scope: list[str] | None, enterprise: str | None,
                   status: str | None, limit: int) -> list[dict[str, Any]]:
    return conn.cursor(row_factory=dict_row).execute(
        _INCIDENT + """ WHERE (%(scope)s::text[] IS NULL OR e.code = ANY(%(scope)s::text[]))
            AND (%(ent)s::text IS NULL OR e.code = %(ent)s::text)
            AND (%(status)s::text IS NULL OR i.status = %(status)s::text)
            ORDER BY i.opened_at DESC, i.id DESC LIMIT %(limit)s""",
        {"scope": scope, "ent": enterprise, "status": status, "limit": limit}).fetchall()


def incident_alarms(conn: psycopg.Connection, incident_id: int) -> list[dict[str, Any]]:
    from alerting.repository import ALARM_SELECT

    return conn.cursor(row_factory=dict_row).execute(
        ALARM_SELECT + """ JOIN incident_alarms ia ON ia.alarm_id = a.id
                           WHERE ia.incident_id = %s ORDER BY a.activated_at, a.id""",
        (incident_id,)).fetchall()


def timeline(conn: psycopg.Connection, incident_id: int) -> list[dict[str, Any]]:
    return conn.cursor(row_factory=dict_row).execute(
        """SELECT id, at, actor, kind, text, data FROM incident_events WHERE incident_id = %s
           ORDER BY at, id""", (incident_id,)).fetchall()


def set_status(conn: psycopg.Connection, incident: dict[str, Any], status: str, actor: str,
               now: datetime, comment: str | None) -> None:
    if incident["status"] == status:
        raise Conflict(f"incident {incident['id']} is already {status}")
    if incident["status"] == "closed":
        raise Conflict(f"incident {incident['id']} is closed")
    closed = status == "closed"
    conn.execute("""UPDATE incidents SET status = %s, closed_at = %s, closed_by = %s, updated_at = %s
                    WHERE id = %s""", (status, now if closed else None, actor if closed else None,
                                       now, incident["id"]))
    incident_event(conn, incident["id"], incident["enterprise_id"], now, actor, "status",
                   f"{incident['status']} → {status}" + (f": {comment}" if comment else ""),
                   {"from": incident["status"], "to": status})


def mark_reported(conn: psycopg.Connection, incident: dict[str, Any], actor: str, now: datetime,
                  to: str, note: str | None) -> None:
    if incident["reported_at"] is not None:
        raise Conflict(f"incident {incident['id']} was reported at {incident['reported_at']}")
    conn.execute("""UPDATE incidents SET reported_at = %s, reported_by = %s, report_to = %s,
                        report_note = %s, updated_at = %s WHERE id = %s""",
                 (now, actor, to, note, now, incident["id"]))
    clock = incidents.report_clock(incident["report_due_at"], now, now)
    incident_event(conn, incident["id"], incident["enterprise_id"], now, actor, "report",
                   f"reported to {to}" + (" (late)" if clock.late else "") + (f": {note}" if note else ""),
                   {"to": to, "late": clock.late})


def reports_overdue(conn: psycopg.Connection, now: datetime) -> list[dict[str, Any]]:
    """Unreported incidents past their reporting deadline, not yet escalated."""
    return conn.cursor(row_factory=dict_row).execute(
        _INCIDENT + """ WHERE i.reported_at IS NULL AND i.report_overdue_at IS NULL
                        AND i.report_due_at <= %s ORDER BY i.id FOR UPDATE OF i""", (now,)).fetchall()


def escalate_report(conn: psycopg.Connection, incident: dict[str, Any], now: datetime) -> None:
    """Flag an unreported incident as overdue, note it and announce it once."""
    conn.execute("UPDATE incidents SET report_overdue_at = %s, updated_at = %s WHERE id = %s",
                 (now, now, incident["id"]))
    due = warnings.rfc3339(incident["report_due_at"])
    incident_event(conn, incident["id"], incident["enterprise_id"], now, "system", "report_overdue",
                   f"not reported to the county regulator by {due}: escalated", {"due_at": due})
    announce_incident(conn, incident, "incident_report_overdue", now)


def announce_incident(conn: psycopg.Connection, incident: dict[str, Any], kind: str,
                      now: datetime) -> None:
    """Notify ``hazmon_response`` and note the notification in the timeline."""
    payload = {"kind": kind, "incident_id": incident["id"], "enterprise": incident["enterprise"],
               "hazard_source": incident["hazard_source"], "level": incident["level"],
               "title": incident["title"], "status": incident["status"],
               "report_due_at": warnings.rfc3339(incident["report_due_at"])}
    notify(conn, RESPONSE_CHANNEL, payload)
    incident_event(conn, incident["id"], incident["enterprise_id"], now, "system", "notification",
                   f"{kind} announced on {RESPONSE_CHANNEL}", payload)


def create_dispatch(conn: psycopg.Connection, incident: dict[str, Any], data: dict[str, Any],
                    actor: str, now: datetime) -> int:
    row = conn.execute(
        """INSERT INTO dispatches (incident_id, enterprise_id, resource_id, resource_name, what,
                                   quantity, distance_km, status, dispatched_at, dispatched_by,
                                   status_at, note)
           VALUES (%s, %s, %s, %s, %s, %s, %s, 'requested', %s, %s, %s, %s) RETURNING id""",
        (incident["id"], incident["enterprise_id"], data.get("resource_id"), data["resource_name"],
         data["what"], data.get("quantity"), data.get("distance_km"), now, actor, now,
         data.get("note"))).fetchone()
    dispatch_id = int(row[0])  # type: ignore[index]
    incident_event(conn, incident["id"], incident["enterprise_id"], now, actor, "dispatch",
                   f"dispatched {data['what']} from {data['resource_name']}",
                   {"dispatch_id": dispatch_id, "status": "requested"})
    return dispatch_id


def dispatches(conn: psycopg.Connection, incident_id: int) -> list[dict[str, Any]]:
    return conn.cursor(row_factory=dict_row).execute(
        """SELECT d.id, e.code AS enterprise, d.resource_id, d.resource_name, d.what, d.quantity,
                  d.distance_km, d.status, d.dispatched_at, d.dispatched_by, d.status_at, d.note
           FROM dispatches d JOIN enterprises e ON e.id = d.enterprise_id
           WHERE d.incident_id = %s ORDER BY d.id""", (incident_id,)).fetchall()


def set_dispatch_status(conn: psycopg.Connection, incident: dict[str, Any], dispatch_id: int,
                        status: str, actor: str, now: datetime, note: str | None) -> None:
    row = conn.execute("""UPDATE dispatches SET status = %s, status_at = %s,
                              note = coalesce(%s, note) WHERE id = %s AND incident_id = %s
                          RETURNING resource_name, what""",
                       (status, now, note, dispatch_id, incident["id"])).fetchone()
    if row is None:
        raise NotFound(f"dispatch {dispatch_id} does not exist in incident {incident['id']}")
    incident_event(conn, incident["id"], incident["enterprise_id"], now, actor, "dispatch",
                   f"{row[1]} from {row[0]}: {status}" + (f" ({note})" if note else ""),
                   {"dispatch_id": dispatch_id, "status": status})


# -- the response service's place in the alarm event log --------------------------------------

def cursor(conn: psycopg.Connection, name: str) -> int | None:
    row = conn.execute("SELECT last_event_id FROM response_cursor WHERE name = %s", (name,)).fetchone()
    return int(row[0]) if row else None


def set_cursor(conn: psycopg.Connection, name: str, event_id: int) -> None:
    conn.execute("""INSERT INTO response_cursor VALUES (%s, %s) ON CONFLICT (name)
                    DO UPDATE SET last_event_id = greatest(response_cursor.last_event_id,
                                                           EXCLUDED.last_event_id)""",
                 (name, event_id))


def events_after(conn: psycopg.Connection, event_id: int, limit: int) -> list[tuple[int, int]]:
    """(event id, alarm id) of alarm events after an id, oldest first."""
    return [(int(e), int(a)) for e, a in conn.execute(
        "SELECT id, alarm_id FROM alarm_events WHERE id > %s ORDER BY id LIMIT %s",
        (event_id, limit))]


def last_event_id(conn: psycopg.Connection) -> int:
    return int(conn.execute("SELECT coalesce(max(id), 0) FROM alarm_events").fetchone()[0])  # type: ignore[index]

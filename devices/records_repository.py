"""SQL for hazard records, plans and their documents, the grading history and rescue resources.

Every row returned carries its enterprise code, so callers can scope by tenant. Dates and flags
are computed in ``devices.records`` (pure); this module only reads and writes.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from devices import records
from devices.repository import bump_points_version
from hazmon.errors import NotFound

MAX_DOCUMENT_BYTES = 10 * 1024 * 1024  # per plan document / warning attachment (stored as bytea)

_SOURCE = """
    SELECT h.id, h.enterprise_id, e.code AS enterprise, e.name AS enterprise_name, h.code,
           h.name, h.unit_type, h.residents_500m, h.chemicals, h.s, h.r, h.alpha, h.level,
           h.mode, h.updated_at AS graded_at,
           coalesce(r.lat, e.lat) AS lat, coalesce(r.lon, e.lon) AS lon,
           r.lat IS NOT NULL AS own_coordinates, r.last_identified_on,
           coalesce(r.equipment, '[]'::jsonb) AS equipment, r.updated_at AS record_updated_at,
           r.updated_by AS record_updated_by
    FROM hazard_sources h JOIN enterprises e ON e.id = h.enterprise_id
    LEFT JOIN hazard_records r ON r.hazard_source_id = h.id
"""
_PLAN_FIELDS = ("kind", "title", "version", "link", "last_drill_on", "doc", "doc_name", "doc_type",
                "doc_size", "doc_sha256")
_PLAN_COLUMNS = """id, kind, title, version, link, last_drill_on, doc_name, doc_type, doc_size,
                   doc_sha256, updated_at, updated_by"""


def find_source(conn: psycopg.Connection, enterprise: str, code: str) -> dict[str, Any]:
    """A hazard source with its record's basics; NotFound when the enterprise or code is unknown."""
    row = conn.cursor(row_factory=dict_row).execute(
        _SOURCE + " WHERE e.code = %s AND h.code = %s", (enterprise, code)).fetchone()
    if row is None:
        raise NotFound(f"hazard source {code!r} does not exist in enterprise {enterprise!r}")
    return row


def source_by_id(conn: psycopg.Connection, hs_id: int) -> dict[str, Any]:
    row = conn.cursor(row_factory=dict_row).execute(_SOURCE + " WHERE h.id = %s", (hs_id,)).fetchone()
    if row is None:
        raise NotFound(f"hazard source {hs_id} does not exist")
    return row


def responsibles(conn: psycopg.Connection, hs_id: int) -> dict[str, dict[str, Any] | None]:
    """The three responsible people by role (None where not yet named)."""
    rows = conn.cursor(row_factory=dict_row).execute(
        "SELECT role, name, phone, position FROM hazard_responsibles WHERE hazard_source_id = %s",
        (hs_id,)).fetchall()
    by_role = {r.pop("role"): r for r in rows}
    return {role: by_role.get(role) for role in records.RESPONSIBLE_ROLES}


def plans(conn: psycopg.Connection, hs_id: int, today: date) -> list[dict[str, Any]]:
    """Plans and procedures (without document bytes), each with its drill flags."""
    rows = conn.cursor(row_factory=dict_row).execute(
        f"SELECT {_PLAN_COLUMNS} FROM hazard_plans WHERE hazard_source_id = %s ORDER BY kind, id",
        (hs_id,)).fetchall()
    return [records.plan_flags(r, today) for r in rows]


def full_record(conn: psycopg.Connection, source: dict[str, Any], today: date) -> dict[str, Any]:
    """The hazard record as the API shows it: card, people, plans, equipment and flags."""
    people = responsibles(conn, source["id"])
    plan_rows = plans(conn, source["id"], today)
    missing = [role for role, p in people.items() if p is None]
    flags = records.record_flags(plan_rows, source["last_identified_on"], missing, today)
    card = {k: v for k, v in source.items() if k not in ("id", "enterprise_id")}
    return {**card, "responsibles": people, "plans": plan_rows, "flags": flags}


def put_record(conn: psycopg.Connection, source: dict[str, Any], data: dict[str, Any],
               actor: str) -> None:
    """Replace a hazard record's coordinates, identification date, equipment and people."""
    conn.execute(
        """INSERT INTO hazard_records (hazard_source_id, enterprise_id, lat, lon, last_identified_on,
                                       equipment, updated_at, updated_by)
           VALUES (%s, %s, %s, %s, %s, %s, now(), %s)
           ON CONFLICT (hazard_source_id) DO UPDATE SET lat = EXCLUDED.lat, lon = EXCLUDED.lon,
               last_identified_on = EXCLUDED.last_identified_on, equipment = EXCLUDED.equipment,
               updated_at = now(), updated_by = EXCLUDED.updated_by""",
        (source["id"], source["enterprise_id"], data.get("lat"), data.get("lon"),
         data.get("last_identified_on"), Jsonb(data.get("equipment") or []), actor))
    conn.execute("DELETE FROM hazard_responsibles WHERE hazard_source_id = %s", (source["id"],))
    for role, person in (data.get("responsibles") or {}).items():
        if person:
            conn.execute(
                """INSERT INTO hazard_responsibles (hazard_source_id, enterprise_id, role, name,
                                                    phone, position) VALUES (%s, %s, %s, %s, %s, %s)""",
                (source["id"], source["enterprise_id"], role, person["name"], person["phone"],
                 person.get("position")))


def regrade(conn: psycopg.Connection, source: dict[str, Any], grading: dict[str, Any],
            actor: str, reason: str | None) -> dict[str, Any]:
    """Store a new inventory and grading, keeping the history (the state before the first
    change is recorded too, so the history starts at registration)."""
    hs_id = source["id"]
    conn.execute("SELECT 1 FROM hazard_sources WHERE id = %s FOR UPDATE", (hs_id,))
    has_history = conn.execute("SELECT 1 FROM hazard_grading_history WHERE hazard_source_id = %s "
                               "LIMIT 1", (hs_id,)).fetchone()
    if not has_history:
        conn.execute(
            """INSERT INTO hazard_grading_history (hazard_source_id, enterprise_id, at, actor, reason,
                   residents_500m, chemicals, s, r, alpha, level)
               SELECT id, enterprise_id, created_at, 'registration', 'as registered',
                      residents_500m, chemicals, s, r, alpha, level
               FROM hazard_sources WHERE id = %s""", (hs_id,))
    conn.execute(
        """UPDATE hazard_sources SET chemicals = %(chemicals)s, residents_500m = %(residents_500m)s,
               s = %(s)s, r = %(r)s, alpha = %(alpha)s, level = %(level)s, updated_at = now()
           WHERE id = %(id)s""", {**grading, "chemicals": Jsonb(grading["chemicals"]), "id": hs_id})
    conn.execute(
        """INSERT INTO hazard_grading_history (hazard_source_id, enterprise_id, actor, reason,
               residents_500m, chemicals, s, r, alpha, level)
           VALUES (%(id)s, %(ent)s, %(actor)s, %(reason)s, %(residents_500m)s, %(chemicals)s,
                   %(s)s, %(r)s, %(alpha)s, %(level)s)""",
        {**grading, "chemicals": Jsonb(grading["chemicals"]), "id": hs_id,
         "ent": source["enterprise_id"], "actor": actor, "reason": reason})
    if source["level"] != grading["level"]:
        bump_points_version(conn)  # alarm priorities depend on the level: ingest reloads
    return source_by_id(conn, hs_id)


def grading_history(conn: psycopg.Connection, hs_id: int) -> list[dict[str, Any]]:
    """Every grading of a hazard source, oldest first."""
    return conn.cursor(row_factory=dict_row).execute(
        """SELECT g.id, e.code AS enterprise, g.at, g.actor, g.reason, g.residents_500m,
                  g.chemicals, g.s, g.r, g.alpha, g.level
           FROM hazard_grading_history g JOIN enterprises e ON e.id = g.enterprise_id
           WHERE g.hazard_source_id = %s ORDER BY g.id""", (hs_id,)).fetchall()


def create_plan(conn: psycopg.Connection, source: dict[str, Any], data: dict[str, Any],
                actor: str) -> int:
    row = conn.execute(
        """INSERT INTO hazard_plans (hazard_source_id, enterprise_id, kind, title, version, link,
                                     last_drill_on, updated_by)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id""",
        (source["id"], source["enterprise_id"], data["kind"], data["title"], data.get("version"),
         data.get("link"), data.get("last_drill_on"), actor)).fetchone()
    return int(row[0])  # type: ignore[index]


def update_plan(conn: psycopg.Connection, source: dict[str, Any], plan_id: int,
                data: dict[str, Any], actor: str) -> None:
    """Change the given fields of a plan; NotFound when it is not this source's."""
    data = {k: v for k, v in data.items() if k in _PLAN_FIELDS}
    sets = ", ".join(f"{k} = %({k})s" for k in data)
    sql = (f"UPDATE hazard_plans SET {sets + ', ' if sets else ''}updated_at = now(), "
           "updated_by = %(actor)s WHERE id = %(pid)s AND hazard_source_id = %(hs)s RETURNING id")
    if conn.execute(sql, {**data, "actor": actor, "pid": plan_id, "hs": source["id"]}).fetchone() is None:
        raise NotFound(f"plan {plan_id} does not exist for this hazard source")


def delete_plan(conn: psycopg.Connection, source: dict[str, Any], plan_id: int) -> None:
    if conn.execute("DELETE FROM hazard_plans WHERE id = %s AND hazard_source_id = %s RETURNING id",
                    (plan_id, source["id"])).fetchone() is None:
        raise NotFound(f"plan {plan_id} does not exist for this hazard source")


def get_plan(conn: psycopg.Connection, source: dict[str, Any], plan_id: int, today: date) -> dict[str, Any]:
    row = conn.cursor(row_factory=dict_row).execute(
        f"SELECT {_PLAN_COLUMNS} FROM hazard_plans WHERE id = %s AND hazard_source_id = %s",
        (plan_id, source["id"])).fetchone()
    if row is None:
        raise NotFound(f"plan {plan_id} does not exist for this hazard source")
    return records.plan_flags(row, today)


def set_document(conn: psycopg.Connection, source: dict[str, Any], plan_id: int, data: bytes,
                 name: str, content_type: str, actor: str) -> None:
    """Store a plan's document (replacing the one before)."""
    digest = hashlib.sha256(data).hexdigest()
    update_plan(conn, source, plan_id, {"doc": data, "doc_name": name, "doc_type": content_type,
                                        "doc_size": len(data), "doc_sha256": digest}, actor)


def get_document(conn: psycopg.Connection, source: dict[str, Any], plan_id: int) -> tuple[bytes, str, str]:
    """(bytes, name, content type) of a plan's document; NotFound when it has none."""
    row = conn.execute("SELECT doc, doc_name, doc_type FROM hazard_plans WHERE id = %s AND "
                       "hazard_source_id = %s", (plan_id, source["id"])).fetchone()
    if row is None or row[0] is None:
        raise NotFound(f"plan {plan_id} has no document")
    return bytes(row[0]), row[1], row[2]


def list_sources(conn: psycopg.Connection, scope: list[str] | None,
                 enterprise: str | None) -> list[dict[str, Any]]:
    """Hazard sources with their record basics, by enterprise and code."""
    return conn.cursor(row_factory=dict_row).execute(
        _SOURCE + """ WHERE (%(scope)s::text[] IS NULL OR e.code = ANY(%(scope)s::text[]))
                      AND (%(ent)s::text IS NULL OR e.code = %(ent)s::text)
                      ORDER BY e.code, h.code""", {"scope": scope, "ent": enterprise}).fetchall()


# -- rescue resources ------------------------------------------------------------------------

_RESOURCE = """
    SELECT r.id, e.code AS enterprise, r.kind, r.name, r.description, r.quantity, r.unit, r.lat,
           r.lon, r.contact_name, r.contact_phone, r.available, r.updated_at, r.updated_by
    FROM rescue_resources r LEFT JOIN enterprises e ON e.id = r.enterprise_id
"""
RESOURCE_FIELDS = ("kind", "name", "description", "quantity", "unit", "lat", "lon",
                   "contact_name", "contact_phone", "available")


def resources(conn: psycopg.Connection, *, scope: list[str] | None, enterprise: str | None = None,
              kind: str | None = None, available_only: bool = False) -> list[dict[str, Any]]:
    """Public resources (enterprise null) and those of enterprises in scope (None = all)."""
    return conn.cursor(row_factory=dict_row).execute(
        _RESOURCE + """ WHERE (e.code IS NULL OR %(scope)s::text[] IS NULL OR e.code = ANY(%(scope)s::text[]))
                        AND (%(ent)s::text IS NULL OR e.code IS NULL OR e.code = %(ent)s::text)
                        AND (%(kind)s::text IS NULL OR r.kind = %(kind)s::text)
                        AND (NOT %(avail)s OR r.available) ORDER BY r.id""",
        {"scope": scope, "ent": enterprise, "kind": kind, "avail": available_only}).fetchall()


def get_resource(conn: psycopg.Connection, resource_id: int) -> dict[str, Any]:
    row = conn.cursor(row_factory=dict_row).execute(_RESOURCE + " WHERE r.id = %s",
                                                    (resource_id,)).fetchone()
    if row is None:
        raise NotFound(f"rescue resource {resource_id} does not exist")
    return row


def create_resource(conn: psycopg.Connection, ent_id: int | None, data: dict[str, Any],
                    actor: str) -> dict[str, Any]:
    cols = ", ".join(RESOURCE_FIELDS)
    row = conn.execute(
        f"""INSERT INTO rescue_resources (enterprise_id, {cols}, updated_by)
            VALUES (%(ent)s, {", ".join(f"%({c})s" for c in RESOURCE_FIELDS)}, %(actor)s) RETURNING id""",
        {**{c: data.get(c) for c in RESOURCE_FIELDS}, "ent": ent_id, "actor": actor,
         "available": data.get("available", True)}).fetchone()
    return get_resource(conn, int(row[0]))  # type: ignore[index]


def update_resource(conn: psycopg.Connection, resource_id: int, data: dict[str, Any],
                    actor: str) -> dict[str, Any]:
    data = {k: v for k, v in data.items() if k in RESOURCE_FIELDS}
    sets = ", ".join(f"{k} = %({k})s" for k in data)
    conn.execute(f"UPDATE rescue_resources SET {sets + ', ' if sets else ''}updated_at = now(), "
                 "updated_by = %(actor)s WHERE id = %(rid)s", {**data, "actor": actor, "rid": resource_id})
    return get_resource(conn, resource_id)


def delete_resource(conn: psycopg.Connection, resource_id: int) -> None:
    conn.execute("DELETE FROM rescue_resources WHERE id = %s", (resource_id,))


def today_in_china(now: datetime) -> date:
    """Today's date where the hazard sources are (UTC+8)."""
    return records.local_today(now)

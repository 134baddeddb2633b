"""SQL for enterprises, hazard sources and points: the only place devices talk to the database."""

from __future__ import annotations

from typing import Any, Iterable

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from hazmon.errors import Conflict, NotFound

POINT_COLUMNS = (
    "tag", "name", "hazard_source", "kind", "unit", "range_low", "range_high",
    "lolo", "lo", "hi", "hihi", "deadband", "on_delay_s", "off_delay_s", "roc_per_min", "stale_s",
    "latching",
)
_POINT_DB_COLUMNS = tuple(c for c in POINT_COLUMNS if c not in ("tag", "hazard_source"))

POINTS_CHANGED_CHANNEL = "hazmon_points"


def create_enterprise(conn: psycopg.Connection, code: str, name: str,
                      lat: float | None, lon: float | None,
                      region: str | None = None) -> dict[str, Any]:
    """Insert an enterprise; Conflict when the code exists."""
    row = conn.cursor(row_factory=dict_row).execute(
        """INSERT INTO enterprises (code, name, lat, lon, region) VALUES (%s, %s, %s, %s, %s)
           ON CONFLICT (code) DO NOTHING RETURNING code, name, lat, lon, region, created_at""",
        (code, name, lat, lon, region),
    ).fetchone()
    if row is None:
        raise Conflict(f"enterprise {code!r} already exists")
    return row


def list_enterprises(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """Every enterprise, by code."""
    return conn.cursor(row_factory=dict_row).execute(
        "SELECT code, name, lat, lon, region, created_at FROM enterprises ORDER BY code"
    ).fetchall()


def enterprise_id(conn: psycopg.Connection, code: str) -> int:
    """The id of an enterprise by code; NotFound when unknown."""
    row = conn.execute("SELECT id FROM enterprises WHERE code = %s", (code,)).fetchone()
    if row is None:
        raise NotFound(f"enterprise {code!r} does not exist")
    return int(row[0])


def create_hazard_source(conn: psycopg.Connection, ent_id: int, data: dict[str, Any]) -> dict[str, Any]:
    """Insert a graded hazard source; Conflict when the code exists in the enterprise."""
    row = conn.cursor(row_factory=dict_row).execute(
        """INSERT INTO hazard_sources
               (enterprise_id, code, name, unit_type, residents_500m, chemicals, s, r, alpha, level)
           VALUES (%(ent)s, %(code)s, %(name)s, %(unit_type)s, %(residents_500m)s, %(chemicals)s,
                   %(s)s, %(r)s, %(alpha)s, %(level)s)
           ON CONFLICT (enterprise_id, code) DO NOTHING
           RETURNING code, name, unit_type, residents_500m, chemicals, s, r, alpha, level""",
        {**data, "ent": ent_id, "chemicals": Jsonb(data["chemicals"])},
    ).fetchone()
    if row is None:
        raise Conflict(f"hazard source {data['code']!r} already exists in this enterprise")
    return row


def list_hazard_sources(conn: psycopg.Connection, ent_id: int) -> list[dict[str, Any]]:
    """The hazard sources of an enterprise, by code."""
    return conn.cursor(row_factory=dict_row).execute(
        """SELECT code, name, unit_type, residents_500m, chemicals, s, r, alpha, level
           FROM hazard_sources WHERE enterprise_id = %s ORDER BY code""",
        (ent_id,),
    ).fetchall()


def get_hazard_source(conn: psycopg.Connection, ent_id: int, code: str) -> dict[str, Any]:
    """One hazard source; NotFound when unknown."""
    row = conn.cursor(row_factory=dict_row).execute(
        """SELECT code, name, unit_type, residents_500m, chemicals, s, r, alpha, level
           FROM hazard_sources WHERE enterprise_id = %s AND code = %s""",
        (ent_id, code),
    ).fetchone()
    if row is None:
        raise NotFound(f"hazard source {code!r} does not exist")
    return row


def hazard_source_ids(conn: psycopg.Connection, ent_id: int) -> dict[str, int]:
    """Map hazard source code to id within an enterprise."""
    rows = conn.execute(
        "SELECT code, id FROM hazard_sources WHERE enterprise_id = %s", (ent_id,)
    ).fetchall()
    return {code: int(i) for code, i in rows}


def upsert_points(conn: psycopg.Connection, ent_id: int, specs: Iterable[Any],
                  hs_ids: dict[str, int]) -> tuple[int, int]:
    """Create or update points from validated specs; return (created, updated).

    Points absent from the table are kept: a point table upload adds and changes, it never
    silently deletes history.
    """
    created = updated = 0
    cols = ", ".join(_POINT_DB_COLUMNS)
    params = ", ".join(f"%({c})s" for c in _POINT_DB_COLUMNS)
    sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in _POINT_DB_COLUMNS)
    with conn.cursor() as cur:
        for spec in specs:
            row = {c: getattr(spec, c) for c in _POINT_DB_COLUMNS}
            row.update(ent=ent_id, tag=spec.tag, priorities=Jsonb(spec.priorities()),
                       hs=hs_ids.get(spec.hazard_source) if spec.hazard_source else None)
            cur.execute(
                f"""INSERT INTO points (enterprise_id, tag, hazard_source_id, priorities, {cols})
                    VALUES (%(ent)s, %(tag)s, %(hs)s, %(priorities)s, {params})
                    ON CONFLICT (enterprise_id, tag) DO UPDATE
                    SET hazard_source_id = EXCLUDED.hazard_source_id,
                        priorities = EXCLUDED.priorities, {sets}, updated_at = now()
                    RETURNING (xmax = 0)""",
                row,
            )
            inserted = cur.fetchone()[0]  # type: ignore[index]
            created += int(inserted)
            updated += int(not inserted)
    bump_points_version(conn)
    return created, updated


def bump_points_version(conn: psycopg.Connection) -> None:
    """Tell every ingest process (now or at its next poll) that points changed."""
    conn.execute("UPDATE config_versions SET version = version + 1 WHERE name = 'points'")
    conn.execute(f"NOTIFY {POINTS_CHANGED_CHANNEL}")


def points_version(conn: psycopg.Connection) -> int:
    """The current version of the points configuration."""
    row = conn.execute("SELECT version FROM config_versions WHERE name = 'points'").fetchone()
    return int(row[0]) if row else 0


_POINT_SELECT = f"""
    SELECT p.tag, p.name, h.code AS hazard_source,
           {", ".join("p." + c for c in _POINT_DB_COLUMNS if c != "name")},
           p.priorities, p.in_service, p.oos_reason, p.oos_by, p.oos_since, p.oos_until,
           p.mode, p.mode_reason, p.mode_by, p.mode_since, p.mode_until,
           l.value AS latest_value, l.ts AS latest_ts, l.quality AS latest_quality
    FROM points p
    LEFT JOIN hazard_sources h ON h.id = p.hazard_source_id
    LEFT JOIN point_latest l ON l.point_id = p.id
"""


def _with_latest(row: dict[str, Any]) -> dict[str, Any]:
    value, ts, quality = row.pop("latest_value"), row.pop("latest_ts"), row.pop("latest_quality")
    row["latest"] = None if ts is None else {
        "value": value, "ts": ts, "quality": "bad" if quality else "good"}
    return row


def get_point(conn: psycopg.Connection, ent_id: int, tag: str) -> dict[str, Any]:
    """A point's configuration and its newest reading; NotFound when unknown."""
    row = conn.cursor(row_factory=dict_row).execute(
        _POINT_SELECT + " WHERE p.enterprise_id = %s AND p.tag = %s", (ent_id, tag)
    ).fetchone()
    if row is None:
        raise NotFound(f"point {tag!r} does not exist in this enterprise")
    return _with_latest(row)


def list_points(conn: psycopg.Connection, ent_id: int) -> list[dict[str, Any]]:
    """Every point of an enterprise with its newest reading, by tag."""
    rows = conn.cursor(row_factory=dict_row).execute(
        _POINT_SELECT + " WHERE p.enterprise_id = %s ORDER BY p.tag", (ent_id,)
    ).fetchall()
    return [_with_latest(r) for r in rows]


def point_id(conn: psycopg.Connection, ent_id: int, tag: str) -> int:
    """The id of a point; NotFound when unknown."""
    row = conn.execute(
        "SELECT id FROM points WHERE enterprise_id = %s AND tag = %s", (ent_id, tag)
    ).fetchone()
    if row is None:
        raise NotFound(f"point {tag!r} does not exist in this enterprise")
    return int(row[0])


def registry_rows(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """Everything the ingest registry needs about every point."""
    return conn.cursor(row_factory=dict_row).execute(
        """SELECT p.id, e.code AS enterprise, p.enterprise_id, p.tag, p.hazard_source_id,
                  h.code AS hazard_source, h.level AS hazard_level,
                  p.range_low, p.range_high, p.lolo, p.lo, p.hi, p.hihi, p.deadband,
                  p.on_delay_s, p.off_delay_s, p.roc_per_min, p.stale_s, p.in_service,
                  p.latching, p.priorities
           FROM points p JOIN enterprises e ON e.id = p.enterprise_id
           LEFT JOIN hazard_sources h ON h.id = p.hazard_source_id
           ORDER BY p.id"""
    ).fetchall()


def hazard_source_id(conn: psycopg.Connection, ent_id: int, code: str) -> int:
    """The id of a hazard source; NotFound when unknown."""
    row = conn.execute("SELECT id FROM hazard_sources WHERE enterprise_id = %s AND code = %s",
                       (ent_id, code)).fetchone()
    if row is None:
        raise NotFound(f"hazard source {code!r} does not exist in this enterprise")
    return int(row[0])


def enterprise_codes(conn: psycopg.Connection) -> dict[str, int]:
    """Map enterprise code to id."""
    return {code: int(i) for code, i in conn.execute("SELECT code, id FROM enterprises")}

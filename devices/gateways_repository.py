"""SQL for gateways and their MQTT credentials (the only place that reads or writes them).

A gateway row may exist without credentials (ingest records the status of any gateway that
reports one); it is *registered* when it has a username and a password hash. Registering the
first gateway of an enterprise closes the enterprise to anonymous publishers for good.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from hazmon.errors import Conflict, NotFound

GATEWAYS_CHANGED_CHANNEL = "hazmon_gateways"

_PUBLIC = """SELECT g.code, g.username, g.password_hash IS NOT NULL AS registered, g.status,
                    g.status_at, g.registered_at, g.credential_set_at
             FROM gateways g"""


def _changed(conn: psycopg.Connection) -> None:
    conn.execute("UPDATE config_versions SET version = version + 1 WHERE name = 'gateways'")
    conn.execute(f"NOTIFY {GATEWAYS_CHANGED_CHANNEL}")


def list_gateways(conn: psycopg.Connection, enterprise_id: int) -> list[dict[str, Any]]:
    """Every gateway of an enterprise, registered or only seen in a status message; no secrets."""
    return conn.cursor(row_factory=dict_row).execute(
        _PUBLIC + " WHERE g.enterprise_id = %s ORDER BY g.code", (enterprise_id,)).fetchall()


def get_gateway(conn: psycopg.Connection, enterprise_id: int, code: str) -> dict[str, Any]:
    """One gateway (no secrets); NotFound when unknown."""
    row = conn.cursor(row_factory=dict_row).execute(
        _PUBLIC + " WHERE g.enterprise_id = %s AND g.code = %s", (enterprise_id, code)).fetchone()
    if row is None:
        raise NotFound(f"gateway {code!r} does not exist")
    return row


def register(conn: psycopg.Connection, enterprise_id: int, code: str, username: str,
             password_hash: str) -> datetime:
    """Give a gateway its first credentials (creating its row if needed) and close its
    enterprise; Conflict when it already has credentials. Returns when they were set."""
    row = conn.execute(
        """INSERT INTO gateways (enterprise_id, code, username, password_hash, credential_set_at,
                                 registered_at)
           VALUES (%s, %s, %s, %s, now(), now())
           ON CONFLICT (enterprise_id, code) DO UPDATE
               SET username = EXCLUDED.username, password_hash = EXCLUDED.password_hash,
                   credential_set_at = EXCLUDED.credential_set_at,
                   registered_at = EXCLUDED.registered_at
               WHERE gateways.password_hash IS NULL
           RETURNING credential_set_at""",
        (enterprise_id, code, username, password_hash)).fetchone()
    if row is None:
        raise Conflict(f"gateway {code!r} already has credentials: rotate them with "
                       f"POST .../gateways/{code}/credentials")
    conn.execute("INSERT INTO mqtt_closed_enterprises (enterprise_id) VALUES (%s) "
                 "ON CONFLICT DO NOTHING", (enterprise_id,))
    _changed(conn)
    return row[0]  # type: ignore[no-any-return]


def rotate(conn: psycopg.Connection, enterprise_id: int, code: str, password_hash: str) -> datetime:
    """Replace a registered gateway's password hash; NotFound when it has no credentials."""
    row = conn.execute(
        """UPDATE gateways SET password_hash = %s, credential_set_at = now()
           WHERE enterprise_id = %s AND code = %s AND password_hash IS NOT NULL
           RETURNING credential_set_at""", (password_hash, enterprise_id, code)).fetchone()
    if row is None:
        raise NotFound(f"gateway {code!r} has no credentials to rotate: register it with "
                       "POST .../gateways")
    _changed(conn)
    return row[0]  # type: ignore[no-any-return]


def delete(conn: psycopg.Connection, enterprise_id: int, code: str) -> None:
    """Delete a gateway and its credentials (its enterprise stays closed); NotFound when unknown."""
    row = conn.execute("DELETE FROM gateways WHERE enterprise_id = %s AND code = %s RETURNING 1",
                       (enterprise_id, code)).fetchone()
    if row is None:
        raise NotFound(f"gateway {code!r} does not exist")
    _changed(conn)


def credentials(conn: psycopg.Connection) -> list[tuple[str, str, str, str]]:
    """(enterprise, gateway, username, password hash) of every registered gateway."""
    return [(str(e), str(g), str(u), str(h)) for e, g, u, h in conn.execute(
        """SELECT e.code, g.code, g.username, g.password_hash
           FROM gateways g JOIN enterprises e ON e.id = g.enterprise_id
           WHERE g.password_hash IS NOT NULL ORDER BY g.username""")]


def closed_enterprises(conn: psycopg.Connection, codes: list[str] | None = None) -> frozenset[str]:
    """Codes of the enterprises closed to anonymous publishers (only among ``codes`` if given)."""
    sql = ("SELECT e.code FROM mqtt_closed_enterprises c JOIN enterprises e "
           "ON e.id = c.enterprise_id")
    rows = (conn.execute(sql + " WHERE e.code = ANY(%s)", (codes,)) if codes is not None
            else conn.execute(sql))
    return frozenset(str(r[0]) for r in rows)


def by_username(conn: psycopg.Connection, username: str) -> tuple[str, str, str] | None:
    """(enterprise, gateway, password hash) of the registered gateway with this username."""
    row = conn.execute(
        """SELECT e.code, g.code, g.password_hash
           FROM gateways g JOIN enterprises e ON e.id = g.enterprise_id
           WHERE g.username = %s AND g.password_hash IS NOT NULL""", (username,)).fetchone()
    return None if row is None else (str(row[0]), str(row[1]), str(row[2]))


def registered(conn: psycopg.Connection) -> tuple[frozenset[str], frozenset[tuple[str, str]]]:
    """(closed enterprises, registered (enterprise, gateway) pairs): what ingest checks
    topics against (``hazmon.mqtt_auth.ingest_refusal``)."""
    pairs = frozenset((e, g) for e, g, _, _ in credentials(conn))
    return closed_enterprises(conn), pairs


def version(conn: psycopg.Connection) -> int:
    """The current version of the gateway credentials."""
    row = conn.execute("SELECT version FROM config_versions WHERE name = 'gateways'").fetchone()
    return int(row[0]) if row else 0

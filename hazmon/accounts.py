"""SQL for users, their scopes and tokens, and the audit log (used by the API and the CLI)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from api.security import ROLES, new_token, token_hash
from hazmon.errors import Conflict, InputError, NotFound


def create_user(conn: psycopg.Connection, name: str, role: str, created_by: str, *,
                display_name: str | None = None, enterprises: list[str] | None = None,
                regions: list[str] | None = None) -> dict[str, Any]:
    """Create a user with its scope; the enterprise role needs exactly one enterprise."""
    if role not in ROLES:
        raise InputError(f"role must be one of {', '.join(ROLES)}")
    enterprises, regions = enterprises or [], regions or []
    if role == "enterprise" and (len(enterprises) != 1 or regions):
        raise InputError("an enterprise user needs exactly one enterprise and no region")
    if role == "admin" and (enterprises or regions):
        raise InputError("an admin has no scope")
    ids = _enterprise_ids(conn, enterprises)
    row = conn.execute(
        """INSERT INTO users (name, display_name, role, created_by) VALUES (%s, %s, %s, %s)
           ON CONFLICT (name) DO NOTHING RETURNING id""",
        (name, display_name, role, created_by)).fetchone()
    if row is None:
        raise Conflict(f"user {name!r} already exists")
    for eid in ids:
        conn.execute("INSERT INTO user_scopes (user_id, enterprise_id) VALUES (%s, %s)", (row[0], eid))
    for region in regions:
        conn.execute("INSERT INTO user_scopes (user_id, region) VALUES (%s, %s)", (row[0], region))
    return get_user(conn, name)


def _enterprise_ids(conn: psycopg.Connection, codes: list[str]) -> list[int]:
    ids = []
    for code in codes:
        row = conn.execute("SELECT id FROM enterprises WHERE code = %s", (code,)).fetchone()
        if row is None:
            raise InputError(f"enterprise {code!r} does not exist")
        ids.append(int(row[0]))
    return ids


def get_user(conn: psycopg.Connection, name: str) -> dict[str, Any]:
    """A user with its scope; NotFound when unknown."""
    row = conn.cursor(row_factory=dict_row).execute(
        """SELECT u.id, u.name, u.display_name, u.role, u.disabled, u.created_at, u.created_by,
                  coalesce(array_agg(e.code ORDER BY e.code) FILTER (WHERE e.code IS NOT NULL), '{}')
                      AS enterprises,
                  coalesce(array_agg(s.region ORDER BY s.region) FILTER (WHERE s.region IS NOT NULL), '{}')
                      AS regions
           FROM users u LEFT JOIN user_scopes s ON s.user_id = u.id
           LEFT JOIN enterprises e ON e.id = s.enterprise_id
           WHERE u.name = %s GROUP BY u.id""", (name,)).fetchone()
    if row is None:
        raise NotFound(f"user {name!r} does not exist")
    return row


def list_users(conn: psycopg.Connection) -> list[dict[str, Any]]:
    names = [r[0] for r in conn.execute("SELECT name FROM users ORDER BY name")]
    return [get_user(conn, n) for n in names]


def set_disabled(conn: psycopg.Connection, name: str, disabled: bool) -> dict[str, Any]:
    get_user(conn, name)
    conn.execute("UPDATE users SET disabled = %s WHERE name = %s", (disabled, name))
    return get_user(conn, name)


def issue_token(conn: psycopg.Connection, user: str, name: str | None,
                expires_at: datetime | None) -> dict[str, Any]:
    """Create a token for a user; the token itself is returned only here, never stored."""
    user_id = get_user(conn, user)["id"]
    token = new_token()
    row = conn.cursor(row_factory=dict_row).execute(
        """INSERT INTO api_tokens (user_id, token_sha256, prefix, name, expires_at)
           VALUES (%s, %s, %s, %s, %s) RETURNING id, prefix, name, created_at, expires_at""",
        (user_id, token_hash(token), token[:8], name, expires_at)).fetchone()
    assert row is not None
    return {**row, "user": user, "token": token}


def list_tokens(conn: psycopg.Connection, user: str | None = None) -> list[dict[str, Any]]:
    """Tokens (never their value), newest first."""
    return conn.cursor(row_factory=dict_row).execute(
        """SELECT t.id, u.name AS user, t.prefix, t.name, t.created_at, t.expires_at,
                  t.revoked_at, t.last_used_at
           FROM api_tokens t JOIN users u ON u.id = t.user_id
           WHERE %(user)s::text IS NULL OR u.name = %(user)s ORDER BY t.id DESC""",
        {"user": user}).fetchall()


def revoke_token(conn: psycopg.Connection, token_id: int) -> None:
    """Revoke a token (idempotent); NotFound when unknown."""
    row = conn.execute("UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) "
                       "WHERE id = %s RETURNING id", (token_id,)).fetchone()
    if row is None:
        raise NotFound(f"token {token_id} does not exist")


def audit(conn: psycopg.Connection, *, actor: str, role: str, action: str, target: str | None,
          status: int | None, before: Any = None, after: Any = None, source_ip: str | None = None,
          user_agent: str | None = None) -> None:
    """Append one entry to the audit log."""
    conn.execute(
        """INSERT INTO audit_log (actor, role, action, target, status, before, after, source_ip,
                                  user_agent) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)""",
        (actor, role, action, target, status, _json(before), _json(after), source_ip, user_agent))


def _json(value: Any) -> Jsonb | None:
    return None if value is None else Jsonb(value, dumps=_dumps)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def list_audit(conn: psycopg.Connection, *, actor: str | None, since: datetime | None,
               until: datetime | None, limit: int) -> list[dict[str, Any]]:
    """Audit entries newest first."""
    return conn.cursor(row_factory=dict_row).execute(
        """SELECT id, at, actor, role, action, target, status, before, after, source_ip, user_agent
           FROM audit_log
           WHERE (%(actor)s::text IS NULL OR actor = %(actor)s)
             AND (%(since)s::timestamptz IS NULL OR at >= %(since)s)
             AND (%(until)s::timestamptz IS NULL OR at < %(until)s)
           ORDER BY at DESC, id DESC LIMIT %(limit)s""",
        {"actor": actor, "since": since, "until": until, "limit": limit}).fetchall()

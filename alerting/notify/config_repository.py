"""SQL for notification channels and rules as the API manages them.

Every change also notifies ``hazmon_notify`` ('config') in the same transaction, so the running
notifier reloads its rules without a restart. Secrets are written here and read back only by
``channel_model`` (for sending); listings show ``secret_set`` instead.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from alerting.notify.config import (
    SECRET_FIELD,
    ChannelModel,
    RuleIn,
    load_channel,
    public_settings,
    split_channel,
)
from hazmon.errors import Conflict, InputError, NotFound

NOTIFY_CHANNEL = "hazmon_notify"

_CHANNEL_COLS = "name, kind, enabled, settings, secret IS NOT NULL AS secret_set, created_at, updated_at"
_RULE_COLS = """name, enabled, enterprises, hazard_sources, hazard_levels, priorities, conditions,
    group_by, group_wait_s, group_interval_s, repeat_interval_s, send_resolved, tiers,
    created_at, updated_at"""


def _changed(conn: psycopg.Connection) -> None:
    conn.execute("SELECT pg_notify(%s, 'config')", (NOTIFY_CHANNEL,))


def _channel_public(row: dict[str, Any]) -> dict[str, Any]:
    return {"name": row["name"], "kind": row["kind"], "enabled": row["enabled"],
            **public_settings(row["kind"], row["settings"]), "secret_set": row["secret_set"],
            "created_at": row["created_at"], "updated_at": row["updated_at"]}


def list_channels(conn: psycopg.Connection) -> list[dict[str, Any]]:
    rows = conn.cursor(row_factory=dict_row).execute(
        f"SELECT {_CHANNEL_COLS} FROM notify_channels ORDER BY name").fetchall()
    return [_channel_public(r) for r in rows]


def get_channel(conn: psycopg.Connection, name: str) -> dict[str, Any]:
    row = conn.cursor(row_factory=dict_row).execute(
        f"SELECT {_CHANNEL_COLS} FROM notify_channels WHERE name = %s", (name,)).fetchone()
    if row is None:
        raise NotFound(f"channel {name!r} does not exist")
    return _channel_public(row)


def _require_secret(channel: ChannelModel, secret: str | None) -> None:
    if channel.kind == "webhook" and not secret:
        raise InputError("a webhook channel needs a secret (at least 16 characters): receivers "
                         "verify the X-Hazmon-Signature header with it")


def create_channel(conn: psycopg.Connection, channel: ChannelModel) -> dict[str, Any]:
    """Create a channel; Conflict when the name is taken."""
    if not channel.name:
        raise InputError("name is required")
    settings, secret, _ = split_channel(channel)
    _require_secret(channel, secret)
    try:
        with conn.transaction():
            conn.execute(
                """INSERT INTO notify_channels (name, kind, enabled, settings, secret)
                   VALUES (%s, %s, %s, %s, %s)""",
                (channel.name, channel.kind, channel.enabled, Jsonb(settings), secret))
    except psycopg.errors.UniqueViolation:
        raise Conflict(f"channel {channel.name!r} already exists") from None
    _changed(conn)
    return get_channel(conn, channel.name)


def replace_channel(conn: psycopg.Connection, name: str, channel: ChannelModel) -> dict[str, Any]:
    """Replace a channel's settings; its secret is kept when the body leaves the field out
    (and the kind is unchanged), removed when it is null."""
    if channel.name not in (None, name):
        raise InputError(f"name {channel.name!r} differs from the path ({name!r}); channels "
                         "cannot be renamed")
    row = conn.execute("SELECT kind, secret FROM notify_channels WHERE name = %s FOR UPDATE",
                       (name,)).fetchone()
    if row is None:
        raise NotFound(f"channel {name!r} does not exist")
    settings, secret, given = split_channel(channel)
    if not given and row[0] == channel.kind and channel.kind in SECRET_FIELD:
        secret = row[1]
    _require_secret(channel, secret)
    conn.execute(
        """UPDATE notify_channels SET kind = %s, enabled = %s, settings = %s, secret = %s,
               updated_at = now() WHERE name = %s""",
        (channel.kind, channel.enabled, Jsonb(settings), secret, name))
    _changed(conn)
    return get_channel(conn, name)


def delete_channel(conn: psycopg.Connection, name: str) -> None:
    """Delete a channel; Conflict while a rule names it."""
    users = [r[0] for r in conn.execute(
        "SELECT name FROM notify_rules WHERE tiers @> %s ORDER BY name",
        (Jsonb([{"channels": [name]}]),))]
    if users:
        raise Conflict(f"channel {name!r} is used by rule(s) {', '.join(users)}")
    if conn.execute("DELETE FROM notify_channels WHERE name = %s", (name,)).rowcount == 0:
        raise NotFound(f"channel {name!r} does not exist")
    _changed(conn)


def channel_model(conn: psycopg.Connection, name: str) -> ChannelModel:
    """A channel with its secret, for sending."""
    row = conn.execute("SELECT kind, settings, secret FROM notify_channels WHERE name = %s",
                       (name,)).fetchone()
    if row is None:
        raise NotFound(f"channel {name!r} does not exist")
    return load_channel(row[0], row[1], row[2])


def _rule_public(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "hazard_levels": [int(x) for x in row["hazard_levels"]]}


def list_rules(conn: psycopg.Connection) -> list[dict[str, Any]]:
    rows = conn.cursor(row_factory=dict_row).execute(
        f"SELECT {_RULE_COLS} FROM notify_rules ORDER BY name").fetchall()
    return [_rule_public(r) for r in rows]


def get_rule(conn: psycopg.Connection, name: str) -> dict[str, Any]:
    row = conn.cursor(row_factory=dict_row).execute(
        f"SELECT {_RULE_COLS} FROM notify_rules WHERE name = %s", (name,)).fetchone()
    if row is None:
        raise NotFound(f"rule {name!r} does not exist")
    return _rule_public(row)


def _check_rule(conn: psycopg.Connection, rule: RuleIn) -> None:
    """Names in a rule must exist: a typo must not make a rule that never matches."""
    checks = (("channel", sorted(rule.channel_names()), "SELECT name FROM notify_channels WHERE name = ANY(%s)"),
              ("enterprise", rule.enterprises, "SELECT code FROM enterprises WHERE code = ANY(%s)"),
              ("hazard source", rule.hazard_sources,
               "SELECT code FROM hazard_sources WHERE code = ANY(%s)"))
    for what, names, sql in checks:
        if names:
            known = {r[0] for r in conn.execute(sql, (list(names),))}
            unknown = sorted(set(names) - known)
            if unknown:
                raise InputError(f"unknown {what}(s): {', '.join(unknown)}")


def _rule_values(rule: RuleIn) -> tuple[Any, ...]:
    return (rule.enabled, rule.enterprises, rule.hazard_sources, rule.hazard_levels,
            rule.priorities, rule.conditions, rule.group_by, rule.group_wait_s,
            rule.group_interval_s, rule.repeat_interval_s, rule.send_resolved,
            Jsonb([t.model_dump() for t in rule.tiers]))


def create_rule(conn: psycopg.Connection, rule: RuleIn) -> dict[str, Any]:
    if not rule.name:
        raise InputError("name is required")
    _check_rule(conn, rule)
    try:
        with conn.transaction():
            conn.execute(
                """INSERT INTO notify_rules (enabled, enterprises, hazard_sources, hazard_levels,
                       priorities, conditions, group_by, group_wait_s, group_interval_s,
                       repeat_interval_s, send_resolved, tiers, name)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
                (*_rule_values(rule), rule.name))
    except psycopg.errors.UniqueViolation:
        raise Conflict(f"rule {rule.name!r} already exists") from None
    _changed(conn)
    return get_rule(conn, rule.name)


def replace_rule(conn: psycopg.Connection, name: str, rule: RuleIn) -> dict[str, Any]:
    if rule.name not in (None, name):
        raise InputError(f"name {rule.name!r} differs from the path ({name!r}); rules cannot "
                         "be renamed")
    _check_rule(conn, rule)
    updated = conn.execute(
        """UPDATE notify_rules SET enabled = %s, enterprises = %s, hazard_sources = %s,
               hazard_levels = %s, priorities = %s, conditions = %s, group_by = %s,
               group_wait_s = %s, group_interval_s = %s, repeat_interval_s = %s,
               send_resolved = %s, tiers = %s, updated_at = now() WHERE name = %s""",
        (*_rule_values(rule), name)).rowcount
    if not updated:
        raise NotFound(f"rule {name!r} does not exist")
    _changed(conn)
    return get_rule(conn, name)


def delete_rule(conn: psycopg.Connection, name: str) -> None:
    if conn.execute("DELETE FROM notify_rules WHERE name = %s", (name,)).rowcount == 0:
        raise NotFound(f"rule {name!r} does not exist")
    _changed(conn)

"""Who may do what: bearer tokens (stored hashed), roles, scopes, and a rate limit per token.

Roles and what they may do (``ACTIONS``):

    admin         everything, every enterprise; manages users, tokens and enterprises
    duty_officer  reads and acts on alarms (ack, shelve, reset) and modes in its scope
    enterprise    its own enterprise: reads, acts on its alarms, uploads its point tables
    dispatcher    reads in its scope; opens incidents and dispatches
    viewer        reads in its scope

A scope is a list of enterprises and/or regions; none means every enterprise (not for the
enterprise role, which always has exactly one). The bootstrap admin token (HAZMON_ADMIN_TOKEN or
the generated one) is an admin without a user row. Tokens are 256-bit random strings, so a
SHA-256 of them is stored, not the token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

import psycopg

from hazmon.errors import Forbidden

ROLES = ("admin", "duty_officer", "enterprise", "dispatcher", "viewer")
ACTIONS: dict[str, frozenset[str]] = {
    "read": frozenset(ROLES),
    "ack": frozenset({"admin", "duty_officer", "enterprise"}),
    "mode": frozenset({"admin", "duty_officer", "enterprise"}),
    "configure": frozenset({"admin", "enterprise"}),
    "dispatch": frozenset({"admin", "duty_officer", "dispatcher"}),
    "admin": frozenset({"admin"}),
}
TOKEN_PREFIX = "hzm_"


@dataclass(frozen=True)
class Principal:
    """The caller: a name, a role, and the enterprises it may see (None = all)."""

    name: str
    role: str
    enterprises: frozenset[str] | None = None

    def may(self, action: str) -> bool:
        return self.role in ACTIONS[action]

    def require(self, action: str) -> None:
        """403 unless the role allows the action."""
        if not self.may(action):
            raise Forbidden(f"role {self.role!r} may not {action}")

    def sees(self, enterprise: str | None) -> bool:
        return self.enterprises is None or enterprise in self.enterprises

    def require_enterprise(self, enterprise: str, action: str = "read") -> None:
        """403 unless the role allows the action on this enterprise."""
        self.require(action)
        if not self.sees(enterprise):
            raise Forbidden(f"enterprise {enterprise!r} is outside this token's scope")

    def scope_list(self) -> list[str] | None:
        """Enterprise codes for SQL filters (None = no filter)."""
        return None if self.enterprises is None else sorted(self.enterprises)


def new_token() -> str:
    """A fresh bearer token."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _scope(conn: psycopg.Connection, user_id: int, role: str) -> frozenset[str] | None:
    rows = conn.execute(
        """SELECT e.code FROM user_scopes s JOIN enterprises e ON e.id = s.enterprise_id
           WHERE s.user_id = %(u)s
           UNION
           SELECT e.code FROM user_scopes s JOIN enterprises e ON e.region = s.region
           WHERE s.user_id = %(u)s""", {"u": user_id}).fetchall()
    has_rows = conn.execute("SELECT 1 FROM user_scopes WHERE user_id = %s LIMIT 1",
                            (user_id,)).fetchone() is not None
    if role == "admin" or (not has_rows and role != "enterprise"):
        return None
    return frozenset(r[0] for r in rows)


def lookup(conn: psycopg.Connection, token: str) -> Principal | None:
    """The principal of a stored token, or None (unknown, revoked, expired, user disabled)."""
    row = conn.execute(
        """SELECT t.id, u.id, u.name, u.role FROM api_tokens t JOIN users u ON u.id = t.user_id
           WHERE t.token_sha256 = %s AND t.revoked_at IS NULL AND NOT u.disabled
             AND (t.expires_at IS NULL OR t.expires_at > now())""", (token_hash(token),)).fetchone()
    if row is None:
        return None
    token_id, user_id, name, role = row
    conn.execute("UPDATE api_tokens SET last_used_at = now() WHERE id = %s", (token_id,))
    principal = Principal(name=name, role=role, enterprises=_scope(conn, user_id, role))
    conn.commit()
    return principal


class Authenticator:
    """Resolves bearer tokens, with a short cache so a busy console does not hit the DB each call."""

    CACHE_S = 5.0

    def __init__(self, admin_token: str) -> None:
        self._admin = admin_token.encode("utf-8")
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._lock = threading.Lock()

    def resolve(self, token: str, pool: Any) -> Principal | None:
        if hmac.compare_digest(token.encode("utf-8"), self._admin):
            return Principal(name="admin", role="admin")
        key = token_hash(token)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit and now - hit[0] < self.CACHE_S:
            return hit[1]
        with pool.connection(timeout=10) as conn:
            principal = lookup(conn, token)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = (now, principal)
        return principal

    def forget(self) -> None:
        """Drop cached lookups (after a revoke or a scope change)."""
        with self._lock:
            self._cache.clear()


class RateLimiter:
    """A token bucket per caller: ``rate`` requests per second, bursts up to ``burst``."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                return False
            self._buckets[key] = (tokens - 1.0, now)
            if len(self._buckets) > 100_000:
                self._buckets.clear()
            return True

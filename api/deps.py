"""Dependencies of the routes, as Annotated aliases: the database, the caller, the services."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Iterator

import psycopg
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry
from psycopg_pool import ConnectionPool

from api.security import Authenticator, Principal, RateLimiter, token_hash
from hazmon.db import StorageInfo
from hazmon.errors import DatabaseUnavailable


@dataclass
class Services:
    """What the API needs from the rest of the process (wired in hazmon.app)."""

    pool: ConnectionPool
    admin_token: str
    metrics_registry: CollectorRegistry
    storage: StorageInfo
    ingest: Any = None                      # IngestService when ingest runs in this process
    db_url: str = ""                        # for the alarm-change listener (LISTEN needs its own)
    shelve_max_s: dict[str, int] = field(
        default_factory=lambda: {"high": 3600, "medium": 8 * 3600, "low": 24 * 3600})
    rate_limiter: RateLimiter = field(default_factory=lambda: RateLimiter(rate=50.0, burst=200))
    auth: Authenticator = field(init=False)

    def __post_init__(self) -> None:
        self.auth = Authenticator(self.admin_token)
    extra: dict[str, Any] = field(default_factory=dict)

    def broker_connected(self) -> bool | None:
        """None when this process runs no ingest (the API-only deployment)."""
        return None if self.ingest is None else bool(self.ingest.connected)

    def points_changed(self) -> None:
        """Make the in-process ingest see new points before the upload returns."""
        if self.ingest is not None:
            self.ingest.reload_registry()


def get_services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


ServicesDep = Annotated[Services, Depends(get_services)]

_bearer = HTTPBearer(auto_error=False)


def get_principal(request: Request, services: ServicesDep,
                  creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Principal:
    """The caller of an /api/ route: 401 without a valid bearer token, 429 over the rate limit."""
    if creds is None or creds.scheme.lower() != "bearer":
        raise HTTPException(401, "missing bearer token: send 'Authorization: Bearer <token>'",
                            headers={"WWW-Authenticate": "Bearer"})
    try:
        principal = services.auth.resolve(creds.credentials, services.pool)
    except TimeoutError as exc:  # psycopg_pool.PoolTimeout: every connection busy or the DB away
        raise DatabaseUnavailable("database unavailable: no connection within 10 s") from exc
    if principal is None:
        raise HTTPException(401, "invalid, expired or revoked token",
                            headers={"WWW-Authenticate": "Bearer"})
    # Per token, not per user name: a user's tokens (and the bootstrap admin token, named
    # "admin" like any user called admin) each have their own bucket.
    if not services.rate_limiter.allow(token_hash(creds.credentials)):
        raise HTTPException(429, "too many requests for this token; slow down",
                            headers={"Retry-After": "1"})
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def get_conn(services: ServicesDep) -> Iterator[psycopg.Connection]:
    """A pooled connection; the route commits, anything unfinished is rolled back."""
    try:
        with services.pool.connection(timeout=10) as conn:
            yield conn
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(f"database unavailable: {exc}") from exc
    except TimeoutError as exc:  # psycopg_pool.PoolTimeout subclasses it
        raise DatabaseUnavailable("database unavailable: no connection within 10 s") from exc


DbDep = Annotated[psycopg.Connection, Depends(get_conn)]

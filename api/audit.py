"""The audit middleware: every request that changes something is recorded, append-only.

Who (token's user and role), what (method and route, the target in the path), when, from where
(client address, user agent), the response status, and what it changed: the response body as
``after`` and, where a route sets ``request.state.audit_before``, the state before. Request
bodies are not recorded (they may hold secrets); neither are tokens.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import Response
from starlette.concurrency import run_in_threadpool

from hazmon import accounts

log = logging.getLogger(__name__)

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
MAX_AFTER = 16_384
SECRET_KEYS = {"token", "password", "secret", "hmac_secret", "smtp_password"}


def _scrub(value: Any) -> Any:
    """Secrets masked; NUL (which PostgreSQL text cannot hold) shown as \\x00."""
    if isinstance(value, dict):
        return {_scrub(k): ("***" if k in SECRET_KEYS else _scrub(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value[:100]]
    if isinstance(value, str):
        return value.replace("\x00", "\\x00")
    return value


class AuditMiddleware(BaseHTTPMiddleware):
    """Records mutating /api/ requests after they are answered."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        if request.method not in MUTATING or not request.url.path.startswith("/api/"):
            return response
        principal = getattr(request.state, "principal", None)
        if principal is None:
            return response  # refused before authentication: nothing was done
        body = b""
        async for chunk in response.body_iterator:  # type: ignore[attr-defined]
            body += chunk
        after: Any = None
        if body and len(body) <= MAX_AFTER and "json" in response.headers.get("content-type", ""):
            try:
                after = _scrub(json.loads(body))
            except ValueError:
                after = None
        entry = {
            "actor": principal.name, "role": principal.role,
            "action": f"{request.method} {getattr(request.scope.get('route'), 'path', request.url.path)}",
            "target": _scrub(request.url.path), "status": response.status_code,
            "before": _scrub(getattr(request.state, "audit_before", None)), "after": after,
            "source_ip": request.client.host if request.client else None,
            "user_agent": _scrub(request.headers.get("user-agent", "")[:200]),
        }
        await run_in_threadpool(self._write, request, entry)
        return Response(content=body, status_code=response.status_code,
                        headers=dict(response.headers), media_type=response.media_type)

    @staticmethod
    def _write(request: Request, entry: dict[str, Any]) -> None:
        services = request.app.state.services
        try:
            with services.pool.connection(timeout=10) as conn:
                accounts.audit(conn, **entry)
                conn.commit()
        except Exception:  # noqa: BLE001 - losing an audit row must be loud, not a 500
            log.exception("could not write the audit log entry for %s", entry["action"])

"""Request body size limits: 413 before a large body is read into memory.

Every request body is limited to ``default`` bytes (JSON bodies: 1 MiB); the routes that take
uploads (point tables, documents, attachments) are given their own limit by method and route
template. A declared ``Content-Length`` over the limit is refused before anything is read; a
chunked body is read here up to the limit (refused past it) and then handed to the app.

Pure ASGI (no BaseHTTPMiddleware), outermost, so nothing buffers the body before it counts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from starlette.responses import JSONResponse
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MIB = 1024 * 1024


def _size(n: int) -> str:
    return f"{n // MIB} MiB" if n % MIB == 0 else f"{n} bytes"


class BodyLimit:
    """413 for request bodies over ``default`` bytes, or over the limit of their route.

    ``routes`` maps (method, route template) to a limit, e.g.
    ``{("PUT", "/api/v1/enterprises/{enterprise}/points"): 10 * MIB}``.
    """

    def __init__(self, app: ASGIApp, default: int = MIB,
                 routes: Mapping[tuple[str, str], int] | None = None) -> None:
        self.app = app
        self.default = default
        self.routes: list[tuple[str, re.Pattern[str], int]] = [
            (method.upper(), compile_path(path)[0], limit)
            for (method, path), limit in (routes or {}).items()]

    def limit_for(self, method: str, path: str) -> int:
        for route_method, pattern, limit in self.routes:
            if route_method == method and pattern.match(path):
                return limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["method"], scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _too_large(limit)(scope, receive, send)
            return

        if declared is None and _has_header(scope, b"transfer-encoding"):
            # Chunked: read it here, up to the limit, and hand the app what was read. (Raising
            # from receive() instead would reach FastAPI wrapped by the audit middleware's task
            # group and come out as a 400.) The app would hold the whole body anyway.
            messages: list[Message] = []
            received = 0
            while True:
                message = await receive()
                messages.append(message)
                if message["type"] != "http.request":
                    break
                received += len(message.get("body", b""))
                if received > limit:
                    await _too_large(limit)(scope, receive, send)
                    return
                if not message.get("more_body", False):
                    break

            async def replay() -> Message:
                return messages.pop(0) if messages else await receive()

            await self.app(scope, replay, send)
            return
        await self.app(scope, receive, send)


def _too_large(limit: int) -> JSONResponse:
    # Refused unread: the server closes the connection afterwards (the body is not drained).
    return JSONResponse({"detail": f"the request body is larger than {_size(limit)}, the limit "
                                   "of this request; send less (split a table, shrink a document)"},
                        status_code=413, headers={"Connection": "close"})


def _has_header(scope: Scope, name: bytes) -> bool:
    return any(key == name for key, _ in scope.get("headers", ()))


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None

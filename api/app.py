"""The FastAPI application: routers, error handlers and the console, wired to given services."""

from __future__ import annotations

import json
import logging
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator
from importlib import resources
from pathlib import Path

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from api.audit import AuditMiddleware
from api.deps import Services
from api.events import AlarmBroadcaster
from api.limits import MIB, BodyLimit
from api.routes import (alarms, enterprises, gateways, handover, health, incidents, modes,
                        notifications, points, records, rejections, reports, users, warnings)
from api.schemas import ErrorBody
from devices.records_repository import MAX_DOCUMENT_BYTES
from hazmon.errors import (Conflict, DatabaseUnavailable, Forbidden, HazmonError, InputError,
                           NotFound)

log = logging.getLogger(__name__)

STATIC_DIR = Path(str(resources.files("api").joinpath("static")))

# Request bodies: JSON up to 1 MiB; the upload routes read their raw bodies up to their own limit.
MAX_BODY_BYTES = MIB
UPLOAD_LIMITS = {
    ("PUT", "/api/v1/enterprises/{enterprise}/points"): points.MAX_CSV_BYTES,
    ("PUT", "/api/v1/enterprises/{enterprise}/hazard-sources/{code}/plans/{plan_id}/document"):
        MAX_DOCUMENT_BYTES,
    ("POST", "/api/v1/warnings/{warning_id}/attachments"): MAX_DOCUMENT_BYTES,
}

MAX_DETAIL = 500

_STATUS = ((NotFound, 404), (Forbidden, 403), (Conflict, 409), (InputError, 422),
           (DatabaseUnavailable, 503))


def _error_response(exc: HazmonError) -> JSONResponse:
    if isinstance(exc, DatabaseUnavailable):
        return _database_down(exc)
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            detail = exc.detail if isinstance(exc, InputError) else str(exc)
            if isinstance(detail, str) and len(detail) > MAX_DETAIL:
                detail = detail[:MAX_DETAIL] + "…"  # messages quote what was sent: keep them short
            return JSONResponse({"detail": detail}, status_code=status)
    log.exception("unexpected hazmon error", exc_info=exc)
    return JSONResponse({"detail": "internal error"}, status_code=500)


def _database_down(exc: Exception) -> JSONResponse:
    """503 without the driver's text (it names hosts, users and databases); that goes to the log."""
    log.warning("database unavailable: %s", str(exc).strip())
    return JSONResponse({"detail": "database unavailable; retry later"}, status_code=503,
                        headers={"Retry-After": "5"})


ERRORS = {
    400: "The body could not be read (not JSON, bad encoding)",
    401: "No valid bearer token",
    403: "The token's role or scope does not allow this",
    404: "Something named in the request does not exist (or is outside the token's scope)",
    409: "The request conflicts with the current state",
    413: "The request body is larger than allowed",
    422: "Invalid input: a message, or a list of problems",
    429: "Too many requests for this token: wait Retry-After seconds",
    503: "The database is unavailable: retry after Retry-After seconds",
}
METHODS = ("get", "put", "post", "delete", "patch")


def declare_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Document in the OpenAPI the error answers each /api/ operation can give, all
    ``{"detail": ...}`` (ErrorBody), in place of FastAPI's 422 that knows only validation
    errors."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    error_schema = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(error_schema.pop("$defs", {}))
    components["ErrorBody"] = error_schema
    content = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    for path, operations in schema.get("paths", {}).items():
        for method, op in operations.items():
            if method not in METHODS:
                continue
            responses = op.setdefault("responses", {})
            if path == "/readyz":
                responses.setdefault("503", {"description": "Not ready: see the flags",
                                             "content": {"application/json": {"schema": {}}}})
            if not path.startswith("/api/"):
                continue
            params = op.get("parameters", [])
            body = "requestBody" in op
            codes = {401, 403, 429, 503}
            if params or body:
                codes |= {404, 422}
            if method != "get":
                codes |= {404, 409}
            if body:
                codes |= {400, 413}
            for code in sorted(codes):
                declared = responses.get(str(code))
                if declared is None or "HTTPValidationError" in str(declared):
                    responses[str(code)] = {"description": ERRORS[code], "content": content}
    for name in ("HTTPValidationError", "ValidationError"):
        if f"/{name}\"" not in json.dumps(schema.get("paths", {})):
            components.pop(name, None)
    return schema


def _sqlstate(exc: psycopg.Error) -> str:
    return f"{type(exc).__name__} (SQLSTATE {exc.sqlstate or '-'})"


def create_app(services: Services, *, health_only: bool = False) -> FastAPI:
    """Build the API around already-started services (``health_only`` for ingest shards:
    /healthz, /readyz and /metrics)."""
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        broadcaster = AlarmBroadcaster(services.db_url)
        app.state.broadcaster = broadcaster
        if services.db_url:
            broadcaster.start()
        yield
        await broadcaster.stop()

    app = FastAPI(title="hazmon", version="0.1.0", lifespan=lifespan,
                  description="Monitoring and ISA-18.2 alarming for major hazard sources")
    app.state.services = services

    @app.exception_handler(HazmonError)
    async def hazmon_error(_: Request, exc: HazmonError) -> JSONResponse:
        return _error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
                  for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(psycopg.OperationalError)
    async def database_down(_: Request, exc: psycopg.OperationalError) -> JSONResponse:
        return _database_down(exc)

    @app.exception_handler(psycopg.DataError)
    async def unstorable_value(request: Request, exc: psycopg.DataError) -> JSONResponse:
        # SQLSTATE class 22: a value the client sent cannot be stored or compared (a NUL
        # character in a text, a number or time out of a column's range). The driver's message
        # may quote stored values, so the client gets a fixed text and the log no values.
        log.warning("%s %s refused by the database: %s", request.method, request.url.path,
                    _sqlstate(exc))
        nul = "NUL" in str(exc) or "\\u0000" in str(exc)
        detail = ("text values cannot contain the NUL character (U+0000)" if nul else
                  "a value in the request is out of the range the database can store")
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(psycopg.IntegrityError)
    async def conflicting_write(request: Request, exc: psycopg.IntegrityError) -> JSONResponse:
        # SQLSTATE class 23: a duplicate or a dangling reference, typically two clients
        # creating the same thing at once; the routes check first, this is the race's answer.
        log.warning("%s %s conflicts with stored data: %s", request.method, request.url.path,
                    _sqlstate(exc))
        return JSONResponse({"detail": "the request conflicts with stored data (a duplicate or "
                                       "a reference to something that does not exist)"},
                            status_code=409)

    @app.exception_handler(Exception)
    async def internal_error(_: Request, exc: Exception) -> JSONResponse:
        # A bug: the client gets JSON without internals; the traceback goes to the log.
        return JSONResponse({"detail": "internal error"}, status_code=500)

    for module in (health, enterprises, points, modes, alarms, rejections, reports, handover, users,
                   records, warnings, incidents, gateways, notifications):
        app.include_router(module.router)
        if health_only:
            break

    app.add_middleware(AuditMiddleware)
    app.add_middleware(BodyLimit, default=MAX_BODY_BYTES, routes=UPLOAD_LIMITS)  # outermost

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            declare_errors(FastAPI.openapi(app))
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]

    if STATIC_DIR.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    def console() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    return app

"""The FastAPI application: routers, error handlers and the console, wired to given services."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import AsyncIterator
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
from api.routes import (alarms, enterprises, gateways, handover, health, incidents, modes, points,
                        records, rejections, reports, users, warnings)
from hazmon.errors import (Conflict, DatabaseUnavailable, Forbidden, HazmonError, InputError,
                           NotFound)

log = logging.getLogger(__name__)

STATIC_DIR = Path(str(resources.files("api").joinpath("static")))

_STATUS = ((NotFound, 404), (Forbidden, 403), (Conflict, 409), (InputError, 422),
           (DatabaseUnavailable, 503))


def _error_response(exc: HazmonError) -> JSONResponse:
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            detail = exc.detail if isinstance(exc, InputError) else str(exc)
            return JSONResponse({"detail": detail}, status_code=status)
    log.exception("unexpected hazmon error", exc_info=exc)
    return JSONResponse({"detail": "internal error"}, status_code=500)


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
        return JSONResponse({"detail": f"database unavailable: {exc}"}, status_code=503)

    for module in (health, enterprises, points, modes, alarms, rejections, reports, handover, users,
                   records, warnings, incidents, gateways):
        app.include_router(module.router)
        if health_only:
            break

    app.add_middleware(AuditMiddleware)

    if STATIC_DIR.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    def console() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    return app

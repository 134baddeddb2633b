"""Process health, readiness and metrics: no token needed."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import ServicesDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(services: ServicesDep) -> JSONResponse:
    """Database reachable and (when this process ingests) broker connected."""
    database = True
    try:
        with services.pool.connection(timeout=2) as conn:
            conn.execute("SELECT 1")
    except Exception:  # noqa: BLE001 - any failure means not ready
        database = False
    broker = services.broker_connected()
    ok = database and broker is not False
    body = {"status": "ready" if ok else "not ready", "database": database, "broker": broker,
            "timescaledb": services.storage.timescale}
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/metrics")
def metrics(services: ServicesDep) -> Response:
    """Prometheus text format."""
    return Response(generate_latest(services.metrics_registry), media_type=CONTENT_TYPE_LATEST)

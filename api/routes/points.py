"""Point tables (CSV upload), points with their newest reading, and reading history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from api.deps import DbDep, PrincipalDep, ServicesDep
from api.schemas import BucketPublic, Items, PointPublic, PointsUploaded, ReadingPublic
from api.timeparse import parse_time
from devices import repository as repo
from devices.pointtable import parse_point_table
from hazmon.errors import InputError
from ingest import repository as readings_repo

router = APIRouter(prefix="/api/v1/enterprises/{enterprise}/points", tags=["points"])

MAX_CSV_BYTES = 10 * 1024 * 1024
MAX_ROWS = 100_000


@router.put("", response_model=PointsUploaded, openapi_extra={
    "requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}})
async def upload_points(enterprise: str, request: Request, services: ServicesDep,
                        principal: PrincipalDep) -> dict[str, int]:
    """Create or update points from a point table (CSV, English or Chinese headers).

    All or nothing: a table with any invalid row is rejected with every error by row and column.
    """
    principal.require_enterprise(enterprise, "configure")
    ctype = request.headers.get("content-type", "")
    if "json" in ctype or "multipart" in ctype:
        raise InputError(f"send the point table as the raw CSV body with Content-Type: text/csv, "
                         f"not {ctype.split(';')[0]}")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_CSV_BYTES:
            raise InputError(f"point table larger than {MAX_CSV_BYTES // (1024 * 1024)} MiB; split it")
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(_apply_table, services, enterprise, bytes(body))


def _apply_table(services: Any, enterprise: str, data: bytes) -> dict[str, int]:
    with services.pool.connection(timeout=10) as conn:
        ent_id = repo.enterprise_id(conn, enterprise)
        hs_ids = repo.hazard_source_ids(conn, ent_id)
        specs = parse_point_table(data, set(hs_ids), max_rows=MAX_ROWS)
        created, updated = repo.upsert_points(conn, ent_id, specs, hs_ids)
        conn.commit()
    services.points_changed()
    return {"created": created, "updated": updated}


@router.get("", response_model=Items[PointPublic])
def list_points(enterprise: str, conn: DbDep, principal: PrincipalDep) -> dict[str, Any]:
    """Every point of the enterprise with its newest reading."""
    principal.require_enterprise(enterprise)
    return {"items": repo.list_points(conn, repo.enterprise_id(conn, enterprise))}


@router.get("/{tag}", response_model=PointPublic)
def get_point(enterprise: str, tag: str, conn: DbDep, principal: PrincipalDep) -> dict[str, Any]:
    """A point's configuration and ``latest``: the reading with the newest ``ts``."""
    principal.require_enterprise(enterprise)
    return repo.get_point(conn, repo.enterprise_id(conn, enterprise), tag)


@router.get("/{tag}/readings", response_model=Items[ReadingPublic] | Items[BucketPublic])
def get_readings(
    enterprise: str, tag: str, conn: DbDep, principal: PrincipalDep,
    start: Annotated[str | None, Query(description="RFC 3339, inclusive; default end - 1 h")] = None,
    end: Annotated[str | None, Query(description="RFC 3339, exclusive; default now")] = None,
    bucket: Annotated[int | None, Query(ge=1, le=366 * 86400,
                                        description="seconds; buckets aligned to the Unix epoch")] = None,
    limit: Annotated[int, Query(ge=1, le=1_000_000)] = 100_000,
) -> dict[str, Any]:
    """Readings in [start, end) ascending; with ``bucket``, min/max/avg per bucket."""
    principal.require_enterprise(enterprise)
    t_end = parse_time(end, "end") if end else datetime.now(UTC)
    t_start = parse_time(start, "start") if start else t_end - timedelta(hours=1)
    if t_end <= t_start:
        raise InputError("end must be after start")
    pid = repo.point_id(conn, repo.enterprise_id(conn, enterprise), tag)
    if bucket is None:
        return {"items": readings_repo.raw_readings(conn, pid, t_start, t_end, limit)}
    return {"items": readings_repo.bucketed_readings(conn, pid, t_start, t_end, bucket, limit)}

"""What ingest refused and why."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import DbDep, PrincipalDep
from api.schemas import Items, RejectionPublic
from api.timeparse import parse_time
from ingest import repository as repo

router = APIRouter(prefix="/api/v1/rejections", tags=["rejections"])


@router.get("", response_model=Items[RejectionPublic])
def list_rejections(
    conn: DbDep, principal: PrincipalDep, enterprise: str | None = None,
    since: Annotated[str | None, Query(description="RFC 3339")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
) -> dict[str, Any]:
    """Rejected messages and readings, newest first."""
    t_since = parse_time(since, "since") if since else None
    if enterprise is not None:
        principal.require_enterprise(enterprise)
    return {"items": repo.list_rejections(conn, enterprise=enterprise, since=t_since, limit=limit,
                                          scope=principal.scope_list())}

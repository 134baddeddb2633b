"""Suppression by design (maintenance/shutdown modes) and points out of service."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from alerting import operations
from api.deps import DbDep, PrincipalDep, ServicesDep
from api.schemas import ModeChange, ModeResult, ServiceChange
from devices import repository as repo

router = APIRouter(prefix="/api/v1/enterprises/{enterprise}", tags=["modes"])


def _done(conn: Any, services: Any, changed: int, **fields: Any) -> dict[str, Any]:
    conn.commit()
    services.points_changed()
    return {**fields, "alarms_changed": changed}


@router.put("/mode", response_model=ModeResult)
def enterprise_mode(enterprise: str, body: ModeChange, conn: DbDep, principal: PrincipalDep,
                    services: ServicesDep) -> dict[str, Any]:
    """Maintenance or shutdown suppresses every alarm of the enterprise; normal re-evaluates."""
    principal.require_enterprise(enterprise, "mode")
    ent_id = repo.enterprise_id(conn, enterprise)
    changed = operations.set_mode(conn, "enterprises", ent_id, body.mode, principal.name,
                                  body.reason, body.until)
    return _done(conn, services, changed, mode=body.mode)


@router.put("/hazard-sources/{code}/mode", response_model=ModeResult)
def hazard_source_mode(enterprise: str, code: str, body: ModeChange, conn: DbDep,
                       principal: PrincipalDep, services: ServicesDep) -> dict[str, Any]:
    """Maintenance or shutdown of one hazard source suppresses the alarms of its points."""
    principal.require_enterprise(enterprise, "mode")
    hs_id = repo.hazard_source_id(conn, repo.enterprise_id(conn, enterprise), code)
    changed = operations.set_mode(conn, "hazard_sources", hs_id, body.mode, principal.name,
                                  body.reason, body.until)
    return _done(conn, services, changed, mode=body.mode)


@router.put("/points/{tag}/mode", response_model=ModeResult)
def point_mode(enterprise: str, tag: str, body: ModeChange, conn: DbDep,
               principal: PrincipalDep, services: ServicesDep) -> dict[str, Any]:
    """Maintenance or shutdown of one point suppresses its alarms."""
    principal.require_enterprise(enterprise, "mode")
    pid = repo.point_id(conn, repo.enterprise_id(conn, enterprise), tag)
    changed = operations.set_mode(conn, "points", pid, body.mode, principal.name,
                                  body.reason, body.until)
    return _done(conn, services, changed, mode=body.mode)


@router.put("/points/{tag}/service", response_model=ModeResult)
def point_service(enterprise: str, tag: str, body: ServiceChange, conn: DbDep,
                  principal: PrincipalDep, services: ServicesDep) -> dict[str, Any]:
    """Take a point out of service (who, why, until when) or return it to service."""
    principal.require_enterprise(enterprise, "mode")
    pid = repo.point_id(conn, repo.enterprise_id(conn, enterprise), tag)
    changed = operations.set_service(conn, pid, body.in_service, principal.name, body.reason,
                                     body.until)
    return _done(conn, services, changed, in_service=body.in_service)

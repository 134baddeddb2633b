"""Enterprises and their hazard sources."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter

from api.deps import DbDep, PrincipalDep, ServicesDep
from api.schemas import EnterpriseCreate, EnterprisePublic, HazardSourceCreate, HazardSourcePublic, Items
from devices import gb18218
from devices import repository as repo

router = APIRouter(prefix="/api/v1/enterprises", tags=["enterprises"])


@router.post("", status_code=201, response_model=EnterprisePublic)
def create_enterprise(body: EnterpriseCreate, conn: DbDep, principal: PrincipalDep,
                      services: ServicesDep) -> dict[str, Any]:
    """Register an enterprise; its code is the one its gateways use in MQTT topics (admin)."""
    principal.require("admin")
    row = repo.create_enterprise(conn, body.code, body.name, body.lat, body.lon, body.region)
    repo.bump_points_version(conn)  # ingest learns the enterprise (and a shard subscribes to it)
    conn.commit()
    services.points_changed()
    return row


@router.get("", response_model=Items[EnterprisePublic])
def list_enterprises(conn: DbDep, principal: PrincipalDep) -> dict[str, Any]:
    """The enterprises this token may see."""
    return {"items": [e for e in repo.list_enterprises(conn) if principal.sees(e["code"])]}


@router.get("/{enterprise}", response_model=EnterprisePublic)
def get_enterprise(enterprise: str, conn: DbDep, principal: PrincipalDep) -> dict[str, Any]:
    """One enterprise."""
    principal.require_enterprise(enterprise)
    repo.enterprise_id(conn, enterprise)
    return next(e for e in repo.list_enterprises(conn) if e["code"] == enterprise)


@router.post("/{enterprise}/hazard-sources", status_code=201, response_model=HazardSourcePublic)
def create_hazard_source(enterprise: str, body: HazardSourceCreate, conn: DbDep,
                         principal: PrincipalDep) -> dict[str, Any]:
    """Register a hazard source; S, R and the level are computed per GB 18218-2018."""
    principal.require_enterprise(enterprise, "configure")
    ent_id = repo.enterprise_id(conn, enterprise)
    chemicals = [c.model_dump(exclude_none=True) for c in body.chemicals]
    assessment = gb18218.assess(chemicals, body.residents_500m)
    data = {
        **body.model_dump(exclude={"chemicals"}),
        "chemicals": [asdict(item) for item in assessment.items],
        "s": assessment.s, "r": assessment.r, "alpha": assessment.alpha, "level": assessment.level,
    }
    row = repo.create_hazard_source(conn, ent_id, data)
    conn.commit()
    return row


@router.get("/{enterprise}/hazard-sources", response_model=Items[HazardSourcePublic])
def list_hazard_sources(enterprise: str, conn: DbDep, principal: PrincipalDep) -> dict[str, Any]:
    """The hazard sources of an enterprise with their grading."""
    principal.require_enterprise(enterprise)
    return {"items": repo.list_hazard_sources(conn, repo.enterprise_id(conn, enterprise))}


@router.get("/{enterprise}/hazard-sources/{code}", response_model=HazardSourcePublic)
def get_hazard_source(enterprise: str, code: str, conn: DbDep,
                      principal: PrincipalDep) -> dict[str, Any]:
    """One hazard source."""
    principal.require_enterprise(enterprise)
    return repo.get_hazard_source(conn, repo.enterprise_id(conn, enterprise), code)

"""Hazard records: card, responsible people, plans and documents, inventory changes with the
grading history, rescue resources and what an alarm's duty officer needs to see (context)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel, Field, field_validator
from starlette.concurrency import run_in_threadpool

from alerting import incidents
from alerting import repository as alarms_repo
from alerting import response_repository as response_repo
from api.deps import DbDep, PrincipalDep, Services, ServicesDep
from api.schemas import ChemicalIn, Strict
from devices import gb18218
from devices import records_repository as repo
from hazmon.errors import Forbidden, InputError, NotFound

router = APIRouter(prefix="/api/v1", tags=["hazard records"])
SOURCE = "/enterprises/{enterprise}/hazard-sources/{code}"
PHONE = r"^[0-9+()\- ]{3,30}$"
MAX_ID = 2**63 - 1
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]      # a bigserial id: larger ones are 422, not 500
IdField = Annotated[int, Field(ge=1, le=MAX_ID)]


def now_of(services: Services) -> datetime:
    """The time of the response features: a test may set ``services.extra['response_clock']``."""
    clock = services.extra.get("response_clock")
    return clock() if clock else datetime.now(UTC)


async def read_upload(request: Request, limit: int) -> bytes:
    """The raw request body, 413 past ``limit`` bytes (stopped reading there), 422 when empty."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"the document is larger than {limit} bytes")
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            raise HTTPException(413, f"the document is larger than {limit} bytes")
    if not data:
        raise InputError("the request body is empty: send the document's bytes")
    return bytes(data)


def file_response(data: bytes, name: str, content_type: str) -> Response:
    """A download with its original name (RFC 6266 / 5987 for non-ASCII names)."""
    disposition = f"attachment; filename*=UTF-8''{quote(name)}"
    return Response(data, media_type=content_type, headers={"Content-Disposition": disposition})


class CleanBody(Strict):
    """Bodies of these routes: PostgreSQL text cannot hold NUL, so a NUL is refused (422)."""

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value


FileName = Annotated[str, Query(min_length=1, max_length=200, pattern=r"^[^\x00/\\]+$")]


class Person(CleanBody):
    name: str = Field(min_length=1, max_length=50)
    phone: str = Field(pattern=PHONE)
    position: str | None = Field(default=None, max_length=100)


class Responsibles(CleanBody):
    principal: Person | None = None      # 主要负责人
    technical: Person | None = None      # 技术负责人
    operations: Person | None = None     # 操作负责人


class Equipment(CleanBody):
    name: str = Field(min_length=1, max_length=200)
    kind: str | None = Field(default=None, max_length=100)
    quantity: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    unit: str | None = Field(default=None, max_length=20)
    location: str | None = Field(default=None, max_length=200)
    checked_on: date | None = None


class RecordPut(CleanBody):
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    last_identified_on: date | None = None
    responsibles: Responsibles = Responsibles()
    equipment: list[Equipment] = Field(default=[], max_length=500)


class ChemicalsPut(CleanBody):
    chemicals: list[ChemicalIn] = Field(max_length=500)
    residents_500m: int | None = Field(default=None, ge=0, le=100_000_000,
                                       description="omit to keep the current")
    reason: str | None = Field(default=None, max_length=2000)


class PlanCreate(CleanBody):
    kind: Literal["emergency_plan", "onsite_procedure"]
    title: str = Field(min_length=1, max_length=200)
    version: str | None = Field(default=None, max_length=50)
    link: str | None = Field(default=None, max_length=2000, pattern=r"^https?://")
    last_drill_on: date | None = None


class PlanUpdate(CleanBody):
    kind: Literal["emergency_plan", "onsite_procedure"] | None = None
    title: str | None = Field(default=None, min_length=1, max_length=200)
    version: str | None = Field(default=None, max_length=50)
    link: str | None = Field(default=None, max_length=2000, pattern=r"^https?://")
    last_drill_on: date | None = None


class ResourceCreate(CleanBody):
    enterprise: str | None = Field(default=None, description="owner; null = a public resource")
    kind: Literal["team", "equipment", "stock"]
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    quantity: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    unit: str | None = Field(default=None, max_length=20)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    contact_name: str | None = Field(default=None, max_length=50)
    contact_phone: str | None = Field(default=None, pattern=PHONE)
    available: bool = True


class ResourceUpdate(CleanBody):
    kind: Literal["team", "equipment", "stock"] | None = None
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    quantity: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    unit: str | None = Field(default=None, max_length=20)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    contact_name: str | None = Field(default=None, max_length=50)
    contact_phone: str | None = Field(default=None, pattern=PHONE)
    available: bool | None = None


class Items(BaseModel):
    items: list[dict[str, Any]]


def _not_null(body: BaseModel, required: tuple[str, ...]) -> dict[str, Any]:
    """The fields a PATCH sets; 422 when one that cannot be empty is set to null."""
    data = body.model_dump(exclude_unset=True)
    nulls = [k for k in required if k in data and data[k] is None]
    if nulls:
        raise InputError(f"{', '.join(nulls)} cannot be null")
    return data


def _source(conn: Any, principal: Any, enterprise: str, code: str, action: str = "read") -> dict[str, Any]:
    principal.require_enterprise(enterprise, action)
    return repo.find_source(conn, enterprise, code)


@router.get(SOURCE + "/record")
def get_record(enterprise: str, code: str, conn: DbDep, principal: PrincipalDep,
               services: ServicesDep) -> dict[str, Any]:
    """The hazard record: card (grading, coordinates), responsible people, plans with drill
    flags, equipment, and what is due (re-identification, drills, missing people or plans)."""
    source = _source(conn, principal, enterprise, code)
    return repo.full_record(conn, source, repo.today_in_china(now_of(services)))


@router.put(SOURCE + "/record")
def put_record(enterprise: str, code: str, body: RecordPut, conn: DbDep, principal: PrincipalDep,
               services: ServicesDep) -> dict[str, Any]:
    """Replace the record's coordinates, identification date, responsible people and equipment."""
    source = _source(conn, principal, enterprise, code, "configure")
    repo.put_record(conn, source, body.model_dump(mode="json"), principal.name)
    conn.commit()
    return repo.full_record(conn, repo.source_by_id(conn, source["id"]),
                            repo.today_in_china(now_of(services)))


@router.put(SOURCE + "/chemicals")
def put_chemicals(enterprise: str, code: str, body: ChemicalsPut, conn: DbDep,
                  principal: PrincipalDep, services: ServicesDep) -> dict[str, Any]:
    """Change the inventory (and residents): S, R, α and the level are recomputed per
    GB 18218-2018 and the grading before and after is kept in the history."""
    source = _source(conn, principal, enterprise, code, "configure")
    residents = body.residents_500m if "residents_500m" in body.model_fields_set else source["residents_500m"]
    assessment = gb18218.assess([c.model_dump(exclude_none=True) for c in body.chemicals], residents)
    grading = {"chemicals": [asdict(i) for i in assessment.items], "residents_500m": residents,
               "s": assessment.s, "r": assessment.r, "alpha": assessment.alpha,
               "level": assessment.level}
    updated = repo.regrade(conn, source, grading, principal.name, body.reason)
    conn.commit()
    services.points_changed()
    history = repo.grading_history(conn, source["id"])
    return {**{k: updated[k] for k in ("enterprise", "code", "name", "unit_type", "residents_500m",
                                        "chemicals", "s", "r", "alpha", "level")},
            "previous_level": source["level"], "history_entries": len(history)}


@router.get(SOURCE + "/grading-history", response_model=Items)
def get_grading_history(enterprise: str, code: str, conn: DbDep,
                        principal: PrincipalDep) -> dict[str, Any]:
    """Every grading of the hazard source, oldest first (the registration is the first)."""
    return {"items": repo.grading_history(conn, _source(conn, principal, enterprise, code)["id"])}


@router.post(SOURCE + "/plans", status_code=201)
def create_plan(enterprise: str, code: str, body: PlanCreate, conn: DbDep, principal: PrincipalDep,
                services: ServicesDep) -> dict[str, Any]:
    """Add an emergency plan (drilled yearly) or an on-site procedure (every 6 months)."""
    source = _source(conn, principal, enterprise, code, "configure")
    plan_id = repo.create_plan(conn, source, body.model_dump(), principal.name)
    conn.commit()
    return repo.get_plan(conn, source, plan_id, repo.today_in_china(now_of(services)))


@router.patch(SOURCE + "/plans/{plan_id}")
def update_plan(enterprise: str, code: str, plan_id: IdPath, body: PlanUpdate, conn: DbDep,
                principal: PrincipalDep, services: ServicesDep) -> dict[str, Any]:
    """Change a plan: a new version, a link, or the date of the last drill."""
    source = _source(conn, principal, enterprise, code, "configure")
    repo.update_plan(conn, source, plan_id, _not_null(body, ("kind", "title")), principal.name)
    conn.commit()
    return repo.get_plan(conn, source, plan_id, repo.today_in_china(now_of(services)))


@router.delete(SOURCE + "/plans/{plan_id}", status_code=204)
def delete_plan(enterprise: str, code: str, plan_id: IdPath, conn: DbDep,
                principal: PrincipalDep) -> Response:
    repo.delete_plan(conn, _source(conn, principal, enterprise, code, "configure"), plan_id)
    conn.commit()
    return Response(status_code=204)


@router.put(SOURCE + "/plans/{plan_id}/document")
async def upload_document(enterprise: str, code: str, plan_id: IdPath, request: Request,
                          principal: PrincipalDep, services: ServicesDep,
                          filename: FileName = "document"
                          ) -> dict[str, Any]:
    """Store the plan's document (the raw body, its Content-Type kept; at most 10 MiB)."""
    principal.require_enterprise(enterprise, "configure")
    data = await read_upload(request, repo.MAX_DOCUMENT_BYTES)
    content_type = (request.headers.get("content-type") or "application/octet-stream")[:200]

    def store() -> dict[str, Any]:
        with services.pool.connection(timeout=10) as conn:
            source = repo.find_source(conn, enterprise, code)
            repo.set_document(conn, source, plan_id, data, filename, content_type, principal.name)
            conn.commit()
            return repo.get_plan(conn, source, plan_id, repo.today_in_china(now_of(services)))

    return await run_in_threadpool(store)


@router.get(SOURCE + "/plans/{plan_id}/document", response_class=Response)
def download_document(enterprise: str, code: str, plan_id: IdPath, conn: DbDep,
                      principal: PrincipalDep) -> Response:
    data, name, content_type = repo.get_document(conn, _source(conn, principal, enterprise, code),
                                                 plan_id)
    return file_response(data, name, content_type)


@router.get(SOURCE + "/nearby-resources", response_model=Items)
def nearby_resources(enterprise: str, code: str, conn: DbDep, principal: PrincipalDep,
                     kind: Literal["team", "equipment", "stock"] | None = None,
                     limit: Annotated[int, Query(ge=1, le=200)] = 10) -> dict[str, Any]:
    """Available rescue resources nearest to the hazard source (great-circle distance)."""
    source = _source(conn, principal, enterprise, code)
    return {"items": _nearest(conn, source, kind, limit)}


def _nearest(conn: Any, source: dict[str, Any], kind: str | None, limit: int) -> list[dict[str, Any]]:
    if source["lat"] is None or source["lon"] is None:
        return []
    rows = repo.resources(conn, scope=[source["enterprise"]], enterprise=source["enterprise"],
                          kind=kind, available_only=True)
    return incidents.nearest(rows, source["lat"], source["lon"], limit)


@router.get("/hazard-records", response_model=Items)
def list_records(conn: DbDep, principal: PrincipalDep, services: ServicesDep,
                 enterprise: str | None = None,
                 flagged: Annotated[bool, Query(description="only records with something due")] = False
                 ) -> dict[str, Any]:
    """Hazard records in scope with their flags: re-identification due, drills overdue,
    responsible people or plans missing."""
    if enterprise is not None:
        principal.require_enterprise(enterprise)
    today = repo.today_in_china(now_of(services))
    items = []
    for source in repo.list_sources(conn, principal.scope_list(), enterprise):
        record = repo.full_record(conn, source, today)
        flags = record["flags"]
        if flagged and not (flags["reidentification_due"] or flags["drill_overdue"]
                            or flags["missing_plans"] or flags["missing_responsibles"]):
            continue
        items.append({k: record[k] for k in ("enterprise", "code", "name", "level", "flags")})
    return {"items": items}


@router.get("/alarms/{alarm_id}/context")
def alarm_context(alarm_id: IdPath, conn: DbDep, principal: PrincipalDep,
                  services: ServicesDep) -> dict[str, Any]:
    """What to know about an alarm's place: the hazard source card and record, responsible
    people, plans, nearest rescue resources, and the open warning and incidents there."""
    alarm = alarms_repo.get_alarm(conn, alarm_id)
    if not principal.sees(alarm["enterprise"]):
        raise NotFound(f"alarm {alarm_id} does not exist")
    scope = response_repo.alarm_scope(conn, alarm_id)
    hs_id = scope[1] if scope else None
    out: dict[str, Any] = {"alarm": alarm, "hazard_source": None, "nearby_resources": []}
    if hs_id is not None:
        source = repo.source_by_id(conn, hs_id)
        out["hazard_source"] = repo.full_record(conn, source, repo.today_in_china(now_of(services)))
        out["nearby_resources"] = _nearest(conn, source, None, 5)
    warnings_open = response_repo.list_warnings(
        conn, scope=[alarm["enterprise"]], enterprise=alarm["enterprise"],
        hazard_source=alarm["hazard_source"], states=["issued", "acknowledged", "feedback"],
        color=None, limit=10)
    out["warning"] = next((w for w in warnings_open if w["hazard_source_id"] == hs_id), None)
    out["incidents"] = [i for i in response_repo.list_incidents(
        conn, scope=[alarm["enterprise"]], enterprise=alarm["enterprise"], status=None, limit=50)
        if i["status"] != "closed" and (hs_id is None or i["hazard_source_id"] == hs_id)]
    return out


@router.get("/rescue-resources", response_model=Items)
def list_resources(conn: DbDep, principal: PrincipalDep, enterprise: str | None = None,
                   kind: Literal["team", "equipment", "stock"] | None = None) -> dict[str, Any]:
    """Public rescue resources and those of the enterprises in scope."""
    if enterprise is not None:
        principal.require_enterprise(enterprise)
    return {"items": repo.resources(conn, scope=principal.scope_list(), enterprise=enterprise,
                                    kind=kind)}


def _may_manage(principal: Any, enterprise: str | None) -> None:
    """Public resources: dispatch roles; an enterprise's own: it (configure) or dispatch roles."""
    if enterprise is None:
        principal.require("dispatch")
        return
    if not principal.sees(enterprise):
        raise Forbidden(f"enterprise {enterprise!r} is outside this token's scope")
    if not (principal.may("configure") or principal.may("dispatch")):
        raise Forbidden(f"role {principal.role!r} may not manage rescue resources")


@router.post("/rescue-resources", status_code=201)
def create_resource(body: ResourceCreate, conn: DbDep, principal: PrincipalDep) -> dict[str, Any]:
    """Register a rescue team, equipment or stock with its coordinates and contact."""
    _may_manage(principal, body.enterprise)
    from devices.repository import enterprise_id

    ent_id = enterprise_id(conn, body.enterprise) if body.enterprise else None
    row = repo.create_resource(conn, ent_id, body.model_dump(exclude={"enterprise"}), principal.name)
    conn.commit()
    return row


def _resource(conn: Any, principal: Any, resource_id: IdPath) -> dict[str, Any]:
    row = repo.get_resource(conn, resource_id)
    if row["enterprise"] is not None and not principal.sees(row["enterprise"]):
        raise NotFound(f"rescue resource {resource_id} does not exist")
    _may_manage(principal, row["enterprise"])
    return row


@router.patch("/rescue-resources/{resource_id}")
def update_resource(resource_id: IdPath, body: ResourceUpdate, conn: DbDep,
                    principal: PrincipalDep) -> dict[str, Any]:
    _resource(conn, principal, resource_id)
    data = _not_null(body, ("kind", "name", "lat", "lon", "available"))
    row = repo.update_resource(conn, resource_id, data, principal.name)
    conn.commit()
    return row


@router.delete("/rescue-resources/{resource_id}", status_code=204)
def delete_resource(resource_id: IdPath, conn: DbDep, principal: PrincipalDep) -> Response:
    _resource(conn, principal, resource_id)
    repo.delete_resource(conn, resource_id)
    conn.commit()
    return Response(status_code=204)


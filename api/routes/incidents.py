"""Incidents: opened by hand from alarms or by the correlation rules; timeline, dispatches of
rescue resources, the reporting clock, and the incident report as HTML or PDF."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import AwareDatetime, BaseModel, Field

from alerting import incidents
from alerting import response_repository as repo
from api.deps import DbDep, PrincipalDep, ServicesDep
from api.routes.records import CleanBody, IdField, IdPath, now_of
from devices import records_repository as records_repo
from devices.repository import enterprise_id, hazard_source_id
from hazmon.errors import InputError, NotFound

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])
_INTERNAL = ("enterprise_id", "hazard_source_id")


class IncidentCreate(CleanBody):
    enterprise: str = Field(min_length=1, max_length=64)
    title: str = Field(min_length=1, max_length=200)
    hazard_source: str | None = Field(default=None, max_length=64,
                                      description="default: the one hazard source of the alarms")
    alarm_ids: list[IdField] = Field(default=[], max_length=100)
    occurred_at: AwareDatetime | None = Field(default=None,
                                              description="RFC 3339; default: the first alarm, else now")
    note: str | None = Field(default=None, max_length=4000)


class AlarmLinks(CleanBody):
    alarm_ids: list[IdField] = Field(min_length=1, max_length=100)


class NoteBody(CleanBody):
    text: str = Field(min_length=1, max_length=4000)
    kind: Literal["note", "notification"] = "note"


class StatusBody(CleanBody):
    status: Literal["open", "responding", "closed"]
    comment: str | None = Field(default=None, max_length=2000)


class ReportBody(CleanBody):
    to: str = Field(default="县级应急管理部门", min_length=1, max_length=200)
    note: str | None = Field(default=None, max_length=4000)


class DispatchCreate(CleanBody):
    resource_id: IdField | None = None
    resource_name: str | None = Field(default=None, max_length=200,
                                      description="required when no resource_id is given")
    what: str = Field(min_length=1, max_length=2000)
    quantity: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    note: str | None = Field(default=None, max_length=2000)


class DispatchStatus(CleanBody):
    status: Literal["requested", "en_route", "on_scene", "returned", "cancelled"]
    note: str | None = Field(default=None, max_length=2000)


class RulesBody(BaseModel):
    """The incident rules document; keys left out take the defaults."""

    model_config = {"extra": "allow"}


def _public(incident: dict[str, Any], now: datetime) -> dict[str, Any]:
    out = {k: v for k, v in incident.items() if k not in _INTERNAL}
    clock = incidents.report_clock(incident["report_due_at"], incident["reported_at"], now)
    out["report_clock"] = {"due_at": clock.due_at, "reported_at": clock.reported_at,
                           "remaining_s": round(clock.remaining_s, 3), "overdue": clock.overdue,
                           "late": clock.late}
    return out


def _visible(conn: Any, principal: Any, incident_id: IdPath, action: str = "read") -> dict[str, Any]:
    principal.require(action)
    incident = repo.get_incident(conn, incident_id)
    if not principal.sees(incident["enterprise"]):
        raise NotFound(f"incident {incident_id} does not exist")
    return incident


def _alarms_of(conn: Any, enterprise: str, alarm_ids: list[int]) -> list[dict[str, Any]]:
    rows = repo.alarms_of_enterprise(conn, sorted(set(alarm_ids)))
    found = {r["id"] for r in rows}
    foreign = [r["id"] for r in rows if r["enterprise"] != enterprise]
    missing = sorted(set(alarm_ids) - found) + foreign
    if missing:
        raise InputError(f"alarm(s) {missing} do not exist in enterprise {enterprise!r}")
    return rows


@router.get("")
def list_incidents(conn: DbDep, principal: PrincipalDep, services: ServicesDep,
                   enterprise: str | None = None,
                   status: Literal["open", "responding", "closed"] | None = None,
                   limit: Annotated[int, Query(ge=1, le=5000)] = 500) -> dict[str, Any]:
    """Incidents newest first, each with its reporting clock."""
    if enterprise is not None:
        principal.require_enterprise(enterprise)
    now = now_of(services)
    rows = repo.list_incidents(conn, scope=principal.scope_list(), enterprise=enterprise,
                               status=status, limit=limit)
    return {"items": [_public(i, now) for i in rows]}


@router.post("", status_code=201)
def open_incident(body: IncidentCreate, conn: DbDep, principal: PrincipalDep,
                  services: ServicesDep) -> dict[str, Any]:
    """Open an incident by hand, from alarms of one enterprise (or none)."""
    principal.require_enterprise(body.enterprise, "dispatch")
    ent_id = enterprise_id(conn, body.enterprise)
    alarms = _alarms_of(conn, body.enterprise, body.alarm_ids)
    if body.hazard_source is not None:
        hs_id: int | None = hazard_source_id(conn, ent_id, body.hazard_source)
    else:
        sources = {a["hazard_source_id"] for a in alarms}
        hs_id = sources.pop() if len(sources) == 1 else None
    now = now_of(services)
    occurred = body.occurred_at or min((a["activated_at"] for a in alarms), default=now)
    occurred = min(occurred, now)
    rules = repo.incident_rules(conn)
    incident_id = repo.create_incident(conn, ent_id=ent_id, hs_id=hs_id, title=body.title,
                                       rule=None, actor=principal.name, now=now,
                                       occurred_at=occurred, report_due_at=rules.report_due(occurred))
    for a in alarms:
        repo.link_alarm(conn, incident_id, ent_id, a["id"], None, principal.name, now, "linked by hand")
    if body.note:
        repo.incident_event(conn, incident_id, ent_id, now, principal.name, "note", body.note)
    repo.announce_incident(conn, repo.get_incident(conn, incident_id), "incident_opened", now)
    conn.commit()
    return _public(repo.get_incident(conn, incident_id), now)


@router.get("/rules")
def get_rules(conn: DbDep, principal: PrincipalDep) -> dict[str, Any]:
    """The correlation rules and the reporting deadline in force."""
    principal.require("read")
    return repo.incident_rules(conn).source


@router.put("/rules")
def put_rules(body: RulesBody, conn: DbDep, principal: PrincipalDep) -> dict[str, Any]:
    """Replace the incident rules (admin); validated whole, keys left out take the defaults."""
    principal.require("admin")
    doc = body.model_dump()
    rules = incidents.parse_rules(doc)
    repo.save_rules_doc(conn, "incidents", doc, principal.name)
    conn.commit()
    return rules.source


def _detail(conn: Any, incident: dict[str, Any], now: datetime) -> dict[str, Any]:
    out = _public(incident, now)
    out["alarms"] = repo.incident_alarms(conn, incident["id"])
    out["dispatches"] = repo.dispatches(conn, incident["id"])
    out["timeline"] = repo.timeline(conn, incident["id"])
    out["hazard_record"] = None
    if incident["hazard_source_id"] is not None:
        source = records_repo.source_by_id(conn, incident["hazard_source_id"])
        out["hazard_record"] = records_repo.full_record(conn, source,
                                                        records_repo.today_in_china(now))
    return out


@router.get("/{incident_id}")
def get_incident(incident_id: IdPath, conn: DbDep, principal: PrincipalDep,
                 services: ServicesDep) -> dict[str, Any]:
    """One incident: reporting clock, alarms, dispatches, timeline and the hazard record."""
    return _detail(conn, _visible(conn, principal, incident_id), now_of(services))


@router.get("/{incident_id}/timeline")
def get_timeline(incident_id: IdPath, conn: DbDep, principal: PrincipalDep) -> dict[str, Any]:
    """Alarms, notes, notifications, dispatches and status changes, oldest first, with who."""
    _visible(conn, principal, incident_id)
    return {"items": repo.timeline(conn, incident_id)}


@router.post("/{incident_id}/alarms")
def link_alarms(incident_id: IdPath, body: AlarmLinks, conn: DbDep, principal: PrincipalDep,
                services: ServicesDep) -> dict[str, Any]:
    """Add alarms of the incident's enterprise to it."""
    incident = _visible(conn, principal, incident_id, "dispatch")
    now = now_of(services)
    for a in _alarms_of(conn, incident["enterprise"], body.alarm_ids):
        repo.link_alarm(conn, incident_id, incident["enterprise_id"], a["id"], None,
                        principal.name, now, "linked by hand")
    conn.commit()
    return {"items": repo.incident_alarms(conn, incident_id)}


@router.post("/{incident_id}/notes", status_code=201)
def add_note(incident_id: IdPath, body: NoteBody, conn: DbDep, principal: PrincipalDep,
             services: ServicesDep) -> dict[str, Any]:
    """A note, or a notification made outside hazmon (a phone call), in the timeline."""
    incident = _visible(conn, principal, incident_id, "dispatch")
    repo.incident_event(conn, incident_id, incident["enterprise_id"], now_of(services),
                        principal.name, body.kind, body.text)
    conn.commit()
    return {"items": repo.timeline(conn, incident_id)}


@router.post("/{incident_id}/status")
def change_status(incident_id: IdPath, body: StatusBody, conn: DbDep, principal: PrincipalDep,
                  services: ServicesDep) -> dict[str, Any]:
    """open → responding → closed (409 when unchanged or already closed)."""
    incident = _visible(conn, principal, incident_id, "dispatch")
    now = now_of(services)
    repo.set_status(conn, incident, body.status, principal.name, now, body.comment)
    conn.commit()
    return _public(repo.get_incident(conn, incident_id), now)


@router.post("/{incident_id}/report")
def report_incident(incident_id: IdPath, body: ReportBody, conn: DbDep, principal: PrincipalDep,
                    services: ServicesDep) -> dict[str, Any]:
    """Record that the incident was reported to the county regulator (stops the clock)."""
    incident = _visible(conn, principal, incident_id, "dispatch")
    now = now_of(services)
    repo.mark_reported(conn, incident, principal.name, now, body.to, body.note)
    conn.commit()
    return _public(repo.get_incident(conn, incident_id), now)


@router.post("/{incident_id}/dispatches", status_code=201)
def dispatch(incident_id: IdPath, body: DispatchCreate, conn: DbDep, principal: PrincipalDep,
             services: ServicesDep) -> dict[str, Any]:
    """Send a rescue resource (from the registry, or named) to the incident."""
    incident = _visible(conn, principal, incident_id, "dispatch")
    data = body.model_dump()
    if body.resource_id is not None:
        resource = records_repo.get_resource(conn, body.resource_id)
        if resource["enterprise"] not in (None, incident["enterprise"]):
            raise InputError(f"rescue resource {body.resource_id} belongs to another enterprise")
        data["resource_name"] = body.resource_name or resource["name"]
        data["distance_km"] = _distance(conn, incident, resource)
    elif not body.resource_name:
        raise InputError("give resource_id or resource_name")
    now = now_of(services)
    repo.create_dispatch(conn, incident, data, principal.name, now)
    if incident["status"] == "open":
        repo.set_status(conn, incident, "responding", principal.name, now, "resources dispatched")
    conn.commit()
    return {"items": repo.dispatches(conn, incident_id)}


def _distance(conn: Any, incident: dict[str, Any], resource: dict[str, Any]) -> float | None:
    if incident["hazard_source_id"] is None:
        return None
    source = records_repo.source_by_id(conn, incident["hazard_source_id"])
    if source["lat"] is None or source["lon"] is None:
        return None
    return round(incidents.haversine_km(source["lat"], source["lon"], resource["lat"],
                                        resource["lon"]), 3)


@router.post("/{incident_id}/dispatches/{dispatch_id}/status")
def dispatch_status(incident_id: IdPath, dispatch_id: IdPath, body: DispatchStatus, conn: DbDep,
                    principal: PrincipalDep, services: ServicesDep) -> dict[str, Any]:
    """Follow a dispatch: requested → en_route → on_scene → returned (or cancelled)."""
    incident = _visible(conn, principal, incident_id, "dispatch")
    repo.set_dispatch_status(conn, incident, dispatch_id, body.status, principal.name,
                             now_of(services), body.note)
    conn.commit()
    return {"items": repo.dispatches(conn, incident_id)}


@router.get("/{incident_id}/export", response_class=Response, responses={
    200: {"content": {"text/html": {}, "application/pdf": {}}}})
def export(incident_id: IdPath, conn: DbDep, principal: PrincipalDep, services: ServicesDep,
           format: Literal["html", "pdf"] = "html") -> Response:
    """The incident report (事故/事件报告) as HTML or PDF."""
    detail = _detail(conn, _visible(conn, principal, incident_id), now_of(services))
    if format == "pdf":
        return Response(incidents.render_pdf(detail), media_type="application/pdf", headers={
            "Content-Disposition": f'attachment; filename="incident-{incident_id}.pdf"'})
    return Response(incidents.render_html(detail), media_type="text/html; charset=utf-8")

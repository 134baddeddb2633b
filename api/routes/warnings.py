"""Risk warnings (red/orange/yellow/blue) and their closed loop: acknowledge (enterprise),
disposal feedback with attachments (enterprise), clear (消警, regulator); the rules."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from alerting import response_repository as repo
from alerting import warnings
from api.deps import DbDep, PrincipalDep, ServicesDep
from api.routes.records import CleanBody, FileName, IdPath, file_response, now_of, read_upload
from devices.records_repository import MAX_DOCUMENT_BYTES
from hazmon.errors import Forbidden, InputError, NotFound

router = APIRouter(prefix="/api/v1/warnings", tags=["warnings"])

# Who does which step: the enterprise acknowledges and reports its disposal; the regulator
# (duty officer) clears. The admin may do anything.
STEP_ROLES = {"acknowledge": {"admin", "enterprise"}, "feedback": {"admin", "enterprise"},
              "clear": {"admin", "duty_officer"}}
OPEN_STATES = ["issued", "acknowledged", "feedback"]
_INTERNAL = ("enterprise_id", "hazard_source_id", "covered")


class AckBody(CleanBody):
    comment: str | None = Field(default=None, max_length=2000)


class FeedbackBody(CleanBody):
    cause: str = Field(min_length=1, max_length=4000)
    action: str = Field(min_length=1, max_length=4000)


class ClearBody(CleanBody):
    comment: str | None = Field(default=None, max_length=2000)


class RulesBody(BaseModel):
    """The warning rules document; keys left out take the defaults."""

    model_config = {"extra": "allow"}


def _public(w: dict[str, Any], rules: warnings.WarningRules, now: Any) -> dict[str, Any]:
    """A warning with the step it waits for, that step's due instant and whether it is late."""
    out = {k: v for k, v in w.items() if k not in _INTERNAL}
    due = warnings.step_due(rules, warnings.LoopTimes(w["state"], w["color"], w["issued_at"],
                                                      w["acked_at"], w["feedback_at"]))
    out["step"], out["due_at"] = due if due else (None, None)
    out["step_overdue"] = bool(due and warnings.is_overdue(due[1], now))
    return out


def _visible(conn: Any, principal: Any, warning_id: IdPath) -> dict[str, Any]:
    w = repo.get_warning(conn, warning_id)
    if not principal.sees(w["enterprise"]):
        raise NotFound(f"warning {warning_id} does not exist")
    return w


def _may_do(principal: Any, step: str) -> None:
    if principal.role not in STEP_ROLES[step]:
        raise Forbidden(f"role {principal.role!r} may not {step} a warning")


@router.get("")
def list_warnings(
    conn: DbDep, principal: PrincipalDep, services: ServicesDep,
    enterprise: str | None = None, hazard_source: str | None = None,
    state: Annotated[Literal["open", "issued", "acknowledged", "feedback", "cleared"] | None,
                     Query(description="a loop state, or 'open' (not cleared)")] = None,
    color: Literal["red", "orange", "yellow", "blue"] | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> dict[str, Any]:
    """Warnings newest first; every filter given must match."""
    if enterprise is not None:
        principal.require_enterprise(enterprise)
    states: list[str] | None = OPEN_STATES if state == "open" else [state] if state else None
    rules, now = repo.warning_rules(conn), now_of(services)
    rows = repo.list_warnings(conn, scope=principal.scope_list(), enterprise=enterprise,
                              hazard_source=hazard_source, states=states, color=color, limit=limit)
    return {"items": [_public(w, rules, now) for w in rows]}


@router.get("/summary")
def summary(conn: DbDep, principal: PrincipalDep, enterprise: str | None = None) -> dict[str, Any]:
    """The warning colour per enterprise (the most severe of its open warnings) and per hazard
    source; enterprises without an open warning are left out."""
    if enterprise is not None:
        principal.require_enterprise(enterprise)
    rows = repo.list_warnings(conn, scope=principal.scope_list(), enterprise=enterprise,
                              hazard_source=None, states=OPEN_STATES, color=None, limit=10_000)
    by_ent: dict[str, dict[str, Any]] = {}
    for w in rows:
        ent = by_ent.setdefault(w["enterprise"], {"enterprise": w["enterprise"], "color": None,
                                                  "hazard_sources": [], "unassigned": None})
        ent["color"] = warnings.most_severe((ent["color"], w["color"]))
        entry = {"warning_id": w["id"], "color": w["color"], "live_color": w["live_color"],
                 "state": w["state"], "issued_at": w["issued_at"]}
        if w["hazard_source"] is None:
            ent["unassigned"] = entry
        else:
            ent["hazard_sources"].append({"code": w["hazard_source"], "name": w["hazard_source_name"],
                                          "level": w["level"], **entry})
    items = sorted(by_ent.values(), key=lambda e: (-warnings.rank(e["color"]), e["enterprise"]))
    return {"items": items}


@router.get("/rules")
def get_rules(conn: DbDep, principal: PrincipalDep) -> dict[str, Any]:
    """The warning matrix, what counts, and the loop deadlines in force."""
    principal.require("read")
    return repo.warning_rules(conn).source


@router.put("/rules")
def put_rules(body: RulesBody, conn: DbDep, principal: PrincipalDep) -> dict[str, Any]:
    """Replace the warning rules (admin); validated whole, keys left out take the defaults."""
    principal.require("admin")
    doc = body.model_dump()
    rules = warnings.parse_rules(doc)
    repo.save_rules_doc(conn, "warnings", doc, principal.name)
    conn.commit()
    return rules.source


@router.get("/{warning_id}")
def get_warning(warning_id: IdPath, conn: DbDep, principal: PrincipalDep,
                services: ServicesDep) -> dict[str, Any]:
    """One warning with its event log and attachments (metadata)."""
    w = _visible(conn, principal, warning_id)
    out = _public(w, repo.warning_rules(conn), now_of(services))
    return {**out, "events": repo.warning_events(conn, warning_id),
            "attachments": repo.attachments(conn, warning_id)}


def _step(conn: Any, principal: Any, services: Any, warning_id: IdPath, step: str,
          fields: dict[str, Any]) -> dict[str, Any]:
    _may_do(principal, step)
    _visible(conn, principal, warning_id)
    rules, now = repo.warning_rules(conn), now_of(services)
    repo.do_step(conn, warning_id, step, principal.name, now, rules, fields)
    conn.commit()
    return _public(repo.get_warning(conn, warning_id), rules, now)


@router.post("/{warning_id}/ack")
def ack_warning(warning_id: IdPath, conn: DbDep, principal: PrincipalDep, services: ServicesDep,
                body: Annotated[AckBody | None, Body()] = None) -> dict[str, Any]:
    """The enterprise acknowledges the warning (issued → acknowledged)."""
    return _step(conn, principal, services, warning_id, "acknowledge",
                 {"ack_comment": body.comment if body else None})


@router.post("/{warning_id}/feedback")
def feedback_warning(warning_id: IdPath, body: FeedbackBody, conn: DbDep, principal: PrincipalDep,
                     services: ServicesDep) -> dict[str, Any]:
    """The enterprise reports the cause and what it did (acknowledged → feedback)."""
    return _step(conn, principal, services, warning_id, "feedback",
                 {"cause": body.cause, "action": body.action})


@router.post("/{warning_id}/clear")
def clear_warning(warning_id: IdPath, conn: DbDep, principal: PrincipalDep, services: ServicesDep,
                  body: Annotated[ClearBody | None, Body()] = None) -> dict[str, Any]:
    """The regulator clears the warning (消警; feedback → cleared)."""
    return _step(conn, principal, services, warning_id, "clear",
                 {"clear_comment": body.comment if body else None})


@router.get("/{warning_id}/events")
def warning_events(warning_id: IdPath, conn: DbDep, principal: PrincipalDep) -> dict[str, Any]:
    """Every step of the warning: issued, escalated, acknowledged, overdue, … who, when."""
    _visible(conn, principal, warning_id)
    return {"items": repo.warning_events(conn, warning_id)}


@router.post("/{warning_id}/attachments", status_code=201)
async def add_attachment(warning_id: IdPath, request: Request, principal: PrincipalDep,
                         services: ServicesDep,
                         filename: FileName = "attachment"
                         ) -> dict[str, Any]:
    """Attach a photo or document to the disposal feedback (raw body, at most 10 MiB)."""
    _may_do(principal, "feedback")

    def check() -> None:
        with services.pool.connection(timeout=10) as conn:
            _visible(conn, principal, warning_id)

    await run_in_threadpool(check)
    data = await read_upload(request, MAX_DOCUMENT_BYTES)
    content_type = (request.headers.get("content-type") or "application/octet-stream")[:200]

    def store() -> dict[str, Any]:
        with services.pool.connection(timeout=10) as conn:
            w = repo.get_warning(conn, warning_id)
            if w["state"] == "cleared":
                raise InputError(f"warning {warning_id} is cleared: nothing more can be attached")
            row = repo.add_attachment(conn, w, filename, content_type, data, principal.name,
                                      now_of(services))
            conn.commit()
            return row

    return await run_in_threadpool(store)


@router.get("/{warning_id}/attachments/{attachment_id}", response_class=Response)
def get_attachment(warning_id: IdPath, attachment_id: IdPath, conn: DbDep,
                   principal: PrincipalDep) -> Response:
    _visible(conn, principal, warning_id)
    return file_response(*repo.attachment_data(conn, warning_id, attachment_id))

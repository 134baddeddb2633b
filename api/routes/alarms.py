"""Alarms: list with filters, one alarm with its event log, acknowledge."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, AsyncIterator

from fastapi import APIRouter, Body, Header, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from alerting import lifecycle
from alerting import repository as repo
from api.deps import DbDep, PrincipalDep, ServicesDep
from api.events import AlarmEvent, missed_events
from alerting import operations
from api.schemas import AckRequest, AlarmEventPublic, AlarmPublic, Items, ShelveRequest
from hazmon.errors import InputError, NotFound

router = APIRouter(prefix="/api/v1/alarms", tags=["alarms"])

STATE_FILTERS = (*lifecycle.STATES, *repo.STATE_GROUPS)


def _states(state: str | None) -> tuple[str, ...] | None:
    if state is None:
        return None
    if state in repo.STATE_GROUPS:
        return repo.STATE_GROUPS[state]
    if state in lifecycle.STATES:
        return (state,)
    raise InputError(f"state {state!r} is not one of {', '.join(STATE_FILTERS)}")


def _check_known(conn: Any, enterprise: str | None, hazard_source: str | None,
                 tag: str | None) -> None:
    """An unknown filter value is an error (a typo must not look like 'no alarms')."""
    checks = (
        ("enterprise", enterprise, "SELECT 1 FROM enterprises WHERE code = %s"),
        ("hazard_source", hazard_source, "SELECT 1 FROM hazard_sources WHERE code = %s"),
        ("tag", tag, "SELECT 1 FROM points WHERE tag = %s"),
    )
    for name, value, sql in checks:
        if value is not None and conn.execute(sql, (value,)).fetchone() is None:
            raise InputError(f"{name} {value!r} is not known")


@router.get("", response_model=Items[AlarmPublic])
def list_alarms(
    conn: DbDep, principal: PrincipalDep,
    state: Annotated[str | None, Query(description="a state, 'active' or 'open'")] = None,
    enterprise: str | None = None, hazard_source: str | None = None, tag: str | None = None,
    condition: Annotated[str | None, Query(description=", ".join(lifecycle.CONDITIONS))] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
) -> dict[str, Any]:
    """Alarms newest first; every filter given must match."""
    states = _states(state)
    if condition is not None and condition not in lifecycle.CONDITIONS:
        raise InputError(f"condition {condition!r} is not one of {', '.join(lifecycle.CONDITIONS)}")
    _check_known(conn, enterprise, hazard_source, tag)
    if enterprise is not None:
        principal.require_enterprise(enterprise)
    return {"items": repo.list_alarms(conn, states=states, enterprise=enterprise,
                                      hazard_source=hazard_source, tag=tag, condition=condition,
                                      limit=limit, scope=principal.scope_list())}


@router.get("/stream", response_class=StreamingResponse, responses={
    200: {"content": {"text/event-stream": {}}, "description": "one `alarm` event per change"}})
async def stream_alarms(
    request: Request, services: ServicesDep, principal: PrincipalDep,
    state: str | None = None, enterprise: str | None = None, hazard_source: str | None = None,
    tag: str | None = None, condition: str | None = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """Server-sent events, one per alarm change (data: the alarm as in the list), filtered like
    the list. Resumable: send ``Last-Event-ID`` to get the changes missed since."""
    states = _states(state)
    if condition is not None and condition not in lifecycle.CONDITIONS:
        raise InputError(f"condition {condition!r} is not one of {', '.join(lifecycle.CONDITIONS)}")
    after = int(last_event_id) if last_event_id and last_event_id.isdigit() else None

    if enterprise is not None and not principal.sees(enterprise):
        principal.require_enterprise(enterprise)

    def prepare() -> list[AlarmEvent]:
        with services.pool.connection(timeout=10) as conn:
            _check_known(conn, enterprise, hazard_source, tag)
            return missed_events(conn, after) if after is not None else []

    broadcaster = request.app.state.broadcaster
    queue = broadcaster.subscribe()  # before reading the log, so nothing falls in between
    try:
        missed = await run_in_threadpool(prepare)
    except Exception:
        broadcaster.unsubscribe(queue)
        raise
    wanted = {"enterprise": enterprise, "hazard_source": hazard_source, "tag": tag,
              "condition": condition}

    def matches(alarm: dict[str, Any]) -> bool:
        return principal.sees(alarm["enterprise"]) and (
            states is None or alarm["state"] in states) and all(
            v is None or alarm[k] == v for k, v in wanted.items())

    async def events() -> AsyncIterator[str]:
        last = after or 0
        try:
            yield "retry: 3000\n\n"
            for ev in missed:
                last = ev.event_id
                if matches(ev.alarm):
                    yield _sse(ev)
            while True:
                try:
                    ev = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    if queue not in broadcaster.subscribers:
                        return  # cut off for being slow: the client resumes with Last-Event-ID
                    yield ": keepalive\n\n"
                    continue
                if ev is None:
                    return
                if ev.event_id > last:
                    last = ev.event_id
                    if matches(ev.alarm):
                        yield _sse(ev)
        finally:
            broadcaster.unsubscribe(queue)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


KEEPALIVE_S = 15


def _sse(ev: AlarmEvent) -> str:
    data = AlarmPublic.model_validate(ev.alarm).model_dump_json()
    return f"id: {ev.event_id}\nevent: alarm\ndata: {data}\n\n"


def _visible(conn: Any, alarm_id: int, principal: Any, action: str = "read") -> dict[str, Any]:
    """The alarm if this token may see it (404 otherwise: ids of others are not confirmed)."""
    principal.require(action)
    alarm = repo.get_alarm(conn, alarm_id)
    if not principal.sees(alarm["enterprise"]):
        raise NotFound(f"alarm {alarm_id} does not exist")
    return alarm


@router.get("/{alarm_id}", response_model=AlarmPublic)
def get_alarm(alarm_id: int, conn: DbDep, principal: PrincipalDep) -> dict[str, Any]:
    """One alarm."""
    return _visible(conn, alarm_id, principal)


@router.get("/{alarm_id}/events", response_model=Items[AlarmEventPublic])
def get_alarm_events(alarm_id: int, conn: DbDep, principal: PrincipalDep) -> dict[str, Any]:
    """The alarm's event log: every change, who, when."""
    _visible(conn, alarm_id, principal)
    return {"items": repo.alarm_events(conn, alarm_id)}


@router.post("/{alarm_id}/ack", response_model=AlarmPublic)
def ack_alarm(alarm_id: int, conn: DbDep, principal: PrincipalDep,
              body: Annotated[AckRequest | None, Body()] = None) -> dict[str, Any]:
    """Acknowledge: UNACK_ACTIVE → ACK_ACTIVE, RTN_UNACK → CLOSED; 409 in other states."""
    _visible(conn, alarm_id, principal, "ack")
    alarm = repo.acknowledge(conn, alarm_id, principal.name, body.comment if body else None)
    conn.commit()
    return alarm


@router.post("/{alarm_id}/shelve", response_model=AlarmPublic)
def shelve_alarm(alarm_id: int, body: ShelveRequest, conn: DbDep, principal: PrincipalDep,
                 services: ServicesDep) -> dict[str, Any]:
    """Shelve an annunciating alarm for ``duration_s`` (at most the maximum for its priority);
    when the time is over it shows its condition again: UNACK_ACTIVE if active, else CLOSED."""
    _visible(conn, alarm_id, principal, "ack")
    alarm = operations.shelve(conn, alarm_id, principal.name, body.duration_s, body.reason,
                              services.shelve_max_s)
    conn.commit()
    return alarm


@router.post("/{alarm_id}/unshelve", response_model=AlarmPublic)
def unshelve_alarm(alarm_id: int, conn: DbDep, principal: PrincipalDep) -> dict[str, Any]:
    """End a shelve early."""
    _visible(conn, alarm_id, principal, "ack")
    alarm = operations.unshelve(conn, alarm_id, principal.name)
    conn.commit()
    return alarm


@router.post("/{alarm_id}/reset", response_model=AlarmPublic)
def reset_alarm(alarm_id: int, conn: DbDep, principal: PrincipalDep,
                body: Annotated[AckRequest | None, Body()] = None) -> dict[str, Any]:
    """Reset a latched alarm after its condition returned: ACK_ACTIVE → CLOSED,
    UNACK_ACTIVE → RTN_UNACK (still to be acknowledged); 409 while the condition is active."""
    _visible(conn, alarm_id, principal, "ack")
    alarm = operations.reset(conn, alarm_id, principal.name, body.comment if body else None)
    conn.commit()
    return alarm

"""Notifications: channels and routing rules (admin), the delivery log (per alarm and overall).

Channel secrets (webhook HMAC key, SMTP password, DingTalk sign secret) are write-only: responses
say ``"secret_set": true``, and URLs are shown with their query values masked (robot webhooks
carry their access token there). On PUT a secret left out is kept, ``null`` removes it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import httpx
from fastapi import APIRouter, Body, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from alerting import repository as alarms_repo
from alerting.notify import config_repository as store
from alerting.notify import repository as repo
from alerting.notify.config import NAME_PATTERN, ChannelIn, RuleIn
from alerting.notify.model import Delivery, Message, new_id
from alerting.notify.notifiers import NotifyError, build_notifier
from alerting.notify.retry import Outcome
from alerting.notify.service import NOTIFIER_LOCK
from api.deps import DbDep, PrincipalDep
from api.schemas import Items
from api.timeparse import parse_time
from hazmon.errors import NotFound

router = APIRouter(prefix="/api/v1", tags=["notifications"])

Name = Annotated[str, Field(pattern=NAME_PATTERN)]


class ChannelPublic(BaseModel):
    """A channel as shown: its kind's settings (URLs masked) and whether a secret is set."""

    model_config = ConfigDict(extra="allow")

    name: str
    kind: str
    enabled: bool
    secret_set: bool
    created_at: datetime
    updated_at: datetime


class TierPublic(BaseModel):
    after_s: float
    channels: list[str]


class RulePublic(BaseModel):
    name: str
    enabled: bool
    enterprises: list[str]
    hazard_sources: list[str]
    hazard_levels: list[int]
    priorities: list[str]
    conditions: list[str]
    group_by: list[str]
    group_wait_s: float
    group_interval_s: float
    repeat_interval_s: float
    send_resolved: bool
    tiers: list[TierPublic]
    created_at: datetime
    updated_at: datetime


class DeliveryPublic(BaseModel):
    """One delivery attempt."""

    id: int
    at: datetime
    delivery: str = Field(description="the message; its attempts share it")
    attempt: int
    channel: str
    channel_kind: str
    rule: str | None
    group_key: str | None
    reason: str = Field(description="first, escalation, update, reminder, resolved, warning, test")
    tier: int | None
    alarm_count: int
    warning_id: int | None
    status: Literal["ok", "retry", "failed"]
    http_status: int | None
    error: str | None
    duration_ms: int | None


class TestResult(BaseModel):
    ok: bool
    delivery: str
    http_status: int | None
    error: str | None


class NotifierStatus(BaseModel):
    notifier_active: bool = Field(description="a NotifierService holds the notifier lock")
    channels: int
    rules: int
    failed_last_hour: int


# -- channels ----------------------------------------------------------------------------------

@router.get("/notifications/channels", response_model=Items[ChannelPublic])
def list_channels(conn: DbDep, principal: PrincipalDep) -> dict[str, Any]:
    principal.require("admin")
    return {"items": store.list_channels(conn)}


@router.post("/notifications/channels", response_model=ChannelPublic, status_code=201)
def create_channel(body: Annotated[ChannelIn, Body()], conn: DbDep,
                   principal: PrincipalDep) -> dict[str, Any]:
    """Create a channel: webhook, email, wecom or dingtalk (``kind``)."""
    principal.require("admin")
    out = store.create_channel(conn, body)
    conn.commit()
    return out


@router.get("/notifications/channels/{name}", response_model=ChannelPublic)
def get_channel(name: Name, conn: DbDep, principal: PrincipalDep) -> dict[str, Any]:
    principal.require("admin")
    return store.get_channel(conn, name)


@router.put("/notifications/channels/{name}", response_model=ChannelPublic)
def replace_channel(name: Name, body: Annotated[ChannelIn, Body()], request: Request,
                    conn: DbDep, principal: PrincipalDep) -> dict[str, Any]:
    """Replace a channel's settings (a secret left out is kept)."""
    principal.require("admin")
    request.state.audit_before = store.get_channel(conn, name)
    out = store.replace_channel(conn, name, body)
    conn.commit()
    return out


@router.delete("/notifications/channels/{name}", status_code=204)
def delete_channel(name: Name, request: Request, conn: DbDep, principal: PrincipalDep) -> Response:
    """Delete a channel (409 while a rule names it)."""
    principal.require("admin")
    request.state.audit_before = store.get_channel(conn, name)
    store.delete_channel(conn, name)
    conn.commit()
    return Response(status_code=204)


@router.post("/notifications/channels/{name}/test", response_model=TestResult)
def test_channel(name: Name, conn: DbDep, principal: PrincipalDep) -> dict[str, Any]:
    """Send a test message now (one attempt, logged like any other); says whether it arrived."""
    principal.require("admin")
    channel = store.channel_model(conn, name)
    now = datetime.now(UTC)
    message = Message(reason="test", at=now, delivery=new_id())
    delivery = Delivery(channel=name, message=message, id=message.delivery, attempt=1)
    with httpx.Client() as client:
        try:
            sent = build_notifier(channel, client).notify(message, now)
            outcome = Outcome(now, datetime.now(UTC), ok=True, http_status=sent.http_status,
                              error=sent.note)
        except NotifyError as exc:
            outcome = Outcome(now, datetime.now(UTC), ok=False, http_status=exc.http_status,
                              error=str(exc))
    repo.record_attempt(conn, delivery, channel.kind, outcome, "ok" if outcome.ok else "failed")
    conn.commit()
    return {"ok": outcome.ok, "delivery": delivery.id, "http_status": outcome.http_status,
            "error": outcome.error}


# -- rules -------------------------------------------------------------------------------------

@router.get("/notifications/rules", response_model=Items[RulePublic])
def list_rules(conn: DbDep, principal: PrincipalDep) -> dict[str, Any]:
    principal.require("admin")
    return {"items": store.list_rules(conn)}


@router.post("/notifications/rules", response_model=RulePublic, status_code=201)
def create_rule(body: RuleIn, conn: DbDep, principal: PrincipalDep) -> dict[str, Any]:
    """Create a routing rule; every channel, enterprise and hazard source it names must exist."""
    principal.require("admin")
    out = store.create_rule(conn, body)
    conn.commit()
    return out


@router.get("/notifications/rules/{name}", response_model=RulePublic)
def get_rule(name: Name, conn: DbDep, principal: PrincipalDep) -> dict[str, Any]:
    principal.require("admin")
    return store.get_rule(conn, name)


@router.put("/notifications/rules/{name}", response_model=RulePublic)
def replace_rule(name: Name, body: RuleIn, request: Request, conn: DbDep,
                 principal: PrincipalDep) -> dict[str, Any]:
    principal.require("admin")
    request.state.audit_before = store.get_rule(conn, name)
    out = store.replace_rule(conn, name, body)
    conn.commit()
    return out


@router.delete("/notifications/rules/{name}", status_code=204)
def delete_rule(name: Name, request: Request, conn: DbDep, principal: PrincipalDep) -> Response:
    principal.require("admin")
    request.state.audit_before = store.get_rule(conn, name)
    store.delete_rule(conn, name)
    conn.commit()
    return Response(status_code=204)


# -- deliveries and status ---------------------------------------------------------------------

@router.get("/notifications/deliveries", response_model=Items[DeliveryPublic])
def list_deliveries(
    conn: DbDep, principal: PrincipalDep,
    since: Annotated[str | None, Query(description="RFC 3339; default: the last 24 hours")] = None,
    channel: str | None = None,
    status: Literal["ok", "retry", "failed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
) -> dict[str, Any]:
    """Delivery attempts at or after ``since``, oldest first."""
    principal.require("admin")
    start = parse_time(since, "since") if since else datetime.now(UTC) - timedelta(days=1)
    return {"items": repo.deliveries_since(conn, start, limit, channel, status)}


@router.get("/alarms/{alarm_id}/deliveries", response_model=Items[DeliveryPublic])
def alarm_deliveries(alarm_id: int, conn: DbDep, principal: PrincipalDep,
                     limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> dict[str, Any]:
    """Every attempt to notify someone about this alarm, oldest first."""
    principal.require("read")
    alarm = alarms_repo.get_alarm(conn, alarm_id)
    if not principal.sees(alarm["enterprise"]):
        raise NotFound(f"alarm {alarm_id} does not exist")
    return {"items": repo.alarm_deliveries(conn, alarm_id, limit)}


@router.get("/notifications/status", response_model=NotifierStatus)
def notifier_status(conn: DbDep, principal: PrincipalDep) -> dict[str, Any]:
    """Whether a notifier is running against this database, and what it has to work with."""
    principal.require("admin")
    row = conn.execute(
        """SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
                            AND classid = 0 AND objid = %s::oid AND objsubid = 1),
                  (SELECT count(*) FROM notify_channels),
                  (SELECT count(*) FROM notify_rules),
                  (SELECT count(*) FROM notify_deliveries
                    WHERE status = 'failed' AND at > now() - interval '1 hour')""",
        (NOTIFIER_LOCK,)).fetchone()
    assert row is not None
    return {"notifier_active": row[0], "channels": row[1], "rules": row[2],
            "failed_last_hour": row[3]}

"""Gateways and their MQTT credentials; the broker's HTTP authentication and authorization.

A gateway logs in to the broker as ``{enterprise}/{gateway}`` with a password shown once, when
it is registered or rotated; only a mosquitto ``$7$`` hash is stored. After every change the
embedded mosquitto (if hazmon runs one) gets new files and reloads them before the answer.

``/api/v1/mqtt/authenticate`` and ``/api/v1/mqtt/authorize`` are for the broker (EMQX's HTTP
authenticator and authorizer), not for people: they take the shared secret in
``X-Hazmon-Broker-Secret`` (HAZMON_MQTT_BROKER_SECRET), never a bearer token, and apply the
same rules the mosquitto files hold (``hazmon.mqtt_auth``). They always answer 200 with a
decision, so that EMQX never falls back to another source on an error of ours.
"""

from __future__ import annotations

import hmac
import logging
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from api.deps import DbDep, PrincipalDep, ServicesDep
from api.schemas import CODE_PATTERN, Items, Strict
from devices import gateways_repository as gw_repo
from devices import repository as repo
from hazmon import mqtt_auth
from hazmon.errors import ServiceError
from hazmon.mqtt_auth import Identity, MqttIdentity

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["gateways"])

GatewayCode = Annotated[str, Path(pattern=CODE_PATTERN, description="as in MQTT topics")]
SECRET_HEADER = "X-Hazmon-Broker-Secret"


class GatewayCreate(Strict):
    code: str = Field(pattern=CODE_PATTERN, description="the gateway code in its MQTT topics")


class GatewayCredentials(BaseModel):
    code: str
    username: str = Field(description="the MQTT username: '{enterprise}/{gateway}'")
    password: str = Field(description="the MQTT password: shown once, only a hash is kept")
    credential_set_at: datetime
    topic_prefix: str = Field(description="the gateway may publish only under this prefix")


class GatewayPublic(BaseModel):
    code: str
    username: str | None = Field(description="null: seen on MQTT but not registered")
    registered: bool
    status: str
    status_at: datetime | None
    registered_at: datetime | None
    credential_set_at: datetime | None


def identity(services: ServicesDep) -> MqttIdentity:
    """The MQTT identity settings wired into this process (defaults when none were)."""
    found = services.extra.get("mqtt")
    return found if isinstance(found, MqttIdentity) else MqttIdentity()


IdentityDep = Annotated[MqttIdentity, Depends(identity)]


def _after_change(mqtt: MqttIdentity) -> Any:
    """Bring the embedded broker up to date; the database change stands either way."""
    def refresh(conn: Any) -> None:
        try:
            mqtt.gateways_changed(conn)
        except ServiceError:
            log.exception("the embedded broker could not take the new gateway credentials; "
                          "they apply from its next start")
    return refresh


def _credentials(enterprise: str, code: str, password: str, at: datetime) -> dict[str, Any]:
    return {"code": code, "username": mqtt_auth.gateway_username(enterprise, code),
            "password": password, "credential_set_at": at,
            "topic_prefix": f"{mqtt_auth.PREFIX}/{enterprise}/{code}/"}


@router.post("/enterprises/{enterprise}/gateways", status_code=201,
             response_model=GatewayCredentials)
def register_gateway(enterprise: str, body: GatewayCreate, conn: DbDep, principal: PrincipalDep,
                     mqtt: IdentityDep) -> dict[str, Any]:
    """Register a gateway and issue its MQTT credentials (the password is shown only here).
    Its enterprise then accepts MQTT messages only from registered gateways."""
    principal.require_enterprise(enterprise, "configure")
    ent_id = repo.enterprise_id(conn, enterprise)
    password = mqtt_auth.new_password()
    at = gw_repo.register(conn, ent_id, body.code, mqtt_auth.gateway_username(enterprise, body.code),
                          mqtt_auth.hash_password(password))
    conn.commit()
    _after_change(mqtt)(conn)
    return _credentials(enterprise, body.code, password, at)


@router.get("/enterprises/{enterprise}/gateways", response_model=Items[GatewayPublic])
def list_gateways(enterprise: str, conn: DbDep, principal: PrincipalDep) -> dict[str, Any]:
    """The gateways of an enterprise: registered ones and those only seen on MQTT; no secrets."""
    principal.require_enterprise(enterprise)
    return {"items": gw_repo.list_gateways(conn, repo.enterprise_id(conn, enterprise))}


@router.get("/enterprises/{enterprise}/gateways/{gateway}", response_model=GatewayPublic)
def get_gateway(enterprise: str, gateway: GatewayCode, conn: DbDep,
                principal: PrincipalDep) -> dict[str, Any]:
    """One gateway; no secrets."""
    principal.require_enterprise(enterprise)
    return gw_repo.get_gateway(conn, repo.enterprise_id(conn, enterprise), gateway)


@router.post("/enterprises/{enterprise}/gateways/{gateway}/credentials",
             response_model=GatewayCredentials)
def rotate_credentials(enterprise: str, gateway: GatewayCode, request: Request, conn: DbDep,
                       principal: PrincipalDep, mqtt: IdentityDep) -> dict[str, Any]:
    """Issue a new password (shown only here); the old one stops working at once and a gateway
    still connected with it is disconnected (embedded mosquitto)."""
    principal.require_enterprise(enterprise, "configure")
    ent_id = repo.enterprise_id(conn, enterprise)
    request.state.audit_before = gw_repo.get_gateway(conn, ent_id, gateway)
    password = mqtt_auth.new_password()
    at = gw_repo.rotate(conn, ent_id, gateway, mqtt_auth.hash_password(password))
    conn.commit()
    _after_change(mqtt)(conn)
    return _credentials(enterprise, gateway, password, at)


@router.delete("/enterprises/{enterprise}/gateways/{gateway}", status_code=204)
def delete_gateway(enterprise: str, gateway: GatewayCode, request: Request, conn: DbDep,
                   principal: PrincipalDep, mqtt: IdentityDep) -> Response:
    """Delete a gateway and revoke its credentials (it is disconnected). Its enterprise stays
    closed to unregistered publishers."""
    principal.require_enterprise(enterprise, "configure")
    ent_id = repo.enterprise_id(conn, enterprise)
    request.state.audit_before = gw_repo.get_gateway(conn, ent_id, gateway)
    gw_repo.delete(conn, ent_id, gateway)
    conn.commit()
    _after_change(mqtt)(conn)
    return Response(status_code=204)


# --- for the broker ----------------------------------------------------------------------------


class BrokerRequest(BaseModel):
    """What EMQX sends; unknown fields (a richer request template) are ignored."""

    model_config = ConfigDict(extra="ignore")


class AuthenticateRequest(BrokerRequest):
    username: str | None = Field(default=None, max_length=256)
    password: str | None = Field(default=None, max_length=1024)
    clientid: str | None = Field(default=None, max_length=1024)


class AuthorizeRequest(BrokerRequest):
    username: str | None = Field(default=None, max_length=256)
    topic: str = Field(max_length=65535)
    action: str = Field(max_length=32, description="publish or subscribe")
    clientid: str | None = Field(default=None, max_length=1024)


class AuthenticateResult(BaseModel):
    result: Literal["allow", "deny"]
    is_superuser: bool = False


class AuthorizeResult(BaseModel):
    result: Literal["allow", "deny"]


def broker_caller(request: Request, mqtt: IdentityDep,
                  secret: Annotated[str | None, Header(alias=SECRET_HEADER)] = None) -> None:
    """Only the broker, which knows HAZMON_MQTT_BROKER_SECRET, may call these endpoints."""
    if secret is None and "authorization" not in request.headers:
        raise HTTPException(401, f"send the broker secret in {SECRET_HEADER}")
    if not mqtt.broker_secret:
        raise HTTPException(403, "the broker endpoints are off: set HAZMON_MQTT_BROKER_SECRET")
    if secret is None or not hmac.compare_digest(secret.encode("utf-8"),
                                                 mqtt.broker_secret.encode("utf-8")):
        raise HTTPException(403, f"these endpoints take the broker secret in {SECRET_HEADER}, "
                                 "not user tokens")


BrokerDep = Annotated[None, Depends(broker_caller)]


def _anonymous(username: str | None) -> bool:
    return not username


@router.post("/mqtt/authenticate", response_model=AuthenticateResult)
def authenticate(body: AuthenticateRequest, _: BrokerDep, conn: DbDep,
                 mqtt: IdentityDep) -> dict[str, Any]:
    """EMQX HTTP authentication: may this client connect with this username and password?"""
    username, password = body.username, body.password or ""
    if mqtt.mode == "off":
        ok = True
    elif _anonymous(username):
        ok = mqtt.mode == "auto"
    elif username == mqtt_auth.INGEST_USER:
        expected = mqtt.ingest_password
        ok = bool(expected) and hmac.compare_digest(password.encode("utf-8"),
                                                     (expected or "").encode("utf-8"))
    else:
        found = gw_repo.by_username(conn, username or "")
        if found is None:
            mqtt_auth.burn_verify(password)
            ok = False
        else:
            ok = mqtt_auth.verify_password(password, found[2])
    return {"result": "allow" if ok else "deny", "is_superuser": False}


@router.post("/mqtt/authorize", response_model=AuthorizeResult)
def authorize(body: AuthorizeRequest, _: BrokerDep, conn: DbDep,
              mqtt: IdentityDep) -> dict[str, Any]:
    """EMQX HTTP authorization: may this client publish to (or subscribe to) this topic?"""
    topic = body.topic
    if body.action == "subscribe":  # a shared subscription is judged by its filter
        if topic.startswith("$share/"):
            parts = topic.split("/", 2)
            topic = parts[2] if len(parts) == 3 else ""
        elif topic.startswith("$queue/"):
            topic = topic[len("$queue/"):]
    who = _identity(conn, body.username)
    closed: frozenset[str] = frozenset()
    if who.kind == "anonymous" and mqtt.mode == "auto":
        levels = topic.split("/")
        candidates = [levels[2]] if len(levels) > 2 and levels[2] not in ("+", "#") else None
        closed = gw_repo.closed_enterprises(conn, candidates)
    rules = mqtt_auth.rules_for(who, mqtt.mode, closed)
    ok = mqtt_auth.allowed(rules, body.action, topic)
    return {"result": "allow" if ok else "deny"}


def _identity(conn: Any, username: str | None) -> Identity:
    if _anonymous(username):
        return Identity("anonymous")
    if username == mqtt_auth.INGEST_USER:
        return Identity("ingest")
    found = gw_repo.by_username(conn, username or "")
    if found is None:
        return Identity("unknown")
    return Identity("gateway", found[0], found[1])

"""The endpoints EMQX calls (HTTP authentication and authorization): the shared secret, the
decisions, and the same decisions as the mosquitto files, rule by rule, checked against a real
mosquitto in both enforcing modes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from hazmon.mqtt_auth import CHECK_USER, INGEST_USER, MqttIdentity
from tests.security.conftest import NOT_AUTHORIZED, SECRET, Client, Stack

AUTHN, AUTHZ = "/api/v1/mqtt/authenticate", "/api/v1/mqtt/authorize"
BROKER = {"X-Hazmon-Broker-Secret": SECRET}


@pytest.fixture(scope="module")
def creds(auto: Stack, on: Stack) -> dict[str, tuple[str, str]]:
    """Gateways registered through the auto stack; the on broker reads the same database."""
    for code in ("A3", "B3", "OPEN3", "D3"):
        auto.enterprise(code)
    out = {"A3/g1": auto.register("A3", "g1"), "A3/g2": auto.register("A3", "g2"),
           "B3/g1": auto.register("B3", "g1"), "D3/gone": auto.register("D3", "gone")}
    auto.delete("D3", "gone")
    on.broker.refresh_auth()
    return out


def authn(s: Stack, username: str | None, password: str | None) -> str:
    r = s.api.post(AUTHN, json={"username": username, "password": password, "clientid": "c"},
                   headers=BROKER)
    assert r.status_code == 200 and r.json()["is_superuser"] is False, r.text
    return str(r.json()["result"])


def authz(s: Stack, username: str | None, topic: str, action: str) -> str:
    r = s.api.post(AUTHZ, json={"username": username, "topic": topic, "action": action},
                   headers=BROKER)
    assert r.status_code == 200, r.text
    return str(r.json()["result"])


# --- the shared secret ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", [AUTHN, AUTHZ])
def test_the_secret_is_required(auto: Stack, creds: dict, path: str) -> None:
    body = {"username": "A3/g1", "password": creds["A3/g1"][1], "topic": "t", "action": "publish"}
    assert auto.api.post(path, json=body).status_code == 401
    assert auto.api.post(path, json=body, headers=auto.admin).status_code == 403  # no user tokens
    for wrong in ("", "x", SECRET + "x", SECRET[:-1], SECRET.upper()):
        r = auto.api.post(path, json=body, headers={"X-Hazmon-Broker-Secret": wrong})
        assert r.status_code == 403 and SECRET not in r.text, wrong
    assert auto.api.post(path, json=body, headers=BROKER).status_code == 200


@pytest.fixture
def no_secret(auto: Stack) -> Iterator[None]:
    services = auto.api.app.state.services  # type: ignore[attr-defined]
    saved = services.extra["mqtt"]
    services.extra["mqtt"] = MqttIdentity(mode="auto", broker_secret=None)
    yield
    services.extra["mqtt"] = saved


@pytest.mark.parametrize("path", [AUTHN, AUTHZ])
def test_endpoints_are_off_without_a_configured_secret(auto: Stack, no_secret: None,
                                                       path: str) -> None:
    body = {"username": None, "password": None, "topic": "t", "action": "publish"}
    assert auto.api.post(path, json=body, headers=BROKER).status_code == 403
    assert auto.api.post(path, json=body, headers={"X-Hazmon-Broker-Secret": ""}).status_code == 403


@pytest.mark.parametrize("body", [{}, {"username": "u", "topic": "t"}, {"topic": "t", "action": 1},
                                  {"username": "x" * 300, "password": "p"}])
def test_malformed_requests_are_422(auto: Stack, creds: dict, body: dict[str, Any]) -> None:
    path = AUTHZ if "topic" in body or not body else AUTHN
    assert auto.api.post(path, json=body, headers=BROKER).status_code == 422


def test_the_endpoints_are_not_audited_and_never_echo_passwords(auto: Stack, creds: dict) -> None:
    user, password = creds["A3/g1"]
    r = auto.api.post(AUTHN, json={"username": user, "password": password}, headers=BROKER)
    assert r.json() == {"result": "allow", "is_superuser": False} and password not in r.text


# --- decisions -----------------------------------------------------------------------------------


def test_authenticate(auto: Stack, on: Stack, creds: dict) -> None:
    user, password = creds["A3/g1"]
    for s, anonymous in ((auto, "allow"), (on, "deny")):
        assert s.broker.auth is not None and s.broker.auth.ingest_password
        ingest = s.broker.auth.ingest_password
        assert authn(s, user, password) == "allow"
        assert authn(s, user, password + "x") == "deny"
        assert authn(s, user, "") == "deny"
        assert authn(s, user, None) == "deny"
        assert authn(s, "A3/g2", password) == "deny"        # another gateway's password
        assert authn(s, "A3/nobody", password) == "deny"
        assert authn(s, *creds["D3/gone"]) == "deny"        # deleted
        assert authn(s, INGEST_USER, ingest) == "allow"
        assert authn(s, INGEST_USER, ingest + "x") == "deny"
        assert authn(s, CHECK_USER, "anything") == "deny"   # mosquitto's reload check only
        assert authn(s, None, None) == anonymous
        assert authn(s, "", "") == anonymous


def test_authorize(auto: Stack, on: Stack, creds: dict) -> None:
    for s in (auto, on):
        assert authz(s, "A3/g1", "hazmon/v1/A3/g1/readings", "publish") == "allow"
        assert authz(s, "A3/g1", "hazmon/v1/A3/g1/status", "publish") == "allow"
        assert authz(s, "A3/g1", "hazmon/v1/A3/g2/readings", "publish") == "deny"
        assert authz(s, "A3/g1", "hazmon/v1/B3/g1/readings", "publish") == "deny"
        assert authz(s, "A3/g1", "hazmon/v1/A3/g1/readings", "subscribe") == "deny"
        assert authz(s, "A3/g1", "hazmon/v1/A3/g1/readings", "all") == "deny"
        assert authz(s, "D3/gone", "hazmon/v1/D3/gone/readings", "publish") == "deny"
        assert authz(s, "nobody", "hazmon/v1/OPEN3/g/readings", "publish") == "deny"
        assert authz(s, INGEST_USER, "hazmon/v1/+/+/readings", "subscribe") == "allow"
        assert authz(s, INGEST_USER, "hazmon/v1/A3/+/status", "subscribe") == "allow"
        assert authz(s, INGEST_USER, "$share/hazmon/hazmon/v1/+/+/readings", "subscribe") == "allow"
        assert authz(s, INGEST_USER, "#", "subscribe") == "deny"
        assert authz(s, INGEST_USER, "$share/g/#", "subscribe") == "deny"
        assert authz(s, INGEST_USER, "hazmon/v1/A3/g1/readings", "publish") == "deny"
    assert authz(auto, None, "hazmon/v1/OPEN3/g/readings", "publish") == "allow"
    assert authz(auto, "", "hazmon/v1/OPEN3/g/readings", "publish") == "allow"
    assert authz(auto, None, "hazmon/v1/A3/g9/readings", "publish") == "deny"   # closed
    assert authz(auto, None, "hazmon/v1/D3/x/readings", "publish") == "deny"    # stays closed
    assert authz(auto, None, "hazmon/v1/OPEN3/g/readings", "subscribe") == "deny"
    assert authz(auto, None, "hazmon/v1/+/+/readings", "subscribe") == "deny"
    assert authz(on, None, "hazmon/v1/OPEN3/g/readings", "publish") == "deny"


# --- the same rules on both sides ----------------------------------------------------------------

TOPICS = ["hazmon/v1/A3/g1/readings", "hazmon/v1/A3/g1/status", "hazmon/v1/A3/g1",
          "hazmon/v1/A3/g1/x/y", "hazmon/v1/A3/g2/readings", "hazmon/v1/B3/g1/readings",
          "hazmon/v1/OPEN3/g/readings", "hazmon/v1/D3/x/readings", "hazmon/v1/A3",
          "hazmon/v1", "hazmon/v2/A3/g1/readings", "other/topic"]


def identities(s: Stack, creds: dict) -> dict[str, tuple[str | None, str | None]]:
    return {"gateway": creds["A3/g1"], "ingest": (INGEST_USER, s.broker.auth.ingest_password),  # type: ignore[union-attr]
            "anonymous": (None, None), "deleted": creds["D3/gone"],
            "wrong password": (creds["A3/g1"][0], "wrong")}


@pytest.mark.parametrize("mode", ["auto", "on"])
def test_every_rule_is_the_same_in_mosquitto_and_for_emqx(request: pytest.FixtureRequest,
                                                          creds: dict, mode: str) -> None:
    s: Stack = request.getfixturevalue(mode)
    clients: dict[str, Client] = {}
    for name, (user, password) in identities(s, creds).items():
        c = s.client(user, password)
        assert c.accepted == (authn(s, user, password) == "allow"), (mode, name, c.connack)
        if c.accepted:
            clients[name] = c
        else:
            c.close()
    checked = 0
    for name, c in clients.items():
        user = identities(s, creds)[name][0]
        for topic in TOPICS:
            broker = c.publish(topic) != NOT_AUTHORIZED
            assert broker == (authz(s, user, topic, "publish") == "allow"), (mode, name, topic)
            checked += 1
    # reading: who receives what a permitted publisher sends (mosquitto checks reads per message)
    publishers = {"hazmon/v1/A3/g1/readings": clients.get("gateway"),
                  "hazmon/v1/OPEN3/g/readings": clients.get("anonymous")}
    for topic, publisher in publishers.items():
        if publisher is None:
            continue
        for c in clients.values():
            c.subscribe(topic)
        publisher.publish(topic, b"read check")
        time.sleep(0.3)
        for name, c in clients.items():
            got = []
            while not c.messages.empty():
                got.append(c.messages.get()[0])
            user = identities(s, creds)[name][0]
            assert (topic in got) == (authz(s, user, topic, "subscribe") == "allow"), (mode, name, topic)
            checked += 1
    for c in clients.values():
        c.close()
    assert checked >= 2 * len(TOPICS)

"""The demo simulator registers its gateways through the API and connects with their own
credentials, so ``hazmon demo`` works with HAZMON_MQTT_AUTH=on (and over TLS)."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from simulators import plant as sim
from simulators.scenario import DEMO_PLANT
from tests.security.conftest import Stack
from tests.support import wait_for

KEYS = [(e.code, g.code) for e in DEMO_PLANT for g in e.gateways]


@pytest.fixture(scope="module")
def api(on: Stack) -> TestClient:
    for e in DEMO_PLANT:
        on.enterprise(e.code)
    return TestClient(on.api.app, headers=on.admin)


def links(on: Stack, creds: dict, *, tls: bool = False) -> list[sim.GatewayLink]:
    port = on.broker.tls_port if tls else on.broker.port
    target = sim.BrokerTarget("127.0.0.1", port, tls=tls)  # type: ignore[arg-type]
    ca = str(on.broker.ca_file) if tls else None
    out = [sim.GatewayLink(e, g, target, creds.get((e, g)), ca) for e, g in KEYS]
    sim.connect_all(out, 10, threading.Event())
    return out


def assert_received(watcher: object, started: list[sim.GatewayLink]) -> None:
    """hazmon got every gateway's 'online' status and readings."""
    expected = {link.topic for link in started} | {link.status for link in started}
    seen: set[str] = set()
    while not expected <= seen:
        seen.add(watcher.messages.get(timeout=5)[0])  # type: ignore[attr-defined]


def test_simulated_gateways_register_and_publish_as_themselves(on: Stack, api: TestClient) -> None:
    creds = sim.register_gateways(api, KEYS)
    assert set(creds) == set(KEYS) and all(u == f"{e}/{g}" for (e, g), (u, _) in creds.items())
    watcher = on.ingest()
    started = links(on, creds)
    for link in started:
        assert link.publish(b'{"readings": []}')
    assert_received(watcher, started)
    # a second run: the gateways are registered already, so their credentials are rotated
    # (passwords are shown once), and the first run's sessions are ended
    again = sim.register_gateways(api, KEYS)
    assert all(again[k][1] != creds[k][1] for k in KEYS)
    wait_for(lambda: not any(link.connected.is_set() for link in started), timeout=5,
             what="old sessions ended")
    for link in started:
        link.stopping = True
        link.client.disconnect()
        link.client.loop_stop()
    second = links(on, again, tls=True)  # over TLS, trusting hazmon's CA
    for link in second:
        assert link.publish(b'{"readings": []}')
    assert_received(watcher, second)
    for link in second:
        link.stop()
    watcher.close()


def test_without_registration_the_broker_refuses_them(on: Stack, api: TestClient) -> None:
    link = sim.GatewayLink(*KEYS[0], sim.BrokerTarget("127.0.0.1", on.broker.port))  # type: ignore[arg-type]
    with pytest.raises(Exception, match="unreachable"):
        sim.connect_all([link], 1.5, threading.Event())
    link.stop()


def test_an_api_without_gateway_registration_is_left_alone() -> None:
    requests: list[str] = []

    def old_api(request: httpx.Request) -> httpx.Response:
        requests.append(f"{request.method} {request.url.path}")
        return httpx.Response(200, json={"paths": {"/api/v1/enterprises": {}}})

    client = httpx.Client(base_url="http://hazmon.test", transport=httpx.MockTransport(old_api))
    assert sim.register_gateways(client, KEYS) == {}
    assert requests == ["GET /openapi.json"]


def test_default_ca_file(tmp_path: Path) -> None:
    env = {"HAZMON_DATA_DIR": str(tmp_path)}
    assert sim.default_ca_file(env) is None
    (tmp_path / "broker").mkdir()
    (tmp_path / "broker" / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    assert sim.default_ca_file(env) == str(tmp_path / "broker" / "ca.crt")

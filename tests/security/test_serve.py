"""``hazmon serve`` with its embedded mosquitto, HAZMON_MQTT_AUTH=on and HAZMON_MQTT_TLS=on: a
gateway registered through the API gets its reading stored, nobody else gets in, no secret
reaches the console output or runtime.json, and the demo simulator streams in this mode.

Skipped until the settings are wired (HAZMON_MQTT_AUTH and friends in hazmon/settings.py)."""

from __future__ import annotations

import json
import ssl
import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from hazmon.mqtt_auth import connack_code
from hazmon.settings import Settings
from tests.security.conftest import Client
from tests.support import Hazmon, wait_for

pytestmark = pytest.mark.skipif("mqtt_auth" not in Settings.model_fields,
                                reason="HAZMON_MQTT_AUTH is not wired into the settings yet")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, db_url: str) -> Iterator[Hazmon]:
    data = tmp_path_factory.mktemp("serve")
    server = Hazmon(data, db_url, mqtt_url="", extra_env={
        "HAZMON_MQTT_URL": "", "HAZMON_MQTT_AUTH": "on", "HAZMON_MQTT_TLS": "on",
        "HAZMON_MQTT_BROKER_SECRET": "s-" + uuid.uuid4().hex})
    server.start()
    yield server
    server.stop()


def test_a_registered_gateway_is_ingested_and_nobody_else_gets_in(served: Hazmon) -> None:
    api = served.api()
    assert api.post("/api/v1/enterprises", json={"code": "SV", "name": "sv"}).status_code == 201
    r = api.put("/api/v1/enterprises/SV/points", content="tag,kind\nSV-1,level\n",
                headers={"Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    creds = api.post("/api/v1/enterprises/SV/gateways", json={"code": "gw"}).json()
    broker = served.data_dir / "broker"
    port, tls_port = int((broker / "port").read_text()), int((broker / "tls_port").read_text())
    assert connack_code("127.0.0.1", port, None, None) != 0
    assert connack_code("127.0.0.1", port, creds["username"], "wrong") != 0
    gw = Client(tls_port, creds["username"], creds["password"],
                tls={"ca_certs": str(broker / "ca.crt"), "cert_reqs": ssl.CERT_REQUIRED})
    assert gw.accepted, (gw.error, gw.connack)
    ts = int(time.time() * 1000)
    body = json.dumps({"ts": ts, "readings": [{"tag": "SV-1", "value": 4.2}]})
    assert gw.publish("hazmon/v1/SV/gw/readings", body) != 135
    point = wait_for(lambda: (api.get("/api/v1/enterprises/SV/points/SV-1").json().get("latest")
                              or None), what="the reading stored")
    assert point["value"] == 4.2
    gw.close()
    assert api.get("/readyz").status_code == 200  # hazmon's own subscriber got in


def test_no_secret_in_the_output_or_runtime_json(served: Hazmon) -> None:
    runtime = json.loads((served.data_dir / "runtime.json").read_text())
    assert "@" not in runtime["mqtt_url"]  # the simulator reads it: no hazmon-ingest password
    ingest_password = (served.data_dir / "mqtt_ingest_password").read_text().strip()
    assert ingest_password not in served.log()
    assert ingest_password not in (served.data_dir / "runtime.json").read_text()


def test_the_demo_simulator_streams_with_its_own_credentials(served: Hazmon,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    from simulators import plant

    monkeypatch.setenv("HAZMON_DATA_DIR", str(served.data_dir))
    monkeypatch.delenv("HAZMON_MQTT_URL", raising=False)
    monkeypatch.delenv("HAZMON_ADMIN_TOKEN", raising=False)
    parser = argparse.ArgumentParser()
    plant.add_arguments(parser)
    args = parser.parse_args(["--token", served.token, "--interval", "0.5", "--duration", "3",
                              "--seed", "1", "--wait", "20"])
    assert plant.run(args, threading.Event()) == 0
    api = served.api()

    def said_goodbye() -> set[str]:  # registered, connected, streamed, said 'offline' at the end
        items = api.get("/api/v1/enterprises/DEMO-CHEM/gateways").json()["items"]
        return {g["code"] for g in items if g["registered"] and g["status"] == "offline"}
    assert wait_for(said_goodbye, timeout=10, what="the simulated gateways recorded offline")
    from simulators.scenario import DEMO_PLANT

    tag = DEMO_PLANT[0].points[0].tag
    point = api.get(f"/api/v1/enterprises/{DEMO_PLANT[0].code}/points/{tag}").json()
    assert point["latest"] is not None  # the readings were stored
    rejections = api.get("/api/v1/rejections", params={"enterprise": "DEMO-CHEM"}).json()["items"]
    assert not [r for r in rejections if "not registered" in r["reason"]]


def test_credentials_survive_a_restart(served: Hazmon) -> None:
    api = served.api()
    creds = api.post("/api/v1/enterprises/SV/gateways", json={"code": "gw2"}).json()
    before = (served.data_dir / "broker" / "port").read_text()
    served.stop()
    served.start()
    port = int((served.data_dir / "broker" / "port").read_text())
    assert str(port) == before.strip()  # gateways in the field keep their address
    assert connack_code("127.0.0.1", port, creds["username"], creds["password"]) == 0
    assert connack_code("127.0.0.1", port, None, None) != 0

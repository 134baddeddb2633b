"""End to end: a reading over MQTT raises an alarm in a real ``hazmon serve``; rules and channels
are made through its API; a NotifierService on the same database (on a clock the test drives,
set to the reading's time) tells the local receiver, escalates, and stops when the alarm is
acknowledged through the API; the API shows the delivery log.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from alerting.notify.clock import ManualClock
from alerting.notify.service import NotifierService
from tests.notify.receivers import Receiver
from tests.support import Gateway, Hazmon, wait_for

E = "E-NOTIFY"
POINTS = "tag,kind,unit,hi,hihi,deadband\nN-1,pressure,kPa,80,90,1\n"
MS = timedelta(milliseconds=1)


@pytest.fixture(scope="module")
def hazmon(db_url: str, mqtt_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hazmon]:
    """A real server whose own notifier is off: this test drives one with a controlled clock."""
    server = Hazmon(data_dir=tmp_path_factory.mktemp("hazmon"), db_url=db_url, mqtt_url=mqtt_url,
                    extra_env={"HAZMON_NOTIFIER": "off"})
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api(hazmon: Hazmon) -> httpx.Client:
    client = hazmon.api()
    assert client.post("/api/v1/enterprises", json={"code": E, "name": "通知化工"}).status_code == 201
    r = client.put(f"/api/v1/enterprises/{E}/points", content=POINTS,
                   headers={"Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    return client


@pytest.fixture
def gateway(api: httpx.Client, mqtt_url: str) -> Iterator[Gateway]:
    g = Gateway(mqtt_url, E)
    yield g
    g.close()


def test_an_mqtt_alarm_is_notified_escalated_and_stops_on_ack(
        hazmon: Hazmon, api: httpx.Client, gateway: Gateway, receiver: Receiver) -> None:
    for name in ("e2e-ops", "e2e-principal", "e2e-county"):
        r = api.post("/api/v1/notifications/channels", json={
            "name": name, "kind": "webhook", "url": receiver.url(f"/{name}"),
            "secret": "e2e-secret-0123456789"})
        assert r.status_code == 201, r.text
    r = api.post("/api/v1/notifications/rules", json={
        "name": "e2e", "enterprises": [E], "group_wait_s": 10, "tiers": [
            {"after_s": 0, "channels": ["e2e-ops"]}, {"after_s": 60, "channels": ["e2e-principal"]},
            {"after_s": 120, "channels": ["e2e-county"]}]})
    assert r.status_code == 201, r.text

    reading_ms = time.time_ns() // 1_000_000 - 300_000        # five minutes ago, exact ms
    t0 = datetime.fromtimestamp(reading_ms / 1000, UTC)
    clock = ManualClock(t0)
    service = NotifierService(hazmon.db_url, clock, tick_s=3600)
    service.start()
    try:
        gateway.publish([{"tag": "N-1", "value": 85, "ts": reading_ms}])
        alarm = wait_for(lambda: api.get("/api/v1/alarms", params={"enterprise": E}).json()["items"],
                         what="the HI alarm")[0]

        def at(seconds: float, minus: timedelta = timedelta(0)) -> list[str]:
            clock.set(t0 + timedelta(seconds=seconds) - minus)
            service.sync()
            return receiver.paths()

        assert at(0) == []
        assert at(10, MS) == [] and at(10) == ["/e2e-ops"]
        assert at(60, MS) == ["/e2e-ops"] and at(60) == ["/e2e-ops", "/e2e-principal"]
        first = receiver.requests[0].json()
        assert first["alarms"][0]["id"] == alarm["id"] and first["alarms"][0]["tag"] == "N-1"
        assert api.post(f"/api/v1/alarms/{alarm['id']}/ack").status_code == 200
        assert at(120, MS) == at(120) == at(3610) == ["/e2e-ops", "/e2e-principal"]
        log = api.get(f"/api/v1/alarms/{alarm['id']}/deliveries").json()["items"]
        assert [(d["channel"], d["reason"], d["status"]) for d in log] == [
            ("e2e-ops", "first", "ok"), ("e2e-principal", "escalation", "ok")]
    finally:
        service.stop()

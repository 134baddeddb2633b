"""Incidents end to end on a real database: correlation rules open incidents (and must not),
the reporting clock is escalated on time, one service instance works per database, and
incidents opened by hand are dispatched and exported as HTML and PDF."""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from alerting.response_service import ResponseService
from tests.response.conftest import FakeClock, World
from tests.response.service_support import Listener, running, settle
from tests.support import wait_for

MS = timedelta(milliseconds=1)


@pytest.fixture(scope="module")
def service(db_url: str, clock: FakeClock, api: TestClient) -> Iterator[ResponseService]:
    with running(db_url, clock) as svc:
        yield svc


@pytest.fixture(scope="module")
def heard(db_url: str) -> Iterator[Listener]:
    listener = Listener(db_url, "hazmon_response")
    yield listener
    listener.close()


def incidents_of(api: TestClient, ent: str) -> list[dict[str, Any]]:
    r = api.get("/api/v1/incidents", params={"enterprise": ent})
    assert r.status_code == 200, r.text
    return r.json()["items"]


@pytest.mark.parametrize("ent, gap, second, opens", [
    ("I-GAS-5M", timedelta(minutes=5), "GT-2", True),             # exactly 5 min: opens
    ("I-GAS-5M1", timedelta(minutes=5) + MS, "GT-2", False),      # 5 min + 1 ms: does not
    ("I-GAS-TOX", timedelta(seconds=30), "AT-1", True),           # gas + toxic gas detectors
    ("I-GAS-ONE", timedelta(seconds=30), "GT-1", False),          # one detector twice (re-activation)
    ("I-GAS-O2", timedelta(seconds=30), "O2-1", False),           # oxygen is not a gas detector
])
def test_two_gas_detectors_within_5_minutes(api: TestClient, world: World, service: ResponseService,
                                            clock: FakeClock, ent: str, gap: timedelta,
                                            second: str, opens: bool) -> None:
    world.plant(ent, "HS", level=3)
    t0 = clock.now - timedelta(minutes=10)
    first = world.alarm(ent, "GT-1", "HI", priority="medium", at=t0)
    if second == "GT-1":                                            # return, then activate again
        world.alarm(ent, "GT-1", "HI", priority="medium", active=False, at=t0 + gap / 2)
    world.alarm(ent, second, "HI", priority="medium", at=t0 + gap)
    settle(service, 3)
    found = incidents_of(api, ent)
    assert bool(found) is opens, found
    if opens:
        incident = api.get(f"/api/v1/incidents/{found[0]['id']}").json()
        assert incident["rule"] == "gas_multi_detector" and incident["hazard_source"] == "HS"
        assert incident["title"] == "HS 罐区 多点气体报警"
        assert {a["tag"] for a in incident["alarms"]} == {"GT-1", second}
        assert datetime.fromisoformat(incident["occurred_at"]) == t0
        kinds = [e["kind"] for e in incident["timeline"]]
        assert kinds[0] == "opened" and kinds.count("alarm") == 2 and "notification" in kinds
        assert first in {a["id"] for a in incident["alarms"]}


@pytest.mark.parametrize("ent, level, opens", [("I-HH-L1", 1, True), ("I-HH-L2", 2, False)])
def test_hihi_at_a_level_1_source(api: TestClient, world: World, service: ResponseService,
                                  clock: FakeClock, heard: Listener, ent: str, level: int,
                                  opens: bool) -> None:
    world.plant(ent, "HS", level=level)
    world.alarm(ent, "PT-1", "HIHI", priority="high", at=clock.now - timedelta(seconds=5))
    settle(service, 3)
    found = incidents_of(api, ent)
    assert bool(found) is opens
    if opens:
        assert found[0]["rule"] == "hihi_level1" and found[0]["level"] == 1
        note = wait_for(lambda: next((p for p in heard.take() if p["kind"] == "incident_opened"
                                      and p["enterprise"] == ent), None), what="incident_opened")
        assert note["incident_id"] == found[0]["id"] and note["hazard_source"] == "HS"


def test_further_alarms_join_the_open_incident(api: TestClient, world: World,
                                               service: ResponseService, clock: FakeClock) -> None:
    world.alarm("I-HH-L1", "GT-1", "HIHI", priority="high", at=clock.now - timedelta(seconds=2))
    settle(service, 3)
    found = incidents_of(api, "I-HH-L1")
    assert len(found) == 1
    tags = {a["tag"] for a in api.get(f"/api/v1/incidents/{found[0]['id']}").json()["alarms"]}
    assert tags == {"PT-1", "GT-1"}


def test_reporting_clock_escalates_when_missed(api: TestClient, service: ResponseService,
                                               clock: FakeClock, heard: Listener) -> None:
    incident = incidents_of(api, "I-HH-L1")[0]
    due = datetime.fromisoformat(incident["report_clock"]["due_at"])
    assert due == datetime.fromisoformat(incident["occurred_at"]) + timedelta(hours=1)
    assert incident["report_clock"]["overdue"] is False
    clock.now = due - MS
    settle(service)
    assert incidents_of(api, "I-HH-L1")[0]["report_overdue_at"] is None
    assert not [p for p in heard.take() if p["kind"] == "incident_report_overdue"
                and p["incident_id"] == incident["id"]]
    clock.now = due
    note = wait_for(lambda: next((p for p in heard.take() if p["kind"] == "incident_report_overdue"
                                  and p["incident_id"] == incident["id"]), None), what="overdue")
    assert note["enterprise"] == "I-HH-L1" and note["level"] == 1
    now = incidents_of(api, "I-HH-L1")[0]
    assert now["report_clock"]["overdue"] is True and now["report_overdue_at"]
    r = api.post(f"/api/v1/incidents/{incident['id']}/report", json={"to": "某县应急管理局"})
    assert r.status_code == 200 and r.json()["report_clock"]["late"] is True
    assert api.post(f"/api/v1/incidents/{incident['id']}/report", json={}).status_code == 409
    kinds = [e["kind"] for e in api.get(f"/api/v1/incidents/{incident['id']}/timeline").json()["items"]]
    assert kinds.count("report_overdue") == 1 and kinds[-1] == "report"


def test_one_active_instance_per_database(db_url: str, clock: FakeClock,
                                          service: ResponseService) -> None:
    standby = ResponseService(db_url, clock=clock, tick_s=0.05)
    standby.start()
    try:
        settle(service, 3)
        assert service.active and not standby.active
        service.stop()
        wait_for(lambda: standby.active, what="the standby takes over")
    finally:
        standby.stop()
        service.start()
        wait_for(lambda: service.active, what="service back")


def pdf_strings(pdf: bytes) -> str:
    """The text of a PDF's literal strings (inflated streams; UTF-16 strings decoded)."""
    chunks = [pdf]
    for m in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.DOTALL):
        try:
            chunks.append(zlib.decompress(m.group(1)))
        except zlib.error:
            pass
    out = []
    for chunk in chunks:
        for lit in re.findall(rb"\(((?:\\.|[^\\)])*)\)", chunk, re.DOTALL):
            raw = re.sub(rb"\\([0-7]{1,3})", lambda m: bytes([int(m.group(1), 8) & 0xFF]), lit)  # PDF: overflow ignored
            raw = re.sub(rb"\\(.)", rb"\1", raw)
            text = raw[2:] if raw.startswith(b"\xfe\xff") else raw
            out.append(text.decode("utf-16-be", "replace") if len(text) % 2 == 0 else "")
    return "\n".join(out)


def test_incident_by_hand_dispatch_and_export(api: TestClient, world: World, clock: FakeClock) -> None:
    world.plant("I-HAND", "HS-LPG", level=2)
    api.put("/api/v1/enterprises/I-HAND/hazard-sources/HS-LPG/record", json={
        "lat": 30.0, "lon": 120.0, "responsibles": {"principal": {"name": "赵六", "phone": "13900000000"}}})
    team = api.post("/api/v1/rescue-resources", json={"kind": "team", "name": "县消防救援大队",
                                                      "lat": 30.1, "lon": 120.0}).json()
    alarm_id = world.alarm("I-HAND", "PT-1", "HI", priority="high", at=clock.now - timedelta(minutes=3))
    dispatcher = world.token("i-dispatcher", "dispatcher")
    title = "液化石油气储罐区压力异常升高"
    r = api.post("/api/v1/incidents", headers=dispatcher, json={
        "enterprise": "I-HAND", "title": title, "alarm_ids": [alarm_id], "note": "电话通知企业"})
    assert r.status_code == 201, r.text
    incident = r.json()
    assert incident["hazard_source"] == "HS-LPG" and incident["status"] == "open"
    assert incident["opened_by"] == "i-dispatcher"
    url = f"/api/v1/incidents/{incident['id']}"
    r = api.post(url + "/dispatches", headers=dispatcher, json={"resource_id": team["id"],
                                                                "what": "两辆水罐车, 12人"})
    assert r.status_code == 201, r.text
    d = r.json()["items"][0]
    assert d["distance_km"] == pytest.approx(11.12, abs=0.01) and d["status"] == "requested"
    r = api.post(f"{url}/dispatches/{d['id']}/status", headers=dispatcher, json={"status": "on_scene"})
    assert r.json()["items"][0]["status"] == "on_scene"
    assert api.get(url).json()["status"] == "responding"            # dispatching starts the response
    api.post(url + "/notes", headers=dispatcher, json={"text": "已通知县局值班室", "kind": "notification"})
    assert api.post(url + "/status", headers=dispatcher, json={"status": "closed"}).status_code == 200
    assert api.post(url + "/status", headers=dispatcher, json={"status": "open"}).status_code == 409
    kinds = [e["kind"] for e in api.get(url + "/timeline").json()["items"]]
    for kind in ("opened", "alarm", "note", "notification", "dispatch", "status"):
        assert kind in kinds, kinds
    html = api.get(url + "/export", params={"format": "html"})
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert title in html.text and "赵六" in html.text and "县消防救援大队" in html.text
    pdf = api.get(url + "/export", params={"format": "pdf"})
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert title in pdf_strings(pdf.content)


def test_incident_input_and_scoping(api: TestClient, world: World) -> None:
    ent_user = world.token("i-hand-user", "enterprise", ["I-HAND"])
    foreign = api.get("/api/v1/alarms", params={"enterprise": "I-HH-L1"}).json()["items"][0]["id"]
    r = api.post("/api/v1/incidents", json={"enterprise": "I-HAND", "title": "x", "alarm_ids": [foreign]})
    assert r.status_code == 422                                      # not this enterprise's alarm
    assert api.post("/api/v1/incidents", headers=ent_user, json={
        "enterprise": "I-HAND", "title": "x"}).status_code == 403    # enterprises do not dispatch
    mine = {i["enterprise"] for i in api.get("/api/v1/incidents", headers=ent_user).json()["items"]}
    assert mine == {"I-HAND"}
    other = incidents_of(api, "I-HH-L1")[0]["id"]
    assert api.get(f"/api/v1/incidents/{other}", headers=ent_user).status_code == 404
    assert api.get(f"/api/v1/incidents/{other}/export", headers=ent_user).status_code == 404
    assert api.put("/api/v1/incidents/rules", json={"rules": [{"name": "x"}]}).status_code == 422
    r = api.put("/api/v1/incidents/rules", json={"report_deadline_s": 900})
    assert r.status_code == 200 and r.json()["rules"][0]["name"] == "gas_multi_detector"


def test_a_failing_step_is_skipped_not_fatal(db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    import psycopg

    def boom(conn: psycopg.Connection) -> None:
        conn.execute("INSERT INTO response_cursor VALUES ('poison', 1)")
        conn.execute("SELECT 1 / 0")

    with psycopg.connect(db_url, autocommit=True) as conn:
        ResponseService._guarded(conn, "a poison event", boom)          # logged, not raised
        assert "a poison event failed" in caplog.text
        assert conn.execute("SELECT count(*) FROM response_cursor WHERE name = 'poison'").fetchone() == (0,)

"""Risk warnings end to end on a real database: alarms (written as the engine writes them) raise
warnings through the running response service; the closed loop through the API; a missed
deadline is recorded and announced on ``hazmon_warnings``; the clock is the test's.

The tests run in order and share one clock, which only moves forward.
"""

from __future__ import annotations

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
    listener = Listener(db_url, "hazmon_warnings")
    yield listener
    listener.close()


@pytest.fixture(scope="module")
def news(db_url: str) -> Iterator[Listener]:
    listener = Listener(db_url, "hazmon_response")
    yield listener
    listener.close()


def open_warnings(api: TestClient, ent: str) -> list[dict[str, Any]]:
    r = api.get("/api/v1/warnings", params={"enterprise": ent, "state": "open"})
    assert r.status_code == 200, r.text
    return r.json()["items"]


def wait_warning(api: TestClient, ent: str, color: str) -> dict[str, Any]:
    return wait_for(lambda: next((w for w in open_warnings(api, ent) if w["color"] == color), None),
                    what=f"a {color} warning in {ent}")


def test_high_gas_alarm_at_level_1_is_red(api: TestClient, world: World, service: ResponseService,
                                          heard: Listener, news: Listener) -> None:
    world.plant("W-L1", "HS-1", level=1)
    alarm_id = world.alarm("W-L1", "GT-1", "HI", priority="high")
    w = wait_warning(api, "W-L1", "red")
    assert (w["hazard_source"], w["level"], w["state"], w["step"]) == ("HS-1", 1, "issued", "acknowledge")
    assert "GT-1 HI (high) → red" in w["reason"]
    issued = news.wait("warning_issued")
    assert issued["warning_id"] == w["id"] and issued["color"] == "red"
    summary = api.get("/api/v1/warnings/summary", params={"enterprise": "W-L1"}).json()["items"]
    assert summary[0]["color"] == "red" and summary[0]["hazard_sources"][0]["code"] == "HS-1"
    assert alarm_id


def test_escalation_at_level_3(api: TestClient, world: World, service: ResponseService,
                               news: Listener) -> None:
    world.plant("W-L3", "HS-3", level=3)
    world.alarm("W-L3", "GT-1", "HI", priority="medium")        # medium gas at level 3: yellow
    first = wait_warning(api, "W-L3", "yellow")
    world.alarm("W-L3", "GT-2", "HIHI", priority="high")        # high gas at level 3: orange
    w = wait_warning(api, "W-L3", "orange")
    assert w["id"] == first["id"]                               # the same warning, escalated
    assert news.wait("warning_escalated")["warning_id"] == w["id"]
    events = api.get(f"/api/v1/warnings/{w['id']}/events").json()["items"]
    assert [e["action"] for e in events] == ["issue", "escalate"]


def test_alarm_outside_a_hazard_source_gives_an_enterprise_warning(
        api: TestClient, world: World, service: ResponseService) -> None:
    world.plant("W-ENT", "HS-E", level=4)
    world.alarm("W-ENT", "XT-9", "HI", priority="medium")       # medium, other, no source: nothing
    world.alarm("W-ENT", "PT-1", "LO", priority="low")          # low at level 4: nothing
    settle(service)
    assert open_warnings(api, "W-ENT") == []
    world.alarm("W-ENT", "XT-9", "HIHI", priority="high")       # high, other, no source: blue
    w = wait_warning(api, "W-ENT", "blue")
    assert w["hazard_source"] is None and w["level"] is None


def test_returned_alarm_raises_nothing(api: TestClient, world: World, service: ResponseService) -> None:
    world.plant("W-RTN", "HS-R", level=1)
    world.alarm("W-RTN", "PT-1", "HI", priority="high", active=True)
    world.alarm("W-RTN", "PT-1", "HI", priority="high", active=False)
    settle(service)
    # the service may have seen the activation before the return: either no warning, or one
    # whose live colour is gone
    assert all(w["live_color"] is None for w in open_warnings(api, "W-RTN"))


def test_closed_loop_with_a_missed_deadline(api: TestClient, world: World, service: ResponseService,
                                            heard: Listener, clock: FakeClock) -> None:
    w = wait_warning(api, "W-L1", "red")
    due = datetime.fromisoformat(w["due_at"])
    assert due == datetime.fromisoformat(w["issued_at"]) + timedelta(minutes=10)
    clock.now = due - MS                                    # 1 ms before: not overdue
    settle(service)
    assert api.get(f"/api/v1/warnings/{w['id']}").json()["overdue"] == []
    assert not [p for p in heard.take() if p["kind"] == "warning_overdue"]
    clock.now = due                                         # exactly due: overdue
    note = heard.wait("warning_overdue")
    assert note == {"kind": "warning_overdue", "warning_id": w["id"], "enterprise": "W-L1",
                    "hazard_source": "HS-1", "level": 1, "color": "red", "step": "acknowledge",
                    "due_at": note["due_at"]}
    assert datetime.fromisoformat(note["due_at"]) == due
    detail = api.get(f"/api/v1/warnings/{w['id']}").json()
    assert [o["step"] for o in detail["overdue"]] == ["acknowledge"] and detail["step_overdue"]
    settle(service)
    assert len([p for p in heard.take() if p["kind"] == "warning_overdue"]) == 1   # once
    assert {p["kind"] for p in heard.take()} == {"warning_overdue"}  # the notifier's channel: only these

    ent = world.token("w-l1-user", "enterprise", ["W-L1"])
    duty = world.token("w-duty", "duty_officer")
    url = f"/api/v1/warnings/{w['id']}"
    assert api.post(url + "/ack", headers=duty, json={}).status_code == 403     # the enterprise acks
    assert api.post(url + "/feedback", headers=ent, json={"cause": "c", "action": "a"}).status_code == 409
    clock.advance(timedelta(minutes=1))
    r = api.post(url + "/ack", headers=ent, json={"comment": "已到现场"})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "acknowledged" and r.json()["step"] == "feedback"
    assert datetime.fromisoformat(r.json()["due_at"]) == clock.now + timedelta(hours=2)
    photo = b"\x89PNG fake photo"
    r = api.post(url + "/attachments", params={"filename": "现场.png"}, content=photo,
                 headers={**ent, "Content-Type": "image/png"})
    assert r.status_code == 201, r.text
    got = api.get(f"{url}/attachments/{r.json()['id']}", headers=ent)
    assert got.content == photo and got.headers["content-type"] == "image/png"
    r = api.post(url + "/feedback", headers=ent, json={"cause": "法兰垫片老化泄漏", "action": "更换垫片，复测正常"})
    assert r.status_code == 200 and r.json()["state"] == "feedback"
    assert api.post(url + "/clear", headers=ent, json={}).status_code == 403     # the regulator clears
    r = api.post(url + "/clear", headers=duty, json={"comment": "核实后消警"})
    assert r.status_code == 200 and r.json()["state"] == "cleared" and r.json()["step"] is None
    events = api.get(url + "/events").json()["items"]
    assert [e["action"] for e in events] == ["issue", "overdue", "acknowledge", "feedback", "clear"]
    assert [e["actor"] for e in events][2:] == ["w-l1-user", "w-l1-user", "w-duty"]


def test_cleared_warning_is_not_reissued_for_the_same_alarm(
        api: TestClient, world: World, service: ResponseService) -> None:
    service_ticks = service.ticks
    world.alarm("W-L1", "PT-1", "HI", priority="low", active=True)   # low at level 1: blue …
    wait_for(lambda: service.ticks > service_ticks + 1, what="ticks")
    w = wait_warning(api, "W-L1", "blue")                          # … a new warning: PT-1 is new
    assert "PT-1" in w["reason"] and "GT-1" not in w["reason"]    # GT-1 was cleared, still active


def test_late_step_is_recorded_without_announcing(api: TestClient, world: World,
                                                  service: ResponseService, heard: Listener,
                                                  clock: FakeClock) -> None:
    w = wait_warning(api, "W-L1", "blue")
    r = api.post(f"/api/v1/warnings/{w['id']}/ack", json={})
    assert r.status_code == 200
    service.stop()                                                 # nobody watches the clock now
    try:
        clock.advance(timedelta(hours=24))                         # feedback (blue: 24 h) exactly due
        r = api.post(f"/api/v1/warnings/{w['id']}/feedback", json={"cause": "c", "action": "a"})
        assert r.status_code == 200
        assert [o["step"] for o in api.get(f"/api/v1/warnings/{w['id']}").json()["overdue"]] == ["feedback"]
    finally:
        service.start()
        wait_for(lambda: service.active, what="service back")
    settle(service)
    assert not [p for p in heard.take() if p["kind"] == "warning_overdue" and p["warning_id"] == w["id"]]


def test_rules_are_configurable(api: TestClient, world: World) -> None:
    rules = api.get("/api/v1/warnings/rules").json()
    assert rules["matrix"]["high"]["gas"]["1"] == "red"
    rules["deadlines_s"]["acknowledge"]["red"] = 300
    r = api.put("/api/v1/warnings/rules", json=rules)
    assert r.status_code == 200 and r.json()["deadlines_s"]["acknowledge"]["red"] == 300
    assert api.put("/api/v1/warnings/rules", json={"conditions": ["HOT"]}).status_code == 422
    viewer = world.token("w-viewer", "viewer")
    assert api.put("/api/v1/warnings/rules", headers=viewer, json={}).status_code == 403
    assert api.get("/api/v1/warnings/rules").json()["deadlines_s"]["acknowledge"]["red"] == 300


def test_scoping(api: TestClient, world: World) -> None:
    other = world.token("w-l3-user", "enterprise", ["W-L3"])
    mine = {w["enterprise"] for w in api.get("/api/v1/warnings", headers=other).json()["items"]}
    assert mine == {"W-L3"}
    w = open_warnings(api, "W-L1")[0]
    assert api.get(f"/api/v1/warnings/{w['id']}", headers=other).status_code == 404
    assert api.post(f"/api/v1/warnings/{w['id']}/ack", headers=other, json={}).status_code == 404
    assert api.get("/api/v1/warnings", headers=other, params={"enterprise": "W-L1"}).status_code == 403

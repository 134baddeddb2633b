"""Hazard records over HTTP on a real database: record, regrading with history, plans and their
documents, rescue resources by distance, the alarm context, and tenant scoping."""

from __future__ import annotations

from datetime import date

import pytest
from fastapi.testclient import TestClient

from tests.response.conftest import World

E, HS = "REC-A", "HS-CL"
BASE = f"/api/v1/enterprises/{E}/hazard-sources/{HS}"
PEOPLE = {"principal": {"name": "张三", "phone": "13800000001"},
          "technical": {"name": "李四", "phone": "13800000002", "position": "总工"},
          "operations": {"name": "王五", "phone": "0571-88888888"}}


@pytest.fixture(scope="module")
def plant(world: World) -> World:
    world.enterprise(E, lat=30.0, lon=120.0)
    # chlorine 20 t (Q 5, β 4) + ammonia 50 t (Q 10, β 2), 120 residents (α 2):
    # S = 4 + 5 = 9, R = 2 × (16 + 10) = 52 → level 2
    hs = world.hazard_source(E, HS, [{"name": "氯", "quantity_t": 20},
                                     {"name": "ammonia", "cas": "7664-41-7", "quantity_t": 50}])
    assert (hs["s"], hs["r"], hs["level"]) == (pytest.approx(9), pytest.approx(52), 2)
    world.enterprise("REC-B")
    world.hazard_source("REC-B", "HS-B", [{"name": "氯", "quantity_t": 20}])
    return world


def test_new_record_shows_what_is_missing(api: TestClient, plant: World) -> None:
    r = api.get(BASE + "/record")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["level"] == 2 and body["lat"] == 30.0 and body["own_coordinates"] is False
    assert body["flags"] == {"reidentify_by": None, "reidentification_due": True,
                             "drill_overdue": False, "missing_plans": ["emergency_plan", "onsite_procedure"],
                             "missing_responsibles": ["principal", "technical", "operations"]}


def test_put_record_with_people_equipment_and_coordinates(api: TestClient, plant: World) -> None:
    r = api.put(BASE + "/record", json={
        "lat": 30.01, "lon": 120.02, "last_identified_on": "2024-05-10", "responsibles": PEOPLE,
        "equipment": [{"name": "正压式空气呼吸器", "quantity": 4, "unit": "套", "checked_on": "2026-01-05"}]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["responsibles"]["technical"] == PEOPLE["technical"] | {"position": "总工"}
    assert body["responsibles"]["principal"]["phone"] == "13800000001"
    assert body["equipment"][0]["checked_on"] == "2026-01-05"
    assert body["flags"]["missing_responsibles"] == []
    assert body["flags"]["reidentify_by"] == "2027-05-10"
    assert (body["lat"], body["own_coordinates"]) == (30.01, True)


@pytest.mark.parametrize("body", [
    {"responsibles": {"principal": {"name": "x", "phone": "call me"}}},   # not a phone number
    {"lat": 91},
    {"responsibles": {"boss": {"name": "x", "phone": "123"}}},            # unknown role
])
def test_bad_record_is_422(api: TestClient, plant: World, body: dict) -> None:
    assert api.put(BASE + "/record", json=body).status_code == 422


def test_chemicals_change_regrades_and_keeps_history(api: TestClient, plant: World) -> None:
    # chlorine 100 t: S = 20, R = 2 × 4 × 20 = 160 → level 1
    r = api.put(BASE + "/chemicals", json={"chemicals": [{"name": "液氯", "quantity_t": 100}],
                                           "reason": "扩容"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["s"], body["r"], body["level"], body["previous_level"]) == (20, 160, 1, 2)
    assert body["residents_500m"] == 120                        # kept when not given
    # residents 10 → α 1.0: R = 80 → level 2
    r = api.put(BASE + "/chemicals", json={"chemicals": [{"name": "液氯", "quantity_t": 100}],
                                           "residents_500m": 10})
    assert (r.json()["r"], r.json()["level"], r.json()["alpha"]) == (80, 2, 1.0)
    history = api.get(BASE + "/grading-history").json()["items"]
    assert [(h["level"], h["actor"]) for h in history] == [(2, "registration"), (1, "admin"), (2, "admin")]
    assert history[1]["reason"] == "扩容" and history[0]["s"] == pytest.approx(9)
    assert api.get(f"/api/v1/enterprises/{E}/hazard-sources/{HS}").json()["level"] == 2


def test_unknown_substance_without_q_is_422(api: TestClient, plant: World) -> None:
    r = api.put(BASE + "/chemicals", json={"chemicals": [{"name": "神秘物质", "quantity_t": 1}]})
    assert r.status_code == 422 and "critical_t" in r.text


def test_plans_drills_and_documents(api: TestClient, plant: World) -> None:
    r = api.post(BASE + "/plans", json={"kind": "emergency_plan", "title": "液氯泄漏专项应急预案",
                                        "version": "V2", "link": "https://example.org/plan.pdf",
                                        "last_drill_on": "2020-01-01"})
    assert r.status_code == 201, r.text
    plan = r.json()
    assert plan["drill_overdue"] is True and plan["next_drill_on"] == "2021-01-01"
    today = date.today().isoformat()
    r = api.patch(f"{BASE}/plans/{plan['id']}", json={"last_drill_on": today})
    assert r.json()["drill_overdue"] is False and r.json()["version"] == "V2"
    doc = "预案正文".encode() * 100
    r = api.put(f"{BASE}/plans/{plan['id']}/document", params={"filename": "预案.pdf"},
                content=doc, headers={"Content-Type": "application/pdf"})
    assert r.status_code == 200, r.text
    assert r.json()["doc_size"] == len(doc) and r.json()["doc_name"] == "预案.pdf"
    got = api.get(f"{BASE}/plans/{plan['id']}/document")
    assert got.content == doc and got.headers["content-type"] == "application/pdf"
    assert "filename*=UTF-8''" in got.headers["content-disposition"]
    record = api.get(BASE + "/record").json()
    assert [p["kind"] for p in record["plans"]] == ["emergency_plan"]
    assert "doc" not in record["plans"][0]                        # bytes never in JSON
    assert api.patch(f"{BASE}/plans/{plan['id']}", json={"title": None}).status_code == 422


def test_document_size_limit(api: TestClient, plant: World) -> None:
    from devices.records_repository import MAX_DOCUMENT_BYTES

    plan = api.post(BASE + "/plans", json={"kind": "onsite_procedure", "title": "现场处置方案"}).json()
    assert plan["drill_overdue"] is True                         # never drilled
    too_big = b"x" * (MAX_DOCUMENT_BYTES + 1)
    assert api.put(f"{BASE}/plans/{plan['id']}/document", content=too_big).status_code == 413
    assert api.put(f"{BASE}/plans/{plan['id']}/document", content=b"").status_code == 422
    assert api.get(f"{BASE}/plans/{plan['id']}/document").status_code == 404


def test_nearest_resources_by_distance(api: TestClient, plant: World) -> None:
    # the hazard source is at (30.01, 120.02)
    for name, lat, lon, ent in (("县消防救援大队", 30.05, 120.02, None),      # ~4.4 km
                                ("园区危化品救援队", 30.012, 120.02, None),   # ~0.2 km
                                ("企业微型消防站", 30.011, 120.021, E),       # ~0.15 km, its own
                                ("乙企业物资库", 30.0101, 120.0201, "REC-B")):  # nearest, not visible
        r = api.post("/api/v1/rescue-resources", json={
            "enterprise": ent, "kind": "team", "name": name, "lat": lat, "lon": lon,
            "contact_phone": "119"})
        assert r.status_code == 201, r.text
    items = api.get(BASE + "/nearby-resources", params={"limit": 3}).json()["items"]
    assert [i["name"] for i in items] == ["企业微型消防站", "园区危化品救援队", "县消防救援大队"]
    assert items[1]["distance_km"] == pytest.approx(0.222, abs=0.01)
    assert [i["distance_km"] for i in items] == sorted(i["distance_km"] for i in items)


def test_alarm_context(api: TestClient, plant: World) -> None:
    plant.points(E, f"tag,kind,hazard_source,hi\nCL-GT-1,toxic_gas,{HS},1\n")
    alarm_id = plant.alarm(E, "CL-GT-1")
    r = api.get(f"/api/v1/alarms/{alarm_id}/context")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["alarm"]["id"] == alarm_id and body["alarm"]["hazard_source"] == HS
    card = body["hazard_source"]
    assert card["code"] == HS and card["level"] == 2 and card["responsibles"]["principal"]["name"] == "张三"
    assert {p["kind"] for p in card["plans"]} == {"emergency_plan", "onsite_procedure"}
    assert body["nearby_resources"][0]["name"] == "企业微型消防站"
    assert api.get("/api/v1/alarms/999999/context").status_code == 404


def test_other_enterprise_sees_nothing(api: TestClient, plant: World) -> None:
    headers = plant.token("rec-b-user", "enterprise", ["REC-B"])
    assert api.get(BASE + "/record", headers=headers).status_code == 403
    assert api.put(BASE + "/chemicals", headers=headers, json={"chemicals": []}).status_code == 403
    assert api.get(BASE + "/nearby-resources", headers=headers).status_code == 403
    alarm_id = api.get("/api/v1/alarms", params={"enterprise": E}).json()["items"][0]["id"]
    assert api.get(f"/api/v1/alarms/{alarm_id}/context", headers=headers).status_code == 404
    names = {r["name"] for r in api.get("/api/v1/rescue-resources", headers=headers).json()["items"]}
    assert "企业微型消防站" not in names and "乙企业物资库" in names and "县消防救援大队" in names
    records = api.get("/api/v1/hazard-records", headers=headers).json()["items"]
    assert {r["enterprise"] for r in records} == {"REC-B"}
    viewer = plant.token("rec-viewer", "viewer")
    assert api.put(BASE + "/record", headers=viewer, json={}).status_code == 403
    assert api.post("/api/v1/rescue-resources", headers=viewer, json={
        "kind": "team", "name": "x", "lat": 1, "lon": 1}).status_code == 403


def test_flagged_records_list(api: TestClient, plant: World) -> None:
    items = api.get("/api/v1/hazard-records", params={"flagged": True}).json()["items"]
    codes = {(i["enterprise"], i["code"]) for i in items}
    assert ("REC-B", "HS-B") in codes                  # nothing filled in
    assert (E, HS) in codes                             # the procedure was never drilled


@pytest.mark.parametrize("method, url, body", [
    ("get", "/api/v1/alarms/9223372036854775808/context", None),        # past bigint: 422, not 500
    ("get", "/api/v1/warnings/99999999999999999999", None),
    ("get", "/api/v1/incidents/0", None),
    ("post", "/api/v1/incidents", {"enterprise": E, "title": "x", "alarm_ids": [2**64]}),
    ("post", "/api/v1/incidents", {"enterprise": E, "title": "x",
                                   "occurred_at": "2026-01-01T08:00:00"}),  # no offset
    ("put", BASE + "/chemicals", {"chemicals": [], "residents_500m": 2**40}),
    ("patch", "/api/v1/rescue-resources/1", {"lat": None}),
    ("put", "/api/v1/warnings/rules", {"matrix": [1, 2]}),
    ("put", "/api/v1/incidents/rules", {"rules": "all"}),
    ("post", BASE + "/plans", {"kind": "emergency_plan", "title": "nul\u0000"}),  # text cannot hold NUL
    ("put", BASE + "/plans/1/document?filename=a%00b", None),
])
def test_bad_input_is_4xx_never_5xx(api: TestClient, plant: World, method: str, url: str,
                                    body: dict | None) -> None:
    r = api.request(method.upper(), url, json=body)
    assert r.status_code == 422, (r.status_code, r.text)

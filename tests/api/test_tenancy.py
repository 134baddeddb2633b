"""Tenant isolation: an enterprise user of A walks every route of the OpenAPI spec against
enterprise B's resources and gets 403/404 with nothing of B in the answer; lists, reports and
the event stream never show B. Roles are checked on both sides."""

from __future__ import annotations

import json
import queue
import re
import threading
import time

import httpx
import pytest

from tests.support import Gateway, Hazmon, wait_for

POINTS = "tag,kind,hazard_source,hi\n{tag},pressure,{hs},80\n"
SECRET_NAME = "乙公司机密名称"  # B's name: must never reach A's user


@pytest.fixture(scope="module")
def world(hazmon: Hazmon, mqtt_url: str) -> dict:
    admin = hazmon.api()
    for code, name, tag in (("TEN-A", "甲公司", "A-1"), ("TEN-B", SECRET_NAME, "B-1")):
        assert admin.post("/api/v1/enterprises", json={"code": code, "name": name, "region": code}).status_code == 201
        admin.post(f"/api/v1/enterprises/{code}/hazard-sources", json={
            "code": f"HS-{code}", "name": f"HS of {name}", "unit_type": "storage", "chemicals": []})
        r = admin.put(f"/api/v1/enterprises/{code}/points", headers={"Content-Type": "text/csv"},
                      content=POINTS.format(tag=tag, hs=f"HS-{code}"))
        assert r.status_code == 200, r.text
        gw = Gateway(mqtt_url, code)
        gw.publish([{"tag": tag, "value": 90, "ts": time.time_ns() // 1_000_000 - 1000}])
        gw.publish_raw(b"{not json")  # a rejection in each enterprise
        gw.close()
    wait_for(lambda: len(admin.get("/api/v1/alarms", params={"state": "active"}).json()["items"]) >= 2,
             what="an alarm in each enterprise")
    alarm_b = admin.get("/api/v1/alarms", params={"enterprise": "TEN-B"}).json()["items"][0]
    tokens = {}
    for user, role, scope in (("ua", "enterprise", {"enterprises": ["TEN-A"]}),
                              ("viewer-a", "viewer", {"regions": ["TEN-A"]}),
                              ("duty-all", "duty_officer", {})):
        assert admin.post("/api/v1/users", json={"name": user, "role": role, **scope}).status_code == 201
        tokens[user] = admin.post(f"/api/v1/users/{user}/tokens", json={}).json()["token"]
    return {"admin": admin, "tokens": tokens, "alarm_b": alarm_b}


def client(hazmon: Hazmon, token: str) -> httpx.Client:
    return hazmon.api(token)


PARAMS_B = {"enterprise": "TEN-B", "code": "HS-TEN-B", "tag": "B-1", "name": "duty-all",
            "token_id": "1"}


def test_every_route_refuses_another_enterprises_data(hazmon: Hazmon, world: dict) -> None:
    ua = client(hazmon, world["tokens"]["ua"])
    spec = httpx.get(hazmon.url + "/openapi.json").json()
    checked = 0
    for path, methods in spec["paths"].items():
        if not path.startswith("/api/"):
            continue
        for method in methods:
            params = {**PARAMS_B, "alarm_id": str(world["alarm_b"]["id"])}
            url = re.sub(r"\{(\w+)\}", lambda m: params.get(m.group(1), "1"), path)
            query = {"enterprise": "TEN-B"} if "{enterprise}" not in path else {}
            if url.endswith("/stream"):
                continue  # streamed: checked below
            r = ua.request(method.upper(), url, params=query, json={} if method != "get" else None)
            assert SECRET_NAME not in r.text and "B-1" not in r.text, (method, url, r.text[:300])
            if "{enterprise}" in path or "{alarm_id}" in path or method != "get":
                # a named resource of B, or any change: refused
                assert r.status_code in (403, 404, 405, 422), (method, url, r.status_code, r.text[:300])
            checked += 1
    assert checked > 20


def test_lists_show_only_own_enterprise(hazmon: Hazmon, world: dict) -> None:
    ua = client(hazmon, world["tokens"]["ua"])
    assert [e["code"] for e in ua.get("/api/v1/enterprises").json()["items"]] == ["TEN-A"]
    alarms = ua.get("/api/v1/alarms").json()["items"]
    assert alarms and {a["enterprise"] for a in alarms} == {"TEN-A"}
    rejections = ua.get("/api/v1/rejections").json()["items"]
    assert rejections and {r["enterprise"] for r in rejections} == {"TEN-A"}
    report = ua.get("/api/v1/reports/alarm-performance").json()
    assert report["enterprise"] == "TEN-A"
    assert ua.get("/api/v1/me").json() == {"name": "ua", "role": "enterprise", "enterprises": ["TEN-A"]}


def test_region_scope_and_unscoped_duty_officer(hazmon: Hazmon, world: dict) -> None:
    viewer = client(hazmon, world["tokens"]["viewer-a"])
    assert [e["code"] for e in viewer.get("/api/v1/enterprises").json()["items"]] == ["TEN-A"]
    duty = client(hazmon, world["tokens"]["duty-all"])
    codes = {e["code"] for e in duty.get("/api/v1/enterprises").json()["items"]}
    assert {"TEN-A", "TEN-B"} <= codes


def test_roles_on_both_sides(hazmon: Hazmon, world: dict) -> None:
    admin = world["admin"]
    alarm_a = admin.get("/api/v1/alarms", params={"enterprise": "TEN-A"}).json()["items"][0]
    viewer = client(hazmon, world["tokens"]["viewer-a"])
    assert viewer.get(f"/api/v1/alarms/{alarm_a['id']}").status_code == 200      # may read
    assert viewer.post(f"/api/v1/alarms/{alarm_a['id']}/ack").status_code == 403  # may not act
    ua = client(hazmon, world["tokens"]["ua"])
    assert ua.post("/api/v1/enterprises", json={"code": "X", "name": "x"}).status_code == 403
    assert ua.post(f"/api/v1/alarms/{alarm_a['id']}/ack").status_code == 200     # its own alarm
    assert ua.post(f"/api/v1/alarms/{world['alarm_b']['id']}/ack").status_code == 404
    duty = client(hazmon, world["tokens"]["duty-all"])
    assert duty.put("/api/v1/enterprises/TEN-A/points", content="tag,kind\nZ,level\n",
                    headers={"Content-Type": "text/csv"}).status_code == 403     # not its job
    assert duty.get("/api/v1/users").status_code == 403


def test_stream_never_carries_another_enterprise(hazmon: Hazmon, world: dict, mqtt_url: str) -> None:
    events: queue.Queue[dict] = queue.Queue()
    headers = {"Authorization": f"Bearer {world['tokens']['ua']}"}
    stream_client = httpx.Client(base_url=hazmon.url, timeout=httpx.Timeout(5, read=None))
    response = stream_client.send(stream_client.build_request("GET", "/api/v1/alarms/stream",
                                                              headers=headers), stream=True)
    assert response.status_code == 200

    def read() -> None:
        try:
            for line in response.iter_lines():
                if line.startswith("data:"):
                    events.put(json.loads(line[5:]))
        except httpx.HTTPError:
            pass
    threading.Thread(target=read, daemon=True).start()
    time.sleep(0.3)
    t = time.time_ns() // 1_000_000
    for code, tag in (("TEN-B", "B-1"), ("TEN-A", "A-1")):  # B first: it must be filtered out
        gw = Gateway(mqtt_url, code)
        gw.publish([{"tag": tag, "value": 10, "ts": t}])
        gw.close()
    first = events.get(timeout=20)
    assert first["enterprise"] == "TEN-A"
    response.close()
    stream_client.close()


def test_revoked_token_and_disabled_user_stop_working(hazmon: Hazmon, world: dict) -> None:
    admin = world["admin"]
    admin.post("/api/v1/users", json={"name": "temp", "role": "viewer"})
    issued = admin.post("/api/v1/users/temp/tokens", json={"name": "laptop"}).json()
    temp = client(hazmon, issued["token"])
    assert temp.get("/api/v1/me").status_code == 200
    listed = admin.get("/api/v1/tokens", params={"user": "temp"}).json()["items"]
    assert listed and "token" not in listed[0] and listed[0]["prefix"] == issued["token"][:8]
    assert admin.delete(f"/api/v1/tokens/{issued['id']}").status_code == 204
    assert temp.get("/api/v1/me").status_code == 401
    second = client(hazmon, admin.post("/api/v1/users/temp/tokens", json={}).json()["token"])
    assert second.get("/api/v1/me").status_code == 200
    admin.post("/api/v1/users/temp/disable")
    assert second.get("/api/v1/me").status_code == 401


def test_audit_log_records_actions_without_secrets(hazmon: Hazmon, world: dict) -> None:
    admin = world["admin"]
    admin.post("/api/v1/users", json={"name": "audited", "role": "viewer"})
    token = admin.post("/api/v1/users/audited/tokens", json={}).json()["token"]
    entries = admin.get("/api/v1/audit", params={"actor": "admin"}).json()["items"]
    issue = next(e for e in entries if e["action"] == "POST /api/v1/users/{name}/tokens")
    assert issue["after"]["token"] == "***" and token not in json.dumps(entries)
    assert issue["status"] == 201 and issue["source_ip"] == "127.0.0.1"
    csv_text = admin.get("/api/v1/audit", params={"format": "csv"}).text
    assert csv_text.startswith("id,at,actor") and token not in csv_text
    ua_entries = admin.get("/api/v1/audit", params={"actor": "ua"}).json()["items"]
    assert any(e["action"] == "POST /api/v1/alarms/{alarm_id}/ack" for e in ua_entries)

"""The shift handover report against a real ``hazmon serve``: readings published over MQTT raise
alarms, the duty officer acknowledges, shelves and puts a point into maintenance, and the
handover of the shift shows each in its section (JSON and CSV).

The shift is [T0, now + 1 min) with T0 five minutes ago:
H-1: 85 at T0 - 10 min      → HI before the shift: carried over, still open, not "raised"
H-2: 85 at T0 + 1 s, acked, 50 at T0 + 2 s → raised, acknowledged, closed (not open)
H-3: 95 at T0 + 1 s         → HI and HIHI raised; HIHI shelved 10 min "检修确认"
H-4: 85 at T0 + 1 s, point put into maintenance → raised, suppressed
"""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest

from tests.support import Gateway, Hazmon, wait_for

E = "E-HO"
URL = "/api/v1/reports/shift-handover"
POINTS = ("tag,name,kind,hazard_source,hi,hihi,deadband\n"
          "H-1,一号罐液位,level,HS-HO,80,90,0\nH-2,二号罐液位,level,HS-HO,80,90,0\n"
          "H-3,三号罐压力,pressure,HS-HO,80,90,0\nH-4,四号罐温度,temperature,HS-HO,80,90,0\n")
CST = timezone(timedelta(hours=8))


def _alarm(api: httpx.Client, tag: str, condition: str = "HI") -> dict | None:
    items = api.get("/api/v1/alarms", params={"enterprise": E, "tag": tag}).json()["items"]
    return next((a for a in items if a["condition"] == condition), None)


@pytest.fixture(scope="module")
def shift(hazmon: Hazmon, mqtt_url: str) -> dict:
    api = hazmon.api()
    assert api.post("/api/v1/enterprises", json={"code": E, "name": "交接班化工"}).status_code == 201
    assert api.post(f"/api/v1/enterprises/{E}/hazard-sources", json={
        "code": "HS-HO", "name": "罐区", "unit_type": "storage",
        "chemicals": [{"name": "氨", "quantity_t": 20}]}).status_code == 201
    r = api.put(f"/api/v1/enterprises/{E}/points", content=POINTS, headers={"Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    now_ms = time.time_ns() // 1_000_000
    t0 = now_ms - 5 * 60_000
    gw = Gateway(mqtt_url, E)
    try:
        gw.publish([{"tag": "H-1", "value": 85, "ts": t0 - 10 * 60_000}])
        gw.publish([{"tag": "H-2", "value": 85, "ts": t0 + 1000},
                    {"tag": "H-3", "value": 95, "ts": t0 + 1000},
                    {"tag": "H-4", "value": 85, "ts": t0 + 1000}])
        h2 = wait_for(lambda: _alarm(api, "H-2"), what="H-2 HI")
        wait_for(lambda: _alarm(api, "H-4"), what="H-4 HI")
        hihi = wait_for(lambda: _alarm(api, "H-3", "HIHI"), what="H-3 HIHI")
        wait_for(lambda: _alarm(api, "H-1"), what="H-1 HI")
        assert api.post(f"/api/v1/alarms/{h2['id']}/ack", json={"comment": "已电话确认"}).status_code == 200
        gw.publish([{"tag": "H-2", "value": 50, "ts": t0 + 2000}])
        wait_for(lambda: (_alarm(api, "H-2") or {}).get("state") == "CLOSED", what="H-2 closed")
        r = api.post(f"/api/v1/alarms/{hihi['id']}/shelve", json={"duration_s": 600, "reason": "检修确认"})
        assert r.status_code == 200, r.text
        r = api.put(f"/api/v1/enterprises/{E}/points/H-4/mode",
                    json={"mode": "maintenance", "reason": "更换变送器"})
        assert r.status_code == 200, r.text
    finally:
        gw.close()
    start = datetime.fromtimestamp(t0 / 1000, UTC)
    return {"api": api, "start": start, "end": datetime.now(UTC) + timedelta(minutes=1)}


def _get(shift: dict, **params: str) -> dict:
    query = {"start": shift["start"].isoformat(), "end": shift["end"].isoformat(),
             "enterprise": E, **params}
    r = shift["api"].get(URL, params=query)
    assert r.status_code == 200, r.text
    return r.json()


def test_sections(shift: dict) -> None:
    body = _get(shift)
    raised = {(a["tag"], a["condition"]): a for a in body["raised"]}
    assert set(raised) == {("H-2", "HI"), ("H-3", "HI"), ("H-3", "HIHI"), ("H-4", "HI")}
    assert raised[("H-2", "HI")]["state_at_end"] == "CLOSED"
    assert raised[("H-3", "HIHI")]["state_at_end"] == "SHELVED"
    assert raised[("H-4", "HI")]["point_name"] == "四号罐温度"
    assert raised[("H-4", "HI")]["hazard_source_name"] == "罐区"
    assert all(a["activations"] == 1 and a["masked"] == 0 for a in raised.values())

    [ack] = body["acknowledged"]
    assert (ack["tag"], ack["acked_by"], ack["comment"]) == ("H-2", "admin", "已电话确认")
    assert (ack["from_state"], ack["to_state"]) == ("UNACK_ACTIVE", "ACK_ACTIVE")
    assert ack["response_s"] > 0

    still = {(a["tag"], a["condition"]): a for a in body["still_open"]}
    assert set(still) == {("H-1", "HI"), ("H-3", "HI"), ("H-3", "HIHI"), ("H-4", "HI")}
    assert still[("H-1", "HI")]["carried_over"] is True
    assert still[("H-3", "HI")]["carried_over"] is False
    assert still[("H-3", "HIHI")]["state"] == "SHELVED"
    assert still[("H-4", "HI")]["state"] == "SUPPRESSED"
    # unacknowledged first, then by priority
    assert [a["state"] for a in body["still_open"]][:2] == ["UNACK_ACTIVE", "UNACK_ACTIVE"]

    [shelve] = body["shelved"]
    assert (shelve["tag"], shelve["condition"], shelve["reason"], shelve["duration_s"]) == (
        "H-3", "HIHI", "检修确认", 600)
    assert shelve["ended_at"] is None and shelve["state_at_end"] == "SHELVED"
    until = datetime.fromisoformat(shelve["until"]) - datetime.fromisoformat(shelve["at"])
    assert until == timedelta(seconds=600)

    [sup] = body["suppressed"]
    assert (sup["tag"], sup["action"], sup["state"], sup["reason"]) == (
        "H-4", "suppress", "SUPPRESSED", "更换变送器")
    assert sup["from_state"] == "UNACK_ACTIVE" and sup["ended_at"] is None

    assert body["summary"] == {"raised": 4, "activations": 4, "acknowledged": 1,
                               "still_open": 4, "unacknowledged": 2, "shelved": 1,
                               "suppressed": 1}


def test_state_at_a_past_end(shift: dict) -> None:
    """A shift that ended before the others started: only H-1 was open then, unacknowledged."""
    start = shift["start"] - timedelta(hours=1)
    body = _get(shift, start=start.isoformat(), end=shift["start"].isoformat())
    assert [(a["tag"], a["state"], a["carried_over"]) for a in body["still_open"]] == [
        ("H-1", "UNACK_ACTIVE", False)]
    assert [a["tag"] for a in body["raised"]] == ["H-1"]
    assert body["acknowledged"] == [] and body["shelved"] == [] and body["suppressed"] == []


def test_csv(shift: dict) -> None:
    start = shift["start"].astimezone(CST)
    r = shift["api"].get(URL, params={"start": start.isoformat(), "end": shift["end"].isoformat(),
                                      "enterprise": E, "format": "csv"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    text = r.content.decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text[1:])))
    metrics = dict(rows[1:rows.index([])])
    assert metrics["utc_offset"] == "+08:00" and metrics["enterprise"] == E
    assert metrics["start"] == start.replace(tzinfo=None, microsecond=0).isoformat(sep=" ")
    assert metrics["raised"] == "4" and metrics["still_open"] == "4"
    titles = [rows[i + 1][0] for i, row in enumerate(rows[:-1]) if row == []]
    assert titles == ["raised during the shift", "acknowledged during the shift",
                      "still open at the end of the shift", "shelved during the shift",
                      "suppressed or out of service during the shift"]
    header = rows.index(["shelved during the shift"]) + 1
    shelved = dict(zip(rows[header], rows[header + 1]))
    assert shelved["reason"] == "检修确认" and shelved["point_name"] == "三号罐压力"
    assert shelved["duration_s"] == "600" and shelved["ended_at"] == ""
    # and by Accept header
    r = shift["api"].get(URL, params={"enterprise": E}, headers={"Accept": "text/csv"})
    assert r.headers["content-type"].startswith("text/csv")


def test_default_range_is_the_last_8_hours(shift: dict) -> None:
    body = shift["api"].get(URL).json()
    end, start = datetime.fromisoformat(body["end"]), datetime.fromisoformat(body["start"])
    assert end - start == timedelta(hours=8) and body["enterprise"] is None
    assert {a["tag"] for a in body["raised"]} >= {"H-1", "H-2", "H-3", "H-4"}


@pytest.mark.parametrize("params", [
    {"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"},   # end before start
    {"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"},   # empty
    {"start": "2026-01-01T00:00:00Z", "end": "2026-03-01T00:00:00Z"},   # over 31 days
    {"start": "yesterday"},
    {"start": "2026-01-01T00:00:00"},                                   # no offset
    {"enterprise": "NO-SUCH"},
    {"format": "xml"},
])
def test_bad_requests_are_422(shift: dict, params: dict) -> None:
    r = shift["api"].get(URL, params=params)
    assert r.status_code == 422, r.text
    assert r.json()["detail"]


def test_scoped_tokens(hazmon: Hazmon, shift: dict) -> None:
    api = shift["api"]
    assert api.post("/api/v1/enterprises", json={"code": "E-HO-OTHER", "name": "other"}).status_code == 201
    assert api.post("/api/v1/users", json={"name": "ho-other", "role": "viewer",
                                           "enterprises": ["E-HO-OTHER"]}).status_code == 201
    token = api.post("/api/v1/users/ho-other/tokens", json={}).json()["token"]
    other = hazmon.api(token)
    assert other.get(URL, params={"enterprise": E}).status_code == 403
    body = other.get(URL, params={"start": shift["start"].isoformat()}).json()
    assert body["raised"] == [] and body["still_open"] == [] and body["summary"]["raised"] == 0
    assert hazmon.api("wrong").get(URL).status_code == 401

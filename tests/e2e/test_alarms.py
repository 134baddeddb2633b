"""Limit alarms end to end: published readings raise, return and are acknowledged via the API.

Each test uses its own point so the timelines do not interfere. Reading times are explicit
(event time), spaced one second apart.
"""

from __future__ import annotations

import time

import httpx
import pytest

from tests.support import Gateway, Hazmon, wait_for

E = "E-ALM"
# hi 80 hihi 90 lo 20 lolo 10, deadband 2 on every point of this table
ROWS = "\n".join(f"P-{i},pressure,kPa,0,200,10,20,80,90,2" for i in range(20))
POINTS = "tag,kind,unit,range_low,range_high,lolo,lo,hi,hihi,deadband\n" + ROWS + "\n"


@pytest.fixture(scope="module")
def api(hazmon: Hazmon) -> httpx.Client:
    client = hazmon.api()
    client.post("/api/v1/enterprises", json={"code": E, "name": "alarms"})
    r = client.put(f"/api/v1/enterprises/{E}/points", content=POINTS, headers={"Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    return client


@pytest.fixture(scope="module")
def gw(api: httpx.Client, mqtt_url: str) -> Gateway:
    g = Gateway(mqtt_url, E)
    yield g
    g.close()


class Timeline:
    """Publishes one point's values one second apart, ending with a marker-free sync."""

    def __init__(self, api: httpx.Client, gw: Gateway, tag: str) -> None:
        self.api, self.gw, self.tag = api, gw, tag
        self.t = time.time_ns() // 1_000_000 - 600_000

    def send(self, *values: float) -> None:
        for v in values:
            self.t += 1000
            self.gw.publish([{"tag": self.tag, "value": v, "ts": self.t}])
        # wait until the last one is stored: by then it has been judged (same transaction)
        wait_for(lambda: self.latest_ts() == self.t, what=f"{self.tag} reading at {self.t}")

    def latest_ts(self) -> int | None:
        latest = self.api.get(f"/api/v1/enterprises/{E}/points/{self.tag}").json()["latest"]
        if not latest:
            return None
        from datetime import datetime

        return int(datetime.fromisoformat(latest["ts"]).timestamp() * 1000)

    def alarms(self, condition: str | None = None, state: str | None = None) -> list[dict]:
        params = {"enterprise": E, "tag": self.tag}
        if condition:
            params["condition"] = condition
        if state:
            params["state"] = state
        r = self.api.get("/api/v1/alarms", params=params)
        assert r.status_code == 200, r.text
        return r.json()["items"]


@pytest.mark.parametrize("tag, values, condition, raised", [
    ("P-0", [50, 80], "HI", True),        # exactly at hi: active
    ("P-1", [50, 79.99], "HI", False),    # just below hi: nothing
    ("P-2", [50, 90], "HIHI", True),      # exactly at hihi: HIHI ...
    ("P-3", [50, 20], "LO", True),        # exactly at lo: active
    ("P-4", [50, 20.01], "LO", False),    # just above lo: nothing
    ("P-5", [50, 10], "LOLO", True),      # exactly at lolo
    ("P-6", [50, 10.01], "LOLO", False),  # just above lolo (but LO is active)
])
def test_limit_edges(api: httpx.Client, gw: Gateway, tag: str, values: list[float],
                     condition: str, raised: bool) -> None:
    tl = Timeline(api, gw, tag)
    tl.send(*values)
    alarms = tl.alarms(condition)
    assert bool(alarms) is raised, api.get("/api/v1/alarms").json()
    if raised:
        a = alarms[0]
        assert a["state"] == "UNACK_ACTIVE" and a["value"] == values[-1]
        assert a["enterprise"] == E and a["tag"] == tag and a["priority"] in ("high", "medium")


def test_hi_and_hihi_active_together(api: httpx.Client, gw: Gateway) -> None:
    tl = Timeline(api, gw, "P-7")
    tl.send(50, 95)
    assert {a["condition"] for a in tl.alarms(state="active")} == {"HI", "HIHI"}
    hihi = tl.alarms("HIHI")[0]
    assert hihi["priority"] == "high" and hihi["limit"] == 90


def test_deadband_return_both_sides(api: httpx.Client, gw: Gateway) -> None:
    tl = Timeline(api, gw, "P-8")
    tl.send(50, 85)
    tl.send(78)   # exactly hi - deadband: still active (returns only below 78)
    assert tl.alarms("HI")[0]["state"] == "UNACK_ACTIVE"
    tl.send(77.99)  # below hi - deadband: returns
    a = tl.alarms("HI")[0]
    assert a["state"] == "RTN_UNACK" and a["cleared_at"]


def test_low_deadband_return_both_sides(api: httpx.Client, gw: Gateway) -> None:
    tl = Timeline(api, gw, "P-9")
    tl.send(50, 15)
    tl.send(22)   # exactly lo + deadband: holds
    assert tl.alarms("LO")[0]["state"] == "UNACK_ACTIVE"
    tl.send(22.01)
    assert tl.alarms("LO")[0]["state"] == "RTN_UNACK"


def test_ack_lifecycle_and_event_log(api: httpx.Client, gw: Gateway) -> None:
    tl = Timeline(api, gw, "P-10")
    tl.send(50, 85)
    alarm = tl.alarms("HI")[0]
    r = api.post(f"/api/v1/alarms/{alarm['id']}/ack", json={"comment": "operator on the way"})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "ACK_ACTIVE" and r.json()["acked_by"] and r.json()["acked_at"]
    assert api.post(f"/api/v1/alarms/{alarm['id']}/ack").status_code == 409  # already acked
    tl.send(50)  # returns while acknowledged: closed
    assert tl.alarms("HI")[0]["state"] == "CLOSED"
    events = api.get(f"/api/v1/alarms/{alarm['id']}/events").json()["items"]
    assert [(e["action"], e["to_state"]) for e in events] == [
        ("activate", "UNACK_ACTIVE"), ("ack", "ACK_ACTIVE"), ("return", "CLOSED")]
    assert events[1]["comment"] == "operator on the way" and events[1]["actor"] == "admin"


def test_ack_after_return_closes(api: httpx.Client, gw: Gateway) -> None:
    tl = Timeline(api, gw, "P-11")
    tl.send(50, 85, 50)
    alarm = tl.alarms("HI")[0]
    assert alarm["state"] == "RTN_UNACK"
    assert api.post(f"/api/v1/alarms/{alarm['id']}/ack").json()["state"] == "CLOSED"


def test_reactivation_reuses_the_open_alarm(api: httpx.Client, gw: Gateway) -> None:
    tl = Timeline(api, gw, "P-12")
    tl.send(50, 85, 50, 86)
    alarms = tl.alarms("HI")
    assert len(alarms) == 1
    assert alarms[0]["state"] == "UNACK_ACTIVE" and alarms[0]["activations"] == 2
    # once closed, a new activation is a new alarm
    api.post(f"/api/v1/alarms/{alarms[0]['id']}/ack")
    tl.send(50, 87)
    assert len(tl.alarms("HI")) == 2


def test_bad_quality_reading_judges_no_limit(api: httpx.Client, gw: Gateway) -> None:
    tl = Timeline(api, gw, "P-13")
    tl.t += 1000
    gw.publish([{"tag": "P-13", "value": 150, "ts": tl.t, "quality": "bad"}])
    wait_for(lambda: tl.latest_ts() == tl.t, what="bad reading stored")
    assert tl.alarms("HI") == [] and tl.alarms("HIHI") == []


def test_alarm_filters_and_unknown_values(api: httpx.Client, gw: Gateway) -> None:
    tl = Timeline(api, gw, "P-14")
    tl.send(50, 95)
    for params in ({"state": "active"}, {"state": "open"}, {"state": "UNACK_ACTIVE"},
                   {"condition": "HIHI"}, {"enterprise": E}, {"tag": "P-14"}):
        r = api.get("/api/v1/alarms", params=params)
        assert r.status_code == 200 and r.json()["items"], params
    for params in ({"state": "bogus"}, {"condition": "HIGH"}, {"enterprise": "NOPE"},
                   {"hazard_source": "NOPE"}, {"tag": "NOPE"}):
        r = api.get("/api/v1/alarms", params=params)
        assert r.status_code == 422 and r.json()["detail"], params
    assert api.get("/api/v1/alarms", params={"state": "CLOSED", "tag": "P-14"}).json()["items"] == []


def test_alarms_newest_first(api: httpx.Client, gw: Gateway) -> None:
    items = api.get("/api/v1/alarms", params={"enterprise": E}).json()["items"]
    from datetime import datetime

    times = [datetime.fromisoformat(a["activated_at"]) for a in items]
    assert times == sorted(times, reverse=True)


def test_ack_unknown_alarm_is_404(api: httpx.Client) -> None:
    assert api.post("/api/v1/alarms/999999/ack").status_code == 404

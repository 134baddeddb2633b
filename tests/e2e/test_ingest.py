"""Gateway → MQTT → hazmon → PostgreSQL → API, through the real broker and database."""

from __future__ import annotations

import time

import httpx
import psycopg
import pytest

from tests.support import Gateway, Hazmon, wait_for

E = "E-ING"
POINTS = ("tag,kind,unit,range_low,range_high,hi,hihi\n"
          "LT-1,level,m,0,20,16,18\nTT-1,temperature,C,-20,80,40,50\nGT-1,gas,%LEL,0,100,25,50\n")


@pytest.fixture(scope="module")
def api(hazmon: Hazmon) -> httpx.Client:
    client = hazmon.api()
    assert client.post("/api/v1/enterprises", json={"code": E, "name": "ingest"}).status_code == 201
    r = client.put(f"/api/v1/enterprises/{E}/points", content=POINTS, headers={"Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    return client


@pytest.fixture
def gw(api: httpx.Client, mqtt_url: str) -> Gateway:
    g = Gateway(mqtt_url, E)
    yield g
    g.close()


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def readings(api: httpx.Client, tag: str, start_ms: int, end_ms: int, **params) -> list[dict]:
    q = {"start": _iso(start_ms), "end": _iso(end_ms), **params}
    r = api.get(f"/api/v1/enterprises/{E}/points/{tag}/readings", params=q)
    assert r.status_code == 200, r.text
    return r.json()["items"]


def _iso(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def rejections(api: httpx.Client) -> list[dict]:
    return api.get("/api/v1/rejections", params={"enterprise": E}).json()["items"]


def test_readings_are_stored_and_latest_is_newest(api: httpx.Client, gw: Gateway) -> None:
    t = now_ms() - 60_000
    # message ts applies to readings without their own; RFC 3339 with offset works too
    gw.publish([{"tag": "LT-1", "value": 3.5},
                {"tag": "LT-1", "value": 4.5, "ts": t + 1000},
                {"tag": "TT-1", "value": 21.0, "ts": _iso(t + 500).replace("+00:00", "Z")}], ts=t)
    items = wait_for(lambda: len(r := readings(api, "LT-1", t, t + 5000)) == 2 and r, what="2 readings")
    assert [i["value"] for i in items] == [3.5, 4.5]
    # "latest" follows the stored readings within a moment (ingest.latest.LatestWriter)
    latest = wait_for(lambda: (l := api.get(f"/api/v1/enterprises/{E}/points/LT-1").json()["latest"])
                      and l["value"] == 4.5 and l, what="latest = the newest reading")
    assert latest["quality"] == "good"
    # an older reading arriving later does not replace "latest"
    gw.publish([{"tag": "LT-1", "value": 1.0, "ts": t - 1000}])
    wait_for(lambda: len(readings(api, "LT-1", t - 2000, t + 5000)) == 3, what="late reading stored")
    assert api.get(f"/api/v1/enterprises/{E}/points/LT-1").json()["latest"]["value"] == 4.5


def test_duplicates_collapse(api: httpx.Client, gw: Gateway, db_url: str) -> None:
    t = now_ms() - 50_000
    msg = [{"tag": "TT-1", "value": 22.0, "ts": t}]
    for _ in range(3):
        gw.publish(msg)
    gw.publish([{"tag": "TT-1", "value": 23.0, "ts": t + 1}])  # a marker after the duplicates
    wait_for(lambda: len(readings(api, "TT-1", t, t + 2)) == 2, what="marker stored")
    assert [i["value"] for i in readings(api, "TT-1", t, t + 2)] == [22.0, 23.0]


def test_unknown_tag_rejected_others_kept(api: httpx.Client, gw: Gateway) -> None:
    t = now_ms() - 40_000
    gw.publish([{"tag": "GT-1", "value": 1.0, "ts": t}, {"tag": "NOPE-9", "value": 2.0, "ts": t},
                {"tag": "GT-1", "value": "x", "ts": t + 1}])  # wrong type: rejected alone
    wait_for(lambda: readings(api, "GT-1", t, t + 10), what="good reading kept")
    assert [i["value"] for i in readings(api, "GT-1", t, t + 10)] == [1.0]
    rej = wait_for(lambda: [r for r in rejections(api) if r["tag"] == "NOPE-9"], what="rejection")
    assert "NOPE-9" in rej[0]["reason"] and rej[0]["gateway"] == "gw1"


@pytest.mark.parametrize("payload, code", [
    (b"{not json", "not_json"),                                  # not JSON at all
    (b'{"readings": [{"tag": "LT-1", "value": NaN}]}', "not_json"),  # NaN is not JSON
    (b'[1, 2, 3]', "bad_shape"),                                 # not an object
    (b'{"readings": "LT-1=3"}', "bad_shape"),                    # readings not a list
    (b'{"ts": true, "readings": []}', "bad_ts"),                 # a boolean is no time
    (b'{"readings": [' + b'{"tag":"LT-1","value":1},' * 20000 + b'{"tag":"LT-1","value":1}]}', "oversized"),
])
def test_malformed_messages_are_rejected_with_a_reason(api: httpx.Client, gw: Gateway,
                                                       payload: bytes, code: str) -> None:
    before = len([r for r in rejections(api) if r["code"] == code])
    gw.publish_raw(payload)
    wait_for(lambda: len([r for r in rejections(api) if r["code"] == code]) > before, what=code)
    newest = next(r for r in rejections(api) if r["code"] == code)
    assert newest["reason"] and newest["topic"].endswith("/readings")


def test_ingest_survives_garbage_and_keeps_going(api: httpx.Client, gw: Gateway) -> None:
    for junk in (b"\xff\xfe\x00", b"", b"null", b'{"readings": [null, 1, "x"]}'):
        gw.publish_raw(junk)
    t = now_ms() - 30_000
    gw.publish([{"tag": "LT-1", "value": 7.0, "ts": t}])
    wait_for(lambda: readings(api, "LT-1", t, t + 1), what="reading after garbage")


def test_qos0_is_accepted(api: httpx.Client, gw: Gateway) -> None:
    t = now_ms() - 20_000
    gw.publish([{"tag": "TT-1", "value": 30.0, "ts": t}], qos=0)
    wait_for(lambda: readings(api, "TT-1", t, t + 1), what="qos 0 reading")


def test_bucketed_readings_min_max_avg_epoch_aligned(api: httpx.Client, gw: Gateway) -> None:
    base = (now_ms() - 10 * 60_000) // 60_000 * 60_000  # a minute boundary
    values = [(base + 1_000, 1.0), (base + 59_000, 3.0), (base + 61_000, 10.0), (base + 180_000, 5.0)]
    gw.publish([{"tag": "GT-1", "value": v, "ts": t} for t, v in values])
    wait_for(lambda: len(readings(api, "GT-1", base, base + 240_000)) == 4, what="4 readings")
    buckets = readings(api, "GT-1", base, base + 240_000, bucket=60)
    assert [(b["min"], b["max"], b["avg"]) for b in buckets] == [(1.0, 3.0, 2.0), (10.0, 10.0, 10.0), (5.0, 5.0, 5.0)]
    assert buckets[0]["ts"].startswith(_iso(base)[:19])  # bucket start, aligned; empty minute skipped


def test_bucketed_readings_survive_sums_beyond_the_float_range(api: httpx.Client, gw: Gateway) -> None:
    """Two readings of 1.5e308 in one bucket overflow a float sum: the trend still answers."""
    base = (now_ms() - 10 * 60_000) // 60_000 * 60_000
    values = [(base + 1_000, 1.5e308), (base + 2_000, 1.5e308), (base + 61_000, 1.0)]
    gw.publish([{"tag": "TT-1", "value": v, "ts": t} for t, v in values])
    wait_for(lambda: len(readings(api, "TT-1", base, base + 120_000)) == 3, what="3 readings")
    for bucket in (60, 30):  # whole minutes (rollup or pending raw minutes), raw only
        buckets = readings(api, "TT-1", base, base + 120_000, bucket=bucket)
        assert [(b["count"], b["max"]) for b in buckets] == [(2, 1.5e308), (1, 1.0)], bucket
        assert buckets[0]["avg"] in (1.5e308, None), buckets[0]  # None: the rollup's sum is Infinity


def test_readings_query_validation(api: httpx.Client) -> None:
    url = f"/api/v1/enterprises/{E}/points/LT-1/readings"
    assert api.get(url, params={"start": "yesterday"}).status_code == 422
    assert api.get(url, params={"start": "2026-01-01T00:00:00"}).status_code == 422  # no offset
    assert api.get(url, params={"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}).status_code == 422
    assert api.get(url, params={"bucket": 0}).status_code == 422
    assert api.get(url, params={"start": "2026-01-01T00:00:00+08:00"}).status_code == 200


def test_status_messages_update_gateway(api: httpx.Client, gw: Gateway, db_url: str) -> None:
    gw.publish_raw(b"offline", topic=f"hazmon/v1/{E}/gw1/status")
    def status():
        with psycopg.connect(db_url) as c:
            row = c.execute("SELECT status FROM gateways WHERE code = 'gw1'").fetchone()
            return row and row[0] == "offline"
    wait_for(status, what="gateway offline")


def test_metrics_count_rejections_by_reason(hazmon: Hazmon, api: httpx.Client, gw: Gateway) -> None:
    gw.publish_raw(b"{broken")
    def counted():
        text = httpx.get(hazmon.url + "/metrics").text
        return 'hazmon_ingest_rejected_total{reason="not_json"}' in text
    wait_for(counted, what="rejection metric")
    assert "hazmon_broker_connected 1.0" in httpx.get(hazmon.url + "/metrics").text

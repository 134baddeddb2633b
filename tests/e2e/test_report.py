"""The alarm performance report end to end: readings published over MQTT raise alarms in a
real ``hazmon serve``, and the report (JSON and CSV) counts them.

Timeline (event time, one second apart, ten minutes ago):
P-1: 50, 85, 50, 86, 50, 87  → HI activates three times within 5 s (chattering)
P-2: 50, 95                  → HI and HIHI activate together
So: 5 activations, 4 medium (HI) and 1 high (HIHI), P-1 HI the top alarm with 3/5.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial

import httpx
import pytest

from tests.support import Gateway, Hazmon, wait_for

E = "E-RPT"
POINTS = ("tag,kind,unit,range_low,range_high,lolo,lo,hi,hihi,deadband\n"
          "P-1,pressure,kPa,0,200,10,20,80,90,2\n"
          "P-2,pressure,kPa,0,200,10,20,80,90,2\n")
URL = "/api/v1/reports/alarm-performance"


@pytest.fixture(scope="module")
def api(hazmon: Hazmon) -> httpx.Client:
    client = hazmon.api()
    assert client.post("/api/v1/enterprises", json={"code": E, "name": "report"}).status_code == 201
    r = client.put(f"/api/v1/enterprises/{E}/points", content=POINTS,
                   headers={"Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    return client


@pytest.fixture(scope="module")
def published(api: httpx.Client, mqtt_url: str) -> Iterator[datetime]:
    """Publish the timeline; yield the time of its first reading once all is judged."""
    gw = Gateway(mqtt_url, E)
    base = time.time_ns() // 1_000_000 - 600_000
    timeline = {"P-1": [50, 85, 50, 86, 50, 87], "P-2": [50, 95]}
    for tag, values in timeline.items():
        for i, v in enumerate(values):
            gw.publish([{"tag": tag, "value": v, "ts": base + 1000 * (i + 1)}])
    for tag, values in timeline.items():
        last = base + 1000 * len(values)
        wait_for(partial(_is_latest, api, tag, last), what=f"{tag} judged")
    yield datetime.fromtimestamp(base / 1000, UTC)
    gw.close()


def _is_latest(api: httpx.Client, tag: str, ts_ms: int) -> bool:
    """Whether the point's newest reading is the one at ``ts_ms`` (stored, so judged)."""
    latest = api.get(f"/api/v1/enterprises/{E}/points/{tag}").json()["latest"]
    return bool(latest) and int(datetime.fromisoformat(latest["ts"]).timestamp() * 1000) == ts_ms


def test_report_json(api: httpx.Client, published: datetime) -> None:
    start, end = published - timedelta(minutes=1), datetime.now(UTC) + timedelta(minutes=1)
    r = api.get(URL, params={"start": start.isoformat(), "end": end.isoformat(), "enterprise": E})
    assert r.status_code == 200, r.text
    rep = r.json()
    assert rep["enterprise"] == E and rep["activations"] == 5 and rep["not_annunciated"] == 0
    assert rep["top10"][0] | {"share": round(rep["top10"][0]["share"], 6)} == {
        "enterprise": E, "tag": "P-1", "gateway": None, "condition": "HI", "activations": 3,
        "share": 0.6}
    assert rep["top10_share"] == pytest.approx(1.0)
    assert [(c["tag"], c["condition"], c["max_per_minute"]) for c in rep["chattering"]] == [
        ("P-1", "HI", 3)]
    assert {p: m["count"] for p, m in rep["priority_mix"].items()} == {
        "high": 1, "medium": 4, "low": 0}
    assert rep["flood"]["flood_windows"] == 0 and rep["flood"]["peak_10min"] in (3, 4, 5)
    assert rep["stale"] == [] and rep["shelved"] == {"events": 0, "current": 0}
    # the default range is the last 24 h, over every enterprise
    default = api.get(URL).json()
    assert default["activations"] == 5 and default["enterprise"] is None


def test_report_csv(api: httpx.Client, published: datetime) -> None:
    for extra in ({"params": {"format": "csv", "enterprise": E}},
                  {"params": {"enterprise": E}, "headers": {"Accept": "text/csv"}}):
        r = api.get(URL, **extra)  # type: ignore[arg-type]
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/csv")
        disposition = r.headers["content-disposition"]
        assert disposition.startswith("attachment;") and f"alarm-performance-{E}-" in disposition
        rows = list(csv.reader(io.StringIO(r.text)))
        blank = rows.index([])
        metrics = dict(rows[1:blank])           # the metric,value block
        assert rows[0] == ["metric", "value"] and metrics["activations"] == "5"
        assert metrics["priority_high_count"] == "1" and metrics["flood_windows"] == "0"
        top = rows.index(["top 10 alarms"])
        assert rows[top + 1][:5] == ["enterprise", "tag", "gateway", "condition", "activations"]
        assert rows[top + 2][:5] == [E, "P-1", "", "HI", "3"]


@pytest.mark.parametrize("params, status", [
    ({"enterprise": "NOPE"}, 422),                                           # unknown enterprise
    ({"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, 422),  # end == start
    ({"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, 422),  # end before start
    ({"start": "yesterday"}, 422),                                           # not RFC 3339
    ({"start": "2020-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, 422),  # over 366 days
    ({"format": "xml"}, 422),                                                # unknown format
    ({"start": "2030-01-01T00:00:00Z", "end": "2030-01-02T00:00:00Z"}, 200),  # empty: zeros
])
def test_report_errors(api: httpx.Client, params: dict[str, str], status: int) -> None:
    r = api.get(URL, params=params)
    assert r.status_code == status, r.text
    if status == 422:
        assert r.json()["detail"]
    else:
        assert r.json()["activations"] == 0


def test_report_needs_a_token(hazmon: Hazmon) -> None:
    assert httpx.get(hazmon.url + URL).status_code == 401

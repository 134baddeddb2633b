"""Point tables: CSV upload all-or-nothing, point configuration with its newest reading."""

from __future__ import annotations

import httpx
import pytest

from tests.support import Hazmon

CSV = (
    "tag,name,hazard_source,kind,unit,range_low,range_high,lolo,lo,hi,hihi,deadband,on_delay_s,off_delay_s,roc_per_min,stale_s\n"
    "LT-1101,1#罐液位,HS-P,level,m,0,20,1,2,16,18,0.5,0,0,,\n"
    "TT-1101,1#罐温度,,temperature,°C,-20,80,,,40,50,1,,,,\n"
)
CSV_ZH = (
    "\ufeff位号,名称,重大危险源编码,类型,单位,量程下限,量程上限,低低报,低报,高报,高高报,回差\n"
    "PT-2001,压力,HS-P,压力,MPa,0,2.5,,,1.6,2.0,0.02\n"
)


@pytest.fixture(scope="module")
def api(hazmon: Hazmon) -> httpx.Client:
    client = hazmon.api()
    client.post("/api/v1/enterprises", json={"code": "E-PT", "name": "点位测试"})
    client.post("/api/v1/enterprises/E-PT/hazard-sources", json={
        "code": "HS-P", "name": "罐区", "unit_type": "storage", "chemicals": []})
    return client


def put_csv(api: httpx.Client, text: str, enterprise: str = "E-PT") -> httpx.Response:
    return api.put(f"/api/v1/enterprises/{enterprise}/points", content=text.encode("utf-8"),
                   headers={"Content-Type": "text/csv"})


def test_upload_creates_then_updates(api: httpx.Client) -> None:
    r = put_csv(api, CSV)
    assert r.status_code == 200, r.text
    assert r.json() == {"created": 2, "updated": 0}
    r = put_csv(api, CSV)
    assert r.json() == {"created": 0, "updated": 2}
    point = api.get("/api/v1/enterprises/E-PT/points/LT-1101").json()
    assert point["hi"] == 16 and point["hihi"] == 18 and point["deadband"] == 0.5
    assert point["hazard_source"] == "HS-P" and point["kind"] == "level"
    assert point["latest"] is None


def test_chinese_headers_with_bom(api: httpx.Client) -> None:
    r = put_csv(api, CSV_ZH)
    assert r.status_code == 200, r.text
    point = api.get("/api/v1/enterprises/E-PT/points/PT-2001").json()
    assert point["kind"] == "pressure" and point["hihi"] == 2.0 and point["deadband"] == 0.02


def test_bad_row_rejects_whole_table_naming_row_and_column(api: httpx.Client) -> None:
    text = (
        "tag,kind,lo,hi\n"
        "NEW-1,level,1,5\n"       # row 2: fine, but must not be applied
        "NEW-2,level,9,5\n"       # row 3: hi below lo
        "NEW-3,pressure,x,5\n"    # row 4: not a number
    )
    r = put_csv(api, text)
    assert r.status_code == 422
    errors = r.json()["detail"]
    assert {(e["row"], e["column"]) for e in errors} >= {(3, "hi"), (4, "lo")} or \
        {(e["row"], e["column"]) for e in errors} >= {(3, "lo"), (4, "lo")}
    assert all(e["message"] for e in errors)
    assert api.get("/api/v1/enterprises/E-PT/points/NEW-1").status_code == 404


def test_unknown_hazard_source_is_a_row_error(api: httpx.Client) -> None:
    r = put_csv(api, "tag,kind,hazard_source\nX-1,level,HS-NOPE\n")
    assert r.status_code == 422
    assert r.json()["detail"][0]["column"] == "hazard_source"


def test_upload_to_unknown_enterprise_is_404(api: httpx.Client) -> None:
    assert put_csv(api, CSV, enterprise="NOPE").status_code == 404


def test_json_body_is_refused_with_a_hint(api: httpx.Client) -> None:
    r = api.put("/api/v1/enterprises/E-PT/points", json={"tag": "x"})
    assert r.status_code == 422
    assert "text/csv" in r.json()["detail"]


def test_unknown_point_is_404(api: httpx.Client) -> None:
    assert api.get("/api/v1/enterprises/E-PT/points/NOPE").status_code == 404


def test_points_list(api: httpx.Client) -> None:
    put_csv(api, CSV)
    tags = [p["tag"] for p in api.get("/api/v1/enterprises/E-PT/points").json()["items"]]
    assert {"LT-1101", "TT-1101"} <= set(tags)

"""Enterprises and hazard sources over HTTP against a real server and database."""

from __future__ import annotations

import httpx
import pytest

from tests.support import Hazmon


@pytest.fixture(scope="module")
def api(hazmon: Hazmon) -> httpx.Client:
    return hazmon.api()


def test_create_enterprise_returns_201_and_lists_it(api: httpx.Client) -> None:
    r = api.post("/api/v1/enterprises", json={"code": "E-LIST", "name": "列表化工", "lat": 30.1, "lon": 120.2})
    assert r.status_code == 201, r.text
    assert r.json()["code"] == "E-LIST"
    codes = [e["code"] for e in api.get("/api/v1/enterprises").json()["items"]]
    assert "E-LIST" in codes


def test_duplicate_enterprise_is_409(api: httpx.Client) -> None:
    api.post("/api/v1/enterprises", json={"code": "E-DUP", "name": "a"})
    r = api.post("/api/v1/enterprises", json={"code": "E-DUP", "name": "b"})
    assert r.status_code == 409
    assert "already exists" in r.json()["detail"]


@pytest.mark.parametrize("body", [
    {"code": "has space", "name": "x"},          # code must fit an MQTT topic level
    {"code": "x" * 65, "name": "x"},             # 65 characters: one too many
    {"code": "OK", "name": ""},                  # name required
    {"code": "OK", "name": "x", "lat": 91},      # latitude out of range
    {"code": "OK", "name": "x", "extra": 1},     # unknown field: a typo must not pass silently
    {"name": "x"},                               # code missing
])
def test_bad_enterprise_bodies_are_422(api: httpx.Client, body: dict) -> None:
    r = api.post("/api/v1/enterprises", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["detail"]


def test_64_character_code_is_accepted(api: httpx.Client) -> None:
    r = api.post("/api/v1/enterprises", json={"code": "y" * 64, "name": "edge"})
    assert r.status_code == 201


def test_not_json_body_is_422_not_500(api: httpx.Client) -> None:
    r = api.post("/api/v1/enterprises", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 422


@pytest.mark.parametrize("headers", [
    {},                                            # no token
    {"Authorization": "Bearer wrong"},             # wrong token
    {"Authorization": "Basic YWRtaW46YWRtaW4="},   # wrong scheme
])
def test_api_needs_a_valid_bearer_token(hazmon: Hazmon, headers: dict) -> None:
    r = httpx.get(hazmon.url + "/api/v1/enterprises", headers=headers)
    assert r.status_code == 401
    assert "detail" in r.json()


def test_open_routes_need_no_token(hazmon: Hazmon) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/", "/docs"):
        assert httpx.get(hazmon.url + path).status_code == 200, path


def test_hazard_source_is_graded_per_gb18218(api: httpx.Client) -> None:
    api.post("/api/v1/enterprises", json={"code": "E-HS", "name": "氯碱厂"})
    # chlorine 20 t (Q 5, β 4) + ammonia 50 t (Q 10, β 2); 120 residents → α 2.0
    # S = 4 + 5 = 9; R = 2.0 × (4·4 + 2·5) = 52 → level 2
    r = api.post("/api/v1/enterprises/E-HS/hazard-sources", json={
        "code": "HS-01", "name": "液氯储罐区", "unit_type": "storage", "residents_500m": 120,
        "chemicals": [{"name": "氯", "quantity_t": 20}, {"name": "ammonia", "cas": "7664-41-7", "quantity_t": 50}]})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["s"] == pytest.approx(9)
    assert body["r"] == pytest.approx(52)
    assert body["level"] == 2
    assert api.get("/api/v1/enterprises/E-HS/hazard-sources/HS-01").json()["level"] == 2


def test_below_threshold_source_has_no_level(api: httpx.Client) -> None:
    api.post("/api/v1/enterprises", json={"code": "E-SMALL", "name": "小厂"})
    r = api.post("/api/v1/enterprises/E-SMALL/hazard-sources", json={
        "code": "HS-S", "name": "甲醇罐", "unit_type": "storage", "residents_500m": 0,
        "chemicals": [{"name": "甲醇", "quantity_t": 100}]})
    assert r.status_code == 201
    assert r.json()["s"] == pytest.approx(0.2)
    assert r.json()["level"] is None


def test_critical_t_overrides_and_unknown_substance_needs_it(api: httpx.Client) -> None:
    api.post("/api/v1/enterprises", json={"code": "E-UNK", "name": "x"})
    bad = api.post("/api/v1/enterprises/E-UNK/hazard-sources", json={
        "code": "HS-U", "name": "x", "unit_type": "production",
        "chemicals": [{"name": "unobtainium", "quantity_t": 3}]})
    assert bad.status_code == 422
    assert "critical_t" in str(bad.json()["detail"])
    ok = api.post("/api/v1/enterprises/E-UNK/hazard-sources", json={
        "code": "HS-U", "name": "x", "unit_type": "production", "residents_500m": 10,
        "chemicals": [{"name": "unobtainium", "quantity_t": 3, "critical_t": 1}]})
    assert ok.status_code == 201, ok.text
    assert ok.json()["s"] == pytest.approx(3)     # q/Q with the given Q
    assert ok.json()["r"] == pytest.approx(3)     # α 1.0, β 1
    assert ok.json()["level"] == 4


def test_hazard_source_of_unknown_enterprise_is_404(api: httpx.Client) -> None:
    r = api.post("/api/v1/enterprises/NOPE/hazard-sources", json={
        "code": "H", "name": "x", "unit_type": "storage", "chemicals": []})
    assert r.status_code == 404


def test_duplicate_hazard_source_is_409(api: httpx.Client) -> None:
    api.post("/api/v1/enterprises", json={"code": "E-HD", "name": "x"})
    body = {"code": "H1", "name": "x", "unit_type": "storage", "chemicals": []}
    assert api.post("/api/v1/enterprises/E-HD/hazard-sources", json=body).status_code == 201
    assert api.post("/api/v1/enterprises/E-HD/hazard-sources", json=body).status_code == 409

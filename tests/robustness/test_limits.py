"""Limits and odd inputs over HTTP and MQTT, on a real ``hazmon serve``: every refusal is a JSON
``{"detail"}`` with a 4xx code, and the server keeps answering.

- Request bodies: JSON over 1 MiB is 413 (declared length and chunked); a point table may be up
  to 10 MiB; the limits of the upload routes name routes that exist.
- MQTT: a payload over HAZMON_MAX_PAYLOAD_BYTES is rejected whole, with a reason, end to end.
- Huge query strings, path parameters and headers are 4xx, with short messages.
- Values PostgreSQL cannot store (a NUL in a text, times past year 9999 in UTC) are 422 and
  leave nothing behind that breaks later reads.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from unittest.mock import MagicMock

import httpx
import pytest

from api.app import MAX_BODY_BYTES, UPLOAD_LIMITS, create_app
from api.routes.points import MAX_CSV_BYTES
from tests.support import Gateway, Hazmon, wait_for

E = "LIM"
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def api(hazmon: Hazmon) -> Iterator[httpx.Client]:
    client = hazmon.api()
    assert client.post("/api/v1/enterprises", json={"code": E, "name": "limits"}).status_code == 201
    assert client.post(f"/api/v1/enterprises/{E}/hazard-sources", json={
        "code": "HS1", "name": "tank", "unit_type": "storage", "chemicals": []}).status_code == 201
    r = client.put(f"/api/v1/enterprises/{E}/points", content="tag,kind,hazard_source,hi\nP1,level,HS1,80\n",
                   headers={"Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    yield client
    client.close()


def assert_error(r: httpx.Response, *codes: int) -> dict:
    """A JSON {"detail"} error with one of these codes."""
    assert r.status_code in codes, (r.status_code, r.text[:300])
    body = r.json()
    assert set(body) == {"detail"} and body["detail"], body
    return body


def assert_alive(hazmon: Hazmon) -> None:
    assert httpx.get(hazmon.url + "/readyz", timeout=10).status_code == 200


def raw_request(hazmon: Hazmon, request: bytes) -> tuple[int, bytes]:
    """Send bytes that httpx would refuse to build; the status code and the body."""
    data = b""
    with socket.create_connection(("127.0.0.1", hazmon.port), timeout=30) as sock:
        try:
            sock.sendall(request)
            while chunk := sock.recv(65536):
                data += chunk
        except ConnectionResetError:
            pass  # uvicorn answers a request it cannot parse, then resets: the answer is read
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


# ---------------------------------------------------------------- request bodies

def test_json_body_over_1_mib_is_413(hazmon: Hazmon, api: httpx.Client) -> None:
    big = {"code": "BIG", "name": "x" * MAX_BODY_BYTES}
    body = assert_error(api.post("/api/v1/enterprises", json=big), 413)
    assert "1 MiB" in body["detail"]
    assert api.get("/api/v1/enterprises/BIG").status_code == 404  # nothing was created
    assert_alive(hazmon)


def test_json_body_just_under_the_limit_is_read(api: httpx.Client) -> None:
    padding = MAX_BODY_BYTES - 200
    body = b'{"code": "NEAR", "name": "near the limit"' + b" " * padding + b"}"
    assert len(body) < MAX_BODY_BYTES
    r = api.post("/api/v1/enterprises", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 201, r.text


def chunks(head: bytes, filler: bytes, count: int, tail: bytes) -> Iterator[bytes]:
    yield head
    for _ in range(count):
        yield filler
    yield tail


def test_chunked_json_body_over_1_mib_is_413(hazmon: Hazmon, api: httpx.Client) -> None:
    # A generator body goes out chunked, without a Content-Length: counted as it arrives.
    body = chunks(b'{"code": "CHUNKY", "name": "x"', b" " * 4096, 300, b"}")
    assert_error(api.post("/api/v1/enterprises", content=body,
                          headers={"Content-Type": "application/json"}), 413)
    small = chunks(b'{"code": "CHUNKY", "name": "x"', b" " * 4096, 10, b"}")
    assert api.post("/api/v1/enterprises", content=small,
                    headers={"Content-Type": "application/json"}).status_code == 201
    assert_alive(hazmon)


def test_json_route_with_another_content_type_is_limited_too(api: httpx.Client) -> None:
    body = b"x" * (MAX_BODY_BYTES + 1)
    assert_error(api.put(f"/api/v1/enterprises/{E}/mode", content=body,
                         headers={"Content-Type": "text/plain"}), 413)


def test_point_table_may_be_larger_than_json_up_to_10_mib(api: httpx.Client) -> None:
    rows = "".join(f"BULK-{i},level,HS1,80\n" for i in range(80_000))
    table = ("tag,kind,hazard_source,hi\n" + rows).encode()
    assert MAX_BODY_BYTES < len(table) < MAX_CSV_BYTES
    r = api.put(f"/api/v1/enterprises/{E}/points", content=table, headers={"Content-Type": "text/csv"})
    assert r.status_code == 200, r.text[:300]
    assert r.json()["created"] == 80_000


def test_point_table_over_10_mib_is_413_and_nothing_applied(hazmon: Hazmon, api: httpx.Client) -> None:
    row = b"HUGE-0,level,HS1,80\n"
    table = b"tag,kind,hazard_source,hi\n" + row * (MAX_CSV_BYTES // len(row) + 1)
    assert len(table) > MAX_CSV_BYTES
    body = assert_error(api.put(f"/api/v1/enterprises/{E}/points", content=table,
                                headers={"Content-Type": "text/csv"}), 413)
    assert "10 MiB" in body["detail"]
    chunked = chunks(b"tag,kind,hazard_source,hi\n", row * 5000, MAX_CSV_BYTES // (len(row) * 5000) + 1, b"")
    assert_error(api.put(f"/api/v1/enterprises/{E}/points", content=chunked,
                         headers={"Content-Type": "text/csv"}), 413)
    assert api.get(f"/api/v1/enterprises/{E}/points/HUGE-0").status_code == 404
    assert_alive(hazmon)


def test_upload_limits_name_routes_that_exist() -> None:
    """A renamed upload route would silently fall back to the 1 MiB JSON limit."""
    spec = create_app(MagicMock()).openapi()
    routes = {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}
    assert set(UPLOAD_LIMITS) <= routes


# ---------------------------------------------------------------- MQTT payload size

def test_oversized_mqtt_payload_is_rejected_whole_with_a_reason(hazmon: Hazmon, api: httpx.Client,
                                                                mqtt_url: str) -> None:
    limit = 256 * 1024  # HAZMON_MAX_PAYLOAD_BYTES, the fixture's default
    t0 = time.time_ns() // 1_000_000 - 60_000
    readings = [{"tag": "P1", "value": i, "ts": t0 + i} for i in range(12_000)]
    payload = json.dumps({"readings": readings}).encode()
    assert len(payload) > limit
    gw = Gateway(mqtt_url, E, "gw-oversize")
    try:
        gw.publish_raw(payload)
        gw.publish([{"tag": "P1", "value": 42.5, "ts": t0 - 1}])  # the next message is kept
    finally:
        gw.close()

    def rejected() -> list[dict]:
        items = api.get("/api/v1/rejections", params={"enterprise": E}).json()["items"]
        return [r for r in items if r["gateway"] == "gw-oversize"]
    found = wait_for(rejected, what="the oversize rejection")
    assert len(found) == 1 and found[0]["code"] == "oversized", found
    assert str(len(payload)) in found[0]["reason"] and str(limit) in found[0]["reason"]
    assert len(found[0]["excerpt"]) <= 1000
    wait_for(lambda: api.get(f"/api/v1/enterprises/{E}/points/P1").json()["latest"], what="next reading")
    items = api.get(f"/api/v1/enterprises/{E}/points/P1/readings",
                    params={"start": "2000-01-01T00:00:00Z"}).json()["items"]
    assert [i["value"] for i in items] == [42.5]  # none of the oversized message's readings
    assert_alive(hazmon)


# ---------------------------------------------------------------- URLs and headers

def test_huge_query_string_is_4xx_with_a_short_message(hazmon: Hazmon) -> None:
    head = (f"GET /api/v1/alarms?tag={'x' * 70_000} HTTP/1.1\r\nHost: t\r\n"
            f"Authorization: Bearer {hazmon.token}\r\nConnection: close\r\n\r\n").encode()
    status, body = raw_request(hazmon, head)
    assert 400 <= status < 500 and len(body) < 2000, (status, body[:200])
    assert_alive(hazmon)


def test_huge_path_parameter_is_4xx_with_a_short_message(hazmon: Hazmon, api: httpx.Client) -> None:
    r = api.get("/api/v1/enterprises/" + "e" * 15_000)
    assert_error(r, 404, 422)
    assert len(r.content) < 2000
    status, body = raw_request(hazmon, (
        f"GET /api/v1/enterprises/{'e' * 100_000}/points/{'t' * 100_000} HTTP/1.1\r\nHost: t\r\n"
        f"Authorization: Bearer {hazmon.token}\r\nConnection: close\r\n\r\n").encode())
    assert 400 <= status < 500 and len(body) < 2000, (status, body[:200])


def test_huge_header_and_token_are_4xx(hazmon: Hazmon) -> None:
    status, _ = raw_request(hazmon, (
        "GET /api/v1/me HTTP/1.1\r\nHost: t\r\nX-Filler: " + "y" * 200_000 +
        f"\r\nAuthorization: Bearer {hazmon.token}\r\nConnection: close\r\n\r\n").encode())
    assert 400 <= status < 500 or status == 200, status  # read or refused, never a 5xx
    r = httpx.get(hazmon.url + "/api/v1/me", headers={"Authorization": "Bearer " + "t" * 60_000})
    assert_error(r, 401, 431)
    assert_alive(hazmon)


# ---------------------------------------------------------------- values the database refuses

@pytest.mark.parametrize("method,path,kwargs", [
    ("POST", "/api/v1/enterprises", {"json": {"code": "NUL1", "name": "a\u0000b"}}),
    ("POST", f"/api/v1/enterprises/{E}/hazard-sources",
     {"json": {"code": "HS-NUL", "name": "n\u0000", "unit_type": "storage", "chemicals": []}}),
    ("PUT", f"/api/v1/enterprises/{E}/mode", {"json": {"mode": "maintenance", "reason": "\u0000"}}),
    ("GET", "/api/v1/alarms", {"params": {"tag": "a\u0000b"}}),
    ("GET", "/api/v1/rejections", {"params": {"enterprise": "\u0000"}}),
    ("GET", "/api/v1/enterprises/a%00b", {}),
    ("GET", f"/api/v1/enterprises/{E}/points/P%00", {}),
    ("POST", "/api/v1/users", {"json": {"name": "nul", "role": "viewer", "display_name": "\u0000"}}),
], ids=["enterprise-name", "hazard-source-name", "mode-reason", "alarm-filter", "rejection-filter",
        "enterprise-path", "tag-path", "user-display-name"])
def test_nul_character_is_422_not_500(hazmon: Hazmon, api: httpx.Client, method: str, path: str,
                                      kwargs: dict) -> None:
    r = api.request(method, path, **kwargs)
    assert r.status_code < 500, (r.status_code, r.text)
    if r.status_code == 422 and "NUL" in r.text:
        assert "U+0000" in r.json()["detail"]
    assert_alive(hazmon)


@pytest.mark.parametrize("until", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00",
                                   "2026-11-23T10:00:00"])
def test_times_that_cannot_be_read_back_are_refused(api: httpx.Client, until: str) -> None:
    """PostgreSQL stores year 10000; Python cannot read it, so every later read of the point
    failed (a 500 on GET of the point) until the mode was changed again."""
    for path, body in ((f"/api/v1/enterprises/{E}/points/P1/mode", {"mode": "maintenance"}),
                       (f"/api/v1/enterprises/{E}/points/P1/service", {"in_service": False}),
                       (f"/api/v1/enterprises/{E}/mode", {"mode": "shutdown"})):
        assert_error(api.put(path, json={**body, "until": until}), 422)
    assert_error(api.post("/api/v1/users/admin/tokens", json={"expires_at": until}), 404, 422)
    assert api.get(f"/api/v1/enterprises/{E}/points/P1").status_code == 200
    assert api.get(f"/api/v1/enterprises/{E}/points").status_code == 200


@pytest.mark.parametrize("param", ["start", "end"])
@pytest.mark.parametrize("value", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:30:00Z",
                                   "0001-01-01T00:00:00+14:00", "x" * 5000])
def test_query_times_out_of_range_are_422(api: httpx.Client, param: str, value: str) -> None:
    r = api.get(f"/api/v1/enterprises/{E}/points/P1/readings", params={param: value})
    assert_error(r, 422)
    assert len(r.content) < 1000


def test_huge_integers_in_paths_are_404(api: httpx.Client) -> None:
    big = "9" * 40
    for method, path in (("GET", f"/api/v1/alarms/{big}"), ("GET", f"/api/v1/alarms/-{big}/events"),
                         ("POST", f"/api/v1/alarms/{big}/ack"), ("DELETE", f"/api/v1/tokens/{big}")):
        assert_error(api.request(method, path), 404, 422)


# ---------------------------------------------------------------- the documented errors

def test_openapi_documents_the_errors_as_detail(hazmon: Hazmon) -> None:
    spec = httpx.get(hazmon.url + "/openapi.json").json()
    assert "HTTPValidationError" not in json.dumps(spec["paths"])
    for path, operations in spec["paths"].items():
        if not path.startswith("/api/"):
            continue
        for method, op in operations.items():
            codes = set(op["responses"])
            assert {"401", "403", "429"} <= codes, (method, path, codes)
            if "requestBody" in op:
                assert {"413", "422"} <= codes, (method, path, codes)
            if "{" in path:
                assert "404" in codes, (method, path, codes)
    detail = spec["components"]["schemas"]["ErrorBody"]["properties"]["detail"]
    assert {"type": "string"} in detail["anyOf"]

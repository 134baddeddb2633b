"""The gateways API: credentials issued once and stored only hashed, rotation, deletion, and who
may do it (``configure`` on the enterprise; reading needs ``read``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from devices import gateways_repository as gw_repo
from hazmon import mqtt_auth
from ingest import repository as ingest_repo
from tests.security.conftest import Stack

URL = "/api/v1/enterprises/{e}/gateways"


@pytest.fixture(scope="module")
def tokens(auto: Stack) -> dict[str, dict[str, str]]:
    for code in ("GA", "GB"):
        auto.enterprise(code)
    out = {}
    for user, role, scope in (("ga-user", "enterprise", {"enterprises": ["GA"]}),
                              ("ga-viewer", "viewer", {"enterprises": ["GA"]}),
                              ("duty", "duty_officer", {})):
        r = auto.api.post("/api/v1/users", json={"name": user, "role": role, **scope},
                          headers=auto.admin)
        assert r.status_code == 201, r.text
        token = auto.api.post(f"/api/v1/users/{user}/tokens", json={}, headers=auto.admin)
        out[user] = {"Authorization": f"Bearer {token.json()['token']}"}
    return out


def stored_hash(db_url: str, enterprise: str, gateway: str) -> str | None:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("""SELECT g.password_hash FROM gateways g JOIN enterprises e
                              ON e.id = g.enterprise_id WHERE e.code = %s AND g.code = %s""",
                           (enterprise, gateway)).fetchone()
    return None if row is None else row[0]


def test_register_issues_credentials_once_and_stores_a_hash(auto: Stack, tokens: dict,
                                                            db_url: str) -> None:
    r = auto.api.post(URL.format(e="GA"), json={"code": "gw-1"}, headers=auto.admin)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["code"] == "gw-1" and body["username"] == "GA/gw-1"
    assert body["topic_prefix"] == "hazmon/v1/GA/gw-1/" and len(body["password"]) >= 32
    stored = stored_hash(db_url, "GA", "gw-1")
    assert stored and stored.startswith("$7$101$") and body["password"] not in stored
    assert mqtt_auth.verify_password(body["password"], stored)
    again = auto.api.post(URL.format(e="GA"), json={"code": "gw-1"}, headers=auto.admin)
    assert again.status_code == 409 and "credentials" in again.json()["detail"]
    assert body["password"] not in again.text


@pytest.mark.parametrize("code", ["a/b", "a b", "+", "#", "", "x" * 65, "gw\n", "ü"])
def test_gateway_codes_are_topic_safe(auto: Stack, tokens: dict, code: str) -> None:
    r = auto.api.post(URL.format(e="GA"), json={"code": code}, headers=auto.admin)
    assert r.status_code == 422, r.text


def test_unknown_enterprise_and_extra_fields(auto: Stack, tokens: dict) -> None:
    assert auto.api.post(URL.format(e="NOPE"), json={"code": "g"},
                         headers=auto.admin).status_code == 404
    assert auto.api.post(URL.format(e="GA"), json={"code": "g", "password": "mine"},
                         headers=auto.admin).status_code == 422  # no chosen passwords


def test_list_and_get_never_show_secrets(auto: Stack, tokens: dict, db_url: str) -> None:
    auto.api.post(URL.format(e="GA"), json={"code": "gw-2"}, headers=auto.admin)
    with psycopg.connect(db_url) as conn:  # a gateway ingest saw reporting, never registered
        row = conn.execute("SELECT id FROM enterprises WHERE code = 'GA'").fetchone()
        assert row is not None
        ent = row[0]
        ingest_repo.set_gateway_status(conn, ent, "seen-only", "online", datetime.now(UTC))
        conn.commit()
    r = auto.api.get(URL.format(e="GA"), headers=auto.admin)
    assert r.status_code == 200
    items = {g["code"]: g for g in r.json()["items"]}
    assert items["gw-2"]["registered"] is True and items["gw-2"]["username"] == "GA/gw-2"
    assert items["gw-2"]["credential_set_at"] and items["gw-2"]["registered_at"]
    assert items["seen-only"] == {**items["seen-only"], "registered": False, "username": None,
                                  "status": "online", "credential_set_at": None}
    assert "password" not in r.text and "$7$" not in r.text
    one = auto.api.get(URL.format(e="GA") + "/gw-2", headers=auto.admin)
    assert one.status_code == 200 and one.json() == items["gw-2"]
    assert auto.api.get(URL.format(e="GA") + "/none", headers=auto.admin).status_code == 404


def test_rotate(auto: Stack, tokens: dict, db_url: str) -> None:
    first = auto.api.post(URL.format(e="GA"), json={"code": "gw-3"}, headers=auto.admin).json()
    r = auto.api.post(URL.format(e="GA") + "/gw-3/credentials", headers=auto.admin)
    assert r.status_code == 200
    second = r.json()
    assert second["password"] != first["password"] and second["username"] == "GA/gw-3"
    stored = stored_hash(db_url, "GA", "gw-3")
    assert stored and mqtt_auth.verify_password(second["password"], stored)
    assert not mqtt_auth.verify_password(first["password"], stored)
    assert second["credential_set_at"] > first["credential_set_at"]
    for gateway in ("seen-only", "never"):  # not registered / not there
        assert auto.api.post(URL.format(e="GA") + f"/{gateway}/credentials",
                             headers=auto.admin).status_code == 404


def test_delete_keeps_the_enterprise_closed(auto: Stack, tokens: dict, db_url: str) -> None:
    auto.enterprise("GC")
    auto.register("GC", "only")
    assert auto.api.delete(URL.format(e="GC") + "/only", headers=auto.admin).status_code == 204
    assert auto.api.delete(URL.format(e="GC") + "/only", headers=auto.admin).status_code == 404
    assert auto.api.get(URL.format(e="GC"), headers=auto.admin).json()["items"] == []
    with psycopg.connect(db_url) as conn:
        assert "GC" in gw_repo.closed_enterprises(conn)
    assert "topic deny hazmon/v1/GC/#" in auto.broker.auth.acl_file.read_text()  # type: ignore[union-attr]
    r = auto.api.post(URL.format(e="GC"), json={"code": "only"}, headers=auto.admin)
    assert r.status_code == 201  # registered again, with a new password


@pytest.mark.parametrize(("who", "method", "path", "body", "status"), [
    ("ga-user", "post", "/api/v1/enterprises/GA/gateways", {"code": "own"}, 201),
    ("ga-user", "get", "/api/v1/enterprises/GA/gateways", None, 200),
    ("ga-user", "post", "/api/v1/enterprises/GB/gateways", {"code": "x"}, 403),
    ("ga-user", "get", "/api/v1/enterprises/GB/gateways", None, 403),
    ("ga-user", "get", "/api/v1/enterprises/GB/gateways/gw-1", None, 403),
    ("ga-user", "post", "/api/v1/enterprises/GB/gateways/gw-1/credentials", None, 403),
    ("ga-user", "delete", "/api/v1/enterprises/GB/gateways/gw-1", None, 403),
    ("ga-user", "post", "/api/v1/enterprises/NOPE/gateways", {"code": "x"}, 403),
    ("ga-viewer", "get", "/api/v1/enterprises/GA/gateways", None, 200),
    ("ga-viewer", "post", "/api/v1/enterprises/GA/gateways", {"code": "v"}, 403),
    ("ga-viewer", "post", "/api/v1/enterprises/GA/gateways/gw-1/credentials", None, 403),
    ("ga-viewer", "delete", "/api/v1/enterprises/GA/gateways/gw-1", None, 403),
    ("duty", "post", "/api/v1/enterprises/GA/gateways", {"code": "d"}, 403),
    ("duty", "get", "/api/v1/enterprises/GA/gateways", None, 200),
    (None, "get", "/api/v1/enterprises/GA/gateways", None, 401),
    (None, "post", "/api/v1/enterprises/GA/gateways", {"code": "n"}, 401),
])
def test_who_may(auto: Stack, tokens: dict, who: str | None, method: str, path: str,
                 body: dict[str, Any] | None, status: int) -> None:
    headers = tokens[who] if who else {}
    r = auto.api.request(method.upper(), path, json=body, headers=headers)
    assert r.status_code == status, r.text
    if status != 201:
        assert "password" not in r.text


def test_the_audit_log_never_holds_a_password(auto: Stack, tokens: dict, db_url: str) -> None:
    issued = auto.api.post(URL.format(e="GA"), json={"code": "audited"}, headers=auto.admin).json()
    rotated = auto.api.post(URL.format(e="GA") + "/audited/credentials", headers=auto.admin).json()
    auto.api.delete(URL.format(e="GA") + "/audited", headers=auto.admin)
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT action, before::text, after::text FROM audit_log "
                            "WHERE target LIKE %s ORDER BY id", ("%/gateways%audited%",)).fetchall()
        dump = str(conn.execute("SELECT array_agg(a::text) FROM audit_log a").fetchone())
    assert [r[0] for r in rows] == ["POST /api/v1/enterprises/{enterprise}/gateways/{gateway}/credentials",
                                    "DELETE /api/v1/enterprises/{enterprise}/gateways/{gateway}"]
    assert rows[0][1] and '"registered": true' in rows[0][1]   # the state before the rotation
    assert rows[1][1] and "audited" in rows[1][1]              # and before the deletion
    for password in (issued["password"], rotated["password"]):
        assert password not in dump
    with psycopg.connect(db_url) as conn:
        created = conn.execute("SELECT after::text FROM audit_log WHERE action = %s AND target = %s",
                               ("POST /api/v1/enterprises/{enterprise}/gateways",
                                "/api/v1/enterprises/GA/gateways")).fetchall()
    issued_rows = [row[0] for row in created if '"username"' in row[0]]  # not the refusals
    assert issued_rows and all('"password": "***"' in row for row in issued_rows)

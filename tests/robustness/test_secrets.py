"""Secrets never reach the server log or a response body other than the one that issues them.

Secrets: the admin token, issued API tokens, the database password, gateway MQTT passwords and
the password in HAZMON_MQTT_URL. The requests: wrong and malformed tokens, bad point tables,
odd bodies, token and gateway life cycles, the audit log and its export, the spec, metrics and
the console. Every response body is kept and searched, and so is the whole server log.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support import Hazmon

E = "SEC"


class Recorder:
    """An HTTP client that keeps every response body (with the request that got it)."""

    def __init__(self, hazmon: Hazmon) -> None:
        self.hazmon = hazmon
        self.seen: list[tuple[str, str]] = []

    def request(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = kwargs.pop("headers", {})
        if token is not None:
            headers.setdefault("Authorization", f"Bearer {token}")
        with httpx.Client(base_url=self.hazmon.url, timeout=30) as client:
            r = client.request(method, path, headers=headers, **kwargs)
        self.seen.append((f"{method} {path} -> {r.status_code}", r.text))
        return r


@pytest.fixture(scope="module")
def rec(hazmon: Hazmon) -> Iterator[Recorder]:
    yield Recorder(hazmon)


def full_log(hazmon: Hazmon) -> str:
    return hazmon.log_path.read_text(errors="replace")


def leaks(secret: str, texts: list[tuple[str, str]], allowed: set[str] = frozenset()) -> list[str]:
    return [where for where, text in texts if secret in text and where not in allowed]


def test_secrets_stay_out_of_logs_and_answers(hazmon: Hazmon, rec: Recorder) -> None:
    admin = hazmon.token
    issued: dict[str, str] = {}      # secret -> the response allowed to show it (once)
    r = rec.request("POST", "/api/v1/enterprises", admin, json={"code": E, "name": "secrets"})
    assert r.status_code == 201, r.text
    rec.request("POST", f"/api/v1/enterprises/{E}/hazard-sources", admin, json={
        "code": "HS1", "name": "tank", "unit_type": "storage", "chemicals": []})

    # Issued tokens: shown in the answer that issues them, nowhere else.
    rec.request("POST", "/api/v1/users", admin, json={"name": "sec-user", "role": "enterprise",
                                                      "enterprises": [E]})
    r = rec.request("POST", "/api/v1/users/sec-user/tokens", admin, json={"name": "laptop"})
    user_token = r.json()["token"]
    issued[user_token] = rec.seen[-1][0]
    r = rec.request("POST", "/api/v1/users/sec-user/tokens", admin, json={"name": "revoked"})
    revoked_token, revoked_id = r.json()["token"], r.json()["id"]
    issued[revoked_token] = rec.seen[-1][0]
    rec.request("DELETE", f"/api/v1/tokens/{revoked_id}", admin)

    # Gateway passwords: shown when registered or rotated, never again.
    r = rec.request("POST", f"/api/v1/enterprises/{E}/gateways", admin, json={"code": "gw1"})
    if r.status_code == 201:
        issued[r.json()["password"]] = rec.seen[-1][0]
        r = rec.request("POST", f"/api/v1/enterprises/{E}/gateways/gw1/credentials", admin)
        if r.status_code in (200, 201) and "password" in r.json():
            issued[r.json()["password"]] = rec.seen[-1][0]
        rec.request("GET", f"/api/v1/enterprises/{E}/gateways", admin)
        rec.request("GET", f"/api/v1/enterprises/{E}/gateways/gw1", user_token)

    # Wrong, malformed and revoked tokens, and tokens in odd places.
    for token in (admin + "x", admin[:-1], admin.upper(), revoked_token, user_token + "=",
                  "hzm_" + secrets.token_urlsafe(32), f"{admin} {admin}", "Bearer " + admin):
        rec.request("GET", "/api/v1/me", token)
        rec.request("POST", "/api/v1/enterprises", token, json={"code": "X", "name": token})
    rec.request("GET", "/api/v1/me", headers={"Authorization": f"Basic {admin}"})
    rec.request("GET", "/api/v1/me", headers={"Authorization": admin})
    rec.request("GET", "/api/v1/me", params={"token": admin, "access_token": user_token})
    rec.request("GET", "/api/v1/users", user_token)                      # 403 for its role
    rec.request("GET", "/api/v1/enterprises/OTHER", user_token)

    # Bad point tables and bodies: the tokens in them must not be echoed back by the server
    # beyond what the table itself says (cells are quoted; here no cell holds a secret).
    for table in (b"\xff\xfe not utf-8", b"tag,kind\nA,nonsense\n", b"", b"kind\n,level\n",
                  b"tag,kind,hi,lo\nA,level,1,2\n", b"\x00" * 100):
        rec.request("PUT", f"/api/v1/enterprises/{E}/points", user_token, content=table,
                    headers={"Content-Type": "text/csv"})
    rec.request("PUT", f"/api/v1/enterprises/{E}/points", user_token, json={"tag": "x"})
    rec.request("POST", "/api/v1/enterprises", admin, content=b"{not json",
                headers={"Content-Type": "application/json"})
    rec.request("POST", "/api/v1/enterprises", admin, json={"code": "NUL", "name": "\u0000"})
    rec.request("POST", "/api/v1/users/sec-user/tokens", admin, json={"expires_at": "yesterday"})

    # What anyone can read, and the audit log with its export.
    for path in ("/openapi.json", "/metrics", "/readyz", "/healthz", "/"):
        rec.request("GET", path)
    rec.request("GET", "/api/v1/audit", admin, params={"limit": 10000})
    rec.request("GET", "/api/v1/audit", admin, params={"limit": 10000, "format": "csv"})
    rec.request("GET", "/api/v1/tokens", admin)
    rec.request("GET", "/api/v1/rejections", admin)
    time.sleep(0.5)  # let the audit writer and the log catch up

    log = full_log(hazmon)
    answers = rec.seen
    db_password = urlsplit(hazmon.db_url).password or ""
    mqtt_password = urlsplit(hazmon.mqtt_url).password or ""
    problems = []
    checks: list[tuple[str, str, set[str]]] = [("admin token", admin, set())]
    checks += [("issued secret", secret, {where}) for secret, where in issued.items()]
    if len(db_password) >= 8:
        checks.append(("database password", db_password, set()))
    if len(mqtt_password) >= 8:
        checks.append(("MQTT password", mqtt_password, set()))
    for name, secret, allowed in checks:
        if secret in log:
            problems.append(f"{name} in the server log: "
                            f"{log[max(0, log.index(secret) - 200):log.index(secret) + 50]!r}")
        problems += [f"{name} in the answer to {where}" for where in leaks(secret, answers, allowed)]
    assert not problems, "\n".join(problems)
    assert len(answers) > 40 and issued, "the scenario did not run"
    # Hashes are fine, prefixes too (8 characters, to tell tokens apart), the rest is not.
    assert not re.search(r"hzm_[A-Za-z0-9_-]{20,}", log), "a whole token-like string in the log"


def test_mqtt_password_in_the_url_stays_out_of_the_log(hazmon: Hazmon, db_url: str, mqtt_url: str,
                                                       tmp_path_factory: pytest.TempPathFactory) -> None:
    """A broker URL with credentials (CONTRACT: mqtt://[user:password@]host:port): the server
    announces its broker at start; the password must not be in what it prints."""
    password = "mqtt-" + secrets.token_urlsafe(18)
    parts = urlsplit(mqtt_url)
    url = f"{parts.scheme}://leakcheck:{password}@{parts.hostname}:{parts.port}"
    server = Hazmon(data_dir=tmp_path_factory.mktemp("leak"), db_url=db_url, mqtt_url=url)
    try:
        try:
            server.start(timeout=20)
        except RuntimeError:
            pass  # the broker may refuse the made-up user: what was printed is still checked
        deadline = time.monotonic() + 20
        while "hazmon console" not in full_log(server) and time.monotonic() < deadline:
            time.sleep(0.2)
        log = full_log(server)
        assert "hazmon console" in log, f"the server never announced itself:\n{log[-3000:]}"
        runtime = (server.data_dir / "runtime.json")
        files = runtime.read_text() if runtime.exists() else ""
    finally:
        server.stop()
    assert password not in log, "the MQTT password is in the server log"
    assert password not in files, "the MQTT password is in runtime.json"

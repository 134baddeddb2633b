"""The notifications API in-process (the app hazmon serves) on the real database.

Admin only for channels, rules and the delivery log; per-alarm deliveries for whoever sees the
alarm. Bad input is a 4xx with ``detail``, never a 5xx; secrets are never shown or audited.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from alerting import repository as alarms
from alerting.notify import repository as repo
from alerting.notify.clock import ManualClock
from alerting.notify.model import Delivery, Message
from alerting.notify.retry import Outcome
from alerting.notify.service import NotifierService
from api.app import create_app
from api.deps import Services
from hazmon import accounts
from hazmon.db import StorageInfo, make_pool
from tests.notify.receivers import Receiver

ADMIN = "admin-token-for-notify-tests"
SECRET = "very-secret-hmac-key-0042"


@pytest.fixture(scope="module")
def api(db_url: str) -> Iterator[TestClient]:
    pool = make_pool(db_url, max_size=4)
    services = Services(pool=pool, admin_token=ADMIN, metrics_registry=CollectorRegistry(),
                        storage=StorageInfo(False, None))
    with TestClient(create_app(services), headers={"Authorization": f"Bearer {ADMIN}"}) as c:
        yield c
    pool.close()


@pytest.fixture(scope="module")
def world(db_url: str) -> dict[str, Any]:
    """Two enterprises with an alarm each, and a token for an enterprise user of the first."""
    with psycopg.connect(db_url) as conn:
        ids = {}
        for code in ("N-A", "N-B"):
            ent = conn.execute("INSERT INTO enterprises (code, name) VALUES (%s, %s) RETURNING id",
                               (code, code)).fetchone()[0]  # type: ignore[index]
            point = conn.execute("INSERT INTO points (enterprise_id, tag, kind) VALUES (%s, 'P', "
                                 "'pressure') RETURNING id", (ent,)).fetchone()[0]  # type: ignore[index]
            ids[code] = alarms.record_condition(
                conn, enterprise_id=ent, point_id=point, gateway=None, condition="HI",
                priority="high", active=True, value=1.0, limit=0.5, at=datetime.now(UTC))
        accounts.create_user(conn, "ent-a", "enterprise", "test", enterprises=["N-A"])
        token = accounts.issue_token(conn, "ent-a", None, None)["token"]
        conn.commit()
    return {"alarms": ids, "token": token}


def hook(name: str = "ops", **kw: Any) -> dict[str, Any]:
    return {"name": name, "kind": "webhook", "url": "https://hooks.example.cn/in?token=abc123xyz",
            "secret": SECRET, **kw}


def rule(name: str = "r1", **kw: Any) -> dict[str, Any]:
    return {"name": name, "tiers": [{"after_s": 0, "channels": ["ops"]}], **kw}


@pytest.fixture(autouse=True)
def _clean(db_url: str) -> Iterator[None]:
    yield
    with psycopg.connect(db_url) as c:
        c.execute("DELETE FROM notify_rules")
        c.execute("DELETE FROM notify_channels")


def test_channels_show_no_secret_and_mask_url_tokens(api: TestClient, db_url: str) -> None:
    r = api.post("/api/v1/notifications/channels", json=hook())
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["secret_set"] is True and "secret" not in body
    assert body["url"] == "https://hooks.example.cn/in?token=***"
    for resp in (r, api.get("/api/v1/notifications/channels"),
                 api.get("/api/v1/notifications/channels/ops")):
        assert SECRET not in resp.text and "abc123xyz" not in resp.text
    with psycopg.connect(db_url) as c:
        audited = c.execute("SELECT coalesce(string_agg(after::text, ''), '') FROM audit_log").fetchone()[0]  # type: ignore[index]
    assert SECRET not in audited and "abc123xyz" not in audited


def test_every_kind_can_be_created(api: TestClient) -> None:
    bodies = [
        hook("k-hook"),
        {"name": "k-mail", "kind": "email", "host": "smtp.example.cn", "port": 587, "starttls": True,
         "user": "alarm", "password": "mail-password-1", "from": "alarm@example.cn",
         "to": ["a@example.cn", "b@example.cn"]},
        {"name": "k-wecom", "kind": "wecom",
         "url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=wecom-key-123"},
        {"name": "k-dd", "kind": "dingtalk", "secret": "SEC0123", "at_mobiles": ["13800000000"],
         "url": "https://oapi.dingtalk.com/robot/send?access_token=dd-token-123"},
    ]
    for body in bodies:
        r = api.post("/api/v1/notifications/channels", json=body)
        assert r.status_code == 201, r.text
        for secret in ("mail-password-1", "wecom-key-123", "SEC0123", "dd-token-123", SECRET):
            assert secret not in r.text
    mail = api.get("/api/v1/notifications/channels/k-mail").json()
    assert mail["from"] == "alarm@example.cn" and mail["secret_set"] is True
    assert api.get("/api/v1/notifications/channels/k-wecom").json()["secret_set"] is False


@pytest.mark.parametrize("body", [
    {**hook(), "secret": None},                      # a webhook must be signed
    {**hook(), "secret": "short"},                   # 5 characters: too short to be a key
    {**hook(), "url": "ftp://example.cn/x"},         # not http(s)
    {**hook(), "url": "https://"},                   # no host
    {**hook(), "kind": "sms"},                       # unknown kind
    {**hook(), "extra": 1},                          # typo'd field
    {**hook(), "name": "has space"},
    {k: v for k, v in hook().items() if k != "name"},  # creating needs a name
    {"name": "m", "kind": "email", "host": "h", "from": "a@b", "to": []},          # nobody to tell
    {"name": "m", "kind": "email", "host": "h", "from": "a@b", "to": ["x@y"],
     "starttls": True, "ssl": True},                                               # both TLS modes
    {"name": "m", "kind": "email", "host": "h", "from": "not-an-address", "to": ["x@y"]},
    {"name": "d", "kind": "dingtalk", "url": "https://x.cn", "at_mobiles": ["abc"]},
    [],                                              # not an object
])
def test_bad_channels_are_422(api: TestClient, body: Any) -> None:
    r = api.post("/api/v1/notifications/channels", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["detail"]


def test_not_json_is_4xx(api: TestClient) -> None:
    r = api.post("/api/v1/notifications/channels", content=b"{nope",
                 headers={"Content-Type": "application/json"})
    assert 400 <= r.status_code < 500 and r.json()["detail"]


def test_replace_keeps_a_secret_left_out_and_removes_a_null_one(api: TestClient, db_url: str) -> None:
    api.post("/api/v1/notifications/channels", json=hook())
    r = api.put("/api/v1/notifications/channels/ops",
                json={k: v for k, v in hook(enabled=False).items() if k != "secret"})
    assert r.status_code == 200, r.text
    assert r.json()["secret_set"] is True and r.json()["enabled"] is False
    with psycopg.connect(db_url) as c:
        assert c.execute("SELECT secret FROM notify_channels WHERE name = 'ops'").fetchone() == (SECRET,)
    dd = {"name": "dd", "kind": "dingtalk", "url": "https://oapi.dingtalk.com/robot/send",
          "secret": "SECabc"}
    api.post("/api/v1/notifications/channels", json=dd)
    r = api.put("/api/v1/notifications/channels/dd", json={**dd, "secret": None})
    assert r.json()["secret_set"] is False
    # a webhook cannot lose its secret
    assert api.put("/api/v1/notifications/channels/ops", json={**hook(), "secret": None}).status_code == 422


@pytest.mark.parametrize("method, path, body, status", [
    ("put", "/api/v1/notifications/channels/nope", hook("nope"), 404),
    ("put", "/api/v1/notifications/channels/ops", hook("renamed"), 422),   # names are fixed
    ("delete", "/api/v1/notifications/channels/nope", None, 404),
    ("get", "/api/v1/notifications/rules/nope", None, 404),
    ("post", "/api/v1/notifications/channels", hook(), 409),               # taken
])
def test_channel_errors(api: TestClient, method: str, path: str, body: Any, status: int) -> None:
    api.post("/api/v1/notifications/channels", json=hook())
    r = api.request(method.upper(), path, json=body)
    assert r.status_code == status, r.text
    assert r.json()["detail"]


def test_a_channel_in_use_cannot_be_deleted(api: TestClient) -> None:
    api.post("/api/v1/notifications/channels", json=hook())
    assert api.post("/api/v1/notifications/rules", json=rule()).status_code == 201
    r = api.delete("/api/v1/notifications/channels/ops")
    assert r.status_code == 409 and "r1" in r.json()["detail"]
    assert api.delete("/api/v1/notifications/rules/r1").status_code == 204
    assert api.delete("/api/v1/notifications/channels/ops").status_code == 204
    assert api.get("/api/v1/notifications/channels/ops").status_code == 404


def test_rules_defaults_and_replace(api: TestClient, world: dict) -> None:
    api.post("/api/v1/notifications/channels", json=hook())
    api.post("/api/v1/notifications/channels", json=hook("principal"))
    r = api.post("/api/v1/notifications/rules", json=rule(enterprises=["N-A"], hazard_levels=[1, 2]))
    assert r.status_code == 201, r.text
    got = r.json()
    assert (got["group_wait_s"], got["group_interval_s"], got["repeat_interval_s"]) == (30, 300, 3600)
    assert got["group_by"] == ["enterprise"] and got["hazard_levels"] == [1, 2]
    tiers = [{"after_s": 0, "channels": ["ops"]}, {"after_s": 300, "channels": ["principal"]}]
    r = api.put("/api/v1/notifications/rules/r1", json=rule(tiers=tiers, priorities=["high"],
                                                            conditions=["HIHI", "WARNING"]))
    assert r.status_code == 200, r.text
    assert r.json()["tiers"] == tiers and r.json()["enterprises"] == []
    assert [x["name"] for x in api.get("/api/v1/notifications/rules").json()["items"]] == ["r1"]


@pytest.mark.parametrize("body, fragment", [
    (rule(tiers=[{"after_s": 0, "channels": ["ghost"]}]), "unknown channel"),
    (rule(enterprises=["NO-SUCH"]), "unknown enterprise"),
    (rule(hazard_sources=["NO-HS"]), "unknown hazard source"),
    (rule(tiers=[{"after_s": 300, "channels": ["ops"]}, {"after_s": 300, "channels": ["ops"]}]),
     "increasing"),
    (rule(tiers=[]), ""),
    (rule(priorities=["urgent"]), ""),
    (rule(conditions=["HOT"]), ""),
    (rule(hazard_levels=[5]), ""),
    (rule(group_by=["enterprise", "enterprise"]), "twice"),
    (rule(group_by=["colour"]), ""),
    (rule(group_interval_s=0), ""),
    (rule(tiers=[{"after_s": -1, "channels": ["ops"]}]), ""),
])
def test_bad_rules_are_422(api: TestClient, body: dict, fragment: str) -> None:
    api.post("/api/v1/notifications/channels", json=hook())
    r = api.post("/api/v1/notifications/rules", json=body)
    assert r.status_code == 422, r.text
    assert fragment in str(r.json()["detail"])


def test_config_changes_wake_the_notifier(api: TestClient, db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as listen:
        listen.execute("LISTEN hazmon_notify")
        api.post("/api/v1/notifications/channels", json=hook())
        notes = list(listen.notifies(timeout=2, stop_after=1))
    assert [n.payload for n in notes] == ["config"]


def test_only_admins_manage_notifications(api: TestClient, world: dict) -> None:
    user = {"Authorization": f"Bearer {world['token']}"}
    for method, path in (("get", "/api/v1/notifications/channels"),
                         ("post", "/api/v1/notifications/channels"),
                         ("get", "/api/v1/notifications/rules"),
                         ("get", "/api/v1/notifications/deliveries"),
                         ("get", "/api/v1/notifications/status")):
        r = api.request(method.upper(), path, headers=user, json=hook() if method == "post" else None)
        assert r.status_code == 403, (path, r.text)
    assert api.get("/api/v1/notifications/rules", headers={"Authorization": "Bearer x"}).status_code == 401


def attempt(conn: psycopg.Connection, alarm_ids: list[int], at: datetime, status: str) -> None:
    d = Delivery(channel="ops", message=Message(reason="first", at=at, rule="r1"),
                 group_key='{"enterprise":"N-A"}', alarm_ids=tuple(alarm_ids), attempt=1)
    repo.record_attempt(conn, d, "webhook", Outcome(at, at, ok=status == "ok",
                                                    error=None if status == "ok" else "HTTP 502",
                                                    http_status=200 if status == "ok" else 502), status)


def test_delivery_logs(api: TestClient, db_url: str, world: dict) -> None:
    a, b = world["alarms"]["N-A"], world["alarms"]["N-B"]
    t = datetime(2026, 5, 1, 2, 0, tzinfo=UTC)
    with psycopg.connect(db_url) as conn:
        attempt(conn, [a], t, "retry")
        attempt(conn, [a, b], t + timedelta(seconds=1), "ok")
        conn.commit()
    items = api.get(f"/api/v1/alarms/{a}/deliveries").json()["items"]
    assert [(i["status"], i["alarm_count"]) for i in items] == [("retry", 1), ("ok", 2)]
    assert items[0]["error"] == "HTTP 502" and items[0]["http_status"] == 502
    since = api.get("/api/v1/notifications/deliveries",
                    params={"since": "2026-05-01T10:00:01+08:00"}).json()["items"]
    assert [i["status"] for i in since] == ["ok"]
    failed = api.get("/api/v1/notifications/deliveries",
                     params={"since": "2026-05-01T00:00:00Z", "status": "retry"}).json()["items"]
    assert [i["status"] for i in failed] == ["retry"]
    user = {"Authorization": f"Bearer {world['token']}"}
    assert api.get(f"/api/v1/alarms/{a}/deliveries", headers=user).status_code == 200
    assert api.get(f"/api/v1/alarms/{b}/deliveries", headers=user).status_code == 404   # not theirs
    assert api.get("/api/v1/alarms/999999/deliveries").status_code == 404


@pytest.mark.parametrize("params", [{"since": "yesterday"}, {"since": "2026-05-01T00:00:00"},
                                    {"limit": 0}, {"status": "lost"}])
def test_bad_delivery_queries_are_422(api: TestClient, params: dict) -> None:
    r = api.get("/api/v1/notifications/deliveries", params=params)
    assert r.status_code == 422 and r.json()["detail"]


def test_a_channel_test_sends_once_and_reports(api: TestClient, receiver: Receiver) -> None:
    api.post("/api/v1/notifications/channels", json=hook(url=receiver.url("/t")))
    r = api.post("/api/v1/notifications/channels/ops/test")
    assert r.status_code == 200 and r.json()["ok"] is True
    assert receiver.requests[0].json()["reason"] == "test"
    receiver.answer(500)
    r = api.post("/api/v1/notifications/channels/ops/test")
    assert r.json()["ok"] is False and r.json()["error"].startswith("HTTP 500")
    logged = api.get("/api/v1/notifications/deliveries", params={"channel": "ops"}).json()["items"]
    assert [(i["reason"], i["status"]) for i in logged[-2:]] == [("test", "ok"), ("test", "failed")]


def test_status_shows_whether_a_notifier_runs(api: TestClient, db_url: str) -> None:
    assert api.get("/api/v1/notifications/status").json()["notifier_active"] is False
    service = NotifierService(db_url, ManualClock(), tick_s=3600)
    service.start()
    try:
        service.sync()
        assert api.get("/api/v1/notifications/status").json()["notifier_active"] is True
    finally:
        service.stop()

"""One contract every notifier passes against local receivers, then each one's own format.

Contract: a 2xx is delivered; 5xx, 408/429, timeouts and refused connections are failures worth
retrying; other 4xx are not; an error never shows a secret or a URL's token.
"""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import httpx
import pytest

from alerting.notify.config import DingtalkChannel, EmailChannel, WebhookChannel, WecomChannel
from alerting.notify.model import Message
from alerting.notify.notifiers import NotifyError, build_notifier
from hazmon.embedded import free_port
from tests.notify.factories import T0, alarm
from tests.notify.receivers import Receiver, SmtpServer, self_signed

SECRET = "s3cret-0123456789abcdef"
TOKEN = "tok-9f8e7d6c5b4a"


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client() as c:
        yield c


def message(n: int = 3, reason: str = "first") -> Message:
    firing = tuple(alarm(i + 1, since=i, priority=("high", "medium", "low")[i % 3])
                   for i in range(n))
    return Message(reason=reason, at=T0, rule="county", group_labels={"enterprise": "E1"},
                   firing=firing, new_ids=frozenset(a.id for a in firing), delivery="d-1")


def channel(kind: str, url: str, **kw: Any) -> Any:
    models = {"webhook": WebhookChannel, "wecom": WecomChannel, "dingtalk": DingtalkChannel}
    extra = {"secret": SECRET} if kind in ("webhook", "dingtalk") else {}
    return models[kind](kind=kind, url=url, timeout_s=kw.pop("timeout_s", 2), **extra, **kw)


HTTP_KINDS = ["webhook", "wecom", "dingtalk"]


@pytest.mark.parametrize("kind", HTTP_KINDS)
@pytest.mark.parametrize("status, retryable", [
    (500, True), (502, True), (503, True),   # the receiver's trouble: try again
    (429, True), (408, True),                # slow down / too slow: try again
    (400, False), (401, False), (404, False), (413, False),   # ours: retrying will not help
])
def test_http_failures_say_whether_to_retry(receiver: Receiver, client: httpx.Client, kind: str,
                                            status: int, retryable: bool) -> None:
    receiver.answer((status, f'{{"error":"{TOKEN}"}}'.encode()))
    notifier = build_notifier(channel(kind, receiver.url(query=f"access_token={TOKEN}")), client)
    with pytest.raises(NotifyError) as err:
        notifier.notify(message(), T0)
    assert err.value.retryable is retryable and err.value.http_status == status
    assert TOKEN not in str(err.value) and SECRET not in str(err.value)   # even when echoed
    assert len(receiver.requests) == 1


@pytest.mark.parametrize("kind", HTTP_KINDS)
def test_2xx_is_delivered(receiver: Receiver, client: httpx.Client, kind: str) -> None:
    sent = build_notifier(channel(kind, receiver.url()), client).notify(message(), T0)
    assert sent.http_status == 200 and len(receiver.requests) == 1


@pytest.mark.parametrize("kind", HTTP_KINDS)
def test_timeouts_are_retryable(receiver: Receiver, client: httpx.Client, kind: str) -> None:
    receiver.answer((200, b"{}", 1.0))
    notifier = build_notifier(channel(kind, receiver.url(), timeout_s=0.2), client)
    with pytest.raises(NotifyError, match="timeout") as err:
        notifier.notify(message(), T0)
    assert err.value.retryable


@pytest.mark.parametrize("kind", HTTP_KINDS)
def test_refused_connections_are_retryable_and_hide_the_token(client: httpx.Client, kind: str) -> None:
    url = f"http://127.0.0.1:{free_port()}/robot/send?access_token={TOKEN}"
    with pytest.raises(NotifyError) as err:
        build_notifier(channel(kind, url), client).notify(message(), T0)
    assert err.value.retryable
    assert TOKEN not in str(err.value) and SECRET not in str(err.value)


def test_webhook_signature_verifies_over_the_exact_body(receiver: Receiver, client: httpx.Client) -> None:
    build_notifier(channel("webhook", receiver.url()), client).notify(message(), T0)
    (req,) = receiver.requests
    expected = "sha256=" + hmac.new(SECRET.encode(), req.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(req.headers["x-hazmon-signature"], expected)
    tampered = req.body.replace(b"county", b"county!")
    assert not hmac.compare_digest(
        req.headers["x-hazmon-signature"],
        "sha256=" + hmac.new(SECRET.encode(), tampered, hashlib.sha256).hexdigest())
    body = req.json()
    assert req.headers["content-type"].startswith("application/json")
    assert req.headers["x-hazmon-delivery"] == body["delivery"] == "d-1"
    assert body["status"] == "firing" and body["reason"] == "first" and body["rule"] == "county"
    assert body["counts"] == {"unacknowledged": 3, "new": 3, "resolved": 0, "high": 1,
                              "medium": 1, "low": 1}
    assert [a["id"] for a in body["alarms"]] == [1, 2, 3] and body["alarms"][0]["new"] is True
    assert SECRET not in req.body.decode()


def test_wecom_markdown_shape_and_size(receiver: Receiver, client: httpx.Client) -> None:
    build_notifier(channel("wecom", receiver.url()), client).notify(message(200), T0)
    body = receiver.requests[0].json()
    assert set(body) == {"msgtype", "markdown"} and body["msgtype"] == "markdown"
    content = body["markdown"]["content"]
    assert set(body["markdown"]) == {"content"}
    assert len(content.encode()) <= 4096                       # WeCom's limit
    assert content.startswith("### 【报警通知】E1：200 条报警未确认")
    assert "未确认 200 条（高 67 / 中 67 / 低 66）" in content
    assert "其余 190 条未列出" in content
    assert content.count("\n- ") == 10                         # the top 10 alarms
    assert '<font color="warning">[高]</font>' in content


def test_dingtalk_markdown_shape_and_signature(receiver: Receiver, client: httpx.Client) -> None:
    ch = channel("dingtalk", receiver.url("/robot/send", f"access_token={TOKEN}"),
                 at_mobiles=["13800000000"])
    build_notifier(ch, client).notify(message(), T0)
    (req,) = receiver.requests
    body = req.json()
    assert body["msgtype"] == "markdown"
    assert set(body["markdown"]) == {"title", "text"}
    assert body["markdown"]["title"].startswith("【报警通知】E1")
    assert body["markdown"]["text"].endswith("@13800000000")   # DingTalk shows only mentioned ones
    assert body["at"] == {"atMobiles": ["13800000000"], "isAtAll": False}
    # DingTalk's documented check: base64(HMAC-SHA256(secret, "<timestamp>\n<secret>")), URL-encoded
    ts = req.query["timestamp"]
    assert ts == str(int(T0.timestamp() * 1000))
    digest = hmac.new(SECRET.encode(), f"{ts}\n{SECRET}".encode(), hashlib.sha256).digest()
    assert quote_plus(req.query["sign"]) == quote_plus(base64.b64encode(digest).decode())
    assert req.query["access_token"] == TOKEN


def test_dingtalk_without_a_secret_sends_no_signature(receiver: Receiver, client: httpx.Client) -> None:
    ch = DingtalkChannel(kind="dingtalk", url=receiver.url())
    build_notifier(ch, client).notify(message(), T0)
    assert "sign" not in receiver.requests[0].query


@pytest.mark.parametrize("kind, errcode, retryable", [
    ("wecom", 45009, True),       # frequency limit
    ("wecom", 93000, False),      # invalid webhook URL
    ("dingtalk", 130101, True),   # sending too fast
    ("dingtalk", 310000, False),  # signature, keyword or IP check failed
])
def test_robot_errcodes(receiver: Receiver, client: httpx.Client, kind: str, errcode: int,
                        retryable: bool) -> None:
    receiver.answer((200, json.dumps({"errcode": errcode, "errmsg": "no"}).encode()))
    with pytest.raises(NotifyError, match=f"errcode {errcode}") as err:
        build_notifier(channel(kind, receiver.url()), client).notify(message(), T0)
    assert err.value.retryable is retryable


# -- e-mail ------------------------------------------------------------------------------------

def email_channel(port: int, **kw: Any) -> EmailChannel:
    return EmailChannel.model_validate({"kind": "email", "host": "127.0.0.1", "port": port,
                                        "from": "hazmon@example.cn",
                                        "to": ["duty@example.cn", "boss@example.cn"],
                                        "timeout_s": 5, **kw})


def test_email_is_delivered(smtp: SmtpServer, client: httpx.Client) -> None:
    smtp.inbox.messages.clear()
    build_notifier(email_channel(smtp.port), client).notify(message(12), T0)
    (env,) = smtp.inbox.messages
    assert env.mail_from == "hazmon@example.cn"
    assert env.rcpt_tos == ["duty@example.cn", "boss@example.cn"]
    mail = email.message_from_bytes(env.content, policy=email.policy.default)
    assert mail["Subject"] == "【报警通知】E1：12 条报警未确认（高 4）"
    text = mail.get_content()
    assert "未确认 12 条（高 4 / 中 4 / 低 4）" in text and "其余 2 条未列出" in text


@pytest.mark.parametrize("reply, retryable", [
    ("451 4.3.0 try again later", True),        # temporary: retry
    ("554 5.7.1 rejected", False),              # permanent
])
def test_email_smtp_replies(smtp: SmtpServer, client: httpx.Client, reply: str, retryable: bool) -> None:
    smtp.inbox.replies.append(reply)
    with pytest.raises(NotifyError) as err:
        build_notifier(email_channel(smtp.port), client).notify(message(), T0)
    assert err.value.retryable is retryable


def test_email_refused_connection_is_retryable(client: httpx.Client) -> None:
    with pytest.raises(NotifyError) as err:
        build_notifier(email_channel(free_port()), client).notify(message(), T0)
    assert err.value.retryable


@pytest.fixture(scope="module")
def tls_smtp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpServer]:
    pytest.importorskip("cryptography")
    s = SmtpServer(self_signed(tmp_path_factory.mktemp("tls")), user="alarm", password=SECRET)
    yield s
    s.stop()


def test_email_starttls_and_login(tls_smtp: SmtpServer, client: httpx.Client) -> None:
    ch = email_channel(tls_smtp.port, starttls=True, verify_tls=False, user="alarm", password=SECRET)
    build_notifier(ch, client).notify(message(), T0)
    assert len(tls_smtp.inbox.messages) == 1


@pytest.mark.parametrize("kw, fragment", [
    ({"starttls": True, "verify_tls": False, "user": "alarm", "password": "wrong-password"},
     "535"),                                                  # bad login: permanent
    ({"starttls": True, "user": "alarm", "password": SECRET}, "CERTIFICATE"),   # untrusted cert
])
def test_email_tls_and_login_failures_are_not_retried(tls_smtp: SmtpServer, client: httpx.Client,
                                                      kw: dict, fragment: str) -> None:
    with pytest.raises(NotifyError) as err:
        build_notifier(email_channel(tls_smtp.port, **kw), client).notify(message(), T0)
    assert not err.value.retryable and fragment in str(err.value).upper()
    assert "wrong-password" not in str(err.value) and SECRET not in str(err.value)


def test_texts_fit_a_flood(tmp_path: Path) -> None:
    from alerting.notify import render

    text = render.markdown(message(5000), 4000)
    assert len(text.encode()) <= 4000 and "其余 4990 条未列出" in text

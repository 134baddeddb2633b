"""Notifiers: one attempt to deliver a message to one channel, saying whether a failure is worth
retrying (5xx, 408/429, timeouts, connection errors, SMTP 4xx, the robots' rate limits) or not
(other 4xx, SMTP 5xx, TLS or configuration errors). Retrying is the retry loop's business.

Error texts never hold a secret: URLs are shown masked and known secrets are blanked out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

import httpx

from alerting.notify import render
from alerting.notify.config import (
    ChannelModel,
    DingtalkChannel,
    EmailChannel,
    WebhookChannel,
    WecomChannel,
    mask_url,
)
from alerting.notify.model import Message
from hazmon.errors import ServiceError

SIGNATURE_HEADER = "X-Hazmon-Signature"
USER_AGENT = "hazmon-notify/0.1"
WECOM_RETRY = frozenset({-1, 45009, 45033})     # system busy, frequency and concurrency limits
DINGTALK_RETRY = frozenset({-1, 130101})        # system busy, sending too fast


class NotifyError(ServiceError):
    """A delivery attempt failed; ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool, http_status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.http_status = http_status


@dataclass(frozen=True)
class Sent:
    http_status: int | None = None
    note: str | None = None


class Notifier(Protocol):
    kind: str

    def notify(self, message: Message, now: datetime) -> Sent: ...


def sign_body(secret: str, body: bytes) -> str:
    """The webhook signature header value: ``sha256=`` and the hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's robot signature: base64 HMAC-SHA256 of "<timestamp>\\n<secret>" keyed by secret."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class _Http:
    """Shared HTTP handling: POST JSON, turn transport errors and statuses into NotifyError."""

    kind = "http"

    def __init__(self, channel: Any, client: httpx.Client) -> None:
        self.channel, self.client = channel, client

    def _redact(self, text: str) -> str:
        """Blank the URL's query values (access tokens) and the channel's secret out of a text."""
        text = text.replace(self.channel.url, mask_url(self.channel.url))
        hidden = [v for _, v in parse_qsl(urlsplit(self.channel.url).query) if len(v) >= 6]
        hidden += [s for s in (getattr(self.channel, "secret", None),) if s]
        for value in hidden:
            text = text.replace(value, "***")
        return text

    def _post(self, body: bytes, headers: dict[str, str], params: dict[str, str] | None = None,
              ) -> httpx.Response:
        url = httpx.URL(self.channel.url)
        if params:  # added to the URL's own query (the robots' access token lives there)
            url = url.copy_merge_params(params)
        try:
            resp = self.client.post(url, content=body,
                                    headers={"Content-Type": "application/json; charset=utf-8",
                                             "User-Agent": USER_AGENT, **headers},
                                    timeout=self.channel.timeout_s)
        except httpx.TimeoutException as exc:
            raise NotifyError(f"timeout after {self.channel.timeout_s:g}s ({type(exc).__name__})",
                              retryable=True) from None
        except httpx.TransportError as exc:
            raise NotifyError(self._redact(f"connection error: {type(exc).__name__}: {exc}"),
                              retryable=True) from None
        if not 200 <= resp.status_code < 300:
            excerpt = self._redact(resp.text[:200].strip())
            raise NotifyError(f"HTTP {resp.status_code}" + (f": {excerpt}" if excerpt else ""),
                              retryable=resp.status_code >= 500 or resp.status_code in (408, 429),
                              http_status=resp.status_code)
        return resp

    def _robot_result(self, resp: httpx.Response, retry_codes: frozenset[int]) -> Sent:
        """WeCom and DingTalk answer 200 with ``{"errcode": 0}`` on success."""
        try:
            data = resp.json()
            code = int(data.get("errcode", 0))
        except (ValueError, AttributeError, TypeError):
            raise NotifyError(f"unexpected answer: {self._redact(resp.text[:200])}",
                              retryable=False, http_status=resp.status_code) from None
        if code != 0:
            raise NotifyError(self._redact(f"errcode {code}: {data.get('errmsg', '')}"),
                              retryable=code in retry_codes, http_status=resp.status_code)
        return Sent(resp.status_code)


class WebhookNotifier(_Http):
    """Generic JSON, signed with the channel's secret."""

    kind = "webhook"
    channel: WebhookChannel

    def notify(self, message: Message, now: datetime) -> Sent:
        body = json.dumps(render.webhook_body(message), ensure_ascii=False,
                          separators=(",", ":")).encode()
        headers = {"X-Hazmon-Delivery": message.delivery}
        if self.channel.secret:
            headers[SIGNATURE_HEADER] = sign_body(self.channel.secret, body)
        return Sent(self._post(body, headers).status_code)


class WecomNotifier(_Http):
    """企业微信 group robot: ``{"msgtype": "markdown", "markdown": {"content": ...}}``."""

    kind = "wecom"
    channel: WecomChannel
    MAX_BYTES = 4000   # WeCom allows 4096 bytes of markdown

    def notify(self, message: Message, now: datetime) -> Sent:
        content = render.markdown(message, self.MAX_BYTES, wecom=True)
        body = json.dumps({"msgtype": "markdown", "markdown": {"content": content}},
                          ensure_ascii=False).encode()
        return self._robot_result(self._post(body, {}), WECOM_RETRY)


class DingtalkNotifier(_Http):
    """钉钉 group robot: markdown with title and text, @mobiles, timestamp+sign when a secret is set."""

    kind = "dingtalk"
    channel: DingtalkChannel
    MAX_BYTES = 4000

    def notify(self, message: Message, now: datetime) -> Sent:
        text = render.markdown(message, self.MAX_BYTES)
        ats = self.channel.at_mobiles
        if ats:
            text += "\n\n" + " ".join(f"@{m}" for m in ats)  # DingTalk highlights only mentioned ones
        payload = {"msgtype": "markdown",
                   "markdown": {"title": render.title(message)[:64], "text": text},
                   "at": {"atMobiles": ats, "isAtAll": self.channel.at_all}}
        params = None
        if self.channel.secret:
            ts = int(now.timestamp() * 1000)
            params = {"timestamp": str(ts), "sign": dingtalk_sign(self.channel.secret, ts)}
        body = json.dumps(payload, ensure_ascii=False).encode()
        return self._robot_result(self._post(body, {}, params), DINGTALK_RETRY)


class EmailNotifier:
    """Plain-text e-mail over SMTP (STARTTLS or implicit TLS, optional login)."""

    kind = "email"

    def __init__(self, channel: EmailChannel) -> None:
        self.channel = channel

    def _email(self, message: Message, now: datetime) -> EmailMessage:
        c = self.channel
        em = EmailMessage()
        em["Subject"] = render.title(message)
        em["From"], em["To"] = c.sender, ", ".join(c.to)
        em["Date"] = format_datetime(now)
        em["Message-ID"] = make_msgid(idstring=message.delivery or None, domain="hazmon")
        em.set_content(render.plain(message))
        return em

    def _tls(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if not self.channel.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def notify(self, message: Message, now: datetime) -> Sent:
        c = self.channel
        try:
            smtp = (smtplib.SMTP_SSL(c.host, c.port, timeout=c.timeout_s, context=self._tls())
                    if c.ssl else smtplib.SMTP(c.host, c.port, timeout=c.timeout_s))
            with smtp:
                if c.starttls:
                    smtp.starttls(context=self._tls())
                if c.user:
                    smtp.login(c.user, c.password or "")
                refused = smtp.send_message(self._email(message, now))
        except Exception as exc:  # noqa: BLE001 - classified below, never re-raised raw
            raise self._error(exc) from None
        return Sent(note=f"refused by the server: {', '.join(refused)}" if refused else None)

    def _error(self, exc: Exception) -> NotifyError:
        text = f"{type(exc).__name__}: {exc}"
        if self.channel.password:
            text = text.replace(self.channel.password, "***")
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            codes = [code for code, _ in exc.recipients.values()]
            return NotifyError(text, retryable=all(400 <= code < 500 for code in codes))
        if isinstance(exc, smtplib.SMTPResponseException):
            return NotifyError(text, retryable=400 <= exc.smtp_code < 500)
        if isinstance(exc, ssl.SSLError):
            return NotifyError(text, retryable=False)
        if isinstance(exc, smtplib.SMTPServerDisconnected):
            return NotifyError(text, retryable=True)
        if isinstance(exc, smtplib.SMTPException):  # an OSError too, but not a network one
            return NotifyError(text, retryable=False)
        return NotifyError(text, retryable=isinstance(exc, OSError))  # refused, reset, timeout


def build_notifier(channel: ChannelModel, client: httpx.Client) -> Notifier:
    """The notifier for a channel's settings."""
    if isinstance(channel, EmailChannel):
        return EmailNotifier(channel)
    if isinstance(channel, WebhookChannel):
        return WebhookNotifier(channel, client)
    if isinstance(channel, WecomChannel):
        return WecomNotifier(channel, client)
    return DingtalkNotifier(channel, client)

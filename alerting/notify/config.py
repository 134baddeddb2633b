"""Validated notification configuration: channels (one model per kind) and routing rules.

The API validates bodies with these models and the notifier rebuilds channels from what is
stored with them, so both sides agree on what a valid channel is. A channel's secret (HMAC key,
SMTP password, DingTalk sign secret) is stored apart from its settings and never shown; URL query
values (the robots' access tokens) are masked whenever a URL is shown.
"""

from __future__ import annotations

import itertools
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from alerting.lifecycle import CONDITIONS, PRIORITIES
from alerting.notify.model import LABELS, WARNING_CONDITION

NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
CODE_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
HS_CODE_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
KINDS = ("webhook", "email", "wecom", "dingtalk")
SECRET_FIELD = {"webhook": "secret", "email": "password", "dingtalk": "secret"}
RULE_CONDITIONS = (*CONDITIONS, WARNING_CONDITION)


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    return value


def mask_url(url: str) -> str:
    """The URL with every query value and any user info replaced by ***."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2] if "@" in parts.netloc else parts.netloc
    query = urlencode([(k, "***") for k, _ in parse_qsl(parts.query, keep_blank_values=True)],
                      safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


class _Channel(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str | None = Field(default=None, pattern=NAME_PATTERN,
                             description="required when creating; the path names it otherwise")
    enabled: bool = True


class _HttpChannel(_Channel):
    url: Annotated[str, Field(max_length=2000)]
    timeout_s: float = Field(default=10.0, gt=0, le=60)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _http_url(value)


class WebhookChannel(_HttpChannel):
    """Generic JSON webhook, signed: ``X-Hazmon-Signature: sha256=<hex HMAC-SHA256 of body>``."""

    kind: Literal["webhook"]
    secret: str | None = Field(default=None, min_length=16, max_length=512, repr=False,
                               description="HMAC key; required (kept when omitted on update)")


class EmailChannel(_Channel):
    """E-mail over SMTP (``starttls`` upgrades a plain connection, ``ssl`` is TLS from the start)."""

    kind: Literal["email"]
    host: str = Field(min_length=1, max_length=255)
    port: int = Field(default=25, ge=1, le=65535)
    starttls: bool = False
    ssl: bool = False
    verify_tls: bool = True
    user: str | None = Field(default=None, max_length=255)
    password: str | None = Field(default=None, max_length=512, repr=False)
    sender: str = Field(alias="from", pattern=r"^[^@\s]+@[^@\s]+$", max_length=255)
    to: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$", max_length=255)]] = Field(
        min_length=1, max_length=100)
    timeout_s: float = Field(default=15.0, gt=0, le=120)

    @model_validator(mode="after")
    def _tls(self) -> EmailChannel:
        if self.starttls and self.ssl:
            raise ValueError("choose starttls or ssl, not both")
        return self


class WecomChannel(_HttpChannel):
    """WeCom (企业微信) group robot: markdown messages to its webhook URL."""

    kind: Literal["wecom"]


class DingtalkChannel(_HttpChannel):
    """DingTalk (钉钉) group robot: markdown, signed when a sign secret is set."""

    kind: Literal["dingtalk"]
    secret: str | None = Field(default=None, max_length=512, repr=False,
                               description="the robot's 加签 secret (SEC…), optional")
    at_mobiles: list[Annotated[str, Field(pattern=r"^\+?[0-9-]{5,20}$")]] = Field(
        default=[], max_length=50)
    at_all: bool = False


ChannelIn = Annotated[WebhookChannel | EmailChannel | WecomChannel | DingtalkChannel,
                      Field(discriminator="kind")]
ChannelModel = WebhookChannel | EmailChannel | WecomChannel | DingtalkChannel
_MODELS: dict[str, type[_Channel]] = {"webhook": WebhookChannel, "email": EmailChannel,
                                      "wecom": WecomChannel, "dingtalk": DingtalkChannel}


def split_channel(channel: ChannelModel) -> tuple[dict[str, Any], str | None, bool]:
    """(settings to store, secret, whether the body gave the secret field at all)."""
    field = SECRET_FIELD.get(channel.kind)
    data = channel.model_dump(by_alias=True, exclude={"name", "enabled", "kind"})
    secret = data.pop(field, None) if field else None
    given = field is not None and field in channel.model_fields_set
    return data, secret, given


def load_channel(kind: str, settings: dict[str, Any], secret: str | None) -> ChannelModel:
    """A stored channel as its model (ValueError when the stored data no longer validates)."""
    field = SECRET_FIELD.get(kind)
    data = {**settings, "kind": kind}
    if field:
        data[field] = secret
    return _MODELS[kind].model_validate(data)  # type: ignore[return-value]


def public_settings(kind: str, settings: dict[str, Any]) -> dict[str, Any]:
    """Settings as shown: URLs masked (secrets are stored elsewhere and never here)."""
    out = dict(settings)
    if "url" in out:
        out["url"] = mask_url(str(out["url"]))
    return out


class TierIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    after_s: float = Field(ge=0, le=30 * 86400, description="seconds after the alarm became unacknowledged")
    channels: list[Annotated[str, Field(pattern=NAME_PATTERN)]] = Field(min_length=1, max_length=20)


class RuleIn(BaseModel):
    """A routing rule: matchers (empty = any), grouping, timers and escalation tiers."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, pattern=NAME_PATTERN,
                             description="required when creating; the path names it otherwise")
    enabled: bool = True
    enterprises: list[Annotated[str, Field(pattern=CODE_PATTERN)]] = Field(default=[], max_length=10_000)
    hazard_sources: list[Annotated[str, Field(pattern=HS_CODE_PATTERN)]] = Field(default=[], max_length=10_000)
    hazard_levels: list[Annotated[int, Field(ge=1, le=4)]] = Field(default=[], max_length=4)
    priorities: list[Literal[PRIORITIES]] = Field(default=[], max_length=3)  # type: ignore[valid-type]
    conditions: list[Literal[RULE_CONDITIONS]] = Field(default=[], max_length=20)  # type: ignore[valid-type]
    group_by: list[Literal[LABELS]] = Field(default=["enterprise"], max_length=6)  # type: ignore[valid-type]
    group_wait_s: float = Field(default=30, ge=0, le=86400)
    group_interval_s: float = Field(default=300, gt=0, le=7 * 86400)
    repeat_interval_s: float = Field(default=3600, gt=0, le=30 * 86400)
    send_resolved: bool = False
    tiers: list[TierIn] = Field(min_length=1, max_length=10)

    @model_validator(mode="after")
    def _check(self) -> RuleIn:
        afters = [t.after_s for t in self.tiers]
        if any(b <= a for a, b in itertools.pairwise(afters)):
            raise ValueError("tiers must have strictly increasing after_s")
        if len(set(self.group_by)) != len(self.group_by):
            raise ValueError("group_by lists a label twice")
        return self

    def channel_names(self) -> set[str]:
        return {c for t in self.tiers for c in t.channels}

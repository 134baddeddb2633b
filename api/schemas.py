"""Request and response bodies of the HTTP API, named by role."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from api import timeparse

CODE_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
HS_CODE_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"


def _in_range(value: datetime) -> datetime:
    """Refuse times outside what can be stored and read back (PostgreSQL stores year 10000,
    Python cannot read it: every later read of the row would fail)."""
    if not timeparse.in_range(value):
        raise ValueError(f"the time is out of range ({timeparse.RANGE_TEXT})")
    return value


RequestTime = Annotated[AwareDatetime, AfterValidator(_in_range)]
"""A time in a request body: RFC 3339 with an offset, within years 2 to 9998."""


class Strict(BaseModel):
    """Bodies reject unknown fields so typos are reported, not ignored."""

    model_config = ConfigDict(extra="forbid")


class EnterpriseCreate(Strict):
    code: str = Field(pattern=CODE_PATTERN, description="as used in MQTT topics")
    name: str = Field(min_length=1, max_length=200)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    region: str | None = Field(default=None, max_length=100, description="e.g. a county code")


class EnterprisePublic(BaseModel):
    code: str
    name: str
    lat: float | None
    lon: float | None
    region: str | None = None
    created_at: datetime


class ChemicalIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    cas: str | None = Field(default=None, max_length=32)
    quantity_t: float = Field(ge=0, allow_inf_nan=False)
    critical_t: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    beta: float | None = Field(default=None, gt=0, allow_inf_nan=False)


class HazardSourceCreate(Strict):
    code: str = Field(pattern=HS_CODE_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    unit_type: Literal["storage", "production"]
    residents_500m: int | None = Field(default=None, ge=0)
    chemicals: list[ChemicalIn] = Field(max_length=500)


class HazardSourcePublic(BaseModel):
    code: str
    name: str
    unit_type: str
    residents_500m: int | None
    chemicals: list[dict[str, Any]]
    s: float
    r: float
    alpha: float
    level: int | None


class PointsUploaded(BaseModel):
    created: int
    updated: int


class Latest(BaseModel):
    value: float
    ts: datetime
    quality: Literal["good", "bad"]


class PointPublic(BaseModel):
    tag: str
    name: str | None
    hazard_source: str | None
    kind: str
    unit: str | None
    range_low: float | None
    range_high: float | None
    lolo: float | None
    lo: float | None
    hi: float | None
    hihi: float | None
    deadband: float
    on_delay_s: float
    off_delay_s: float
    roc_per_min: float | None
    stale_s: float | None
    latching: bool = False
    priorities: dict[str, str] = {}
    in_service: bool
    oos_reason: str | None = None
    oos_by: str | None = None
    oos_since: datetime | None = None
    oos_until: datetime | None = None
    mode: str = "normal"
    mode_reason: str | None = None
    mode_by: str | None = None
    mode_since: datetime | None = None
    mode_until: datetime | None = None
    latest: Latest | None


class ReadingPublic(BaseModel):
    ts: datetime
    value: float
    quality: Literal["good", "bad"]


class BucketPublic(BaseModel):
    ts: datetime
    min: float
    max: float
    avg: float
    count: int


class AlarmPublic(BaseModel):
    id: int
    enterprise: str
    gateway: str | None
    tag: str | None
    hazard_source: str | None
    condition: str
    priority: str
    state: str
    value: float | None
    limit: float | None
    activated_at: datetime
    cleared_at: datetime | None
    acked_at: datetime | None
    acked_by: str | None
    active: bool
    activations: int
    latched: bool = False
    shelved_until: datetime | None = None
    shelved_by: str | None = None
    shelve_reason: str | None = None


class AckRequest(Strict):
    comment: str | None = Field(default=None, max_length=2000)


class ShelveRequest(Strict):
    duration_s: int = Field(gt=0, le=30 * 86400)
    reason: str = Field(min_length=1, max_length=2000)


class ModeChange(Strict):
    mode: Literal["normal", "maintenance", "shutdown"]
    reason: str | None = Field(default=None, max_length=2000)
    until: RequestTime | None = Field(default=None, description="RFC 3339; back to normal then")


class ServiceChange(Strict):
    in_service: bool
    reason: str | None = Field(default=None, max_length=2000)
    until: RequestTime | None = Field(default=None, description="RFC 3339; back in service then")


class ModeResult(BaseModel):
    mode: str | None = None
    in_service: bool | None = None
    alarms_changed: int


class AlarmEventPublic(BaseModel):
    at: datetime
    actor: str
    action: str
    from_state: str | None
    to_state: str
    value: float | None
    reading_ts: datetime | None
    comment: str | None


class RejectionPublic(BaseModel):
    at: datetime
    enterprise: str | None
    gateway: str | None
    topic: str
    tag: str | None
    code: str
    reason: str
    excerpt: str


class ErrorItem(BaseModel):
    """One problem: a validation error (``loc``, ``msg``, ``type``) or a point-table error
    (``row``, ``column``, ``message``)."""

    model_config = ConfigDict(extra="allow")


class ErrorBody(BaseModel):
    """Every error response: ``{"detail": ...}``, a message or a list of problems."""

    detail: str | list[ErrorItem]


T = TypeVar("T")


class Items(BaseModel, Generic[T]):
    """A list response: ``{"items": [...]}``."""

    items: list[T]

"""The shift handover (交接班): what a duty shift raised, acknowledged, left open, shelved and
suppressed, as JSON or CSV (definitions in ``alerting.handover_repository``)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query
from fastapi.responses import Response
from pydantic import BaseModel

from alerting import handover_repository as repo
from api.deps import DbDep, PrincipalDep
from api.timeparse import parse_time
from hazmon.errors import InputError

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])


class HandoverAlarm(BaseModel):
    id: int
    enterprise: str
    enterprise_name: str
    tag: str | None
    point_name: str | None
    gateway: str | None            # set for gateway alarms (COMM) only
    hazard_source: str | None
    hazard_source_name: str | None
    condition: str
    priority: str


class RaisedPublic(HandoverAlarm):
    activations: int               # activations in the shift
    masked: int                    # of those, recorded while shelved/suppressed/out of service
    first_at: datetime
    last_at: datetime
    state_at_end: str | None


class AckedPublic(HandoverAlarm):
    acked_at: datetime
    acked_by: str
    comment: str | None
    from_state: str | None
    to_state: str
    activated_at: datetime | None  # the activation this acknowledgement answered
    response_s: float | None


class OpenPublic(HandoverAlarm):
    state: str                     # at the end of the shift
    active_since: datetime | None  # last activation before the end
    carried_over: bool             # raised before the shift began


class MaskedPublic(HandoverAlarm):
    at: datetime
    actor: str
    action: str
    from_state: str | None
    state: str
    reason: str | None
    ended_at: datetime | None      # null: still in that state at the end of the shift
    ended_by: str | None
    ended_action: str | None
    state_at_end: str | None


class ShelvedPublic(MaskedPublic):
    duration_s: int | None
    until: datetime | None


class HandoverSummary(BaseModel):
    raised: int
    activations: int
    acknowledged: int
    still_open: int
    unacknowledged: int
    shelved: int
    suppressed: int


class ShiftHandoverPublic(BaseModel):
    start: datetime
    end: datetime
    enterprise: str | None
    summary: HandoverSummary
    raised: list[RaisedPublic]
    acknowledged: list[AckedPublic]
    still_open: list[OpenPublic]
    shelved: list[ShelvedPublic]
    suppressed: list[MaskedPublic]
    list_limit: int


def _range(start: str | None, end: str | None) -> tuple[datetime, datetime]:
    """The shift: end defaults to now, start to 8 h before end."""
    t_end = parse_time(end, "end") if end else datetime.now(UTC)
    t_start = parse_time(start, "start") if start else t_end - repo.DEFAULT_SHIFT
    if t_end <= t_start:
        raise InputError(f"end ({t_end.isoformat()}) must be after start ({t_start.isoformat()})")
    if t_end - t_start > repo.MAX_RANGE:
        raise InputError(f"a handover may span at most {repo.MAX_RANGE.days} days")
    return t_start, t_end


@router.get("/shift-handover", response_model=ShiftHandoverPublic, responses={
    200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with format=csv"}})
def shift_handover(
    conn: DbDep, principal: PrincipalDep,
    start: Annotated[str | None, Query(description="RFC 3339, inclusive; default end - 8 h")] = None,
    end: Annotated[str | None, Query(description="RFC 3339, exclusive; default now")] = None,
    enterprise: Annotated[str | None, Query(description="an enterprise code; default all "
                                                        "the token sees")] = None,
    format: Annotated[Literal["json", "csv"] | None, Query()] = None,
    accept: Annotated[str | None, Header()] = None,
) -> Any:
    """The handover of the shift ``[start, end)``: alarms raised, acknowledgements, alarms
    still open at the end (and whether the shift inherited them), shelves and suppressions
    with who, why and when they ended. Lists are cut at ``list_limit`` rows; ``summary`` has
    the full counts.

    ``format=csv`` (or ``Accept: text/csv``) returns a CSV attachment (UTF-8 with a BOM, so a
    spreadsheet shows Chinese names): a ``metric,value`` block, then each section after an
    empty row and a title row, with its own header. Times are ``YYYY-MM-DD HH:MM:SS`` in the
    UTC offset of ``start`` as given (UTC when it is not given; the offset is in the block).
    Text cells that start with ``= + - @`` get a leading ``'``.
    """
    t_start, t_end = _range(start, end)
    if enterprise is not None:
        principal.require_enterprise(enterprise)
    body = repo.shift_handover(conn, start=t_start, end=t_end, enterprise=enterprise,
                               scope=principal.scope_list())
    if not _wants_csv(format, accept):
        return body
    tz = t_start.utcoffset() if start else timedelta(0)
    name = f"shift-handover-{enterprise or 'all'}-{_stamp(t_start)}-{_stamp(t_end)}.csv"
    return Response("\ufeff" + to_csv(body, tz or timedelta(0)),
                    media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _wants_csv(fmt: str | None, accept: str | None) -> bool:
    if fmt is not None:
        return fmt == "csv"
    return accept is not None and "text/csv" in accept.lower()


def _stamp(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


_KEY_COLUMNS = ("id", "enterprise", "enterprise_name", "hazard_source", "hazard_source_name",
                "tag", "point_name", "gateway", "condition", "priority")
_SECTIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("raised during the shift", "raised",
     (*_KEY_COLUMNS, "activations", "masked", "first_at", "last_at", "state_at_end")),
    ("acknowledged during the shift", "acknowledged",
     (*_KEY_COLUMNS, "acked_at", "acked_by", "comment", "from_state", "to_state", "activated_at",
      "response_s")),
    ("still open at the end of the shift", "still_open",
     (*_KEY_COLUMNS, "state", "active_since", "carried_over")),
    ("shelved during the shift", "shelved",
     (*_KEY_COLUMNS, "at", "actor", "reason", "duration_s", "until", "ended_at", "ended_by",
      "ended_action", "state_at_end")),
    ("suppressed or out of service during the shift", "suppressed",
     (*_KEY_COLUMNS, "at", "actor", "action", "state", "reason", "ended_at", "ended_by",
      "ended_action", "state_at_end")),
)


def _offset_text(tz: timedelta) -> str:
    minutes = int(tz.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def to_csv(body: dict[str, Any], tz: timedelta) -> str:
    """The handover as CSV (see the route's description)."""
    zone = timezone(tz)

    def cell(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.astimezone(zone).replace(tzinfo=None, microsecond=0).isoformat(sep=" ")
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, float):
            return round(value, 3)
        if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
            return "'" + value
        return "" if value is None else value

    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(("metric", "value"))
    w.writerows([("report", "shift handover"), ("start", cell(body["start"])),
                 ("end", cell(body["end"])), ("utc_offset", _offset_text(tz)),
                 ("enterprise", cell(body["enterprise"] or "(all)"))])
    w.writerows((k, v) for k, v in body["summary"].items())
    for title, key, columns in _SECTIONS:
        w.writerows(([], [title], columns))
        for row in body[key]:
            w.writerow([cell(row.get(c)) for c in columns])
    return out.getvalue()

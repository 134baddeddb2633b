"""Reports: the alarm performance report (ISA-18.2 §16, EEMUA 191), as JSON or CSV."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query
from fastapi.responses import Response
from pydantic import BaseModel

from alerting import report
from alerting import report_repository as repo
from api.deps import DbDep, PrincipalDep
from hazmon.errors import Forbidden
from api.timeparse import parse_time
from hazmon.errors import InputError

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])


# The report's own response schemas (only this route uses them).
class AlarmKeyPublic(BaseModel):
    enterprise: str
    tag: str | None          # null for gateway alarms (COMM)
    gateway: str | None      # set for gateway alarms only
    condition: str


class ChatteringPublic(AlarmKeyPublic):
    max_per_minute: int      # most activations in any closed 60 s window
    activations: int


class StalePublic(AlarmKeyPublic):
    id: int
    priority: str
    state: str               # the alarm's state now
    active_since: datetime
    active_s: float          # end - active_since


class TopAlarmPublic(AlarmKeyPublic):
    activations: int
    share: float


class FloodPublic(BaseModel):
    window_s: int
    threshold: int
    windows: int
    flood_windows: int
    flood_share: float
    peak_10min: int


class PrioritySharePublic(BaseModel):
    count: int
    share: float
    target: float


class MaskCountsPublic(BaseModel):
    events: int
    current: int


class AlarmPerformancePublic(BaseModel):
    start: datetime
    end: datetime
    enterprise: str | None
    activations: int
    not_annunciated: int
    per_10min: float
    per_day: float
    flood: FloodPublic
    chattering: list[ChatteringPublic]
    chattering_count: int
    stale: list[StalePublic]
    stale_count: int
    top10: list[TopAlarmPublic]
    top10_share: float
    priority_mix: dict[str, PrioritySharePublic]
    shelved: MaskCountsPublic
    suppressed: MaskCountsPublic


def _range(start: str | None, end: str | None) -> tuple[datetime, datetime]:
    """The report's [start, end): end defaults to now, start to 24 h before end."""
    t_end = parse_time(end, "end") if end else datetime.now(UTC)
    t_start = parse_time(start, "start") if start else t_end - report.STALE_AFTER
    if t_end <= t_start:
        raise InputError(f"end ({t_end.isoformat()}) must be after start ({t_start.isoformat()})")
    if t_end - t_start > report.MAX_RANGE:
        raise InputError(f"the range may span at most {report.MAX_RANGE.days} days")
    return t_start, t_end


def _wants_csv(fmt: str | None, accept: str | None) -> bool:
    if fmt is not None:
        return fmt == "csv"
    return accept is not None and "text/csv" in accept.lower()


@router.get("/alarm-performance", response_model=AlarmPerformancePublic, responses={
    200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with format=csv"}})
def alarm_performance(
    conn: DbDep, principal: PrincipalDep,
    start: Annotated[str | None, Query(description="RFC 3339, inclusive; default end - 24 h")] = None,
    end: Annotated[str | None, Query(description="RFC 3339, exclusive; default now")] = None,
    enterprise: Annotated[str | None, Query(description="an enterprise code; default all")] = None,
    format: Annotated[Literal["json", "csv"] | None, Query()] = None,
    accept: Annotated[str | None, Header()] = None,
) -> Any:
    """Alarm system performance over ``[start, end)``: activations and their rates, flood
    windows, chattering and stale alarms, the top 10, the priority mix against the EEMUA
    targets, and shelve/suppress counts (definitions in ``alerting.report``).

    ``format=csv`` (or ``Accept: text/csv``) returns a CSV attachment a spreadsheet opens as
    it is: first a two-column ``metric,value`` block with every scalar figure (shares as
    fractions 0..1, times UTC as ``YYYY-MM-DD HH:MM:SS``, ``(all)`` for the overall scope),
    then, each after an empty row and a title row, the tables ``top 10 alarms``,
    ``chattering alarms`` and ``stale alarms``, each with its own header row. Text cells that
    start with ``= + - @`` get a leading ``'`` so no spreadsheet runs them as formulas.
    """
    t_start, t_end = _range(start, end)
    if enterprise is not None:
        principal.require_enterprise(enterprise)
    elif principal.enterprises is not None:
        if len(principal.enterprises) != 1:
            raise Forbidden("this token sees only some enterprises: name one with ?enterprise=")
        enterprise = next(iter(principal.enterprises))
    counts = repo.alarm_performance(conn, start=t_start, end=t_end, enterprise=enterprise)
    body = report.summarize(counts, start=t_start, end=t_end, enterprise=enterprise)
    if not _wants_csv(format, accept):
        return body
    name = f"alarm-performance-{enterprise or 'all'}-{_stamp(t_start)}-{_stamp(t_end)}.csv"
    return Response(report.to_csv(body), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _stamp(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")

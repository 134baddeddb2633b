"""Hazard records, pure: when drills and re-identification fall due (dates in, flags out).

    emergency plan (专项应急预案)       drilled every 12 months
    on-site procedure (现场处置方案)     drilled every 6 months
    identification and grading          repeated every 3 years (GB 18218 practice)

Periods are calendar months (a day past the end of the target month is clamped: drilled on
31 Aug, the procedure is next due on 28/29 Feb). ``next_drill_on`` is the last day the drill is
on time: a drill is *overdue* the day after it (never drilled: overdue). Re-identification is
*due* from ``reidentify_by`` on (never identified: due). "Today" is the date in China
(UTC+8, no daylight saving) unless a zone is given.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo

CHINA = timezone(timedelta(hours=8), "CST")
DRILL_MONTHS = {"emergency_plan": 12, "onsite_procedure": 6}
REIDENTIFY_MONTHS = 36
PLAN_KINDS = tuple(DRILL_MONTHS)
RESPONSIBLE_ROLES = ("principal", "technical", "operations")


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later, clamped to the end of a shorter month."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def local_today(now: datetime, zone: tzinfo = CHINA) -> date:
    """The calendar date of an aware instant in the given zone."""
    return now.astimezone(zone).date()


@dataclass(frozen=True)
class DrillStatus:
    """When a plan's next drill is due and whether it is overdue."""

    next_drill_on: date | None
    drill_overdue: bool


def drill_status(kind: str, last_drill_on: date | None, today: date) -> DrillStatus:
    """Next drill date (last + 12 or 6 months) and overdue (today after it, or never drilled)."""
    if last_drill_on is None:
        return DrillStatus(None, True)
    due = add_months(last_drill_on, DRILL_MONTHS[kind])
    return DrillStatus(due, today > due)


@dataclass(frozen=True)
class IdentificationStatus:
    """When the hazard source must be identified and graded again, and whether that is now."""

    reidentify_by: date | None
    reidentification_due: bool


def identification_status(last_identified_on: date | None, today: date) -> IdentificationStatus:
    """Re-identification date (last + 3 years) and due (today on or after it, or never)."""
    if last_identified_on is None:
        return IdentificationStatus(None, True)
    by = add_months(last_identified_on, REIDENTIFY_MONTHS)
    return IdentificationStatus(by, today >= by)


def plan_flags(plan: dict[str, object], today: date) -> dict[str, object]:
    """A plan row with its drill flags added."""
    status = drill_status(str(plan["kind"]), plan.get("last_drill_on"), today)  # type: ignore[arg-type]
    return {**plan, "next_drill_on": status.next_drill_on, "drill_overdue": status.drill_overdue}


def record_flags(plans: list[dict[str, object]], last_identified_on: date | None,
                 missing_roles: list[str], today: date) -> dict[str, object]:
    """What is wrong with a hazard record today, in one summary for lists and the alarm card."""
    ident = identification_status(last_identified_on, today)
    kinds = {str(p["kind"]) for p in plans}
    return {
        "reidentify_by": ident.reidentify_by,
        "reidentification_due": ident.reidentification_due,
        "drill_overdue": any(drill_status(str(p["kind"]), p.get("last_drill_on"),  # type: ignore[arg-type]
                                          today).drill_overdue for p in plans),
        "missing_plans": [k for k in PLAN_KINDS if k not in kinds],
        "missing_responsibles": missing_roles,
    }

"""Drill and re-identification dates on both sides of their edges (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from devices import records


@pytest.mark.parametrize("day, months, expected", [
    (date(2025, 3, 1), 12, date(2026, 3, 1)),
    (date(2025, 8, 31), 6, date(2026, 2, 28)),     # clamped to a shorter month
    (date(2023, 8, 31), 6, date(2024, 2, 29)),     # leap year
    (date(2024, 2, 29), 36, date(2027, 2, 28)),
    (date(2025, 12, 15), 1, date(2026, 1, 15)),
])
def test_add_months(day: date, months: int, expected: date) -> None:
    assert records.add_months(day, months) == expected


@pytest.mark.parametrize("kind, last, today, overdue", [
    ("emergency_plan", date(2025, 3, 1), date(2026, 3, 1), False),    # the due day: on time
    ("emergency_plan", date(2025, 3, 1), date(2026, 3, 2), True),     # the day after: overdue
    ("onsite_procedure", date(2025, 3, 1), date(2025, 9, 1), False),
    ("onsite_procedure", date(2025, 3, 1), date(2025, 9, 2), True),
    ("onsite_procedure", None, date(2025, 1, 1), True),              # never drilled
])
def test_drill_overdue(kind: str, last: date | None, today: date, overdue: bool) -> None:
    assert records.drill_status(kind, last, today).drill_overdue is overdue


@pytest.mark.parametrize("last, today, due", [
    (date(2023, 5, 10), date(2026, 5, 9), False),   # the day before: not yet
    (date(2023, 5, 10), date(2026, 5, 10), True),   # three years on: due
    (None, date(2026, 1, 1), True),                 # never identified
])
def test_reidentification_due(last: date | None, today: date, due: bool) -> None:
    status = records.identification_status(last, today)
    assert status.reidentification_due is due
    if last:
        assert status.reidentify_by == date(last.year + 3, last.month, last.day)


def test_today_is_chinas_date() -> None:
    # 2026-03-01 16:30 UTC is already 2 March 00:30 in China
    assert records.local_today(datetime(2026, 3, 1, 16, 30, tzinfo=UTC)) == date(2026, 3, 2)
    assert records.local_today(datetime(2026, 3, 1, 15, 59, tzinfo=UTC) + timedelta(0)) == date(2026, 3, 1)


def test_record_flags() -> None:
    plans = [{"kind": "emergency_plan", "last_drill_on": date(2025, 6, 1)}]
    flags = records.record_flags(plans, date(2024, 1, 1), ["technical"], date(2026, 1, 1))
    assert flags == {"reidentify_by": date(2027, 1, 1), "reidentification_due": False,
                     "drill_overdue": False, "missing_plans": ["onsite_procedure"],
                     "missing_responsibles": ["technical"]}

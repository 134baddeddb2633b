"""Correlation rules, the reporting clock and distances, on both sides of each edge (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerting import incidents as inc
from hazmon.errors import InputError

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
MS = timedelta(milliseconds=1)
FIVE_MIN = timedelta(minutes=5)
GAS, HIHI1 = inc.DEFAULTS.rules


def act(event_id: int, point_id: int, at: datetime, *, kind: str = "gas", condition: str = "HI",
        level: int | None = 2, hs: int = 1) -> inc.Activation:
    return inc.Activation(event_id, 100 + event_id, point_id, hs, level, kind, condition, at)


@pytest.mark.parametrize("gap, matches", [
    (FIVE_MIN, True),            # exactly 5 minutes apart: within the window
    (FIVE_MIN + MS, False),      # a millisecond more: not
    (timedelta(0), True),
])
def test_gas_window_edge(gap: timedelta, matches: bool) -> None:
    first, second = act(1, 11, T0), act(2, 12, T0 + gap)
    assert (inc.match(GAS, second, [first]) is not None) is matches
    assert (inc.match(GAS, first, [second]) is not None) is matches   # order of arrival does not matter


@pytest.mark.parametrize("case, others, matches", [
    ("two detectors", [act(1, 11, T0)], True),
    ("one detector twice", [act(1, 12, T0)], False),                  # same point as the new one
    ("one detector alone", [], False),
    ("other hazard source", [act(1, 11, T0, hs=2)], False),
    ("toxic gas counts", [act(1, 11, T0, kind="toxic_gas")], True),
    ("oxygen does not", [act(1, 11, T0, kind="oxygen")], False),
    ("pressure does not", [act(1, 11, T0, kind="pressure")], False),
    ("HIHI is above HI", [act(1, 11, T0, condition="HIHI")], True),
    ("LO is not", [act(1, 11, T0, condition="LO")], False),
])
def test_two_gas_detectors_vs_one(case: str, others: list, matches: bool) -> None:
    new = act(2, 12, T0 + timedelta(minutes=1))
    assert (inc.match(GAS, new, others) is not None) is matches, case


def test_match_returns_every_activation_in_the_window() -> None:
    a, b, c = act(1, 11, T0), act(2, 12, T0 + timedelta(minutes=2)), act(3, 13, T0 + timedelta(minutes=4))
    late = act(4, 14, T0 + timedelta(minutes=9))
    assert inc.match(GAS, c, [a, b, late]) == (a, b, c)


def test_new_activation_must_itself_apply() -> None:
    assert inc.match(GAS, act(2, 12, T0, kind="pressure"), [act(1, 11, T0)]) is None


@pytest.mark.parametrize("level, condition, matches", [
    (1, "HIHI", True),           # a level 1 source: any HIHI
    (2, "HIHI", False),          # level 2: not by this rule
    (None, "HIHI", False),       # not a major hazard source
    (1, "HI", False),            # HI is not HIHI
])
def test_hihi_at_level_1(level: int | None, condition: str, matches: bool) -> None:
    new = act(1, 11, T0, kind="pressure", condition=condition, level=level)
    assert (inc.match(HIHI1, new, []) is not None) is matches
    assert bool(inc.correlate(inc.DEFAULTS, new, [])) is matches


def test_correlate_names_every_rule_met() -> None:
    new = act(2, 12, T0, condition="HIHI", level=1)
    met = inc.correlate(inc.DEFAULTS, new, [act(1, 11, T0 - timedelta(minutes=1), level=1)])
    assert [rule.name for rule, _ in met] == ["gas_multi_detector", "hihi_level1"]


@pytest.mark.parametrize("now_offset, reported, overdue, late", [
    (-MS, None, False, False),                     # 1 ms before the hour: still on time
    (timedelta(0), None, True, False),             # exactly due: overdue
    (timedelta(hours=2), -MS, False, False),       # reported 1 ms before due
    (timedelta(hours=2), timedelta(0), True, True),  # reported exactly at due: late
])
def test_report_clock_edges(now_offset: timedelta, reported: timedelta | None, overdue: bool,
                            late: bool) -> None:
    due = inc.DEFAULTS.report_due(T0)
    assert due == T0 + timedelta(hours=1)
    clock = inc.report_clock(due, None if reported is None else due + reported, due + now_offset)
    assert (clock.overdue, clock.late) == (overdue, late)


def test_haversine_and_nearest() -> None:
    # One degree of latitude is ~111.2 km on the mean sphere; a point to itself is 0.
    assert inc.haversine_km(30, 120, 31, 120) == pytest.approx(111.195, abs=0.01)
    assert inc.haversine_km(30, 120, 30, 120) == 0
    # Beijing to Shanghai, ~1067 km great-circle
    assert inc.haversine_km(39.9042, 116.4074, 31.2304, 121.4737) == pytest.approx(1067, rel=0.01)
    rows = [{"id": 1, "lat": 30.5, "lon": 120}, {"id": 2, "lat": 30.01, "lon": 120},
            {"id": 3, "lat": 30, "lon": 120.2}]
    assert [r["id"] for r in inc.nearest(rows, 30, 120, 2)] == [2, 3]


def test_configured_rules() -> None:
    rules = inc.parse_rules({"report_deadline_s": 900, "rules": [
        {"name": "three_toxic", "conditions": ["HIHI"], "point_kinds": ["toxic_gas"],
         "min_points": 3, "window_s": 60, "levels": [1, 2]}]})
    rule = rules.rules[0]
    two = [act(1, 11, T0, kind="toxic_gas", condition="HIHI"),
           act(2, 12, T0, kind="toxic_gas", condition="HIHI")]
    third = act(3, 13, T0 + timedelta(seconds=60), kind="toxic_gas", condition="HIHI")
    assert inc.match(rule, third, two) is not None
    assert inc.match(rule, act(3, 13, T0 + timedelta(seconds=60) + MS, kind="toxic_gas",
                               condition="HIHI"), two) is None
    assert rules.report_due(T0) == T0 + timedelta(minutes=15)
    assert inc.title_for(GAS, "HS-1", "液氯罐区") == "液氯罐区 多点气体报警"


@pytest.mark.parametrize("doc", [
    {"rules": [{"name": "x", "conditions": ["HOT"]}]},
    {"rules": [{"name": "x", "conditions": ["HI"], "min_points": 0}]},
    {"rules": [{"name": "x", "conditions": ["HI"], "levels": [5]}]},
    {"rules": [{"name": "x", "conditions": ["HI"]}, {"name": "x", "conditions": ["HI"]}]},
    {"rules": [{"name": "x", "conditions": ["HI"], "window_s": -1}]},
    {"report_deadline_s": 0},
    {"other": 1},
])
def test_invalid_rules_are_refused(doc: dict) -> None:
    with pytest.raises(InputError):
        inc.parse_rules(doc)

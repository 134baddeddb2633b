"""The warning matrix, the issue/escalate decision and the loop deadlines, on both sides of each
edge (pure: no database, times given)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerting import warnings as w
from hazmon.errors import InputError

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
MS = timedelta(milliseconds=1)
R = w.DEFAULTS


def alarm(alarm_id: int = 1, *, priority: str = "high", kind: str | None = "gas", level: int | None = 1,
          condition: str = "HI", state: str = "UNACK_ACTIVE", activations: int = 1) -> w.AlarmInput:
    return w.AlarmInput(alarm_id, activations, state, condition, priority, kind, level)


# Every cell of the default matrix, as documented in alerting.warnings.
@pytest.mark.parametrize("priority, kind, level, color", [
    ("high", "gas", 1, "red"), ("high", "toxic_gas", 2, "red"),      # the brief's example
    ("high", "gas", 3, "orange"), ("high", "gas", 4, "yellow"), ("high", "gas", None, "blue"),
    ("high", "pressure", 1, "orange"), ("high", "level", 2, "orange"),
    ("high", "temperature", 3, "yellow"), ("high", "flow", 4, "blue"), ("high", "valve", None, "blue"),
    ("medium", "gas", 1, "orange"), ("medium", "gas", 2, "orange"), ("medium", "gas", 3, "yellow"),
    ("medium", "gas", 4, "blue"), ("medium", "gas", None, "blue"),
    ("medium", "pressure", 1, "yellow"), ("medium", "pressure", 2, "yellow"),
    ("medium", "pressure", 3, "blue"), ("medium", "pressure", 4, "blue"),
    ("medium", "pressure", None, None),                              # no warning at all
    ("low", "gas", 1, "blue"), ("low", "pressure", 2, "blue"), ("low", "gas", 3, None),
    ("low", "gas", 4, None), ("low", "gas", None, None),
    ("high", "oxygen", 1, "orange"),                                 # oxygen is not a gas detector here
    ("high", None, 1, "orange"),                                     # gateway alarm: 'other'
])
def test_default_matrix_cells(priority: str, kind: str | None, level: int | None,
                              color: str | None) -> None:
    assert R.cell(alarm(priority=priority, kind=kind, level=level)) == color


@pytest.mark.parametrize("state, condition, counts", [
    ("UNACK_ACTIVE", "HI", True),
    ("ACK_ACTIVE", "HIHI", True),
    ("RTN_UNACK", "HI", False),        # returned: the risk is gone
    ("SHELVED", "HI", False),
    ("SUPPRESSED", "HI", False),
    ("OUT_OF_SERVICE", "HI", False),
    ("UNACK_ACTIVE", "LOLO", True),
    ("UNACK_ACTIVE", "ROC", True),
    ("UNACK_ACTIVE", "STALE", False),  # data quality, not risk
    ("UNACK_ACTIVE", "BAD", False),
    ("UNACK_ACTIVE", "COMM", False),
])
def test_what_counts(state: str, condition: str, counts: bool) -> None:
    assert (R.cell(alarm(state=state, condition=condition)) is not None) is counts


def test_most_severe_cell_wins() -> None:
    alarms = [alarm(1, priority="low", kind="pressure", level=2),     # blue
              alarm(2, priority="medium", kind="gas", level=3),       # yellow
              alarm(3, priority="high", kind="pressure", level=1)]    # orange
    assert R.color_for(alarms) == "orange"
    assert R.color_for([]) is None


def test_issue_when_no_open_warning() -> None:
    d = w.decide(R, [alarm(7)], None, {})
    assert (d.action, d.color, d.covered) == ("issue", "red", {7: 1})


def test_nothing_when_no_alarm_counts() -> None:
    d = w.decide(R, [alarm(7, state="RTN_UNACK")], None, {})
    assert d.action == "none" and d.color is None


def test_escalate_rises_and_never_falls() -> None:
    open_ = w.OpenWarning("yellow", {1: 1})
    up = w.decide(R, [alarm(1, priority="medium", level=3), alarm(2)], open_, {})
    assert (up.action, up.color, up.covered) == ("escalate", "red", {1: 1, 2: 1})
    calm = w.decide(R, [], w.OpenWarning("red", {1: 1, 2: 1}), {})
    assert (calm.action, calm.color, calm.live_color) == ("update", "red", None)


def test_cleared_alarms_do_not_reissue_but_a_new_activation_does() -> None:
    cleared = {7: 1}
    assert w.decide(R, [alarm(7, activations=1)], None, cleared).action == "none"
    again = w.decide(R, [alarm(7, activations=2)], None, cleared)   # the same alarm re-activated
    assert again.action == "issue" and again.covered == {7: 2}
    other = w.decide(R, [alarm(7), alarm(8, priority="medium", kind="pressure", level=1)], None, cleared)
    assert (other.action, other.color, other.alarm_ids) == ("issue", "yellow", (8,))


ACK_RED = timedelta(minutes=10)


@pytest.mark.parametrize("state, color, step, started, deadline", [
    ("issued", "red", "acknowledge", "issued_at", timedelta(minutes=10)),
    ("issued", "blue", "acknowledge", "issued_at", timedelta(hours=2)),
    ("acknowledged", "orange", "feedback", "acked_at", timedelta(hours=4)),
    ("feedback", "yellow", "clear", "feedback_at", timedelta(hours=48)),
])
@pytest.mark.parametrize("offset, overdue", [(-MS, False), (timedelta(0), True)])
def test_deadline_exactly_due_vs_1ms_before(state: str, color: str, step: str, started: str,
                                            deadline: timedelta, offset: timedelta,
                                            overdue: bool) -> None:
    times = {"issued_at": T0, "acked_at": T0 + timedelta(minutes=3),
             "feedback_at": T0 + timedelta(hours=1)}
    loop = w.LoopTimes(state, color, times["issued_at"],
                       times["acked_at"] if state != "issued" else None,
                       times["feedback_at"] if state == "feedback" else None)
    due_at = times[started] + deadline
    assert w.step_due(R, loop) == (step, due_at)
    found = w.overdue_step(R, loop, due_at + offset)
    assert found == ((step, due_at) if overdue else None)


def test_cleared_loop_waits_for_nothing() -> None:
    loop = w.LoopTimes("cleared", "red", T0, T0, T0)
    assert w.step_due(R, loop) is None and w.overdue_step(R, loop, T0 + timedelta(days=9)) is None


@pytest.mark.parametrize("state, step, after", [
    ("issued", "acknowledge", "acknowledged"), ("acknowledged", "feedback", "feedback"),
    ("feedback", "clear", "cleared"),
    ("issued", "feedback", None), ("issued", "clear", None),         # no skipping
    ("acknowledged", "acknowledge", None), ("cleared", "clear", None),
])
def test_loop_transitions(state: str, step: str, after: str | None) -> None:
    assert w.transition(state, step) == after


def test_configured_matrix_and_deadlines() -> None:
    doc = {"matrix": {**w.DEFAULT_RULES["matrix"],
                      "medium": {"gas": dict.fromkeys(w.LEVEL_KEYS, "red"),
                                 "other": dict.fromkeys(w.LEVEL_KEYS)}},
           "deadlines_s": {**w.DEFAULT_RULES["deadlines_s"],
                           "acknowledge": {"red": 60, "orange": 60, "yellow": 60, "blue": 60}},
           "conditions": ["HIHI", "HI", "STALE"]}
    rules = w.parse_rules(doc)
    assert rules.cell(alarm(priority="medium", level=4)) == "red"
    assert rules.cell(alarm(priority="medium", kind="pressure")) is None
    assert rules.cell(alarm(condition="STALE")) == "red"
    assert w.step_due(rules, w.LoopTimes("issued", "red", T0)) == ("acknowledge", T0 + timedelta(seconds=60))


@pytest.mark.parametrize("doc", [
    {"matrix": {"high": {}}},                                        # incomplete matrix
    {"conditions": ["HOT"]},                                         # unknown condition
    {"alarm_states": ["OPEN"]},
    {"deadlines_s": {"acknowledge": {"red": 0}}},
    {"deadlines_s": {s: dict.fromkeys(w.COLORS, -1) for s in w.STEPS}},
    {"matrix": {p: {c: dict.fromkeys(w.LEVEL_KEYS, "purple") for c in w.POINT_CLASSES}
                for p in w.PRIORITIES}},
    {"bogus": 1},
])
def test_invalid_rules_are_refused(doc: dict) -> None:
    with pytest.raises(InputError):
        w.parse_rules(doc)


def test_overdue_payload_shape() -> None:
    p = w.overdue_payload(5, "E1", None, None, "red", "acknowledge", T0 + ACK_RED)
    assert p == {"kind": "warning_overdue", "warning_id": 5, "enterprise": "E1",
                 "hazard_source": None, "level": None, "color": "red", "step": "acknowledge",
                 "due_at": "2026-03-01T08:10:00.000+00:00"}
    assert datetime.fromisoformat(p["due_at"]) == T0 + ACK_RED

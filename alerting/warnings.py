"""Risk warnings, pure: the colour matrix, the closed loop and its deadlines (``now`` passed in).

A warning is issued per hazard source (or per enterprise for alarms that belong to no hazard
source) from its open alarms and the source's GB 18218 level, by a configurable matrix. Each
alarm that counts (its state and condition are listed in the rules) gets the colour of its cell
(priority × gas detector or not × level); the warning's colour is the most severe one.

Default matrix (``-`` = no warning; "gas" = a point of kind gas or toxic_gas)::

    priority  point    level 1  level 2  level 3  level 4  no major source
    high      gas      red      red      orange   yellow   blue
    high      other    orange   orange   yellow   blue     blue
    medium    gas      orange   orange   yellow   blue     blue
    medium    other    yellow   yellow   blue     blue     -
    low       any      blue     blue     -        -        -

Counted by default: alarms UNACK_ACTIVE or ACK_ACTIVE (returned, shelved, suppressed and
out-of-service alarms raise nothing) of conditions HIHI, HI, LO, LOLO, ROC (STALE, BAD and COMM
are data-quality alarms, not risk). Note that the alarm engine raises default priorities one
step at level 1 and 2 sources, so a gas detector's HI there is high priority: red.

The loop: issued → acknowledged (by the enterprise) → feedback (cause, action, attachments) →
cleared (消警, by the regulator). Each step must be done within its deadline, counted from the
end of the step before and set per colour (defaults below, seconds). ``due_at`` is the first
instant at which the step is late: at ``now >= due_at`` it is overdue.

    step          red     orange   yellow   blue
    acknowledge   10 min  30 min   1 h      2 h
    feedback      2 h     4 h      12 h     24 h
    clear         24 h    24 h     48 h     72 h

While a warning is open its colour only rises (escalation). A new warning is issued for a
scope only by alarms its last cleared warning did not answer for (a new alarm, or a new
activation of one), so clearing a warning does not re-issue it for the same alarms.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from alerting.lifecycle import CONDITIONS
from alerting.lifecycle import STATES as ALARM_STATES
from hazmon.errors import InputError

COLORS = ("red", "orange", "yellow", "blue")          # most severe first
STATES = ("issued", "acknowledged", "feedback", "cleared")
STEPS = ("acknowledge", "feedback", "clear")
STEP_OF_STATE = {"issued": "acknowledge", "acknowledged": "feedback", "feedback": "clear"}
PRIORITIES = ("high", "medium", "low")
POINT_CLASSES = ("gas", "other")
LEVEL_KEYS = ("1", "2", "3", "4", "none")

_DEFAULT_MATRIX: dict[str, dict[str, list[str | None]]] = {
    "high": {"gas": ["red", "red", "orange", "yellow", "blue"],
             "other": ["orange", "orange", "yellow", "blue", "blue"]},
    "medium": {"gas": ["orange", "orange", "yellow", "blue", "blue"],
               "other": ["yellow", "yellow", "blue", "blue", None]},
    "low": {"gas": ["blue", "blue", None, None, None],
            "other": ["blue", "blue", None, None, None]},
}
DEFAULT_RULES: dict[str, Any] = {
    "matrix": {p: {c: dict(zip(LEVEL_KEYS, row)) for c, row in rows.items()}
               for p, rows in _DEFAULT_MATRIX.items()},
    "gas_kinds": ["gas", "toxic_gas"],
    "conditions": ["HIHI", "HI", "LO", "LOLO", "ROC"],
    "alarm_states": ["UNACK_ACTIVE", "ACK_ACTIVE"],
    "deadlines_s": {
        "acknowledge": {"red": 600, "orange": 1800, "yellow": 3600, "blue": 7200},
        "feedback": {"red": 7200, "orange": 14400, "yellow": 43200, "blue": 86400},
        "clear": {"red": 86400, "orange": 86400, "yellow": 172800, "blue": 259200},
    },
}


def rank(color: str | None) -> int:
    """Severity for comparisons: red 4 … blue 1, none 0."""
    return 0 if color is None else len(COLORS) - COLORS.index(color)


def most_severe(colors: Iterable[str | None]) -> str | None:
    """The most severe of the colours (None when there is none)."""
    return max(colors, key=rank, default=None)


@dataclass(frozen=True)
class AlarmInput:
    """What the matrix needs of one alarm."""

    alarm_id: int
    activations: int
    state: str
    condition: str
    priority: str
    kind: str | None        # the point's kind; None for gateway alarms
    level: int | None       # the hazard source's level; None when none or not major


@dataclass(frozen=True)
class WarningRules:
    """The validated warning rules: matrix, what counts, and deadlines per step and colour."""

    matrix: Mapping[str, Mapping[str, Mapping[str, str | None]]]
    gas_kinds: frozenset[str]
    conditions: frozenset[str]
    alarm_states: frozenset[str]
    deadlines_s: Mapping[str, Mapping[str, float]]
    source: dict[str, Any] = field(compare=False, repr=False, default_factory=dict)

    def counts(self, alarm: AlarmInput) -> bool:
        """Whether this alarm takes part in warnings at all."""
        return alarm.state in self.alarm_states and alarm.condition in self.conditions

    def cell(self, alarm: AlarmInput) -> str | None:
        """The colour of one alarm's cell (None: this alarm raises no warning)."""
        if not self.counts(alarm) or alarm.priority not in self.matrix:
            return None
        point_class = "gas" if alarm.kind in self.gas_kinds else "other"
        level = str(alarm.level) if alarm.level in (1, 2, 3, 4) else "none"
        return self.matrix[alarm.priority][point_class][level]

    def color_for(self, alarms: Iterable[AlarmInput]) -> str | None:
        """The most severe cell of these alarms."""
        return most_severe(self.cell(a) for a in alarms)

    def deadline(self, step: str, color: str) -> timedelta:
        return timedelta(seconds=float(self.deadlines_s[step][color]))


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise InputError(message)


def _strings(value: Any, name: str, allowed: Iterable[str] | None = None) -> frozenset[str]:
    _require(isinstance(value, list) and all(isinstance(v, str) for v in value),
             f"{name} must be a list of strings")
    if allowed is not None:
        bad = sorted(set(value) - set(allowed))
        _require(not bad, f"{name}: unknown value(s) {bad}")
    return frozenset(value)


def parse_rules(doc: Mapping[str, Any] | None) -> WarningRules:
    """Validate a rules document (missing keys take the defaults); InputError when invalid."""
    merged = {**DEFAULT_RULES, **(doc or {})}
    _require(set(merged) <= set(DEFAULT_RULES), f"unknown keys: {sorted(set(merged) - set(DEFAULT_RULES))}")
    matrix = merged["matrix"]
    _require(isinstance(matrix, Mapping) and set(matrix) == set(PRIORITIES),
             f"matrix needs exactly the priorities {list(PRIORITIES)}")
    for prio in PRIORITIES:
        _require(isinstance(matrix[prio], Mapping) and set(matrix[prio]) == set(POINT_CLASSES),
                 f"matrix.{prio} needs exactly {list(POINT_CLASSES)}")
        for cls in POINT_CLASSES:
            row = matrix[prio][cls]
            _require(isinstance(row, Mapping) and set(row) == set(LEVEL_KEYS),
                     f"matrix.{prio}.{cls} needs exactly the levels {list(LEVEL_KEYS)}")
            bad = [k for k, v in row.items() if v is not None and v not in COLORS]
            _require(not bad, f"matrix.{prio}.{cls}: colours must be one of {list(COLORS)} or null")
    deadlines = merged["deadlines_s"]
    _require(isinstance(deadlines, Mapping) and set(deadlines) == set(STEPS),
             f"deadlines_s needs exactly the steps {list(STEPS)}")
    for step in STEPS:
        row = deadlines[step]
        _require(isinstance(row, Mapping) and set(row) == set(COLORS),
                 f"deadlines_s.{step} needs exactly the colours {list(COLORS)}")
        _require(all(isinstance(v, int | float) and not isinstance(v, bool) and 0 < v <= 365 * 86400
                     for v in row.values()),
                 f"deadlines_s.{step}: seconds must be > 0 and at most a year")
    return WarningRules(
        matrix=matrix, gas_kinds=_strings(merged["gas_kinds"], "gas_kinds"),
        conditions=_strings(merged["conditions"], "conditions", CONDITIONS),
        alarm_states=_strings(merged["alarm_states"], "alarm_states", ALARM_STATES),
        deadlines_s=deadlines, source=dict(merged))


DEFAULTS = parse_rules(None)


@dataclass(frozen=True)
class OpenWarning:
    """The open warning of a scope, as far as the decision needs it."""

    color: str
    covered: Mapping[int, int]


@dataclass(frozen=True)
class Decision:
    """What to do with a scope: ``issue`` a warning, ``escalate`` or ``update`` the open one,
    or nothing (``none``). ``covered`` maps alarm id → activations the warning answers for."""

    action: str
    color: str | None
    live_color: str | None
    covered: dict[int, int]
    alarm_ids: tuple[int, ...]


def decide(rules: WarningRules, alarms: Iterable[AlarmInput], open_warning: OpenWarning | None,
           cleared_covered: Mapping[int, int]) -> Decision:
    """Decide a scope's warning from its alarms now.

    ``cleared_covered``: what the scope's last cleared warning answered for; those alarms (same
    activation) raise nothing new.
    """
    fresh = [a for a in alarms if rules.cell(a) is not None
             and cleared_covered.get(a.alarm_id) != a.activations]
    live = rules.color_for(fresh)
    covered = {a.alarm_id: a.activations for a in fresh}
    ids = tuple(sorted(covered))
    if open_warning is None:
        return Decision("issue" if live else "none", live, live, covered, ids)
    merged = {**open_warning.covered, **covered}
    color = most_severe((open_warning.color, live))
    action = "escalate" if color != open_warning.color else "update"
    return Decision(action, color, live, merged, ids)


@dataclass(frozen=True)
class LoopTimes:
    """A warning's state, colour and the times its steps ended."""

    state: str
    color: str
    issued_at: datetime
    acked_at: datetime | None = None
    feedback_at: datetime | None = None


def current_step(times: LoopTimes) -> tuple[str, datetime] | None:
    """The step the loop waits for and when it started; None once cleared."""
    step = STEP_OF_STATE.get(times.state)
    if step is None:
        return None
    started = {"acknowledge": times.issued_at, "feedback": times.acked_at,
               "clear": times.feedback_at}[step]
    assert started is not None, f"warning in state {times.state} without its step time"
    return step, started


def step_due(rules: WarningRules, times: LoopTimes) -> tuple[str, datetime] | None:
    """(step, due_at) of the step the loop waits for; None once cleared."""
    current = current_step(times)
    if current is None:
        return None
    step, started = current
    return step, started + rules.deadline(step, times.color)


def is_overdue(due_at: datetime, now: datetime) -> bool:
    """A step is late from its due instant on."""
    return now >= due_at


def overdue_step(rules: WarningRules, times: LoopTimes, now: datetime) -> tuple[str, datetime] | None:
    """(step, due_at) when the step the loop waits for is overdue at ``now``, else None."""
    due = step_due(rules, times)
    return due if due is not None and is_overdue(due[1], now) else None


NEXT_STATE = {"acknowledge": ("issued", "acknowledged"), "feedback": ("acknowledged", "feedback"),
              "clear": ("feedback", "cleared")}


def transition(state: str, step: str) -> str | None:
    """The state after doing ``step`` in ``state``; None when that step is not the next one."""
    before, after = NEXT_STATE[step]
    return after if state == before else None


def overdue_payload(warning_id: int, enterprise: str, hazard_source: str | None, level: int | None,
                    color: str, step: str, due_at: datetime) -> dict[str, Any]:
    """The ``hazmon_warnings`` notification of an overdue step."""
    return {"kind": "warning_overdue", "warning_id": warning_id, "enterprise": enterprise,
            "hazard_source": hazard_source, "level": level, "color": color, "step": step,
            "due_at": rfc3339(due_at)}


def rfc3339(at: datetime) -> str:
    """RFC 3339 with an offset and milliseconds."""
    return at.isoformat(timespec="milliseconds")

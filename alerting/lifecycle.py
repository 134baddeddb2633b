"""The ISA-18.2 alarm state machine, pure: states in, states out.

    condition active   UNACK_ACTIVE ──ack──▶ ACK_ACTIVE
          │ returns          │ returns              │ returns
          ▼                  ▼                      ▼
      (no alarm)         RTN_UNACK ──ack──▶ CLOSED ◀┘

A new activation while an alarm is not CLOSED reuses it (RTN_UNACK becomes UNACK_ACTIVE again).
SHELVED, SUPPRESSED and OUT_OF_SERVICE do not annunciate: the condition is tracked (``active``)
but the state does not change until the shelve, suppression or maintenance ends.
"""

from __future__ import annotations

STATES = ("UNACK_ACTIVE", "ACK_ACTIVE", "RTN_UNACK", "CLOSED",
          "SHELVED", "SUPPRESSED", "OUT_OF_SERVICE")
NON_ANNUNCIATING = ("SHELVED", "SUPPRESSED", "OUT_OF_SERVICE")
CONDITIONS = ("HIHI", "HI", "LO", "LOLO", "ROC", "STALE", "BAD", "COMM")
PRIORITIES = ("high", "medium", "low")

DEFAULT_PRIORITY = {
    "HIHI": "high", "LOLO": "high",
    "HI": "medium", "LO": "medium", "ROC": "medium",
    "STALE": "low", "BAD": "low", "COMM": "low",
}


def on_condition(state: str, active: bool) -> str:
    """Next state of an open alarm when its condition becomes active or returns."""
    if state in NON_ANNUNCIATING:
        return state
    if active:
        return "ACK_ACTIVE" if state == "ACK_ACTIVE" else "UNACK_ACTIVE"
    return {"UNACK_ACTIVE": "RTN_UNACK", "ACK_ACTIVE": "CLOSED"}.get(state, state)


def on_ack(state: str) -> str | None:
    """Next state when an operator acknowledges; None when the state cannot be acknowledged."""
    return {"UNACK_ACTIVE": "ACK_ACTIVE", "RTN_UNACK": "CLOSED"}.get(state)


def priority_for(condition: str, hazard_level: int, *, raise_levels: tuple[int, ...] = (1, 2)) -> str:
    """Default priority of a condition, one step higher at level 1/2 hazard sources."""
    base = DEFAULT_PRIORITY[condition]
    if hazard_level in raise_levels and base != "high":
        return PRIORITIES[PRIORITIES.index(base) - 1]
    return base

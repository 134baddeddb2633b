"""The ISA-18.2 alarm state machine, pure: states in, states out.

    condition active   UNACK_ACTIVE ──ack──▶ ACK_ACTIVE
          │ returns          │ returns              │ returns
          ▼                  ▼                      ▼
      (no alarm)         RTN_UNACK ──ack──▶ CLOSED ◀┘

- A new activation while an alarm is not CLOSED reuses it (RTN_UNACK becomes UNACK_ACTIVE).
- Latching alarms do not follow their condition back: on return they keep their state and are
  marked latched until an operator resets them (ACK_ACTIVE → CLOSED, UNACK_ACTIVE → RTN_UNACK).
- SHELVED (by an operator, until a time), SUPPRESSED (by design: a point, hazard source or
  enterprise in maintenance or shutdown mode) and OUT_OF_SERVICE (the point taken out of
  service) do not annunciate: the condition is still tracked (``active``) and when the shelve,
  mode or maintenance ends the alarm shows its condition again: UNACK_ACTIVE if active, else
  CLOSED (or another mask that still applies).
"""

from __future__ import annotations

STATES = ("UNACK_ACTIVE", "ACK_ACTIVE", "RTN_UNACK", "CLOSED",
          "SHELVED", "SUPPRESSED", "OUT_OF_SERVICE")
ANNUNCIATING = ("UNACK_ACTIVE", "ACK_ACTIVE", "RTN_UNACK")
NON_ANNUNCIATING = ("SHELVED", "SUPPRESSED", "OUT_OF_SERVICE")
MASKS = ("SUPPRESSED", "OUT_OF_SERVICE")
CONDITIONS = ("HIHI", "HI", "LO", "LOLO", "ROC", "STALE", "BAD", "COMM")
PRIORITIES = ("high", "medium", "low")

DEFAULT_PRIORITY = {
    "HIHI": "high", "LOLO": "high",
    "HI": "medium", "LO": "medium", "ROC": "medium",
    "STALE": "low", "BAD": "low", "COMM": "low",
}


def on_condition(state: str, active: bool, latching: bool = False) -> tuple[str, bool]:
    """Next (state, latched) of an open alarm when its condition becomes active or returns."""
    if state in NON_ANNUNCIATING:
        return state, False
    if active:
        return ("ACK_ACTIVE" if state == "ACK_ACTIVE" else "UNACK_ACTIVE"), False
    if latching and state in ("UNACK_ACTIVE", "ACK_ACTIVE"):
        return state, True
    return {"UNACK_ACTIVE": "RTN_UNACK", "ACK_ACTIVE": "CLOSED"}.get(state, state), False


def initial_state(mask: str | None) -> str:
    """State of a new alarm: masked alarms are recorded without annunciating."""
    return mask if mask in MASKS else "UNACK_ACTIVE"


def on_ack(state: str) -> str | None:
    """Next state when an operator acknowledges; None when the state cannot be acknowledged."""
    return {"UNACK_ACTIVE": "ACK_ACTIVE", "RTN_UNACK": "CLOSED"}.get(state)


def on_reset(state: str, active: bool, latched: bool) -> str | None:
    """Next state when an operator resets a latched alarm; None when it cannot be reset."""
    if not latched or active:
        return None
    return {"ACK_ACTIVE": "CLOSED", "UNACK_ACTIVE": "RTN_UNACK"}.get(state)


def can_shelve(state: str) -> bool:
    """Only an annunciating alarm can be shelved."""
    return state in ANNUNCIATING


def reevaluate(state: str, active: bool, mask: str | None) -> str:
    """The state after a shelve, mode or maintenance ends (or a new mask applies)."""
    if mask in MASKS:
        return mask  # type: ignore[return-value]
    if state in NON_ANNUNCIATING:
        return "UNACK_ACTIVE" if active else "CLOSED"
    return state


def priority_for(condition: str, hazard_level: int, override: str | None = None, *,
                 raise_levels: tuple[int, ...] = (1, 2)) -> str:
    """The point's own priority for a condition if set, else the default, raised one step at
    hazard sources of the given levels (level 1 and 2 by default)."""
    if override in PRIORITIES:
        return override  # type: ignore[return-value]
    base = DEFAULT_PRIORITY[condition]
    if hazard_level in raise_levels and base != "high":
        return PRIORITIES[PRIORITIES.index(base) - 1]
    return base

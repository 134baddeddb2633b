"""Alarms, rules and times for the pure notify tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alerting.notify.model import AlarmInfo, Rule, Tier

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
MS = 0.001


def at(seconds: float) -> datetime:
    """T0 plus seconds."""
    return T0 + timedelta(seconds=seconds)


def alarm(alarm_id: int, *, since: float = 0.0, state: str = "UNACK_ACTIVE", enterprise: str = "E1",
          priority: str = "high", condition: str = "HI", hazard_source: str | None = "HS1",
          level: int | None = 2, tag: str | None = None) -> AlarmInfo:
    return AlarmInfo(id=alarm_id, enterprise=enterprise, condition=condition, priority=priority,
                     state=state, activated_at=at(since), pending_since=at(since),
                     hazard_source=hazard_source, hazard_level=level,
                     tag=tag or f"PT-{alarm_id}", value=95.0, limit=90.0)


def rule(rule_id: int = 1, *, tiers: tuple[tuple[float, tuple[str, ...]], ...] = ((0, ("ops",)),),
         **kw: object) -> Rule:
    return Rule(id=rule_id, name=f"rule-{rule_id}",
                tiers=tuple(Tier(a, c) for a, c in tiers), **kw)  # type: ignore[arg-type]

"""The values the notify pipeline passes around: alarms, warnings, rules, log entries, messages.

All immutable and free of I/O, so matching, grouping and escalation are tested without a database.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

# An alarm that still wants someone's attention: unacknowledged and annunciating. Acknowledged
# (ACK_ACTIVE), closed, shelved, suppressed and out-of-service alarms stop reminders and escalation.
PENDING_STATES = frozenset({"UNACK_ACTIVE", "RTN_UNACK"})
LABELS = ("enterprise", "hazard_source", "hazard_level", "priority", "condition", "tag")
PRIORITY_RANK = {"high": 0, "medium": 1, "low": 2}
WARNING_CONDITION = "WARNING"
WARNING_PRIORITY = {"red": "high", "orange": "high", "yellow": "medium", "blue": "low"}

Labels = Mapping[str, Any]


def new_id() -> str:
    """A delivery id: one message, however many attempts it takes."""
    return uuid.uuid4().hex


@dataclass(frozen=True)
class AlarmInfo:
    """An alarm as the notifier sees it (the API's alarm plus hazard level and point name)."""

    id: int
    enterprise: str
    condition: str
    priority: str
    state: str
    activated_at: datetime
    pending_since: datetime | None = None  # when it last became unacknowledged
    hazard_source: str | None = None
    hazard_level: int | None = None
    tag: str | None = None
    point_name: str | None = None
    gateway: str | None = None
    value: float | None = None
    limit: float | None = None
    acked_by: str | None = None

    @property
    def pending(self) -> bool:
        return self.state in PENDING_STATES

    @property
    def since(self) -> datetime:
        """Start of the escalation clock."""
        return self.pending_since or self.activated_at

    def labels(self) -> dict[str, Any]:
        return {"enterprise": self.enterprise, "hazard_source": self.hazard_source,
                "hazard_level": self.hazard_level, "priority": self.priority,
                "condition": self.condition, "tag": self.tag}

    def sort_key(self) -> tuple[int, datetime, int]:
        """Top alarms first: by priority, then the longest waiting."""
        return PRIORITY_RANK.get(self.priority, 9), self.since, self.id


@dataclass(frozen=True)
class WarningEvent:
    """A warning step that missed its deadline (``hazmon_warnings``, kind warning_overdue)."""

    warning_id: int
    enterprise: str
    hazard_source: str | None
    level: int | None
    color: str
    step: str
    due_at: datetime

    @property
    def priority(self) -> str:
        return WARNING_PRIORITY[self.color]

    def labels(self) -> dict[str, Any]:
        return {"enterprise": self.enterprise, "hazard_source": self.hazard_source,
                "hazard_level": self.level, "priority": self.priority,
                "condition": WARNING_CONDITION, "tag": None}

    @classmethod
    def parse(cls, payload: str) -> WarningEvent:
        """Parse a notification payload; ValueError when it is not a warning_overdue event."""
        try:
            d = json.loads(payload)
            if d.get("kind") != "warning_overdue" or d.get("color") not in WARNING_PRIORITY:
                raise ValueError("not a warning_overdue event")
            due = datetime.fromisoformat(str(d["due_at"]))
            if due.tzinfo is None:
                raise ValueError("due_at has no offset")
            return cls(int(d["warning_id"]), str(d["enterprise"]), d.get("hazard_source"),
                       None if d.get("level") is None else int(d["level"]), d["color"],
                       str(d["step"]), due)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"bad warning event: {exc}") from exc


@dataclass(frozen=True)
class Tier:
    """Channels that hear about an alarm ``after_s`` seconds after it became unacknowledged."""

    after_s: float
    channels: tuple[str, ...]


@dataclass(frozen=True)
class Rule:
    """A route: which alarms (empty matcher = any), how they group, when and where they go."""

    id: int
    name: str
    tiers: tuple[Tier, ...]
    enterprises: frozenset[str] = frozenset()
    hazard_sources: frozenset[str] = frozenset()
    hazard_levels: frozenset[int] = frozenset()
    priorities: frozenset[str] = frozenset()
    conditions: frozenset[str] = frozenset()
    group_by: tuple[str, ...] = ("enterprise",)
    group_wait_s: float = 30.0
    group_interval_s: float = 300.0
    repeat_interval_s: float = 3600.0
    send_resolved: bool = False
    enabled: bool = True

    def matches(self, labels: Labels) -> bool:
        """Every non-empty matcher holds the label's value."""
        matchers = (("enterprise", self.enterprises), ("hazard_source", self.hazard_sources),
                    ("hazard_level", self.hazard_levels), ("priority", self.priorities),
                    ("condition", self.conditions))
        return all(not allowed or labels.get(name) in allowed for name, allowed in matchers)

    def group_labels(self, labels: Labels) -> dict[str, Any]:
        return {name: labels.get(name) for name in self.group_by}

    def group_key(self, labels: Labels) -> str:
        """The group an alarm belongs to within this rule (stable text, stored in the log)."""
        return json.dumps(self.group_labels(labels), ensure_ascii=False, separators=(",", ":"))

    def channel_tiers(self) -> dict[str, tuple[float, int]]:
        """Each channel with the earliest (after_s, tier number) that names it."""
        out: dict[str, tuple[float, int]] = {}
        for number, tier in enumerate(self.tiers):
            for channel in tier.channels:
                out.setdefault(channel, (tier.after_s, number))
        return out

    def wait(self, name: str) -> timedelta:
        return timedelta(seconds={"group_wait": self.group_wait_s,
                                  "group_interval": self.group_interval_s,
                                  "repeat_interval": self.repeat_interval_s}[name])


@dataclass(frozen=True)
class LogEntry:
    """The last message a channel got about a group, and the unacknowledged alarms it listed."""

    sent_at: datetime
    firing: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Message:
    """What to tell: neutral content each notifier renders in its own format."""

    reason: str                       # first | escalation | update | reminder | resolved | warning | test
    at: datetime
    rule: str | None = None
    group_labels: dict[str, Any] = field(default_factory=dict)
    tier: int = 0
    firing: tuple[AlarmInfo, ...] = ()    # top first
    resolved: tuple[AlarmInfo, ...] = ()
    new_ids: frozenset[int] = frozenset()
    warning: WarningEvent | None = None
    delivery: str = ""

    def counts(self) -> dict[str, int]:
        by = {p: sum(1 for a in self.firing if a.priority == p) for p in PRIORITY_RANK}
        return {"unacknowledged": len(self.firing), "new": len(self.new_ids),
                "resolved": len(self.resolved), **by}


@dataclass
class Delivery:
    """One message to one channel; its attempts (retries) share the id."""

    channel: str
    message: Message
    rule_id: int | None = None
    group_key: str | None = None
    firing: frozenset[int] = frozenset()  # becomes the channel's log entry once delivered
    alarm_ids: tuple[int, ...] = ()       # every alarm the message is about (delivery log)
    warning_id: int | None = None
    id: str = field(default_factory=new_id)
    attempt: int = 0

    @property
    def reason(self) -> str:
        return self.message.reason

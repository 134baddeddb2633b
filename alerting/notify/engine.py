"""The notifier's state, pure: alarms in, deliveries out, time passed in.

Alarms are routed to every enabled rule that matches them and grouped within a rule by the
rule's ``group_by`` labels (Alertmanager's aggregation groups). A group lives while it holds
unacknowledged alarms or while a channel's last message still lists some; each tick flushes
every group through its rule's pipeline (``stages``). The notification log (what each channel
was last told about each group) is the part worth persisting: the service stores the entries
``step`` and ``delivered`` return, and loads them with ``load_log`` after a restart.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from alerting.notify.model import AlarmInfo, Delivery, LogEntry, Message, Rule, WarningEvent, new_id
from alerting.notify.stages import ChannelState, Context, Stage, build_pipeline

# A waiting alarm that no longer belongs to a group it was notified in (the rule changed).
UNROUTED = "UNROUTED"
GroupId = tuple[int, str]          # (rule id, group key)
LogKey = tuple[int, str, str]      # (rule id, group key, channel)


@dataclass
class Group:
    """An aggregation group: a rule's unacknowledged alarms sharing the group labels."""

    rule_id: int
    key: str
    created_at: datetime
    members: set[int] = field(default_factory=set)
    states: dict[str, ChannelState] = field(default_factory=dict)

    def referenced(self) -> set[int]:
        """Alarms some channel's last message listed."""
        return {i for s in self.states.values() if s.entry for i in s.entry.firing}

    def idle(self) -> bool:
        return not self.members and not self.referenced() and not any(
            s.busy for s in self.states.values())


@dataclass
class StepOutput:
    deliveries: list[Delivery] = field(default_factory=list)
    log: list[tuple[LogKey, LogEntry]] = field(default_factory=list)


class Engine:
    """Groups, the notification log and the decisions of each tick."""

    def __init__(self) -> None:
        self.rules: dict[int, Rule] = {}
        self.pipelines: dict[int, Stage] = {}
        self.channels: frozenset[str] = frozenset()
        self.alarms: dict[int, AlarmInfo] = {}
        self.groups: dict[GroupId, Group] = {}
        self.member_of: dict[int, set[GroupId]] = {}
        self.log: dict[LogKey, LogEntry] = {}

    # -- configuration and state --------------------------------------------------------------

    def configure(self, rules: Iterable[Rule], channels: Iterable[str], now: datetime) -> None:
        """Take new rules and enabled channels; regroup every known alarm (groups that survive
        keep their creation time and channel states)."""
        self.rules = {r.id: r for r in rules if r.enabled}
        self.pipelines = {r.id: build_pipeline(r) for r in self.rules.values()}
        self.channels = frozenset(channels)
        old, self.groups, self.member_of = self.groups, {}, {}
        self.log = {k: e for k, e in self.log.items() if self._routed(k)}
        for gid, group in old.items():
            if gid[0] in self.rules:
                group.members.clear()
                group.states = {c: s for c, s in group.states.items()
                                if self._routed((gid[0], gid[1], c))}
                self.groups[gid] = group
        for alarm in list(self.alarms.values()):
            self._route(alarm, now)
        self._ensure_log_groups(now)
        self._collect()

    def load_log(self, entries: dict[LogKey, LogEntry], now: datetime) -> None:
        """The notification log as stored (at start)."""
        self.log = {k: e for k, e in entries.items() if self._routed(k)}
        for (rule_id, key, channel), entry in self.log.items():
            group = self.groups.get((rule_id, key))
            if group is not None:
                group.states.setdefault(channel, ChannelState()).entry = entry
        self._ensure_log_groups(now)

    def wanted_alarms(self) -> set[int]:
        """Alarms a log entry lists whose current state the engine should be told."""
        return {i for e in self.log.values() for i in e.firing} - self.alarms.keys()

    def observe(self, alarm: AlarmInfo, now: datetime) -> None:
        """An alarm as it is now (new or changed)."""
        self.alarms[alarm.id] = alarm
        self._route(alarm, now)

    def gone(self, alarm_id: int, now: datetime) -> None:
        """An alarm that no longer exists (deleted with its enterprise or point): closed."""
        alarm = self.alarms.get(alarm_id) or AlarmInfo(
            id=alarm_id, enterprise="?", condition="?", priority="low", state="CLOSED",
            activated_at=now)
        self.observe(dataclasses.replace(alarm, state="CLOSED"), now)

    # -- ticks and results ---------------------------------------------------------------------

    def step(self, now: datetime) -> StepOutput:
        """Flush every group at ``now``: the deliveries due and the log entries to store."""
        out = StepOutput()
        for gid, group in list(self.groups.items()):
            rule = self.rules[gid[0]]
            ctx = Context(now=now, rule=rule, group_key=gid[1], group_labels=json.loads(gid[1]),
                          created_at=group.created_at, states=group.states, enabled=self.channels)
            self.pipelines[rule.id].exec(ctx, self._group_alarms(group))
            out.deliveries += ctx.out
            for channel, entry in ctx.settled:
                self.log[(gid[0], gid[1], channel)] = entry
                out.log.append(((gid[0], gid[1], channel), entry))
        self._collect()
        return out

    def delivered(self, delivery: Delivery, ok: bool, at: datetime) -> list[tuple[LogKey, LogEntry]]:
        """A delivery's final outcome; returns the log entry to store when it got through."""
        if delivery.rule_id is None or delivery.group_key is None:
            return []  # a warning or a test: no group state
        key: LogKey = (delivery.rule_id, delivery.group_key, delivery.channel)
        group = self.groups.get(key[:2])  # type: ignore[call-overload]
        routed = group is not None and self._routed(key)
        state = group.states.setdefault(key[2], ChannelState()) if routed else ChannelState()  # type: ignore[union-attr]
        state.busy = False
        if not ok:
            state.failed_at = at
            return []
        entry = LogEntry(at, delivery.firing)
        state.entry, state.failed_at = entry, None
        if self._routed(key):
            self.log[key] = entry
        return [(key, entry)]

    def warning(self, event: WarningEvent, now: datetime) -> list[Delivery]:
        """Deliveries for an overdue warning step: once, to the first tier of every matching
        rule and to every further tier whose after_s the overdue time has reached."""
        labels = event.labels()
        overdue_s = (now - event.due_at).total_seconds()
        out: list[Delivery] = []
        for rule in self.rules.values():
            if not rule.matches(labels) or not rule.tiers:
                continue
            reach = max(overdue_s, rule.tiers[0].after_s)
            tiers = [t for t in rule.tiers if t.after_s <= reach]
            channels = dict.fromkeys(c for t in tiers for c in t.channels if c in self.channels)
            for channel in channels:
                message = Message(reason="warning", at=now, rule=rule.name, warning=event,
                                  group_labels=rule.group_labels(labels), tier=len(tiers) - 1,
                                  delivery=new_id())
                out.append(Delivery(channel=channel, message=message, rule_id=rule.id,
                                    warning_id=event.warning_id, id=message.delivery))
        return out

    # -- internals -----------------------------------------------------------------------------

    def _route(self, alarm: AlarmInfo, now: datetime) -> None:
        """Put an unacknowledged alarm in its group of every matching rule; take it out of
        groups where it no longer belongs or no longer waits."""
        targets: set[GroupId] = set()
        if alarm.pending:
            labels = alarm.labels()
            targets = {(r.id, r.group_key(labels)) for r in self.rules.values() if r.matches(labels)}
        for gid in self.member_of.get(alarm.id, set()) - targets:
            if gid in self.groups:
                self.groups[gid].members.discard(alarm.id)
        for gid in targets:
            self._group(gid, now).members.add(alarm.id)
        if targets:
            self.member_of[alarm.id] = targets
        else:
            self.member_of.pop(alarm.id, None)

    def _routed(self, key: LogKey) -> bool:
        """The rule exists and still names the channel."""
        rule = self.rules.get(key[0])
        return rule is not None and key[2] in rule.channel_tiers()

    def _group(self, gid: GroupId, now: datetime) -> Group:
        group = self.groups.get(gid)
        if group is None:
            group = Group(gid[0], gid[1], created_at=now)
            for (rule_id, key, channel), entry in self.log.items():
                if (rule_id, key) == gid:
                    group.states[channel] = ChannelState(entry=entry)
            self.groups[gid] = group
        return group

    def _ensure_log_groups(self, now: datetime) -> None:
        """Groups for log entries that still list alarms, so their acknowledgement is seen."""
        for (rule_id, key, _), entry in list(self.log.items()):
            if entry.firing and (rule_id, key) not in self.groups:
                self._group((rule_id, key), now)

    def _group_alarms(self, group: Group) -> list[AlarmInfo]:
        """The group's unacknowledged members, and alarms a channel was told about that no
        longer wait here (acknowledged, closed, or no longer matching the rule)."""
        alarms = [self.alarms[i] for i in group.members]
        for i in group.referenced() - group.members:
            alarm = self.alarms.get(i)
            if alarm is not None:
                alarms.append(dataclasses.replace(alarm, state=UNROUTED) if alarm.pending else alarm)
        return alarms

    def _collect(self) -> None:
        """Drop idle groups, empty log entries and alarms nothing needs any more."""
        for gid, group in list(self.groups.items()):
            if group.idle():
                del self.groups[gid]
                for channel in group.states:
                    key = (gid[0], gid[1], channel)
                    if key in self.log and not self.log[key].firing:
                        del self.log[key]
        needed = self.member_of.keys() | {i for e in self.log.values() for i in e.firing}
        for alarm_id in list(self.alarms):
            if alarm_id not in needed:
                del self.alarms[alarm_id]

    def stats(self) -> dict[str, Any]:
        return {"groups": len(self.groups), "alarms": len(self.alarms)}

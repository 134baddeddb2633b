"""The notify pipeline as small stages (after Alertmanager's ``notify/notify.go``).

Each group of a rule is flushed through the rule's pipeline on every tick::

    FanoutStage ─┬─ MultiStage: Channel(a) ▶ Ack ▶ Escalation ▶ Dedup ▶ Send
                 ├─ MultiStage: Channel(b) ▶ Ack ▶ Escalation ▶ Dedup ▶ Send
                 └─ ...one per channel named in the rule's tiers

A stage takes the context and the group's alarms and returns the alarms that go on; an empty
list stops a MultiStage. Stages read ``ctx.now`` and never the clock. Sending itself (with its
retries) happens outside, on the deliveries SendStage leaves in ``ctx.out``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from alerting.notify.model import AlarmInfo, Delivery, LogEntry, Message, Rule, new_id

Alarms = Sequence[AlarmInfo]


@dataclass
class ChannelState:
    """What the engine knows of one channel within one group."""

    entry: LogEntry | None = None       # last delivered message (the notification log)
    busy: bool = False                  # a delivery is in flight or waiting for a retry
    failed_at: datetime | None = None   # last delivery given up at


@dataclass
class Context:
    """One flush of one group: shared inputs, per-channel fields filled in by ChannelStage."""

    now: datetime
    rule: Rule
    group_key: str
    group_labels: dict[str, object]
    created_at: datetime
    states: dict[str, ChannelState]
    enabled: frozenset[str]
    out: list[Delivery] = field(default_factory=list)
    settled: list[tuple[str, LogEntry]] = field(default_factory=list)
    channel: str = ""
    offset: timedelta = timedelta(0)
    tier: int = 0
    reason: str | None = None

    @property
    def state(self) -> ChannelState:
        return self.states.setdefault(self.channel, ChannelState())

    @property
    def known(self) -> frozenset[int]:
        entry = self.state.entry
        return entry.firing if entry else frozenset()


class Stage(Protocol):
    def exec(self, ctx: Context, alarms: Alarms) -> Alarms: ...


class MultiStage:
    """Runs stages in order; stops as soon as one lets nothing through."""

    def __init__(self, *stages: Stage) -> None:
        self.stages = stages

    def exec(self, ctx: Context, alarms: Alarms) -> Alarms:
        for stage in self.stages:
            alarms = stage.exec(ctx, alarms)
            if not alarms:
                return alarms
        return alarms


class FanoutStage:
    """Runs every stage on its own copy of the context (sharing the outputs)."""

    def __init__(self, *stages: Stage) -> None:
        self.stages = stages

    def exec(self, ctx: Context, alarms: Alarms) -> Alarms:
        for stage in self.stages:
            stage.exec(dataclasses.replace(ctx), alarms)
        return alarms


class ChannelStage:
    """Selects one channel and its tier; holds back while the channel is disabled or busy."""

    def __init__(self, channel: str, after_s: float, tier: int) -> None:
        self.channel, self.offset, self.tier = channel, timedelta(seconds=after_s), tier

    def exec(self, ctx: Context, alarms: Alarms) -> Alarms:
        ctx.channel, ctx.offset, ctx.tier = self.channel, self.offset, self.tier
        if self.channel not in ctx.enabled or ctx.state.busy:
            return ()
        return alarms


class AckStage:
    """Stops on acknowledgement: keeps the unacknowledged alarms (UNACK_ACTIVE, RTN_UNACK) and
    those this channel was told about that no longer wait (acknowledged, closed, shelved,
    suppressed, out of service), so their end is seen; drops the rest."""

    def exec(self, ctx: Context, alarms: Alarms) -> Alarms:
        known = ctx.known
        return [a for a in alarms if a.pending or a.id in known]


class EscalationStage:
    """Holds back the unacknowledged alarms this channel's tier has not reached yet: a tier
    hears of an alarm ``after_s`` after it became unacknowledged."""

    def exec(self, ctx: Context, alarms: Alarms) -> Alarms:
        return [a for a in alarms if not a.pending or ctx.now >= a.since + ctx.offset]


def decide(ctx: Context, firing: frozenset[int]) -> str | None:
    """Why this channel gets a message now (first | update | reminder | resolved), "settle"
    (forget acknowledged alarms silently), or None (nothing due).

    Alertmanager's rules, per channel: the first message waits group_wait from the group's
    creation; a changed set of alarms waits group_interval from the last message; an unchanged
    one is repeated after repeat_interval; after a delivery was given up, group_interval.
    """
    rule, now, state = ctx.rule, ctx.now, ctx.state
    if state.failed_at is not None and now < state.failed_at + rule.wait("group_interval"):
        return None
    known = ctx.known
    if not known:
        return "first" if firing and now >= ctx.created_at + rule.wait("group_wait") else None
    sent_at = state.entry.sent_at  # type: ignore[union-attr]  # known implies an entry
    interval_over = now >= sent_at + rule.wait("group_interval")
    if not firing:
        if not rule.send_resolved:
            return "settle"
        return "resolved" if interval_over else None
    if not firing <= known or (rule.send_resolved and known - firing):
        return "update" if interval_over else None
    return "reminder" if now >= sent_at + rule.wait("repeat_interval") else None


class DedupStage:
    """Lets the alarms through only when a message is due (see ``decide``)."""

    def exec(self, ctx: Context, alarms: Alarms) -> Alarms:
        firing = frozenset(a.id for a in alarms if a.pending)
        reason = decide(ctx, firing)
        if reason == "settle":
            entry = LogEntry(ctx.now, frozenset())
            ctx.state.entry = entry
            ctx.settled.append((ctx.channel, entry))
            return ()
        if reason == "first" and ctx.tier > 0:
            reason = "escalation"
        ctx.reason = reason
        return alarms if reason else ()


class SendStage:
    """Turns the alarms into a message for the channel and leaves the delivery in ``ctx.out``."""

    def exec(self, ctx: Context, alarms: Alarms) -> Alarms:
        known = ctx.known
        firing = sorted((a for a in alarms if a.pending), key=AlarmInfo.sort_key)
        resolved = sorted((a for a in alarms if not a.pending), key=AlarmInfo.sort_key)
        message = Message(
            reason=ctx.reason or "update", at=ctx.now, rule=ctx.rule.name,
            group_labels=dict(ctx.group_labels), tier=ctx.tier, firing=tuple(firing),
            resolved=tuple(resolved), new_ids=frozenset(a.id for a in firing) - known,
            delivery=new_id())
        delivery = Delivery(channel=ctx.channel, message=message, rule_id=ctx.rule.id,
                            group_key=ctx.group_key, firing=frozenset(a.id for a in firing),
                            alarm_ids=tuple(a.id for a in (*firing, *resolved)), id=message.delivery)
        ctx.state.busy = True
        ctx.out.append(delivery)
        return alarms


def build_pipeline(rule: Rule) -> Stage:
    """The stages one rule's groups are flushed through."""
    return FanoutStage(*(
        MultiStage(ChannelStage(channel, after_s, tier), AckStage(), EscalationStage(),
                   DedupStage(), SendStage())
        for channel, (after_s, tier) in rule.channel_tiers().items()))

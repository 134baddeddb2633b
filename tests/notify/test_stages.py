"""The pipeline's stages and decisions, each rule on both sides of its edge (no clock, no DB)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from alerting.notify.model import LogEntry, WarningEvent
from alerting.notify.stages import (
    AckStage,
    ChannelStage,
    ChannelState,
    Context,
    DedupStage,
    EscalationStage,
    FanoutStage,
    MultiStage,
    SendStage,
    decide,
)
from tests.notify.factories import MS, T0, alarm, at, rule


def ctx(now: float, *, entry: LogEntry | None = None, failed_at: float | None = None,
        created: float = 0.0, tier: int = 0, offset: float = 0.0, **rule_kw: object) -> Context:
    state = ChannelState(entry=entry, failed_at=None if failed_at is None else at(failed_at))
    return Context(now=at(now), rule=rule(**rule_kw), group_key='{"enterprise":"E1"}',
                   group_labels={"enterprise": "E1"}, created_at=at(created),
                   states={"ops": state}, enabled=frozenset({"ops"}), channel="ops",
                   tier=tier, offset=timedelta(seconds=offset))


def sent(t: float, *ids: int) -> LogEntry:
    return LogEntry(at(t), frozenset(ids))


@pytest.mark.parametrize("labels, matchers, expected", [
    ({"enterprise": "E1"}, {}, True),                                         # no matcher: any alarm
    ({"enterprise": "E1"}, {"enterprises": frozenset({"E1", "E2"})}, True),   # listed enterprise
    ({"enterprise": "E3"}, {"enterprises": frozenset({"E1"})}, False),        # other enterprise
    ({"hazard_level": 1}, {"hazard_levels": frozenset({1, 2})}, True),        # level listed
    ({"hazard_level": 3}, {"hazard_levels": frozenset({1, 2})}, False),       # level not listed
    ({"hazard_level": None}, {"hazard_levels": frozenset({1})}, False),       # point without source
    ({"hazard_source": "HS1"}, {"hazard_sources": frozenset({"HS1"})}, True),
    ({"priority": "low"}, {"priorities": frozenset({"high"})}, False),
    ({"condition": "HIHI", "priority": "high"},                                # every matcher must hold
     {"conditions": frozenset({"HIHI"}), "priorities": frozenset({"medium"})}, False),
    ({"condition": "WARNING"}, {"conditions": frozenset({"WARNING"})}, True),  # warnings route too
])
def test_rule_matching(labels: dict, matchers: dict, expected: bool) -> None:
    assert rule(**matchers).matches(labels) is expected


@pytest.mark.parametrize("group_by, a, b, same", [
    (("enterprise",), alarm(1), alarm(2, priority="low"), True),            # default: by enterprise
    (("enterprise",), alarm(1), alarm(2, enterprise="E2"), False),
    ((), alarm(1), alarm(2, enterprise="E2"), True),                         # no labels: one group
    (("enterprise", "priority"), alarm(1), alarm(2, priority="low"), False),
])
def test_group_keys(group_by: tuple, a, b, same: bool) -> None:  # type: ignore[no-untyped-def]
    r = rule(group_by=group_by)
    assert (r.group_key(a.labels()) == r.group_key(b.labels())) is same


def test_channel_tiers_take_the_earliest_tier_naming_a_channel() -> None:
    r = rule(tiers=((0, ("ops",)), (300, ("ops", "boss")), (900, ("county",))))
    assert r.channel_tiers() == {"ops": (0, 0), "boss": (300, 1), "county": (900, 2)}


@pytest.mark.parametrize("now, kw, firing, expected", [
    # first message: group_wait (30 s) after the group was created
    (30 - MS, {}, {1}, None),
    (30, {}, {1}, "first"),
    (30, {}, set(), None),                                            # nothing to say
    (0, {"group_wait_s": 0}, {1}, "first"),                           # no wait configured
    # new alarms since the last message: group_interval (300 s) after it
    (330 - MS, {"entry": sent(30, 1)}, {1, 2}, None),
    (330, {"entry": sent(30, 1)}, {1, 2}, "update"),
    # the same alarms still unacknowledged: repeat_interval (3600 s) after the last message
    (3630 - MS, {"entry": sent(30, 1, 2)}, {1, 2}, None),
    (3630, {"entry": sent(30, 1, 2)}, {1, 2}, "reminder"),
    (3630, {"entry": sent(30, 1, 2)}, {2}, "reminder"),                # one acked: remind the rest
    # all acknowledged: forget silently, or (send_resolved) say so after group_interval
    (31, {"entry": sent(30, 1)}, set(), "settle"),
    (330 - MS, {"entry": sent(30, 1), "send_resolved": True}, set(), None),
    (330, {"entry": sent(30, 1), "send_resolved": True}, set(), "resolved"),
    (330, {"entry": sent(30, 1, 2), "send_resolved": True}, {2}, "update"),
    # a delivery given up: group_interval before trying again
    (400 - MS, {"failed_at": 100}, {1}, None),
    (400, {"failed_at": 100}, {1}, "first"),
    # an empty log entry (all acknowledged before) is like none: group_wait from creation
    (500 + 30 - MS, {"entry": sent(100), "created": 500}, {3}, None),
    (500 + 30, {"entry": sent(100), "created": 500}, {3}, "first"),
])
def test_decide(now: float, kw: dict, firing: set, expected: str | None) -> None:
    assert decide(ctx(now, **kw), frozenset(firing)) == expected


@pytest.mark.parametrize("now, offset, visible", [
    (300 - MS, 300, False),   # 1 ms before the tier's after_s: not yet
    (300, 300, True),         # exactly after_s: reached
    (0, 0, True),             # first tier: at once
])
def test_escalation_reaches_a_tier_at_after_s(now: float, offset: float, visible: bool) -> None:
    out = EscalationStage().exec(ctx(now, offset=offset), [alarm(1, since=0)])
    assert bool(out) is visible


@pytest.mark.parametrize("state, told, kept", [
    ("UNACK_ACTIVE", False, True),     # waiting: on
    ("RTN_UNACK", False, True),        # returned but not acknowledged: still waiting
    ("ACK_ACTIVE", False, False),      # acknowledged before anyone was told: nothing to say
    ("ACK_ACTIVE", True, True),        # acknowledged after: its end must be seen
    ("SHELVED", True, True),
    ("CLOSED", False, False),
])
def test_ack_stage(state: str, told: bool, kept: bool) -> None:
    c = ctx(50, entry=sent(30, 1) if told else None)
    assert bool(AckStage().exec(c, [alarm(1, state=state)])) is kept


def test_escalation_lets_ended_alarms_through_whatever_the_tier() -> None:
    c = ctx(0, offset=900, entry=sent(0, 1))
    assert [a.id for a in EscalationStage().exec(c, [alarm(1, state="ACK_ACTIVE")])] == [1]


@pytest.mark.parametrize("state, stops", [
    (ChannelState(busy=True), True),    # a delivery under way: wait for it
    (ChannelState(), False),
])
def test_channel_stage_waits_for_a_busy_channel(state: ChannelState, stops: bool) -> None:
    c = ctx(30)
    c.states["ops"] = state
    assert bool(ChannelStage("ops", 0, 0).exec(c, [alarm(1)])) is not stops


def test_channel_stage_skips_disabled_channels() -> None:
    c = dataclasses.replace(ctx(30), enabled=frozenset())
    assert not ChannelStage("ops", 0, 0).exec(c, [alarm(1)])


def test_dedup_settles_silently_and_records_it() -> None:
    c = ctx(40, entry=sent(30, 1))
    assert not DedupStage().exec(c, [alarm(1, state="ACK_ACTIVE")])
    assert c.settled == [("ops", LogEntry(at(40), frozenset()))]
    assert c.state.entry == LogEntry(at(40), frozenset())


def test_first_message_of_a_later_tier_is_an_escalation() -> None:
    c = ctx(300, tier=1, offset=300)
    DedupStage().exec(c, [alarm(1)])
    assert c.reason == "escalation"


def test_send_stage_lists_top_alarms_first_and_counts() -> None:
    c = ctx(330, entry=sent(30, 1))
    c.reason = "update"
    alarms = [alarm(1, priority="low", since=0), alarm(2, priority="high", since=20),
              alarm(3, priority="high", since=10), alarm(4, state="ACK_ACTIVE")]
    SendStage().exec(c, alarms)
    (d,) = c.out
    assert [a.id for a in d.message.firing] == [3, 2, 1]   # high first, longest waiting first
    assert [a.id for a in d.message.resolved] == [4]
    assert d.message.new_ids == {2, 3}
    assert d.message.counts() == {"unacknowledged": 3, "new": 2, "resolved": 1, "high": 2,
                                  "medium": 0, "low": 1}
    assert d.firing == {1, 2, 3} and set(d.alarm_ids) == {1, 2, 3, 4}
    assert d.id == d.message.delivery and c.state.busy


class Recorder:
    def __init__(self, name: str, passes: bool = True) -> None:
        self.name, self.passes = name, passes

    def exec(self, c: Context, alarms):  # type: ignore[no-untyped-def]
        c.out.append(self.name)  # type: ignore[arg-type]
        return alarms if self.passes else []


def test_multistage_stops_when_a_stage_lets_nothing_through() -> None:
    c = ctx(0)
    MultiStage(Recorder("a"), Recorder("b", passes=False), Recorder("c")).exec(c, [alarm(1)])
    assert c.out == ["a", "b"]


def test_fanout_runs_every_branch_on_its_own_context() -> None:
    c = ctx(0)

    class SetsChannel:
        def __init__(self, name: str) -> None:
            self.name = name

        def exec(self, c2: Context, alarms):  # type: ignore[no-untyped-def]
            c2.channel = self.name
            c2.out.append(self.name)  # type: ignore[arg-type]
            return alarms

    FanoutStage(SetsChannel("x"), MultiStage(Recorder("y", passes=False))).exec(c, [alarm(1)])
    assert c.out == ["x", "y"] and c.channel == "ops"


@pytest.mark.parametrize("color, priority", [
    ("red", "high"), ("orange", "high"), ("yellow", "medium"), ("blue", "low"),
])
def test_warning_colours_map_to_priorities(color: str, priority: str) -> None:
    ev = WarningEvent.parse(
        '{"kind":"warning_overdue","warning_id":7,"enterprise":"E1","hazard_source":null,'
        f'"level":null,"color":"{color}","step":"acknowledge","due_at":"2026-03-01T16:00:00+08:00"}}')
    assert ev.labels()["priority"] == priority and ev.labels()["condition"] == "WARNING"
    assert ev.due_at == T0


@pytest.mark.parametrize("payload", [
    "not json",
    '{"kind":"other"}',
    '{"kind":"warning_overdue","warning_id":1,"enterprise":"E1","color":"purple","step":"x","due_at":"2026-01-01T00:00:00Z"}',
    '{"kind":"warning_overdue","warning_id":1,"enterprise":"E1","color":"red","step":"x","due_at":"2026-01-01T00:00:00"}',
    '{"kind":"warning_overdue","enterprise":"E1","color":"red","step":"x","due_at":"2026-01-01T00:00:00Z"}',
])
def test_bad_warning_payloads_are_refused(payload: str) -> None:
    with pytest.raises(ValueError):
        WarningEvent.parse(payload)

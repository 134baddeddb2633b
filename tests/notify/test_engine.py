"""The engine on timelines: floods, reminders, escalation and acknowledgement, restarts, warnings.

Times are seconds after T0; deliveries are taken as delivered at the tick that made them unless a
test says otherwise. Every timer is checked at its instant and 1 ms before.
"""

from __future__ import annotations

import dataclasses

import pytest

from alerting.notify.engine import Engine
from alerting.notify.model import AlarmInfo, Delivery, Rule, WarningEvent
from tests.notify.factories import MS, alarm, at, rule

ESCALATION = ((0, ("ops",)), (300, ("principal",)), (900, ("county",)))
CHANNELS = ("ops", "principal", "county", "mail")


def engine(*rules: Rule, channels: tuple[str, ...] = CHANNELS) -> Engine:
    e = Engine()
    e.configure(rules, channels, at(0))
    return e


def tick(e: Engine, t: float, deliver: bool = True) -> list[Delivery]:
    out = e.step(at(t)).deliveries
    if deliver:
        for d in out:
            e.delivered(d, True, at(t))
    return out


def run(e: Engine, start: float, end: float, every: float = 1.0) -> list[tuple[float, Delivery]]:
    """Tick from start to end (inclusive); every delivery with its time."""
    out, t = [], start
    while t <= end + 1e-9:
        out += [(t, d) for d in tick(e, t)]
        t = round(t + every, 6)
    return out


def acked(a: AlarmInfo) -> AlarmInfo:
    return dataclasses.replace(a, state="ACK_ACTIVE", acked_by="op")


def test_a_flood_of_200_alarms_in_a_minute_makes_one_message_per_route() -> None:
    by_enterprise = rule(1, group_wait_s=60, tiers=((0, ("ops",)),))
    high_anywhere = rule(2, group_wait_s=60, priorities=frozenset({"high"}), group_by=(),
                         tiers=((0, ("county",)),))
    e = engine(by_enterprise, high_anywhere)
    for i in range(200):  # one every 0.3 s: the last at 59.7 s
        e.observe(alarm(i + 1, since=i * 0.3), at(i * 0.3))
    sent = run(e, 0, 3659)
    assert sorted((t, d.channel, d.reason, len(d.message.firing)) for t, d in sent) == [
        (60, "county", "first", 200), (60, "ops", "first", 200)]
    assert len(sent[0][1].message.new_ids) == 200


def test_with_the_default_group_wait_a_minute_long_flood_makes_a_first_message_and_one_update() -> None:
    e = engine(rule(1))
    for i in range(200):
        e.observe(alarm(i + 1, since=i * 0.3), at(i * 0.3))
    sent = run(e, 0, 600)
    assert [(t, d.reason, len(d.message.firing), len(d.message.new_ids)) for t, d in sent] == [
        (30, "first", 101, 101), (330, "update", 200, 99)]


def test_group_wait_edge() -> None:
    e = engine(rule(1))
    e.observe(alarm(1), at(0))
    assert tick(e, 30 - MS) == []
    assert [d.reason for d in tick(e, 30)] == ["first"]


def test_reminders_repeat_while_unacknowledged_and_stop_on_ack() -> None:
    e = engine(rule(1))
    a = alarm(1)
    e.observe(a, at(0))
    assert [d.reason for d in tick(e, 30)] == ["first"]
    assert tick(e, 30 + 3600 - MS) == []
    assert [d.reason for d in tick(e, 30 + 3600)] == ["reminder"]
    assert tick(e, 30 + 7200 - MS) == []
    e.observe(acked(a), at(30 + 7200 - MS))
    assert run(e, 30 + 7200, 30 + 4 * 3600, every=60) == []
    assert e.groups == {} and e.alarms == {}   # nothing left to track


def test_returned_but_unacknowledged_alarms_keep_reminding() -> None:
    e = engine(rule(1))
    a = alarm(1)
    e.observe(a, at(0))
    tick(e, 30)
    e.observe(dataclasses.replace(a, state="RTN_UNACK"), at(100))
    assert [d.reason for d in tick(e, 3630)] == ["reminder"]


@pytest.mark.parametrize("state", ["SHELVED", "SUPPRESSED", "OUT_OF_SERVICE", "CLOSED"])
def test_non_annunciating_or_closed_alarms_stop_notifications(state: str) -> None:
    e = engine(rule(1, tiers=ESCALATION))
    a = alarm(1)
    e.observe(a, at(0))
    tick(e, 30)
    e.observe(dataclasses.replace(a, state=state), at(31))
    assert run(e, 31, 5000, every=10) == []


def test_escalation_tiers_fire_at_after_s_exactly() -> None:
    e = engine(rule(1, tiers=ESCALATION))
    e.observe(alarm(1, since=0), at(0))
    assert [d.channel for d in tick(e, 30)] == ["ops"]
    assert tick(e, 300 - MS) == []
    (d,) = tick(e, 300)
    assert (d.channel, d.reason, d.message.tier) == ("principal", "escalation", 1)
    assert tick(e, 900 - MS) == []
    (d,) = tick(e, 900)
    assert (d.channel, d.reason, d.message.tier) == ("county", "escalation", 2)


def test_escalation_counts_from_when_the_alarm_became_unacknowledged() -> None:
    e = engine(rule(1, tiers=ESCALATION))
    e.observe(alarm(1, since=100), at(100))   # raised at 100 s
    assert [d.channel for d in tick(e, 130)] == ["ops"]
    assert tick(e, 400 - MS) == []
    assert [d.channel for d in tick(e, 400)] == ["principal"]


def test_acknowledgement_stops_the_escalation_one_ms_before_the_next_tier() -> None:
    e = engine(rule(1, tiers=ESCALATION))
    a = alarm(1)
    e.observe(a, at(0))
    run(e, 0, 600)
    e.observe(acked(a), at(900 - MS))
    assert run(e, 900 - MS, 8000, every=0.5) == []


def test_an_alarm_acknowledged_at_after_s_is_still_escalated_when_the_tick_came_first() -> None:
    e = engine(rule(1, tiers=ESCALATION))
    a = alarm(1)
    e.observe(a, at(0))
    run(e, 0, 899)
    assert [d.channel for d in tick(e, 900)] == ["county"]
    e.observe(acked(a), at(900))
    assert run(e, 901, 8000, every=5) == []


def test_a_tier_hears_of_later_alarms_in_updates_at_group_interval() -> None:
    e = engine(rule(1, tiers=ESCALATION))
    e.observe(alarm(1, since=0), at(0))
    e.observe(alarm(2, since=100), at(100))
    sent = [(t, d.channel, d.reason, sorted(a.id for a in d.message.firing))
            for t, d in run(e, 0, 700) if d.channel == "principal"]
    # alarm 2 reaches the tier at 400 s; the principal was told at 300 s: update at 600 s
    assert sent == [(300, "principal", "escalation", [1]), (600, "principal", "update", [1, 2])]


def test_send_resolved_says_when_everything_was_acknowledged() -> None:
    e = engine(rule(1, send_resolved=True))
    a = alarm(1)
    e.observe(a, at(0))
    tick(e, 30)
    e.observe(acked(a), at(40))
    assert tick(e, 330 - MS) == []
    (d,) = tick(e, 330)
    assert d.reason == "resolved" and [x.id for x in d.message.resolved] == [1]
    assert not d.message.firing


def test_a_delivery_given_up_is_tried_again_after_group_interval() -> None:
    e = engine(rule(1))
    e.observe(alarm(1), at(0))
    (d,) = tick(e, 30, deliver=False)
    assert tick(e, 31, deliver=False) == []           # in flight: nothing more
    e.delivered(d, False, at(35))
    assert tick(e, 335 - MS, deliver=False) == []
    assert [x.reason for x in tick(e, 335)] == ["first"]


def test_a_restart_with_the_log_does_not_send_again() -> None:
    e = engine(rule(1, tiers=ESCALATION))
    a, b = alarm(1), alarm(2, since=10)
    e.observe(a, at(0))
    e.observe(b, at(10))
    run(e, 0, 400)
    log = dict(e.log)
    fresh = engine(rule(1, tiers=ESCALATION))
    fresh.load_log(log, at(500))
    assert fresh.wanted_alarms() == {1, 2}
    fresh.observe(a, at(500))
    fresh.observe(acked(b), at(500))   # acknowledged while no notifier was running
    assert run(fresh, 500, 899) == []  # nothing again; acknowledged b is settled silently
    assert [d.channel for d in tick(fresh, 900)] == ["county"]
    (d,) = tick(fresh, 30 + 3600)                         # the reminder lists what still waits
    assert (d.channel, d.reason, [x.id for x in d.message.firing]) == ("ops", "reminder", [1])


def test_a_rule_change_regroups_and_keeps_what_was_sent() -> None:
    e = engine(rule(1))
    e.observe(alarm(1), at(0))
    tick(e, 30)
    e.configure([rule(1, group_interval_s=60)], CHANNELS, at(40))
    assert tick(e, 50) == []                              # already told: no new first message
    e.observe(alarm(2, since=50), at(50))
    assert tick(e, 90 - MS) == [] and [d.reason for d in tick(e, 90)] == ["update"]
    e.configure([rule(1, enterprises=frozenset({"E9"}))], CHANNELS, at(100))
    assert tick(e, 100) == []                             # no alarm matches any more: settled
    assert e.groups == {}


def test_disabled_channels_and_rules_send_nothing() -> None:
    e = engine(rule(1), rule(2, enabled=False, tiers=((0, ("mail",)),)), channels=("mail",))
    e.observe(alarm(1), at(0))
    assert run(e, 0, 100) == []


def test_alarms_of_other_enterprises_do_not_match() -> None:
    e = engine(rule(1, enterprises=frozenset({"E2"})))
    e.observe(alarm(1, enterprise="E1"), at(0))
    assert e.groups == {} and run(e, 0, 60) == []


def test_an_alarm_deleted_with_its_enterprise_is_settled() -> None:
    e = engine(rule(1))
    e.observe(alarm(1), at(0))
    tick(e, 30)
    e.gone(1, at(40))
    assert tick(e, 41) == [] and e.groups == {}


def warning(color: str = "red", due: float = 0.0, level: int | None = 1) -> WarningEvent:
    return WarningEvent(warning_id=7, enterprise="E1", hazard_source="HS1", level=level,
                        color=color, step="acknowledge", due_at=at(due))


@pytest.mark.parametrize("now, channels", [
    (0, ["ops"]),                        # just overdue: the first tier
    (300 - MS, ["ops"]),
    (300, ["ops", "principal"]),         # overdue for after_s: that tier too
    (900, ["ops", "principal", "county"]),
])
def test_warnings_go_to_the_tiers_their_overdue_time_reached(now: float, channels: list) -> None:
    e = engine(rule(1, tiers=ESCALATION))
    out = e.warning(warning(), at(now))
    assert [d.channel for d in out] == channels
    assert all(d.reason == "warning" and d.warning_id == 7 and d.group_key is None for d in out)


@pytest.mark.parametrize("rule_kw, color, sent", [
    ({"priorities": frozenset({"high"})}, "orange", True),     # orange is high
    ({"priorities": frozenset({"high"})}, "yellow", False),    # yellow is medium
    ({"conditions": frozenset({"HI"})}, "red", False),         # alarm conditions only
    ({"conditions": frozenset({"WARNING"})}, "blue", True),
    ({"hazard_levels": frozenset({2})}, "red", False),         # warning of a level 1 source
])
def test_warnings_are_routed_like_alarms(rule_kw: dict, color: str, sent: bool) -> None:
    e = engine(rule(1, **rule_kw))
    assert bool(e.warning(warning(color), at(0))) is sent


def test_warnings_leave_no_group_state() -> None:
    e = engine(rule(1))
    (d,) = e.warning(warning(), at(0))
    assert e.delivered(d, True, at(0)) == [] and e.groups == {}


def test_a_channel_taken_out_of_a_rule_leaves_nothing_behind() -> None:
    e = engine(rule(1, tiers=ESCALATION))
    a = alarm(1)
    e.observe(a, at(0))
    run(e, 0, 300)                                        # ops and principal were told
    e.configure([rule(1)], CHANNELS, at(301))             # only ops now
    assert set(e.groups[(1, '{"enterprise":"E1"}')].states) == {"ops"}
    e.observe(acked(a), at(302))
    assert tick(e, 303) == [] and e.groups == {} and e.alarms == {}

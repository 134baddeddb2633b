"""The NotifierService against the real database, a local HTTP receiver and aiosmtpd.

Alarms are raised and acknowledged through ``alerting.repository`` (the same rows, events and
``pg_notify`` the engine writes). The service runs on a ManualClock; ``sync()`` returns once it
has seen every committed change, ticked at the clock's time and finished its attempts, so each
timer is checked at its instant and 1 ms before, without waiting for wall-clock time.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from alerting import repository as alarms
from alerting.notify import config_repository as store
from alerting.notify.clock import ManualClock
from alerting.notify.config import (
    DingtalkChannel,
    EmailChannel,
    RuleIn,
    WebhookChannel,
    WecomChannel,
)
from alerting.notify.retry import Backoff
from alerting.notify.service import NotifierService
from tests.notify.factories import MS, T0, at
from tests.notify.receivers import Receiver, SmtpServer
from tests.support import wait_for

SECRET = "hmac-secret-for-tests-0001"


class Plant:
    """An enterprise with a level-2 hazard source and points, in the test's database."""

    def __init__(self, conn: psycopg.Connection, code: str, points: int = 1) -> None:
        self.conn, self.code = conn, code
        self.enterprise_id = conn.execute(
            "INSERT INTO enterprises (code, name) VALUES (%s, %s) RETURNING id", (code, code)).fetchone()[0]  # type: ignore[index]
        hs = conn.execute(
            """INSERT INTO hazard_sources (enterprise_id, code, name, unit_type, s, r, alpha, level)
               VALUES (%s, %s, 'tank farm', 'storage', 2, 60, 1, 2) RETURNING id""",
            (self.enterprise_id, f"{code}-HS")).fetchone()[0]  # type: ignore[index]
        self.points = [r[0] for r in conn.execute(
            """INSERT INTO points (enterprise_id, tag, kind, hazard_source_id)
               SELECT %s, 'PT-' || g, 'pressure', %s FROM generate_series(1, %s) g RETURNING id""",
            (self.enterprise_id, hs, points)).fetchall()]
        conn.commit()

    def raise_alarm(self, at_s: float, point: int = 0, priority: str = "high") -> int:
        alarm_id = alarms.record_condition(
            self.conn, enterprise_id=self.enterprise_id, point_id=self.points[point], gateway=None,
            condition="HI", priority=priority, active=True, value=95.0, limit=90.0, at=at(at_s))
        self.conn.commit()
        assert alarm_id is not None
        return alarm_id

    def ack(self, alarm_id: int) -> None:
        alarms.acknowledge(self.conn, alarm_id, "duty", None)
        self.conn.commit()


def webhook(conn: psycopg.Connection, name: str, url: str) -> None:
    store.create_channel(conn, WebhookChannel(kind="webhook", name=name, url=url, secret=SECRET))


def add_rule(conn: psycopg.Connection, name: str, enterprise: str,
             tiers: list[tuple[float, list[str]]], **kw: Any) -> None:
    store.create_rule(conn, RuleIn(name=name, enterprises=[enterprise], tiers=[
        {"after_s": a, "channels": c} for a, c in tiers], **kw))  # type: ignore[misc]
    conn.commit()


@pytest.fixture(autouse=True)
def _no_rules_left(db_url: str) -> Iterator[None]:
    """Rules of one test must not route the alarms of the next."""
    yield
    with psycopg.connect(db_url) as c:
        c.execute("DELETE FROM notify_rules")
        c.execute("DELETE FROM notify_channels")


class Notifier:
    """A started NotifierService on a ManualClock."""

    def __init__(self, db_url: str, **kw: Any) -> None:
        self.clock = ManualClock(T0)
        self.service = NotifierService(db_url, self.clock, tick_s=3600, standby_s=0.1, **kw)
        self.service.start()

    def active(self) -> Notifier:
        wait_for(lambda: self.service.active, timeout=10, what="the notifier to be active")
        return self

    def at(self, seconds: float, timeout: float = 30) -> None:
        """Set the clock and let the service catch up at that time."""
        self.clock.set(at(seconds))
        self.service.sync(timeout)


@pytest.fixture
def notifier(db_url: str) -> Iterator[Notifier]:
    n = Notifier(db_url).active()
    yield n
    n.service.stop()


def hits(receiver: Receiver, path: str) -> list[dict]:
    return [r.json() for r in receiver.requests if r.path == path]


def test_a_flood_of_200_alarms_in_a_minute_makes_one_message_per_route(
        conn: psycopg.Connection, notifier: Notifier, receiver: Receiver) -> None:
    plant = Plant(conn, "E-FLOOD", points=200)
    webhook(conn, "flood-ops", receiver.url("/flood/ops"))
    webhook(conn, "flood-county", receiver.url("/flood/county"))
    add_rule(conn, "flood-by-enterprise", "E-FLOOD", [(0, ["flood-ops"])], group_wait_s=60)
    add_rule(conn, "flood-high", "E-FLOOD", [(0, ["flood-county"])], group_wait_s=60,
             priorities=["high"], group_by=[])
    ids = []
    for i in range(200):                                  # one every 0.3 s, the last at 59.7 s
        ids.append(plant.raise_alarm(i * 0.3, point=i))
        if i % 20 == 0:
            notifier.at(i * 0.3)
    notifier.at(60 - MS)
    assert receiver.requests == []
    notifier.at(60)
    for path in ("/flood/ops", "/flood/county"):
        (msg,) = hits(receiver, path)
        assert msg["counts"]["unacknowledged"] == 200 and len(msg["alarms"]) == 200
    notifier.at(60 + 3600 - MS)                          # nothing more until the reminder
    assert len(receiver.requests) == 2
    log = alarms_log(conn, ids[123])
    assert sorted((r["channel"], r["status"], r["attempt"]) for r in log) == [
        ("flood-county", "ok", 1), ("flood-ops", "ok", 1)]


def alarms_log(conn: psycopg.Connection, alarm_id: int) -> list[dict]:
    from alerting.notify import repository

    return repository.alarm_deliveries(conn, alarm_id, 100)


def test_escalation_timing_and_stop_on_ack(conn: psycopg.Connection, notifier: Notifier,
                                           receiver: Receiver) -> None:
    plant = Plant(conn, "E-ESC")
    for name in ("esc-ops", "esc-principal", "esc-county"):
        webhook(conn, name, receiver.url(f"/{name}"))
    add_rule(conn, "escalate", "E-ESC", [(0, ["esc-ops"]), (300, ["esc-principal"]),
                                         (900, ["esc-county"])])
    alarm_id = plant.raise_alarm(0)
    notifier.at(0)
    timeline = [(30 - MS, []), (30, ["/esc-ops"]), (300 - MS, ["/esc-ops"]),
                (300, ["/esc-ops", "/esc-principal"])]
    for t, paths in timeline:
        notifier.at(t)
        assert receiver.paths() == paths, t
    (escalation,) = hits(receiver, "/esc-principal")
    assert escalation["reason"] == "escalation" and escalation["tier"] == 1
    notifier.at(900 - 2 * MS)
    plant.ack(alarm_id)                                   # acknowledged 2 ms before the last tier
    for t in (900 - MS, 900, 3630, 7300):
        notifier.at(t)
    assert receiver.paths() == ["/esc-ops", "/esc-principal"]


def test_without_ack_the_last_tier_hears_at_after_s_and_reminders_follow(
        conn: psycopg.Connection, notifier: Notifier, receiver: Receiver) -> None:
    plant = Plant(conn, "E-REP")
    for name in ("rep-ops", "rep-county"):
        webhook(conn, name, receiver.url(f"/{name}"))
    add_rule(conn, "repeat", "E-REP", [(0, ["rep-ops"]), (120, ["rep-county"])],
             group_wait_s=10, repeat_interval_s=600)
    plant.raise_alarm(0)
    notifier.at(0)
    for t in (10, 120 - MS, 120, 610 - MS, 610, 720 - MS, 720):
        notifier.at(t)
    assert [(r.path, r.json()["reason"]) for r in receiver.requests] == [
        ("/rep-ops", "first"), ("/rep-county", "escalation"),
        ("/rep-ops", "reminder"), ("/rep-county", "reminder")]


def test_retries_with_backoff_then_delivered(conn: psycopg.Connection, notifier: Notifier,
                                             receiver: Receiver) -> None:
    plant = Plant(conn, "E-RETRY")
    webhook(conn, "retry-hook", receiver.url("/retry"))
    add_rule(conn, "retry", "E-RETRY", [(0, ["retry-hook"])])
    alarm_id = plant.raise_alarm(0)
    notifier.at(0)
    receiver.answer(500, 500)
    attempts = []
    for t in (30, 31 - MS, 31, 33 - MS, 33, 330):         # backoff 1 s, then 2 s
        notifier.at(t)
        attempts.append(len(receiver.requests))
    assert attempts == [1, 1, 2, 2, 3, 3]
    log = alarms_log(conn, alarm_id)
    assert [(r["attempt"], r["status"], r["http_status"]) for r in log] == [
        (1, "retry", 500), (2, "retry", 500), (3, "ok", 200)]
    assert len({r["delivery"] for r in log}) == 1
    assert [r["at"] for r in log] == [at(30), at(31), at(33)]


def test_a_400_is_not_retried(conn: psycopg.Connection, notifier: Notifier,
                              receiver: Receiver) -> None:
    plant = Plant(conn, "E-400")
    webhook(conn, "bad-hook", receiver.url("/bad"))
    add_rule(conn, "bad", "E-400", [(0, ["bad-hook"])], group_interval_s=120)
    alarm_id = plant.raise_alarm(0)
    notifier.at(0)
    receiver.answer(400)
    for t in (30, 31, 60, 150 - MS):
        notifier.at(t)
    assert len(receiver.requests) == 1
    notifier.at(150)                                      # group_interval after giving up
    assert len(receiver.requests) == 2
    log = alarms_log(conn, alarm_id)
    assert [(r["attempt"], r["status"], r["http_status"]) for r in log] == [
        (1, "failed", 400), (1, "ok", 200)]
    assert "HTTP 400" in log[0]["error"]


def test_every_channel_kind_from_one_rule(conn: psycopg.Connection, notifier: Notifier,
                                          receiver: Receiver, smtp: SmtpServer) -> None:
    import hashlib
    import hmac

    plant = Plant(conn, "E-KINDS")
    webhook(conn, "kinds-hook", receiver.url("/kinds/hook"))
    store.create_channel(conn, WecomChannel(kind="wecom", name="kinds-wecom",
                                            url=receiver.url("/wecom", "key=abcdef123456")))
    store.create_channel(conn, DingtalkChannel(kind="dingtalk", name="kinds-dd", secret="SECxyz",
                                               url=receiver.url("/dd", "access_token=t0k3n42")))
    store.create_channel(conn, EmailChannel.model_validate(
        {"kind": "email", "name": "kinds-mail", "host": "127.0.0.1", "port": smtp.port,
         "from": "hazmon@example.cn", "to": ["duty@example.cn"]}))
    add_rule(conn, "kinds", "E-KINDS", [(0, ["kinds-hook", "kinds-wecom", "kinds-dd", "kinds-mail"])])
    smtp.inbox.messages.clear()
    plant.raise_alarm(0)
    notifier.at(0)
    notifier.at(30)
    by_path = {r.path: r for r in receiver.requests}
    hook = by_path["/kinds/hook"]
    assert hook.headers["x-hazmon-signature"] == "sha256=" + hmac.new(
        SECRET.encode(), hook.body, hashlib.sha256).hexdigest()
    assert by_path["/wecom"].json()["msgtype"] == "markdown"
    assert by_path["/wecom"].query == {"key": "abcdef123456"}
    dd = by_path["/dd"]
    assert dd.json()["msgtype"] == "markdown" and dd.query["access_token"] == "t0k3n42"
    assert dd.query["timestamp"] == str(int(at(30).timestamp() * 1000)) and dd.query["sign"]
    assert len(smtp.inbox.messages) == 1


def test_only_one_notifier_is_active_and_a_standby_takes_over_without_resending(
        db_url: str, conn: psycopg.Connection, notifier: Notifier, receiver: Receiver) -> None:
    plant = Plant(conn, "E-HA")
    webhook(conn, "ha-hook", receiver.url("/ha"))
    add_rule(conn, "ha", "E-HA", [(0, ["ha-hook"])])
    plant.raise_alarm(0)
    notifier.at(0)
    notifier.at(30)
    standby = Notifier(db_url)
    try:
        time.sleep(0.3)
        assert not standby.service.active
        with pytest.raises(TimeoutError):
            standby.service.sync(timeout=0.5)
        notifier.service.stop()
        standby.active()
        standby.at(31)
        standby.at(3630 - MS)
        assert len(receiver.requests) == 1                # the log says it was sent
        standby.at(3630)
        assert [r.json()["reason"] for r in receiver.requests] == ["first", "reminder"]
    finally:
        standby.service.stop()


def test_changes_made_while_disconnected_are_caught_up(
        conn: psycopg.Connection, notifier: Notifier, receiver: Receiver) -> None:
    plant = Plant(conn, "E-RECON")
    webhook(conn, "recon-hook", receiver.url("/recon"))
    add_rule(conn, "recon", "E-RECON", [(0, ["recon-hook"])])
    conn.execute("""SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                    WHERE application_name = 'hazmon-notifier' AND datname = current_database()""")
    conn.commit()
    plant.raise_alarm(0)                                  # no one is listening right now

    def synced() -> bool:
        try:
            notifier.at(0, timeout=1)
            return True
        except TimeoutError:
            return False

    wait_for(synced, timeout=20, what="the notifier to reconnect")
    notifier.at(30)
    assert [r.path for r in receiver.requests] == ["/recon"]


def test_overdue_warnings_are_sent_once_per_event(conn: psycopg.Connection, notifier: Notifier,
                                                  receiver: Receiver) -> None:
    Plant(conn, "E-WARN")
    webhook(conn, "warn-hook", receiver.url("/warn"))
    add_rule(conn, "warnings", "E-WARN", [(0, ["warn-hook"])], conditions=["WARNING"])
    event = {"kind": "warning_overdue", "warning_id": 41, "enterprise": "E-WARN",
             "hazard_source": "E-WARN-HS", "level": 2, "color": "orange", "step": "acknowledge",
             "due_at": "2026-03-01T16:00:00+08:00"}
    for payload in (event, event, "garbage", {**event, "step": "feedback"},
                    {**event, "warning_id": 42, "enterprise": "E-OTHER"}):
        text = payload if isinstance(payload, str) else json.dumps(payload)
        conn.execute("SELECT pg_notify('hazmon_warnings', %s)", (text,))
        conn.commit()
    notifier.at(0)
    got = sorted((m["warning"]["warning_id"], m["warning"]["step"], m["warning"]["priority"])
                 for m in hits(receiver, "/warn"))
    assert got == [(41, "acknowledge", "high"), (41, "feedback", "high")]


def test_warnings_announced_while_no_notifier_listened_are_read_back(
        db_url: str, conn: psycopg.Connection, receiver: Receiver) -> None:
    plant = Plant(conn, "E-WBACK")
    webhook(conn, "wback-hook", receiver.url("/wback"))
    add_rule(conn, "wback", "E-WBACK", [(0, ["wback-hook"])], conditions=["WARNING"])
    warning_id = conn.execute(
        """INSERT INTO warnings (enterprise_id, level, color, state, reason, issued_at)
           VALUES (%s, 2, 'red', 'issued', 'test', %s) RETURNING id""",
        (plant.enterprise_id, at(-600))).fetchone()[0]  # type: ignore[index]
    for step, noted in (("acknowledge", at(-60)), ("feedback", at(-601))):   # 10 min is the window
        conn.execute("""INSERT INTO warning_overdue (warning_id, enterprise_id, step, due_at,
                            noted_at, announced) VALUES (%s, %s, %s, %s, %s, true)""",
                     (warning_id, plant.enterprise_id, step, noted, noted))
    conn.commit()
    n = Notifier(db_url).active()
    try:
        n.at(0)
        assert [(m["warning"]["warning_id"], m["warning"]["step"], m["warning"]["color"])
                for m in hits(receiver, "/wback")] == [(warning_id, "acknowledge", "red")]
    finally:
        n.service.stop()
    again = Notifier(db_url).active()                      # a restart sends nothing twice
    try:
        again.at(1)
        assert len(hits(receiver, "/wback")) == 1
    finally:
        again.service.stop()


def test_a_rule_added_while_running_applies(conn: psycopg.Connection, notifier: Notifier,
                                            receiver: Receiver) -> None:
    plant = Plant(conn, "E-LATE")
    plant.raise_alarm(0)
    notifier.at(30)
    webhook(conn, "late-hook", receiver.url("/late"))
    add_rule(conn, "late", "E-LATE", [(0, ["late-hook"])], group_wait_s=5)
    notifier.at(30)                                       # the rule is loaded: a group from now
    notifier.at(35 - MS)
    notifier.at(35)
    assert receiver.paths() == ["/late"]


def test_a_failing_channel_does_not_hold_up_the_others(db_url: str, conn: psycopg.Connection,
                                                      receiver: Receiver) -> None:
    n = Notifier(db_url, backoff=Backoff(max_attempts=2)).active()
    try:
        plant = Plant(conn, "E-SLOW")
        webhook(conn, "down-hook", receiver.url("/down"))
        webhook(conn, "up-hook", receiver.url("/up"))
        add_rule(conn, "slow", "E-SLOW", [(0, ["down-hook", "up-hook"])])
        alarm_id = plant.raise_alarm(0)
        n.at(0)
        receiver.answer(503, 503, path="/down")
        n.at(30)
        n.at(31)
        log = [(r["channel"], r["attempt"], r["status"]) for r in alarms_log(conn, alarm_id)]
        assert sorted(log) == [("down-hook", 1, "retry"), ("down-hook", 2, "failed"),
                               ("up-hook", 1, "ok")]
    finally:
        n.service.stop()

"""The response service: alarm changes in, risk warnings and incidents out, deadlines watched.

    LISTEN hazmon_alarms ──▶ correlation rules ──▶ incidents (opened or joined)
            │           └──▶ warning matrix per scope ──▶ warnings issued / escalated
       tick (tick_s) ──▶ overdue loop steps, overdue incident reports ──▶ pg_notify

One instance is active per database: it holds a session advisory lock on its connection; the
others wait and take over when that connection goes away. Notifications name the alarm event
(``<alarm id>:<event id>``); the service also keeps its place in the event log so that after a
restart it reads what it missed. Handling is idempotent (warnings follow the alarms' state;
an activation joins at most one incident), so reading an event twice is harmless. Every scope
is recomputed at start and every ``full_every_s`` (rule changes, hazard levels regraded).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg

from alerting import incidents, warnings
from alerting import response_repository as repo
from alerting.repository import ALARMS_CHANNEL

log = logging.getLogger(__name__)

LOCK_KEY = 0x68617A72  # "hazr"
CURSOR = "response"
BATCH = 1000


def _utc_now() -> datetime:
    return datetime.now(UTC)


class ResponseService:
    """Turns alarm changes into warnings and incidents and escalates missed deadlines."""

    def __init__(self, db_url: str, clock: Callable[[], datetime] | None = None,
                 tick_s: float = 1.0, *, full_every_s: float = 30.0) -> None:
        self.db_url = db_url
        self.clock = clock or _utc_now
        self.tick_s = tick_s
        self.full_every_s = full_every_s
        self.active = False                       # holds the lock: the one working instance
        self.ticks = 0                            # work loops completed (tests wait on it)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="hazmon-response", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.active = False

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.db_url, autocommit=True) as conn:
                    backoff = 0.5
                    self._serve(conn)
            except Exception as exc:  # noqa: BLE001 - the database went away: start again
                log.warning("response service lost the database (%s); retrying in %.1fs", exc, backoff)
            self.active = False
            self._stop.wait(backoff)
            backoff = min(backoff * 2, 10.0)

    def _serve(self, conn: psycopg.Connection) -> None:
        """Wait for the lock, then work until stopped (or the connection fails)."""
        while not self._stop.is_set():
            if conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()[0]:  # type: ignore[index]
                break
            self._stop.wait(self.tick_s)
        else:
            return
        self.active = True
        conn.execute(f"LISTEN {ALARMS_CHANNEL}")
        self._catch_up(conn)
        self.recompute_all(conn)
        last_full = time.monotonic()
        while not self._stop.is_set():
            events = self._wait_events(conn)
            if events:
                self.handle_events(conn, events)
            self.check_deadlines(conn)
            if time.monotonic() - last_full >= self.full_every_s:
                self.recompute_all(conn)
                last_full = time.monotonic()
            self.ticks += 1

    def _wait_events(self, conn: psycopg.Connection) -> list[tuple[int, int]]:
        """Alarm events notified within one tick (returns early once some arrived)."""
        found = list(conn.notifies(timeout=self.tick_s, stop_after=1))
        if found:
            found += conn.notifies(timeout=0.0, stop_after=BATCH)
        events = []
        for note in found:
            alarm_id, _, event_id = note.payload.partition(":")
            if alarm_id.isdigit() and event_id.isdigit():
                events.append((int(event_id), int(alarm_id)))
        return sorted(set(events))

    def _catch_up(self, conn: psycopg.Connection) -> None:
        """Handle the events written while no instance was listening."""
        after = repo.cursor(conn, CURSOR)
        if after is None:  # first start: history before it is not replayed
            repo.set_cursor(conn, CURSOR, repo.last_event_id(conn))
            return
        while not self._stop.is_set():
            events = repo.events_after(conn, after, BATCH)
            if not events:
                return
            self.handle_events(conn, events)
            after = events[-1][0]

    def handle_events(self, conn: psycopg.Connection, events: list[tuple[int, int]]) -> None:
        """Correlate each activation, then recompute the warning of every scope touched."""
        now = self.clock()
        irules = repo.incident_rules(conn)
        for event_id, _ in events:
            self._guarded(conn, f"alarm event {event_id}", self.correlate, irules, event_id, now)
        scopes = {s for _, alarm_id in events if (s := repo.alarm_scope(conn, alarm_id))}
        wrules = repo.warning_rules(conn)
        for ent_id, hs_id in sorted(scopes, key=lambda s: (s[0], s[1] or 0)):
            self._guarded(conn, f"warning scope {ent_id}/{hs_id}", self.recompute, wrules, ent_id,
                          hs_id, now)
        repo.set_cursor(conn, CURSOR, max(e for e, _ in events))

    @staticmethod
    def _guarded(conn: psycopg.Connection, what: str, step: Callable[..., Any], *args: Any) -> None:
        """Run one step in its own transaction; a step that fails is logged and skipped (rolled
        back) so that one bad event cannot stop the rest. A lost connection still ends the loop."""
        try:
            with conn.transaction():
                step(conn, *args)
        except psycopg.OperationalError:
            raise
        except Exception:  # logged with its traceback; the others go on
            log.exception("response service: %s failed; skipped", what)

    def correlate(self, conn: psycopg.Connection, rules: incidents.IncidentRules, event_id: int,
                  now: datetime) -> int | None:
        """Apply the correlation rules to one alarm event; the incident it joined, if any."""
        new = repo.activation(conn, event_id)
        if new is None or repo.linked_activations(conn, [event_id]):
            return None
        window = rules.longest_window
        recent = repo.recent_activations(conn, new.hazard_source_id, new.at - window, new.at + window)
        incident_id = None
        for rule, found in incidents.correlate(rules, new, recent):
            incident_id = self._open_or_join(conn, rules, rule, found, now)
        return incident_id

    def _open_or_join(self, conn: psycopg.Connection, rules: incidents.IncidentRules,
                      rule: incidents.CorrelationRule, found: tuple[incidents.Activation, ...],
                      now: datetime) -> int:
        hs_id = found[0].hazard_source_id
        incident_id = repo.open_incident_of_source(conn, hs_id)
        source = conn.execute("SELECT enterprise_id, code, name FROM hazard_sources WHERE id = %s",
                              (hs_id,)).fetchone()
        ent_id, code, name = source  # type: ignore[misc]
        opened = incident_id is None
        if incident_id is None:
            occurred = min(min(a.at for a in found), now)
            incident_id = repo.create_incident(
                conn, ent_id=ent_id, hs_id=hs_id, title=incidents.title_for(rule, code, name),
                rule=rule.name, actor=f"rule:{rule.name}", now=now, occurred_at=occurred,
                report_due_at=rules.report_due(occurred))
        linked = repo.linked_activations(conn, [a.event_id for a in found])
        for a in found:
            if a.event_id not in linked:
                repo.link_alarm(conn, incident_id, ent_id, a.alarm_id, a.event_id,
                                f"rule:{rule.name}", now, f"matched rule {rule.name}")
        if opened:
            repo.announce_incident(conn, repo.get_incident(conn, incident_id), "incident_opened", now)
        return incident_id

    def recompute(self, conn: psycopg.Connection, rules: warnings.WarningRules, ent_id: int,
                  hs_id: int | None, now: datetime) -> str:
        """Issue, escalate or update the warning of one scope; returns the decision's action."""
        current = repo.open_warning(conn, ent_id, hs_id)
        rows = repo.scope_alarms(conn, ent_id, hs_id)
        inputs = [warnings.AlarmInput(r["id"], r["activations"], r["state"], r["condition"],
                                      r["priority"], r["kind"], r["level"]) for r in rows]
        open_ = None if current is None else warnings.OpenWarning(
            current["color"], {int(k): int(v) for k, v in current["covered"].items()})
        decision = warnings.decide(rules, inputs, open_, repo.cleared_covered(conn, ent_id, hs_id))
        if decision.action == "none":
            return "none"
        level = _level(conn, hs_id)
        reason = _reason(rows, decision.alarm_ids, rules)
        if current is None:  # decide() issues only when no warning is open
            warning_id = repo.issue_warning(conn, ent_id, hs_id, level, decision, reason, now)
            self._announce(conn, warning_id, "warning_issued", rules)
        elif repo.update_warning(conn, current, ent_id, level, decision, reason, now) \
                and decision.action == "escalate":
            self._announce(conn, current["id"], "warning_escalated", rules)
        return decision.action

    @staticmethod
    def _announce(conn: psycopg.Connection, warning_id: int, kind: str,
                  rules: warnings.WarningRules) -> None:
        """Push a new or escalated warning on ``hazmon_response`` (same shape as overdue)."""
        w = repo.get_warning(conn, warning_id)
        due = warnings.step_due(rules, warnings.LoopTimes(w["state"], w["color"], w["issued_at"],
                                                          w["acked_at"], w["feedback_at"]))
        step, due_at = due if due else ("clear", w["issued_at"])
        payload = warnings.overdue_payload(w["id"], w["enterprise"], w["hazard_source"], w["level"],
                                           w["color"], step, due_at)
        repo.notify(conn, repo.RESPONSE_CHANNEL, {**payload, "kind": kind})

    def recompute_all(self, conn: psycopg.Connection) -> None:
        now = self.clock()
        rules = repo.warning_rules(conn)
        for ent_id, hs_id in repo.all_scopes(conn):
            self._guarded(conn, f"warning scope {ent_id}/{hs_id}", self.recompute, rules, ent_id,
                          hs_id, now)

    def check_deadlines(self, conn: psycopg.Connection) -> None:
        """Record and announce overdue loop steps and unreported incidents."""
        now = self.clock()
        rules = repo.warning_rules(conn)
        with conn.transaction():
            for w in repo.loops_waiting(conn):
                times = warnings.LoopTimes(w["state"], w["color"], w["issued_at"], w["acked_at"],
                                           w["feedback_at"])
                due = warnings.overdue_step(rules, times, now)
                if due is not None:
                    repo.mark_overdue(conn, w, due[0], due[1], now)
        with conn.transaction():
            for incident in repo.reports_overdue(conn, now):
                repo.escalate_report(conn, incident, now)


def _level(conn: psycopg.Connection, hs_id: int | None) -> int | None:
    if hs_id is None:
        return None
    row = conn.execute("SELECT level FROM hazard_sources WHERE id = %s", (hs_id,)).fetchone()
    return row[0] if row else None


def _reason(rows: list[dict[str, Any]], alarm_ids: tuple[int, ...], rules: warnings.WarningRules) -> str:
    """Which alarms drive the warning, e.g. 'GT-101 HI (high) → red; GT-102 HIHI (high) → red'."""
    parts = []
    for r in rows:
        if r["id"] in alarm_ids:
            cell = rules.cell(warnings.AlarmInput(r["id"], r["activations"], r["state"],
                                                  r["condition"], r["priority"], r["kind"], r["level"]))
            parts.append(f"{r['tag'] or r['gateway']} {r['condition']} ({r['priority']}) → {cell}")
    return "; ".join(parts[:20]) + (f"; … {len(parts) - 20} more" if len(parts) > 20 else "")

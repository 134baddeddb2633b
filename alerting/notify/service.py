"""The notifier process part: LISTEN for alarm changes, tick the engine, deliver with retries.

    alarms ─LISTEN hazmon_alarms──▶ Engine.observe ─┐
    warnings ─LISTEN hazmon_warnings─▶ Engine.warning ┤
    tick (tick_s) ─────────────────▶ Engine.step ───┴▶ RetryLoop ─▶ worker threads (notifiers)
                                                           ▲                 │
                                  delivery log, nflog ◀────┴─── outcomes ◀───┘

One thread owns the engine and the database connections; notifiers run in a small pool so a
slow receiver never holds up the others. Only one notifier is active per database: it holds a
PostgreSQL advisory lock; others stand by and take over when it goes. Every session (start,
reconnect, takeover) rebuilds the engine from the database: rules, channels, the notification
log, the unacknowledged alarms and those the log lists, so nothing sent is sent again and
nothing that changed while disconnected is missed. Overdue warnings announced in the last
minutes are read back from ``warning_overdue`` too (each warning step is sent once).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import timedelta
from typing import Any

import httpx
import psycopg
from prometheus_client import CollectorRegistry

from alerting.notify import repository as repo
from alerting.notify.clock import Clock, SystemClock
from alerting.notify.config_repository import NOTIFY_CHANNEL
from alerting.notify.engine import Engine
from alerting.notify.metrics import NotifyMetrics
from alerting.notify.model import Delivery, WarningEvent
from alerting.notify.notifiers import Notifier, NotifyError, build_notifier
from alerting.notify.retry import Backoff, Outcome, RetryLoop
from alerting.repository import ALARMS_CHANNEL

log = logging.getLogger(__name__)

WARNINGS_CHANNEL = "hazmon_warnings"
NOTIFIER_LOCK = 0x686E6F74  # "hnot"
APP_NAME = "hazmon-notifier"
WARNINGS_CATCH_UP = timedelta(minutes=10)  # overdue warnings read back at a (re)start


class NotifierService:
    """Sends notifications for one database; ``start`` returns at once, ``stop`` waits."""

    def __init__(self, db_url: str, clock: Clock | None = None, tick_s: float = 1.0, *,
                 standby_s: float = 5.0, backoff: Backoff | None = None, workers: int = 4,
                 registry: CollectorRegistry | None = None) -> None:
        self.db_url, self.tick_s, self.standby_s = db_url, tick_s, standby_s
        self.clock: Clock = clock or SystemClock()
        self.metrics = NotifyMetrics(registry)
        self.engine = Engine()
        self.retry = RetryLoop(backoff)
        self._http = httpx.Client(follow_redirects=False)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hazmon-notify")
        self._outcomes: queue.Queue[tuple[Delivery, Outcome]] = queue.Queue()
        self._inflight: set[Future[None]] = set()
        self._notifiers: dict[str, Notifier] = {}
        self._changed: set[int] = set()
        self._warnings: list[WarningEvent] = []
        self._reload = False
        self._barriers: list[str] = []
        self._waiting: dict[str, threading.Event] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.active = False

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Run in a background thread (standing by while another notifier is active)."""
        self._thread = threading.Thread(target=self._run, name="hazmon-notifier", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop ticking, let attempts under way finish, release the lock."""
        self._stop.set()
        self._wake("stop")
        if self._thread is not None:
            self._thread.join(timeout)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._http.close()

    def sync(self, timeout: float = 30.0) -> None:
        """Return once every alarm change committed before this call has been seen, a tick has
        run and the attempts it started have finished (tests drive the clock with this).
        TimeoutError when this notifier is not active."""
        token = uuid.uuid4().hex
        done = self._waiting[token] = threading.Event()
        deadline = time.monotonic() + timeout
        try:
            # asked again now and then: a request sent before LISTEN (at start, or while
            # reconnecting) is never delivered
            while not done.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("the notifier did not answer: standing by or stopped")
                self._wake("sync:" + token)
                done.wait(min(remaining, 0.25))
        finally:
            self._waiting.pop(token, None)

    def _wake(self, payload: str) -> None:
        try:
            with psycopg.connect(self.db_url, autocommit=True, connect_timeout=5) as conn:
                conn.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, payload))
        except psycopg.Error as exc:
            log.debug("could not wake the notifier: %s", exc)

    def _run(self) -> None:
        pause = 0.5
        while not self._stop.is_set():
            try:
                self._session()
                pause = 0.5
            except psycopg.Error as exc:
                log.warning("notifier lost the database (%s); retrying in %.1fs",
                            str(exc).strip().splitlines()[0] if str(exc).strip() else exc, pause)
            except Exception:
                log.exception("notifier session failed; restarting in %.1fs", pause)
            finally:
                self._end_session()
            self._stop.wait(pause)
            pause = min(pause * 2, 10.0)

    def _session(self) -> None:
        with psycopg.connect(self.db_url, autocommit=True, application_name=APP_NAME) as work:
            if not self._acquire(work):
                return
            with psycopg.connect(self.db_url, autocommit=True, application_name=APP_NAME) as listen:
                for channel in (ALARMS_CHANNEL, WARNINGS_CHANNEL, NOTIFY_CHANNEL):
                    listen.execute(f"LISTEN {channel}")
                self._resync(work)
                self.active = True
                self.metrics.active.set(1)
                log.info("notifier active")
                self._loop(work, listen)
                wait(self._inflight, timeout=60)  # stopping: record what is under way
                self._collect_outcomes(work)

    def _acquire(self, work: psycopg.Connection) -> bool:
        """Take the notifier lock, standing by while another process holds it."""
        announced = False
        while not self._stop.is_set():
            if work.execute("SELECT pg_try_advisory_lock(%s)", (NOTIFIER_LOCK,)).fetchone()[0]:  # type: ignore[index]
                return True
            if not announced:
                log.info("another notifier is active; standing by")
                announced = True
            self._stop.wait(self.standby_s)
        return False

    def _end_session(self) -> None:
        """Forget a session's state: attempts under way finish, waiting retries are dropped
        (the next session decides again from the notification log)."""
        self.active = False
        self.metrics.active.set(0)
        wait(self._inflight, timeout=60)
        self._inflight.clear()
        while not self._outcomes.empty():
            delivery, outcome = self._outcomes.get_nowait()
            log.warning("delivery %s to %s ended (%s) after the session was lost",
                        delivery.id, delivery.channel, "ok" if outcome.ok else outcome.error)
        self.retry = RetryLoop(self.retry.backoff)
        self.engine = Engine()

    # -- the loop ------------------------------------------------------------------------------

    def _resync(self, work: psycopg.Connection) -> None:
        """Rebuild the engine from the database."""
        now = self.clock.now()
        self._configure(work)
        self.engine.load_log(repo.load_log(work), now)
        alarms = repo.pending_alarms(work)
        alarms += repo.load_alarms(work, self.engine.wanted_alarms() - {a.id for a in alarms})
        for alarm in alarms:
            self.engine.observe(alarm, now)
        for alarm_id in self.engine.wanted_alarms():
            self.engine.gone(alarm_id, now)
        self._changed.clear()
        self._warnings += repo.recent_overdue_warnings(work, now - WARNINGS_CATCH_UP)

    def _configure(self, work: psycopg.Connection) -> None:
        channels = repo.load_channels(work)
        self._notifiers = {name: build_notifier(model, self._http) for name, model in channels.items()}
        self.engine.configure(repo.load_rules(work), channels.keys(), self.clock.now())
        self._reload = False

    def _loop(self, work: psycopg.Connection, listen: psycopg.Connection) -> None:
        next_tick = time.monotonic()
        while not self._stop.is_set():
            timeout = max(0.0, next_tick - time.monotonic())
            # stop_after=1 ends the wait after one packet (never mid-packet: nothing is lost)
            for note in listen.notifies(timeout=timeout, stop_after=1):
                self._on_note(note.channel, note.payload)
            if self._barriers or time.monotonic() >= next_tick:
                self._tick(work)
                next_tick = time.monotonic() + self.tick_s
            if self._barriers:
                self._answer_barriers(work)

    def _on_note(self, channel: str, payload: str) -> None:
        if channel == ALARMS_CHANNEL:
            alarm_id, _, _ = payload.partition(":")
            if alarm_id.isdigit():
                self._changed.add(int(alarm_id))
        elif channel == WARNINGS_CHANNEL:
            try:
                self._warnings.append(WarningEvent.parse(payload))
            except ValueError as exc:
                log.warning("ignoring a %s notification: %s", WARNINGS_CHANNEL, exc)
        elif payload == "config":
            self._reload = True
        elif payload.startswith("sync:"):
            self._barriers.append(payload[5:])

    def _tick(self, work: psycopg.Connection) -> None:
        """Outcomes, changes, warnings, then the engine's decisions and the attempts due."""
        if self._reload:  # new rules may want alarms no group held: offer them all again
            self._configure(work)
            now = self.clock.now()
            for alarm in repo.pending_alarms(work):
                self.engine.observe(alarm, now)
        self._collect_outcomes(work)
        now = self.clock.now()
        if self._changed:
            ids, self._changed = self._changed, set()
            found = repo.load_alarms(work, ids)
            for alarm in found:
                self.engine.observe(alarm, now)
            for alarm_id in ids - {a.id for a in found}:
                self.engine.gone(alarm_id, now)
        for event in self._take_warnings():
            if repo.claim_warning(work, event.warning_id, event.step):
                for delivery in self.engine.warning(event, now):
                    self.retry.submit(delivery, now)
        out = self.engine.step(now)
        for key, entry in out.log:
            repo.save_log(work, key, entry)
        for delivery in out.deliveries:
            self.retry.submit(delivery, now)
        for delivery in self.retry.due(now):
            self._dispatch(work, delivery)
        self.metrics.groups.set(len(self.engine.groups))
        self.metrics.retrying.set(len(self.retry))

    def _take_warnings(self) -> list[WarningEvent]:
        events, self._warnings = self._warnings, []
        return events

    def _answer_barriers(self, work: psycopg.Connection) -> None:
        """Finish the attempts under way (and record them) before answering sync() callers."""
        for _ in range(20):
            self._inflight = {f for f in self._inflight if not f.done()}
            if not self._inflight and self._outcomes.empty():
                break
            wait(self._inflight, timeout=60)
            self._tick(work)
        for token in self._barriers:
            if token in self._waiting:
                self._waiting[token].set()
        self._barriers.clear()

    # -- deliveries ----------------------------------------------------------------------------

    def _dispatch(self, work: psycopg.Connection, delivery: Delivery) -> None:
        notifier = self._notifiers.get(delivery.channel)
        if notifier is None:
            now = self.clock.now()
            self._finish(work, delivery, "?", Outcome(now, now, ok=False,
                                                     error="channel deleted or disabled"))
            return
        self._inflight = {f for f in self._inflight if not f.done()}
        self._inflight.add(self._pool.submit(self._attempt, notifier, delivery))

    def _attempt(self, notifier: Notifier, delivery: Delivery) -> None:
        """One attempt, in a worker thread; the outcome goes back to the service thread."""
        at = self.clock.now()
        try:
            sent = notifier.notify(delivery.message, at)
            outcome = Outcome(at, self.clock.now(), ok=True, http_status=sent.http_status,
                              error=sent.note)
        except NotifyError as exc:
            outcome = Outcome(at, self.clock.now(), ok=False, retryable=exc.retryable,
                              http_status=exc.http_status, error=str(exc))
        except Exception as exc:
            log.exception("notifier %s failed unexpectedly", notifier.kind)
            outcome = Outcome(at, self.clock.now(), ok=False, error=f"internal error: {type(exc).__name__}")
        self._outcomes.put((delivery, outcome))

    def _collect_outcomes(self, work: psycopg.Connection) -> None:
        while not self._outcomes.empty():
            delivery, outcome = self._outcomes.get_nowait()
            kind = getattr(self._notifiers.get(delivery.channel), "kind", "?")
            self._finish(work, delivery, kind, outcome)

    def _finish(self, work: psycopg.Connection, delivery: Delivery, kind: str,
                outcome: Outcome) -> None:
        """Log an attempt; after the last one, tell the engine."""
        status = self.retry.settle(delivery, outcome)
        repo.record_attempt(work, delivery, kind, outcome, status)
        self.metrics.attempts.labels(kind, status).inc()
        level = logging.INFO if status == "ok" else logging.WARNING
        log.log(level, "delivery %s (%s) to %s attempt %d: %s%s", delivery.id, delivery.reason,
                delivery.channel, delivery.attempt, status,
                f" ({outcome.error})" if outcome.error else "")
        if status != "retry":
            for key, entry in self.engine.delivered(delivery, status == "ok", outcome.at):
                repo.save_log(work, key, entry)

    def stats(self) -> dict[str, Any]:
        return {"active": self.active, **self.engine.stats(), "retrying": len(self.retry)}

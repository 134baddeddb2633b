"""The ingest worker: decode → judge → write + alarm changes in one transaction → ack.

One worker thread owns the database connection, the registry snapshot and the alarm engine.
For each batch it decodes messages into columns, asks the engine for transitions (without
changing its state), writes readings, rejections and alarm changes in one transaction, and only
after the commit applies the engine's new state and acknowledges the messages. A failed write
is retried with backoff, nothing is acknowledged meanwhile, and the broker holds what comes next.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import wait
from datetime import UTC, datetime

import numpy as np
import psycopg

from alerting import lifecycle, operations
from alerting import repository as alarms_repo
from alerting.engine import CONDITION_NAMES, Engine, Transitions
from alerting.persist import CheckpointWriter, load_engine_state, save_checkpoint
from alerting.seeding import engine_config
from devices import gateways_repository
from devices.registry import Registry, load_registry
from devices.repository import points_version
from hazmon.db import connect, housekeeping
from hazmon.errors import DatabaseUnavailable
from hazmon.settings import Settings
from ingest import repository as ingest_repo
from ingest import rollup
from ingest.batches import Batch, DecodeStage, Decoder, empty_columns
from ingest.latest import LatestWriter
from ingest.latest import repair as repair_latest
from ingest.metrics import IngestMetrics
from ingest.mqtt import Inbound, Subscriber, enterprise_topics
from ingest.writer import ReadingColumns, SideWriter, WriterConnection, split_by_parity

log = logging.getLogger(__name__)

class IngestWorker:
    """Owns the engine and the write path; run() is the worker thread's body."""

    def __init__(self, settings: Settings, db_url: str, subscriber: Subscriber,
                 metrics: IngestMetrics, timescale: bool,
                 shard: tuple[int, int] | None = None) -> None:
        self.settings = settings
        self.shard = shard
        # Each shard keeps its own engine checkpoint; shard 0 (or the only process) also runs
        # the clock-driven lifecycle jobs (shelve and mode expiry).
        self.checkpoint_name = "default" if shard is None else f"shard-{shard[0]}-of-{shard[1]}"
        self.runs_timers = shard is None or shard[0] == 0
        self.db_url = db_url
        self.subscriber = subscriber
        self.metrics = metrics
        self.connection = WriterConnection(db_url, timescale)
        self.writer = self.connection.writer
        self.stop_event = threading.Event()
        self.registry: Registry | None = None
        self.engine: Engine | None = None
        self._pending: Registry | None = None
        self._lock = threading.Lock()
        self._last_poll = 0.0
        self._last_stale = 0.0
        self._last_checkpoint = time.monotonic()
        self._last_housekeeping = time.monotonic()
        self._retry: Batch | None = None  # kept until committed: a failure retries it
        self._unrecorded: list[Transitions] = []
        self._gw_version = -1
        self.raise_levels = settings.raise_levels()
        self.decoder = Decoder(settings, metrics)
        self.stage = DecodeStage(self.decoder, subscriber, settings, db_url,
                                 lambda: self.registry, self.stop_event)
        self.latest = LatestWriter(db_url, timescale, interval_s=settings.latest_interval_s,
                                   background_nice=settings.background_nice)
        self.checkpoints = CheckpointWriter(db_url, self.checkpoint_name,
                                            background_nice=settings.background_nice)
        self.side = (SideWriter(db_url, timescale)
                     if settings.ingest_write_connections > 1 else None)
        self._offline: set[int] = set()  # gateway codes (decoder.gateway_code) now offline
        self.ready = threading.Event()

    # -- registry -------------------------------------------------------------------------
    def reload_registry(self) -> None:
        """Load the points now (any thread); the worker switches before its next batch."""
        with connect(self.db_url) as conn:
            registry = load_registry(conn, self.shard)
        with self._lock:
            self._pending = registry

    def _switch_registry(self, now_ms: int) -> None:
        with self._lock:
            new, self._pending = self._pending, None
        if new is None or (self.registry is not None and new.version == self.registry.version
                           and len(new) == len(self.registry)):
            return
        old = self.registry
        if old is None or self.engine is None:
            self.engine = Engine(engine_config(new), now_ms=now_ms)
        else:
            pos = np.searchsorted(old.point_ids, new.point_ids)
            pos = np.minimum(pos, max(len(old) - 1, 0))
            same = (old.point_ids[pos] == new.point_ids) if len(old) else np.zeros(len(new), bool)
            keep = np.where(same, pos, -1).astype(np.int64)
            self.engine.reconfigure(engine_config(new), keep=keep, now_ms=now_ms)
        self.registry = new
        self._follow_enterprises()

    def _follow_enterprises(self) -> None:
        """A shard subscribes to its own enterprises only (as they get registered)."""
        if self.shard is not None and self.registry is not None:
            self.subscriber.set_topics(tuple(
                t for code in sorted(self.registry.enterprises) for t in enterprise_topics(code)))
            self.metrics.subscribed_enterprises.set(len(self.registry.enterprises))

    def _poll_version(self, conn: psycopg.Connection) -> None:
        """Other processes (the API of another host, another shard) may change points."""
        version = points_version(conn)
        gw_version = gateways_repository.version(conn)
        if gw_version != self._gw_version:
            self.decoder.gw_auth = gateways_repository.registered(conn)
            self._gw_version = gw_version
        conn.commit()
        if self.registry is None or version != self.registry.version:
            registry = load_registry(conn, self.shard)
            conn.commit()
            with self._lock:
                if self._pending is None or self._pending.version < registry.version:
                    self._pending = registry

    # -- the loop ---------------------------------------------------------------------------
    def run(self) -> None:
        """Worker thread body: returns when stop_event is set."""
        backoff = 0.5
        while not self.stop_event.is_set():
            try:
                conn = self.connection.get()
                if self.engine is None:
                    self._start_engine(conn)
                self.ready.set()
                self._step(conn)
                backoff = 0.5
            except (psycopg.Error, DatabaseUnavailable) as exc:
                self.metrics.db_errors.inc()
                log.warning("database write failed (%s); retrying in %.1fs", str(exc).strip(), backoff)
                self._drop_connection()
                self.stop_event.wait(backoff)
                backoff = min(backoff * 2, 10.0)
            except Exception:  # noqa: BLE001 - the worker must never die
                log.exception("ingest worker error; retrying in %.1fs", backoff)
                self._drop_connection()
                self.stop_event.wait(backoff)
                backoff = min(backoff * 2, 10.0)
        self._final_checkpoint()
        self._drop_connection()

    def _final_checkpoint(self) -> None:
        self.checkpoints.stop()  # its last copy first: the final one below is newer
        try:
            conn = self.connection.conn
            if conn is not None and not conn.closed:
                self.checkpoint(conn)
        except psycopg.Error as exc:
            log.warning("could not save the engine checkpoint at stop: %s", exc)

    def _drop_connection(self) -> None:
        self.connection.drop()
        if self.side is not None:
            self.side.drop()  # idle: _commit always waits for it

    def _start_engine(self, conn: psycopg.Connection) -> None:
        now_ms = time.time_ns() // 1_000_000
        registry = load_registry(conn, self.shard)
        self.engine = Engine(engine_config(registry), now_ms=now_ms)
        self.registry = registry
        load_engine_state(self.engine, registry, conn, record=lambda tr: self._record(conn, tr),
                          name=self.checkpoint_name)
        self._follow_enterprises()
        self._load_offline(conn)
        repair_latest(conn)
        conn.commit()
        # A checkpoint from the start on: after any crash there is one to load and replay from.
        self.checkpoint(conn)

    def _step(self, conn: psycopg.Connection) -> None:
        self._periodic(conn)
        batch = self._retry or self.stage.next(timeout=0.2)
        self.metrics.queue_depth.set(len(self.subscriber.queue))
        if batch is None:
            return
        self._retry = batch  # kept until committed: a failure retries the same messages
        now_ms = time.time_ns() // 1_000_000
        self._switch_registry(now_ms)
        if batch.registry is not self.registry:  # decoded before the points changed
            batch = self._retry = self._decode(batch.items, now_ms, conn)
        try:
            self._commit(conn, batch, now_ms)
        except (psycopg.OperationalError, DatabaseUnavailable):
            raise  # the database is away: retry the same batch later
        except Exception as exc:  # noqa: BLE001
            # Something in the batch cannot be stored (a poison message): find it alone.
            conn.rollback()
            log.warning("batch of %d messages failed (%s); storing them one by one",
                        len(batch.items), exc)
            self._commit_each(conn, batch.items, now_ms)
        self._retry = None
        self.subscriber.ack(batch.items)

    def _decode(self, items: list[Inbound], now_ms: int, conn: psycopg.Connection) -> Batch:
        assert self.registry is not None
        return self.decoder.decode(items, now_ms, self.registry, lambda: conn)

    def _commit_each(self, conn: psycopg.Connection, items: list[Inbound], now_ms: int) -> None:
        """Store messages one at a time; one that still fails is recorded as a rejection."""
        for item in items:
            try:
                self._commit(conn, self._decode([item], now_ms, conn), now_ms)
            except (psycopg.OperationalError, DatabaseUnavailable):
                raise
            except Exception as exc:  # noqa: BLE001
                log.exception("message on %s could not be stored", item.topic)
                conn.rollback()
                batch = Batch(items=[item], readings=empty_columns())
                self.decoder.reject(batch, None, None, item.topic, None, "unstorable",
                             f"message could not be stored: {str(exc).strip()}",
                             item.payload[:200].decode("utf-8", "replace"))
                ingest_repo.insert_rejections(conn, batch.rejections)
                conn.commit()

    def _periodic(self, conn: psycopg.Connection) -> None:
        now = time.monotonic()
        if now - self._last_poll >= 0.25:
            self._last_poll = now
            self._poll_version(conn)
            self._switch_registry(time.time_ns() // 1_000_000)  # new enterprises subscribe now
        if self.runs_timers and now - self._last_housekeeping >= 3600:
            self._last_housekeeping = now
            housekeeping(conn, self.writer.timescale, self.settings)
        if now - self._last_checkpoint >= self.settings.checkpoint_interval_s:
            self._periodic_checkpoint()
        if now - self._last_stale >= 1.0 and self.engine is not None and self.registry is not None:
            self._last_stale = now
            self._switch_registry(time.time_ns() // 1_000_000)
            stale = self.engine.check_stale(time.time_ns() // 1_000_000, self.decoder.comm_down(self.registry, self._offline))
            if len(stale):
                # check_stale commits its own state: its transitions must be recorded even if
                # the database is away now, so they wait here until a commit succeeds.
                self._unrecorded.append(stale)
            while self._unrecorded:
                self._record(conn, self._unrecorded[0])
                conn.commit()
                self._unrecorded.pop(0)
            if self.runs_timers:
                now_dt = datetime.now(UTC)
                if operations.expire_shelves(conn, now_dt) + operations.expire_modes(conn, now_dt):
                    self._poll_version(conn)
                conn.commit()

    def _load_offline(self, conn: psycopg.Connection) -> None:
        for ent_id, gateway in conn.execute("SELECT enterprise_id, code FROM gateways WHERE status = 'offline'"):
            self._offline.add(self.decoder.gateway_code(int(ent_id), gateway))

    def checkpoint(self, conn: psycopg.Connection) -> None:
        """Save the engine state now (restart safety; replay covers what came after)."""
        if self.engine is not None and self.registry is not None:
            save_checkpoint(conn, self.engine, self.registry, self.checkpoint_name)
            conn.commit()
        self._last_checkpoint = time.monotonic()

    def _periodic_checkpoint(self) -> None:
        """Hand a copy of the state to the checkpoint writer (it stores it off the alarm path)."""
        if self.engine is not None and self.registry is not None:
            self.checkpoints.offer(self.registry.point_ids, self.engine.export_state())
        self._last_checkpoint = time.monotonic()

    def _commit(self, conn: psycopg.Connection, batch: Batch, now_ms: int) -> None:
        assert self.engine is not None and self.registry is not None
        cols = batch.readings
        t0 = time.perf_counter()
        idx = self.registry.index_of(cols.point)
        judgement = self.engine.judge(idx, cols.ts_ms, cols.value, cols.quality.astype(bool), now_ms)
        self.metrics.engine_seconds.observe(time.perf_counter() - t0)
        t1 = time.perf_counter()
        side = None
        mine = cols
        if self.side is not None and len(cols) >= self.settings.ingest_split_min_readings:
            mine, theirs = split_by_parity(cols)
            side = self.side.submit(theirs)  # commits before this transaction does
        try:
            stored = self.writer.write(conn, mine)
            ingest_repo.insert_rejections(conn, batch.rejections)
            for ent_id, gateway, status, at in batch.statuses:
                ingest_repo.set_gateway_status(conn, ent_id, gateway, status, at)
                self._record_comm(conn, ent_id, gateway, status == "offline", at)
            self._record(conn, judgement.transitions)
        except BaseException:
            if side is not None:
                wait([side])  # never leave it running into the retry
            raise
        if side is not None:
            stored += side.result()  # its failure fails the batch: nothing here is committed
        conn.commit()
        for ent_id, gateway, status, _ in batch.statuses:
            code = self.decoder.gateway_code(ent_id, gateway)
            (self._offline.add if status == "offline" else self._offline.discard)(code)
        self.engine.apply(judgement)
        self.latest.offer(cols)
        self.metrics.write_seconds.observe(time.perf_counter() - t1)
        self._count(cols, stored, judgement.skipped_old)

    def _count(self, cols: ReadingColumns, stored: int, not_judged: int) -> None:
        n = len(cols)
        if n:
            self.metrics.readings.inc(stored)
            self.metrics.duplicates.inc(n - stored)
            self.metrics.batch_size.observe(n)
            lag = (time.time_ns() // 1_000_000 - int(cols.ts_ms.max())) / 1000
            self.metrics.lag.observe(max(lag, 0.0))
        if not_judged:
            self.metrics.not_judged.inc(not_judged)

    def _record_comm(self, conn: psycopg.Connection, ent_id: int, gateway: str, offline: bool,
                     at: datetime) -> None:
        """COMM: one alarm per gateway, active while it reports itself (or its will) offline."""
        priority = lifecycle.priority_for("COMM", 0)
        changed = alarms_repo.record_condition(
            conn, enterprise_id=ent_id, point_id=None, gateway=gateway, condition="COMM",
            priority=priority, active=offline, value=None, limit=None, at=at)
        if changed is not None:
            self.metrics.alarm_changes.labels("COMM", priority,
                                              "activate" if offline else "return").inc()

    def _record(self, conn: psycopg.Connection, tr: Transitions) -> None:
        """Write each engine transition into the alarm lifecycle (a few per batch)."""
        assert self.registry is not None
        reg = self.registry
        for i in range(len(tr)):
            idx = int(tr.point[i])
            cond = CONDITION_NAMES[int(tr.cond[i])]
            active = bool(tr.active[i])
            meta = reg.meta[idx]
            priority = lifecycle.priority_for(cond, int(reg.hazard_levels[idx]),
                                              meta["priorities"].get(cond),
                                              raise_levels=self.raise_levels)
            value = float(tr.value[i])
            limit = float(tr.limit[i])
            alarms_repo.record_condition(
                conn, enterprise_id=int(reg.enterprise_ids[idx]), point_id=int(reg.point_ids[idx]),
                gateway=None, condition=cond, priority=priority, active=active,
                value=None if np.isnan(value) else value, limit=None if np.isnan(limit) else limit,
                at=datetime.fromtimestamp(int(tr.ts_ms[i]) / 1000, UTC), latching=meta["latching"])
            self.metrics.alarm_changes.labels(cond, priority, "activate" if active else "return").inc()


class IngestService:
    """The subscriber plus the worker thread, started and stopped together."""

    def __init__(self, settings: Settings, db_url: str, subscriber: Subscriber,
                 metrics: IngestMetrics, timescale: bool,
                 shard: tuple[int, int] | None = None) -> None:
        self.subscriber = subscriber
        self.worker = IngestWorker(settings, db_url, subscriber, metrics, timescale, shard)
        self.refresher = rollup.Refresher(db_url, interval_s=settings.rollup_refresh_s,
                                          metrics=metrics, background_nice=settings.background_nice)
        self.thread = threading.Thread(target=self.worker.run, name="hazmon-ingest", daemon=True)

    def start(self) -> None:
        """Start consuming: the worker first (it loads the registry), then the broker client."""
        self.worker.latest.start()
        self.worker.checkpoints.start()
        self.thread.start()
        self.worker.ready.wait(30)
        self.worker.stage.start()
        self.subscriber.start()
        self.refresher.start()

    def stop(self) -> None:
        """Let the worker finish (commit and ack) its batch, then leave the broker.

        Messages received but not committed are not acknowledged: the broker redelivers them.
        """
        self.worker.stop_event.set()
        self.thread.join(30)
        self.worker.stage.join(5)
        self.subscriber.stop()
        self.worker.latest.stop()
        if self.worker.side is not None:
            self.worker.side.close()
        self.refresher.stop()

    @property
    def connected(self) -> bool:
        return self.subscriber.connected

    def reload_registry(self) -> None:
        """Pick up changed points before the next batch (called after a point table upload)."""
        self.worker.reload_registry()

"""Turning received MQTT messages into batches of columns, on a thread of its own.

Decoding a full batch (2,000 messages of 100 readings) takes about a third of the time the
database needs to store it. The worker used to do both in turn; now :class:`DecodeStage` decodes
the next batch while the worker's transaction for the previous one is in PostgreSQL, so the
two overlap (psycopg releases the GIL while it waits for the server).

A batch is decoded against one registry snapshot (tag → point id). If the worker switches to a
new registry between decode and commit, it decodes the batch again with the new one.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Callable

import numpy as np
import psycopg

from devices import gateways_repository
from devices.registry import Registry
from hazmon.db import connect
from hazmon.mqtt_auth import ingest_refusal
from hazmon.settings import Settings
from ingest.decode import decode_readings, decode_status, parse_topic
from ingest.metrics import IngestMetrics
from ingest.mqtt import Inbound, Subscriber
from ingest.writer import ReadingColumns

log = logging.getLogger(__name__)

MIN_TS_MS = 946_684_800_000  # 2000-01-01: anything older is a gateway clock fault


@dataclass
class Batch:
    """Everything one transaction writes, and the registry it was decoded with."""

    items: list[Inbound]
    readings: ReadingColumns
    rejections: list[tuple[Any, ...]] = field(default_factory=list)
    statuses: list[tuple[int, str, str, datetime]] = field(default_factory=list)
    registry: Registry | None = None


def clean(text: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL: show it instead of failing the batch."""
    return None if text is None else text.replace("\x00", "\\x00")


def empty_columns() -> ReadingColumns:
    return ReadingColumns(np.empty(0, np.int32), np.empty(0, np.int64),
                          np.empty(0, np.float64), np.empty(0, np.int16))


class Decoder:
    """Decodes messages into a :class:`Batch`; remembers which gateway sent which point."""

    def __init__(self, settings: Settings, metrics: IngestMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        # MQTT identity checked again behind the broker: (closed enterprises, registered pairs).
        self.gw_auth: tuple[frozenset[str], frozenset[tuple[str, str]]] = (frozenset(), frozenset())
        self._gw_loaded = 0.0
        # COMM: which gateway last sent each point (by point id), as small gateway codes.
        self._gateway_codes: dict[tuple[int, str], int] = {}
        self._gw_of_point = np.full(1024, -1, np.int32)
        self._codes_lock = threading.Lock()

    def decode(self, items: list[Inbound], now_ms: int, registry: Registry,
               conn: Callable[[], psycopg.Connection | None]) -> Batch:
        """Messages → one batch; ``conn()`` gives a connection to re-check refused gateways."""
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        senders: list[int] = []  # per part: the code of the gateway that sent it (-1: unknown)
        kinds: dict[str, int] = {}
        batch = Batch(items=items, readings=empty_columns(), registry=registry)
        max_ts = now_ms + self.settings.future_tolerance_s * 1000
        for item in items:
            topic = parse_topic(item.topic)
            if topic is None:
                self.reject(batch, None, None, item.topic, None, "bad_topic",
                            "topic is not hazmon/v1/{enterprise}/{gateway}/readings|status", "")
                continue
            kinds[topic.kind] = kinds.get(topic.kind, 0) + 1
            refusal = self._refusal(topic.enterprise, topic.gateway, conn)
            if refusal is not None:
                self.reject(batch, topic.enterprise, topic.gateway, item.topic, None,
                            "unregistered_gateway", refusal,
                            item.payload[:200].decode("utf-8", "replace"))
                continue
            if topic.kind == "status":
                self._decode_status(batch, item, topic.enterprise, topic.gateway, registry)
                continue
            decoded = decode_readings(
                item.payload, enterprise=topic.enterprise,
                lookup=registry.tags.get(topic.enterprise), received_ms=item.received_ms,
                min_ts_ms=MIN_TS_MS, max_ts_ms=max_ts,
                max_payload=self.settings.max_payload_bytes,
                max_readings=self.settings.max_readings_per_message)
            for r in decoded.rejections:
                self.reject(batch, topic.enterprise, topic.gateway, item.topic, r.tag, r.code,
                            r.reason, r.excerpt)
            if len(decoded):
                parts.append((decoded.point, decoded.ts_ms, decoded.value, decoded.bad))
                ent_id = registry.enterprises.get(topic.enterprise)
                senders.append(-1 if ent_id is None else self.gateway_code(ent_id, topic.gateway))
        for kind, n in kinds.items():
            self.metrics.messages.labels(kind).inc(n)
        if parts:
            self._note_senders(parts, senders)
            batch.readings = ReadingColumns(
                np.concatenate([p[0] for p in parts]).astype(np.int32),
                np.concatenate([p[1] for p in parts]).astype(np.int64),
                np.concatenate([p[2] for p in parts]).astype(np.float64),
                np.concatenate([p[3] for p in parts]).astype(np.int16))
        return batch

    def reject(self, batch: Batch, enterprise: str | None, gateway: str | None, topic: str,
               tag: str | None, code: str, reason: str, excerpt: str) -> None:
        self.metrics.rejected.labels(code).inc()
        batch.rejections.append(tuple(clean(x) for x in
                                      (enterprise, gateway, topic, tag, code, reason, excerpt)))

    def _refusal(self, enterprise: str, gateway: str,
                 conn: Callable[[], psycopg.Connection | None]) -> str | None:
        """Why this gateway's messages are refused; a refusal is checked once more against
        fresh credentials (the broker may already know a gateway registered a moment ago)."""
        refusal = ingest_refusal(self.settings.mqtt_auth, *self.gw_auth, enterprise, gateway)
        if refusal is None or time.monotonic() - self._gw_loaded < 0.1:
            return refusal
        self._gw_loaded = time.monotonic()
        connection = conn()
        if connection is None:
            return refusal
        try:
            self.gw_auth = gateways_repository.registered(connection)
        except psycopg.Error as exc:
            log.warning("could not re-check gateway credentials: %s", str(exc).strip())
            return refusal
        return ingest_refusal(self.settings.mqtt_auth, *self.gw_auth, enterprise, gateway)

    def _decode_status(self, batch: Batch, item: Inbound, enterprise: str, gateway: str,
                       registry: Registry) -> None:
        status = decode_status(item.payload)
        ent_id = registry.enterprises.get(enterprise)
        if status is None or ent_id is None:
            code = "bad_status" if status is None else "unknown_enterprise"
            reason = ("status payload must be 'online' or 'offline'" if status is None else
                      f"enterprise {enterprise!r} is not registered; create it with POST /api/v1/enterprises")
            self.reject(batch, enterprise, gateway, item.topic, None, code, reason,
                        item.payload[:200].decode("utf-8", "replace"))
            return
        at = datetime.fromtimestamp(item.received_ms / 1000, UTC)
        batch.statuses.append((ent_id, gateway, status, at))

    # -- COMM bookkeeping ------------------------------------------------------------------
    def gateway_code(self, enterprise_id: int, gateway: str) -> int:
        key = (enterprise_id, gateway)
        with self._codes_lock:
            code = self._gateway_codes.get(key)
            if code is None:
                code = self._gateway_codes[key] = len(self._gateway_codes)
        return code

    def _note_senders(self, parts: list[tuple[np.ndarray, ...]], senders: list[int]) -> None:
        """Remember which gateway sent each point (for COMM's suppression of STALE): one numpy
        assignment per batch, later parts (newer messages) winning."""
        points = np.concatenate([p[0] for p in parts]).astype(np.int64)
        codes = np.repeat(np.array(senders, np.int32), [p[0].size for p in parts])
        known = codes >= 0
        points, codes = points[known], codes[known]
        if not points.size:
            return
        top = int(points.max())
        table = self._gw_of_point
        if top >= table.size:
            grown = np.full(max(top + 1, table.size * 2), -1, np.int32)
            grown[: table.size] = table
            self._gw_of_point = table = grown
        # a point sent twice in the batch: its last sender counts (numpy does not promise
        # which of repeated indices an assignment keeps, so keep only the last one)
        rev_points = points[::-1]
        uniq, first_in_rev = np.unique(rev_points, return_index=True)
        table[uniq] = codes[::-1][first_in_rev]

    def comm_down(self, registry: Registry | None, offline: set[int]) -> np.ndarray | None:
        """Points whose gateway is offline: their STALE alarms are suppressed (COMM says it)."""
        if not offline or registry is None:
            return None
        table = self._gw_of_point
        ids = registry.point_ids
        known = ids < table.size
        gw = np.full(ids.size, -1, np.int32)
        gw[known] = table[ids[known]]
        return np.isin(gw, np.fromiter(offline, np.int32))


class DecodeStage:
    """A thread taking messages from the subscriber and handing decoded batches to the worker.

    The hand-over queue holds one batch: while the worker stores batch N, batch N+1 is decoded
    and waits; the subscriber's queue (bounded, with the broker holding the rest) is the
    backpressure beyond that. Nothing here acknowledges anything: a batch still in this stage
    when the process stops is redelivered by the broker.
    """

    def __init__(self, decoder: Decoder, subscriber: Subscriber, settings: Settings,
                 db_url: str, registry: Any, stop_event: threading.Event) -> None:
        self.decoder = decoder
        self.subscriber = subscriber
        self.settings = settings
        self.db_url = db_url
        self.registry = registry  # a callable returning the worker's current registry
        self.stop_event = stop_event
        self.out: queue.Queue[Batch] = queue.Queue(maxsize=1)
        self._conn: psycopg.Connection | None = None
        self.thread = threading.Thread(target=self._run, name="hazmon-decode", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass

    def next(self, timeout: float) -> Batch | None:
        """The next decoded batch, or None after ``timeout`` seconds without one."""
        try:
            return self.out.get(timeout=timeout)
        except queue.Empty:
            return None

    def _run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self._once()
            except Exception:  # noqa: BLE001 - the stage must never die
                log.exception("decode stage error")
                self.stop_event.wait(0.5)

    def _once(self) -> None:
        registry = self.registry()
        if registry is None:
            self.stop_event.wait(0.05)
            return
        items = self.subscriber.take(self.settings.ingest_batch_max_messages, wait_s=0.2,
                                     linger_s=self.settings.ingest_flush_ms / 1000)
        if not items:
            return
        batch = self.decoder.decode(items, time.time_ns() // 1_000_000, registry,
                                    self._connection)
        while not self.stop_event.is_set():
            try:
                self.out.put(batch, timeout=0.2)
                return
            except queue.Full:
                continue

    def _connection(self) -> psycopg.Connection | None:
        """A connection of this thread's own, for re-checking refused gateways (may be None)."""
        if self._conn is None or self._conn.closed:
            try:
                self._conn = connect(self.db_url, autocommit=True)
            except Exception:  # noqa: BLE001 - the database may be away; decoding goes on
                self._conn = None
        return self._conn

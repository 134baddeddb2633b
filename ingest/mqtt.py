"""The MQTT side of ingest: a paho client whose network thread only hands messages off.

QoS 1 messages are acknowledged manually, after the batch that holds them is committed. The
session is persistent (clean start off, a long session expiry) so the broker keeps what
arrives while hazmon is down, and ``Receive Maximum`` bounds how many unacknowledged messages
the broker sends us: during a database outage the rest waits in the broker, not in our memory.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hazmon.errors import ConfigError

log = logging.getLogger(__name__)

READINGS_TOPIC = "hazmon/v1/+/+/readings"
STATUS_TOPIC = "hazmon/v1/+/+/status"


def enterprise_topics(enterprise: str) -> tuple[str, str]:
    """The subscriptions of one enterprise (what a shard subscribes to)."""
    return (f"hazmon/v1/{enterprise}/+/readings", f"hazmon/v1/{enterprise}/+/status")


@dataclass(frozen=True)
class BrokerAddress:
    """Where the broker is and how to log in."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> "BrokerAddress":
        """Parse ``mqtt://[user:password@]host:port``."""
        parts = urlsplit(url)
        if parts.scheme != "mqtt" or not parts.hostname:
            raise ConfigError(f"HAZMON_MQTT_URL must look like mqtt://[user:password@]host:port, got {url!r}")
        return cls(parts.hostname, parts.port or 1883,
                   unquote(parts.username) if parts.username else None,
                   unquote(parts.password) if parts.password else None)


@dataclass
class Inbound:
    """One received message with its arrival time."""

    topic: str
    payload: bytes
    qos: int
    mid: int
    received_ms: int


class Subscriber:
    """Receives hazmon topics into a FIFO; acknowledges on request, in arrival order."""

    def __init__(self, address: BrokerAddress, client_id: str, *, protocol: int = 5,
                 receive_maximum: int = 20000, session_expiry_s: int = 7 * 86400,
                 topics: tuple[str, ...] = (READINGS_TOPIC, STATUS_TOPIC),
                 on_state: Callable[[bool], None] | None = None) -> None:
        self.address = address
        self.topics = topics
        self.protocol = mqtt.MQTTv5 if protocol == 5 else mqtt.MQTTv311
        self.receive_maximum = receive_maximum
        self.session_expiry_s = session_expiry_s
        self._topics_lock = threading.Lock()
        self.queue: collections.deque[Inbound] = collections.deque()
        self.arrived = threading.Condition()
        # The queue length at which a waiting taker is woken: 1 while it waits for a first
        # message, its batch size while it lingers (not once per message: at 12,000 messages/s
        # that was 12,000 thread switches a second fighting the network thread for the GIL).
        self._wake_at = 1
        self.connected = False
        self._on_state = on_state
        self.client = self._make_client(client_id)

    def _make_client(self, client_id: str) -> mqtt.Client:
        kw = {} if self.protocol == mqtt.MQTTv5 else {"clean_session": False}
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                             protocol=self.protocol, manual_ack=True, **kw)
        if self.address.username:
            client.username_pw_set(self.address.username, self.address.password)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def start(self) -> None:
        """Connect in the background (retrying with backoff) and start the network thread."""
        props = None
        if self.protocol == mqtt.MQTTv5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = self.session_expiry_s
            props.ReceiveMaximum = min(self.receive_maximum, 65535)
            self.client.connect_async(self.address.host, self.address.port, keepalive=30,
                                      clean_start=False, properties=props)
        else:
            self.client.connect_async(self.address.host, self.address.port, keepalive=30)
        self.client.loop_start()

    def stop(self) -> None:
        """Disconnect and stop the network thread; unacknowledged messages stay with the broker."""
        self.client.disconnect()
        self.client.loop_stop()
        self._set_connected(False)

    def _set_connected(self, value: bool) -> None:
        self.connected = value
        if self._on_state:
            self._on_state(value)

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object,
                    reason_code: object, properties: object = None) -> None:
        if getattr(reason_code, "is_failure", False):
            log.warning("broker refused the connection: %s", reason_code)
            return
        with self._topics_lock:
            topics = list(self.topics)
        if topics:
            client.subscribe([(t, 1) for t in topics])
        self._set_connected(True)
        log.info("connected to broker %s:%s", self.address.host, self.address.port)

    def set_topics(self, topics: tuple[str, ...]) -> None:
        """Change the subscriptions (a shard follows its enterprises as they are registered)."""
        with self._topics_lock:
            added = [t for t in topics if t not in self.topics]
            removed = [t for t in self.topics if t not in topics]
            self.topics = tuple(topics)
        if self.connected:
            if added:
                self.client.subscribe([(t, 1) for t in added])
            if removed:
                self.client.unsubscribe(removed)

    def _on_disconnect(self, client: mqtt.Client, userdata: object, flags: object,
                       reason_code: object, properties: object = None) -> None:
        self._set_connected(False)
        log.warning("disconnected from broker (%s); reconnecting with backoff", reason_code)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        # Network thread: hand off only.
        item = Inbound(msg.topic, msg.payload, msg.qos, msg.mid, time.time_ns() // 1_000_000)
        with self.arrived:
            self.queue.append(item)
            if len(self.queue) == 1 or len(self.queue) >= self._wake_at:
                self.arrived.notify()

    def take(self, max_items: int, wait_s: float, linger_s: float) -> list[Inbound]:
        """Wait up to ``wait_s`` for a first message, then gather more for up to ``linger_s``."""
        with self.arrived:
            if not self.queue:
                self.arrived.wait(wait_s)
            if not self.queue:
                return []
            deadline = time.monotonic() + linger_s
            self._wake_at = max_items
            try:
                while len(self.queue) < max_items:
                    left = deadline - time.monotonic()
                    if left <= 0 or not self.arrived.wait(left):
                        break
            finally:
                self._wake_at = 1
            n = min(max_items, len(self.queue))
            return [self.queue.popleft() for _ in range(n)]

    def ack(self, items: list[Inbound]) -> None:
        """Acknowledge committed QoS 1 messages, in arrival order."""
        for item in items:
            if item.qos > 0:
                self.client.ack(item.mid, item.qos)

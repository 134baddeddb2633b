"""MQTT identity against real services: a mosquitto started here with the password and ACL files
hazmon generates from a real database, and the API in-process (FastAPI's TestClient) wired to it
as ``hazmon serve`` wires it: a change through the API makes the broker reload."""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client import CollectorRegistry

from api.app import create_app
from api.deps import Services
from hazmon.db import StorageInfo, make_pool
from hazmon.embedded import EmbeddedBroker
from hazmon.mqtt_auth import INGEST_USER, MqttIdentity

ADMIN = "admin-" + uuid.uuid4().hex
SECRET = "broker-secret-" + uuid.uuid4().hex
# A publish that the broker refuses is answered (MQTT 5) with this PUBACK reason code.
NOT_AUTHORIZED = 135


@dataclass
class Stack:
    """A broker in one HAZMON_MQTT_AUTH mode and the API that manages its gateways."""

    mode: str
    broker: EmbeddedBroker
    api: TestClient
    admin: dict[str, str] = field(default_factory=lambda: {"Authorization": f"Bearer {ADMIN}"})

    @property
    def port(self) -> int:
        assert self.broker.port is not None
        return self.broker.port

    @property
    def tls_port(self) -> int:
        assert self.broker.tls_port is not None
        return self.broker.tls_port

    def enterprise(self, code: str) -> None:
        r = self.api.post("/api/v1/enterprises", json={"code": code, "name": code},
                          headers=self.admin)
        assert r.status_code == 201, r.text

    def register(self, enterprise: str, gateway: str) -> tuple[str, str]:
        r = self.api.post(f"/api/v1/enterprises/{enterprise}/gateways", json={"code": gateway},
                          headers=self.admin)
        assert r.status_code == 201, r.text
        return r.json()["username"], r.json()["password"]

    def rotate(self, enterprise: str, gateway: str) -> str:
        r = self.api.post(f"/api/v1/enterprises/{enterprise}/gateways/{gateway}/credentials",
                          headers=self.admin)
        assert r.status_code == 200, r.text
        return str(r.json()["password"])

    def delete(self, enterprise: str, gateway: str) -> None:
        r = self.api.delete(f"/api/v1/enterprises/{enterprise}/gateways/{gateway}",
                            headers=self.admin)
        assert r.status_code == 204, r.text

    def ingest(self, client_id: str | None = None) -> Watcher:
        assert self.broker.auth is not None or self.mode == "off"
        password = self.broker.auth.ingest_password if self.broker.auth else None
        return Watcher(self.port, INGEST_USER if self.broker.auth else None, password,
                       client_id)

    def client(self, username: str | None = None, password: str | None = None,
               **kw: Any) -> Client:
        return Client(self.port, username, password, **kw)


@contextmanager
def stack(tmp: Path, db_url: str, mode: str, *, tls: bool = False) -> Iterator[Stack]:
    """A mosquitto in ``mode`` and the API, sharing one database."""
    broker = EmbeddedBroker(tmp, auth=mode, db_url=db_url, tls=tls)
    broker.start()
    pool = make_pool(db_url, min_size=1, max_size=4, name=f"sec-{mode}")
    services = Services(pool=pool, admin_token=ADMIN, metrics_registry=CollectorRegistry(),
                        storage=StorageInfo(timescale=False, timescale_version=None))
    services.extra["mqtt"] = MqttIdentity(
        mode=mode, broker_secret=SECRET,
        ingest_password=broker.auth.ingest_password if broker.auth else None,
        refresh=broker.refresh_auth if broker.auth else None)
    try:
        with TestClient(create_app(services)) as api:
            yield Stack(mode, broker, api)
    finally:
        pool.close()
        broker.stop()


class Client:
    """A paho client (MQTT 5) that reports how its connection and its publishes went."""

    def __init__(self, port: int, username: str | None, password: str | None, *,
                 client_id: str | None = None, tls: dict[str, Any] | None = None,
                 host: str = "127.0.0.1", wait: float = 5.0) -> None:
        self.connack: Any = None
        self.disconnected = threading.Event()
        self.connected = threading.Event()
        self.pubacks: dict[int, int] = {}
        self._acked = threading.Condition()
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5,
                                  client_id=client_id or "t-" + uuid.uuid4().hex[:10])
        if username is not None:
            self.client.username_pw_set(username, password)
        # mosquitto disconnects a client whose publish it refuses: come back at once
        self.client.reconnect_delay_set(min_delay=0.02, max_delay=0.02)  # type: ignore[arg-type]
        if tls is not None:
            self.client.tls_set(**tls)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_message = lambda c, u, m: self.messages.put((m.topic, bytes(m.payload)))
        self.error: Exception | None = None
        got = threading.Event()
        self._got = got
        try:
            self.client.connect(host, port, keepalive=30)
        except Exception as exc:  # noqa: BLE001 - TLS failures surface here
            self.error = exc
            return
        self.client.loop_start()
        deadline = time.monotonic() + wait
        while not got.is_set() and not self.disconnected.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self.connack = reason
        if not reason.is_failure:
            self.connected.set()
        else:
            client.disconnect()  # no retry (paho would wait a second before each)
        self._got.set()

    def _on_disconnect(self, *args: Any) -> None:
        self.connected.clear()
        self.disconnected.set()

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        with self._acked:
            self.pubacks[mid] = int(getattr(reason, "value", 0))
            self._acked.notify_all()

    @property
    def accepted(self) -> bool:
        return self.connected.is_set()

    def publish(self, topic: str, payload: str | bytes = b"x", *, retain: bool = False) -> int:
        """Publish at QoS 1 and return the PUBACK reason code (0 or 16: accepted; 135: refused,
        and then mosquitto disconnects the client, which reconnects before the next publish)."""
        assert self.connected.wait(5), "not connected"
        self.disconnected.clear()
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        with self._acked:
            assert self._acked.wait_for(lambda: info.mid in self.pubacks, 5), f"no PUBACK for {topic}"
            code = self.pubacks[info.mid]
        if code == NOT_AUTHORIZED:
            assert self.disconnected.wait(5), "a refused publish should cost the connection"
        return code

    def subscribe(self, topic: str) -> None:
        assert self.connected.wait(5), "not connected"
        done = threading.Event()
        self.client.on_subscribe = lambda *a: done.set()
        self.client.subscribe(topic, qos=1)
        assert done.wait(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Watcher(Client):
    """hazmon's side: subscribed to everything hazmon reads (``hazmon/v1/#``).

    A message that was not delivered is shown by a *marker*: the publisher sends the suspect
    message and then one that is delivered; the broker keeps one publisher's messages in order,
    so when the marker arrives, the suspect one would have arrived before it."""

    def __init__(self, port: int, username: str | None, password: str | None,
                 client_id: str | None = None) -> None:
        super().__init__(port, username, password, client_id=client_id)
        assert self.accepted, self.connack
        self.subscribe("hazmon/v1/#")

    def received_until(self, marker_topic: str, timeout: float = 5.0) -> list[str]:
        """Topics received up to (not including) the marker."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            topic, _ = self.messages.get(timeout=max(0.01, deadline - time.monotonic()))
            if topic == marker_topic:
                return seen
            seen.append(topic)


@pytest.fixture(scope="module")
def auto(tmp_path_factory: pytest.TempPathFactory, db_url: str) -> Iterator[Stack]:
    with stack(tmp_path_factory.mktemp("auto"), db_url, "auto") as s:
        yield s


@pytest.fixture(scope="module")
def on(tmp_path_factory: pytest.TempPathFactory, db_url: str) -> Iterator[Stack]:
    with stack(tmp_path_factory.mktemp("on"), db_url, "on", tls=True) as s:
        yield s

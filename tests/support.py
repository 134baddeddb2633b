"""Helpers for tests that drive a real hazmon process over HTTP and MQTT."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable, TypeVar

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from hazmon.embedded import free_port

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent


def wait_for(check: Callable[[], T | None], timeout: float = 20.0, interval: float = 0.1,
             what: str = "condition") -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last value: {last!r}")


class Hazmon:
    """A ``hazmon serve`` child process with its own port, data dir and MQTT client id."""

    def __init__(self, data_dir: Path, db_url: str, mqtt_url: str, token: str | None = None,
                 extra_env: dict[str, str] | None = None, args: tuple[str, ...] = ("serve",)) -> None:
        self.data_dir = data_dir
        self.db_url = db_url
        self.mqtt_url = mqtt_url
        self.token = token or uuid.uuid4().hex
        self.port = free_port()
        self.client_id = "hazmon-test-" + uuid.uuid4().hex[:8]
        self.extra_env = extra_env or {}
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / "serve.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "HAZMON_DATABASE_URL": self.db_url, "HAZMON_MQTT_URL": self.mqtt_url,
            "HAZMON_DATA_DIR": str(self.data_dir), "HAZMON_HTTP_PORT": str(self.port),
            "HAZMON_ADMIN_TOKEN": self.token, "HAZMON_MQTT_CLIENT_ID": self.client_id,
            **self.extra_env,
        })
        return env

    def start(self, timeout: float = 60) -> None:
        """Start the process and wait until /readyz says database and broker are connected."""
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "hazmon.cli", *self.args], env=self.env(), cwd=ROOT,
            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hazmon exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"hazmon not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def stop(self) -> None:
        """Graceful stop (SIGTERM)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        """kill -9: no chance to clean up."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def api(self, token: str | None = None) -> httpx.Client:
        """An HTTP client with the admin token (or the one given)."""
        return httpx.Client(base_url=self.url, timeout=30,
                            headers={"Authorization": f"Bearer {token or self.token}"})


class Gateway:
    """A test gateway: publishes CONTRACT messages and waits for the broker's PUBACK."""

    def __init__(self, mqtt_url: str, enterprise: str, gateway: str = "gw1") -> None:
        from ingest.mqtt import BrokerAddress

        addr = BrokerAddress.parse(mqtt_url)
        self.enterprise, self.gateway = enterprise, gateway
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                  client_id=f"gw-{enterprise}-{gateway}-{uuid.uuid4().hex[:6]}")
        self.client.connect(addr.host, addr.port)
        self.client.loop_start()

    @property
    def topic(self) -> str:
        return f"hazmon/v1/{self.enterprise}/{self.gateway}/readings"

    def publish_raw(self, payload: bytes | str, topic: str | None = None, qos: int = 1) -> None:
        info = self.client.publish(topic or self.topic, payload, qos=qos)
        info.wait_for_publish(10)

    def publish(self, readings: list[dict[str, Any]], ts: int | str | None = None, qos: int = 1) -> None:
        body: dict[str, Any] = {"readings": readings}
        if ts is not None:
            body["ts"] = ts
        self.publish_raw(json.dumps(body), qos=qos)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()

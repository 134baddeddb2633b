"""The zero-configuration default: embedded PostgreSQL and broker, data reused on restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from hazmon.embedded import free_port
from tests.support import ROOT, wait_for


def start(data_dir: Path, port: int) -> tuple[subprocess.Popen[bytes], Path]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAZMON_")}
    env.update(HAZMON_DATA_DIR=str(data_dir), HAZMON_HTTP_PORT=str(port))
    out = data_dir.parent / f"{data_dir.name}-{time.time_ns()}.log"
    proc = subprocess.Popen([sys.executable, "-m", "hazmon.cli", "serve"], cwd=ROOT, env=env,
                            stdout=open(out, "wb"), stderr=subprocess.STDOUT)  # noqa: SIM115
    def ready() -> bool:
        assert proc.poll() is None, out.read_text()
        try:
            return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False
    wait_for(ready, timeout=90, what="embedded hazmon ready")
    return proc, out


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0


def test_embedded_default_starts_serves_and_reuses_data(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    proc, out = start(data, port)
    try:
        token = (data / "admin_token").read_text().strip()
        assert token in out.read_text()  # printed once, on the first start
        api = httpx.Client(base_url=f"http://127.0.0.1:{port}",
                           headers={"Authorization": f"Bearer {token}"})
        assert api.post("/api/v1/enterprises", json={"code": "KEEP", "name": "x"}).status_code == 201
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz").json()
        assert ready["database"] is True and ready["broker"] is True
        # the embedded broker accepts gateways
        broker_port = int((data / "broker" / "port").read_text())
        client = mqtt.Client(CallbackAPIVersion.VERSION2)
        client.connect("127.0.0.1", broker_port)
        client.disconnect()
    finally:
        stop(proc)
    proc, out = start(data, port)
    try:
        assert token not in out.read_text()  # not printed again
        codes = [e["code"] for e in api.get("/api/v1/enterprises").json()["items"]]
        assert "KEEP" in codes
    finally:
        stop(proc)


def test_server_tuning_sizes_shared_buffers_from_ram(monkeypatch: pytest.MonkeyPatch) -> None:
    from hazmon.embedded import server_tuning

    monkeypatch.delenv("HAZMON_EMBEDDED_PG_OPTIONS", raising=False)
    assert "shared_buffers=1024MB" in server_tuning(4 << 30)        # a quarter of the RAM
    assert "shared_buffers=4096MB" in server_tuning(64 << 30)       # at most 4 GB
    assert "shared_buffers=128MB" in server_tuning(256 << 20)       # at least 128 MB
    monkeypatch.setenv("HAZMON_EMBEDDED_PG_OPTIONS", "-c shared_buffers=300MB")
    assert server_tuning(4 << 30).endswith("-c shared_buffers=300MB")  # later wins

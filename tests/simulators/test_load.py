"""The load generator publishes exactly what it reports (counted by a subscriber on the broker)."""

from __future__ import annotations

import argparse
import json
import threading
import time
import uuid
from collections import defaultdict
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ingest.mqtt import BrokerAddress
from simulators import load
from tests.support import Hazmon, wait_for


class Counter:
    """Subscribes (QoS 1) to one topic root and keeps every readings message it gets."""

    def __init__(self, mqtt_url: str, root: str) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        subscribed = threading.Event()
        addr = BrokerAddress.parse(mqtt_url)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                  client_id=f"load-counter-{uuid.uuid4().hex[:6]}")
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_connect = lambda c, *_: c.subscribe(f"{root}/+/+/readings", qos=1)
        self.client.connect(addr.host, addr.port)
        self.client.loop_start()
        assert subscribed.wait(10), "the counter did not subscribe"

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((msg.topic, json.loads(msg.payload)))

    def readings(self) -> int:
        with self.lock:
            return sum(len(body["readings"]) for _, body in self.messages)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _args(**kw: Any) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    load.add_arguments(parser)
    argv = []
    for key, value in kw.items():
        flag = "--" + key.replace("_", "-")
        argv += [flag] if value is True else [flag, str(value)]
    return parser.parse_args(argv)


@pytest.mark.parametrize(("processes", "batch", "qos"), [(1, 7, 1), (2, 1, 0)])
def test_publishes_what_it_reports(mqtt_url: str, processes: int, batch: int, qos: int,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    root = f"loadtest{uuid.uuid4().hex[:6]}/v1"
    counter = Counter(mqtt_url, root)
    try:
        args = _args(mqtt=mqtt_url, enterprises=3, points=40, gateways=2, rate=4000, batch=batch,
                     qos=qos, duration=1.5, processes=processes, topic_root=root,
                     hi_fraction=0.25, prefix="LT", drain_s=10)
        assert load.run(args) == 0
        report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert report["errors"] == 0 and report["disconnects"] == 0 and report["unacked"] == 0
        if qos:
            assert report["acked"] == report["messages"]
        assert report["processes"] == processes and report["gateways"] == 6
        # paced: about 4000 readings/s for 1.5 s
        assert 4000 * 1.5 * 0.8 <= report["readings"] <= 4000 * 1.5 * 1.05
        wait_for(lambda: counter.readings() >= report["readings"], timeout=10,
                 what="every reported reading at the subscriber")
        time.sleep(0.3)  # nothing more than reported arrives
        assert len(counter.messages) == report["messages"]
        assert counter.readings() == report["readings"]
    finally:
        counter.close()

    last: dict[tuple[str, str], int] = defaultdict(int)
    over = 0
    for topic, body in counter.messages:
        _, _, enterprise, gateway, kind = topic.split("/")
        assert kind == "readings" and enterprise.startswith("LT") and gateway.startswith("gw")
        assert 1 <= len(body["readings"]) <= batch
        tags = [r["tag"] for r in body["readings"]]
        assert len(set(tags)) == len(tags)  # one point at most once per message
        for r in body["readings"]:
            assert 0.0 <= r["value"] < 100.0
            over += r["value"] >= report["hi"]
            key = (enterprise, r["tag"])
            assert body["ts"] > last[key], "reading times must strictly increase per point"
            last[key] = body["ts"]
    assert over == report["readings_over_hi"]
    assert report["hi"] == 75.0
    assert {e for e, _ in last} == {"LT000", "LT001", "LT002"}
    assert len(last) == 3 * 40  # every point was sent (the rate covers them all)


def test_min_ts_and_batch_limit(mqtt_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    root = f"loadtest{uuid.uuid4().hex[:6]}/v1"
    counter = Counter(mqtt_url, root)
    floor = int(time.time() * 1000) + 3_600_000
    try:
        args = _args(mqtt=mqtt_url, enterprises=1, points=10, batch=10, rate=200, duration=0.5,
                     topic_root=root, min_ts_ms=floor)
        assert load.run(args) == 0
        report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        wait_for(lambda: len(counter.messages) >= report["messages"], timeout=10)
    finally:
        counter.close()
    assert report["first_ts_ms"] == floor
    assert min(body["ts"] for _, body in counter.messages) == floor
    with pytest.raises(SystemExit):
        load.load(_args(mqtt=mqtt_url, enterprises=1, points=10, gateways=2, batch=6))


def test_setup_registers_points_with_hi(hazmon: Hazmon, mqtt_url: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    args = _args(mqtt=mqtt_url, enterprises=2, points=30, gateways=3, batch=10, rate=600,
                 duration=1.0, hi_fraction=0.1, prefix="LS", setup=True, api=hazmon.url,
                 token=hazmon.token)
    assert load.run(args) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["setup"]["points_created"] == 60 and report["setup"]["hi"] == 90.0
    with hazmon.api() as api:
        point = api.get("/api/v1/enterprises/LS001/points/P000029").json()
        assert point["hi"] == 90.0 and point["lo"] == -10.0 and point["hihi"] == 200.0

        def stored() -> int | None:
            text = api.get("/metrics").text
            line = next(x for x in text.splitlines() if x.startswith("hazmon_ingest_readings_total"))
            n = int(float(line.split()[1]))
            return n if n >= report["readings"] else None

        assert wait_for(stored, timeout=30, what="the load committed") == report["readings"]

"""Outages under load: the database stops for 30 s, the broker restarts. Sent vs stored, exactly.

These tests own their PostgreSQL and broker (they stop them), separate from the shared ones.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Iterator

import httpx
import psycopg
import pytest

from hazmon.db import migrate
from hazmon.embedded import EmbeddedBroker, EmbeddedPostgres
from tests.support import Gateway, Hazmon, wait_for

E = "E-FAULT"
POINTS = "tag,kind,hi\n" + "".join(f"F-{i},flow,1000\n" for i in range(10))


@pytest.fixture
def own_pg(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    pg = EmbeddedPostgres(tmp_path / "pg")
    pg.start()
    yield pg
    pg.stop()


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    b = EmbeddedBroker(tmp_path / "broker")
    b.start()
    yield b
    b.stop()


def stored(db_url: str) -> int:
    with psycopg.connect(db_url, connect_timeout=2) as c:
        return int(c.execute("SELECT count(*) FROM readings").fetchone()[0])


class Publisher(threading.Thread):
    """Publishes 10 readings per message at a steady pace, counting broker-acknowledged ones."""

    def __init__(self, mqtt_url: str, t0: int) -> None:
        super().__init__(daemon=True)
        self.gw = Gateway(mqtt_url, E)
        self.t0, self.sent, self.stop_flag = t0, 0, threading.Event()

    def run(self) -> None:
        i = 0
        while not self.stop_flag.is_set():
            ts = self.t0 + i
            self.gw.publish([{"tag": f"F-{k}", "value": float(i % 100), "ts": ts} for k in range(10)])
            self.sent += 10
            i += 1
            time.sleep(0.01)

    def finish(self) -> int:
        self.stop_flag.set()
        self.join(30)
        self.gw.close()
        return self.sent


def setup_server(tmp_path: Path, db_url: str, mqtt_url: str) -> Hazmon:
    # every batch of 2+ readings is stored over two connections (the path large batches take)
    server = Hazmon(tmp_path / "hz", db_url, mqtt_url,
                    extra_env={"HAZMON_INGEST_SPLIT_MIN_READINGS": "2"})
    server.data_dir.mkdir()
    server.start()
    api = server.api()
    api.post("/api/v1/enterprises", json={"code": E, "name": "faults"})
    assert api.put(f"/api/v1/enterprises/{E}/points", content=POINTS,
                   headers={"Content-Type": "text/csv"}).status_code == 200
    return server


def test_database_outage_pauses_ingest_and_loses_nothing(
        tmp_path: Path, own_pg: EmbeddedPostgres, mqtt_url: str) -> None:
    db_url = own_pg.url()
    migrate(db_url)
    server = setup_server(tmp_path, db_url, mqtt_url)
    pub = Publisher(mqtt_url, time.time_ns() // 1_000_000 - 3_600_000)
    try:
        pub.start()
        wait_for(lambda: stored(db_url) > 500, what="ingest running")
        own_pg.stop()                       # the database goes away under load ...
        time.sleep(30)
        assert server.proc.poll() is None   # ... hazmon waits, it does not crash
        ready = httpx.get(server.url + "/readyz", timeout=5)
        assert ready.status_code == 503 and ready.json()["database"] is False
        own_pg.start()                      # ... and comes back
        time.sleep(2)
        sent = pub.finish()
        wait_for(lambda: stored(db_url) == sent, timeout=120, interval=0.5,
                 what=f"all {sent} readings stored after the outage")
        with psycopg.connect(db_url) as c:
            dup = c.execute("SELECT count(*) FROM (SELECT point_id, ts FROM readings "
                            "GROUP BY 1, 2 HAVING count(*) > 1) d").fetchone()[0]
        assert dup == 0
        assert httpx.get(server.url + "/readyz", timeout=5).status_code == 200
    finally:
        pub.stop_flag.set()
        server.stop()


def test_broker_restart_reconnects_and_loses_nothing(
        tmp_path: Path, db_url: str, own_broker: EmbeddedBroker) -> None:
    server = setup_server(tmp_path, db_url, own_broker.url)
    try:
        before = stored(db_url)
        first = Gateway(own_broker.url, E)
        t0 = time.time_ns() // 1_000_000 - 7_200_000
        for i in range(200):
            first.publish([{"tag": f"F-{k}", "value": 1.0, "ts": t0 + i} for k in range(10)])
        first.close()
        own_broker.stop()                   # whatever hazmon had not acknowledged stays queued
        time.sleep(3)
        own_broker.start()
        wait_for(lambda: httpx.get(server.url + "/readyz").status_code == 200, timeout=60,
                 what="hazmon reconnected to the broker")
        second = Gateway(own_broker.url, E)
        for i in range(200, 400):
            second.publish([{"tag": f"F-{k}", "value": 2.0, "ts": t0 + i} for k in range(10)])
        second.close()
        wait_for(lambda: stored(db_url) - before == 4000, timeout=60, what="4000 readings stored")
    finally:
        server.stop()

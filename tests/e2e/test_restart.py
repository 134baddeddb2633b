"""kill -9 and restarts: nothing acknowledged is lost, nothing is raised twice."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest

from tests.conftest import new_database
from tests.support import Gateway, Hazmon, wait_for

E = "E-RST"
POINTS = "tag,kind,hi,hihi,deadband\nP-1,pressure,80,90,1\nP-2,pressure,80,90,1\n"


def count(db_url: str, sql: str) -> int:
    with psycopg.connect(db_url) as c:
        return int(c.execute(sql).fetchone()[0])


@pytest.mark.parametrize("checkpoint_s", [
    "3600",  # no checkpoint before the kill: the engine is seeded from open alarms
    "0.2",   # checkpoints taken: the newest is loaded and later readings replayed
])
def test_kill_9_then_restart_loses_nothing_and_raises_nothing_twice(
        pg_server: str, mqtt_url: str, tmp_path: Path, checkpoint_s: str) -> None:
    db_url = new_database(pg_server)
    # every batch of 2+ readings is stored over two connections (the path large batches take)
    server = Hazmon(tmp_path, db_url, mqtt_url, extra_env={
        "HAZMON_CHECKPOINT_INTERVAL_S": checkpoint_s, "HAZMON_INGEST_SPLIT_MIN_READINGS": "2"})
    server.start()
    api = server.api()
    api.post("/api/v1/enterprises", json={"code": E, "name": "restart"})
    api.put(f"/api/v1/enterprises/{E}/points", content=POINTS, headers={"Content-Type": "text/csv"})
    gw = Gateway(mqtt_url, E)
    t0 = time.time_ns() // 1_000_000 - 3_600_000
    try:
        gw.publish([{"tag": "P-1", "value": 85, "ts": t0}])  # HI active
        wait_for(lambda: count(db_url, "SELECT count(*) FROM alarms WHERE condition = 'HI'") == 1,
                 what="HI raised")
        # a stream in flight while the process dies
        for i in range(1, 201):
            gw.publish([{"tag": "P-2", "value": 10 + i % 5, "ts": t0 + i * 1000}], qos=1)
            if i == 100:
                server.kill()
        # the broker kept what arrived while hazmon was down (persistent session)
        server.start()
        wait_for(lambda: count(db_url, "SELECT count(*) FROM readings WHERE point_id = "
                               "(SELECT id FROM points WHERE tag = 'P-2')") == 200,
                 timeout=60, what="all 200 readings stored exactly once")
        # the active HI is remembered: another high reading does not raise it again
        gw.publish([{"tag": "P-1", "value": 86, "ts": t0 + 500_000}])
        wait_for(lambda: count(db_url, "SELECT count(*) FROM readings WHERE point_id = "
                               "(SELECT id FROM points WHERE tag = 'P-1')") == 2, what="P-1 stored")
        assert count(db_url, "SELECT count(*) FROM alarms WHERE condition = 'HI'") == 1
        assert count(db_url, "SELECT activations FROM alarms WHERE condition = 'HI'") == 1
        events = count(db_url, "SELECT count(*) FROM alarm_events e JOIN alarms a ON a.id = e.alarm_id "
                               "WHERE a.condition = 'HI'")
        assert events == 1
    finally:
        gw.close()
        server.stop()


@pytest.mark.parametrize("checkpoint_s", ["3600", "0.2"])
def test_kill_9_during_a_pending_on_delay_keeps_the_delay(
        pg_server: str, mqtt_url: str, tmp_path: Path, checkpoint_s: str) -> None:
    db_url = new_database(pg_server)
    server = Hazmon(tmp_path, db_url, mqtt_url, extra_env={"HAZMON_CHECKPOINT_INTERVAL_S": checkpoint_s})
    server.start()
    api = server.api()
    api.post("/api/v1/enterprises", json={"code": E, "name": "restart"})
    api.put(f"/api/v1/enterprises/{E}/points", content="tag,kind,hi,on_delay_s\nD-1,pressure,80,5\n",
            headers={"Content-Type": "text/csv"})
    gw = Gateway(mqtt_url, E)
    t0 = time.time_ns() // 1_000_000 - 600_000
    d1 = "(SELECT id FROM points WHERE tag = 'D-1')"
    try:
        gw.publish([{"tag": "D-1", "value": 85, "ts": t0}])          # the delay starts
        wait_for(lambda: count(db_url, f"SELECT count(*) FROM readings WHERE point_id = {d1}") == 1,
                 what="first reading stored")
        time.sleep(0.5)
        server.kill()
        server.start()
        gw.publish([{"tag": "D-1", "value": 85, "ts": t0 + 4_999}])  # 4.999 s held: not yet
        gw.publish([{"tag": "D-1", "value": 85, "ts": t0 + 5_000}])  # 5 s held: active now
        wait_for(lambda: count(db_url, f"SELECT count(*) FROM readings WHERE point_id = {d1}") == 3,
                 what="readings after restart stored")
        rows = api.get("/api/v1/alarms", params={"tag": "D-1"}).json()["items"]
        assert len(rows) == 1 and rows[0]["condition"] == "HI" and rows[0]["state"] == "UNACK_ACTIVE"
        from datetime import datetime
        assert int(datetime.fromisoformat(rows[0]["activated_at"]).timestamp() * 1000) == t0 + 5_000
    finally:
        gw.close()
        server.stop()

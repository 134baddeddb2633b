"""Scale-out: two ingest shards and an API-only process on one broker and one database."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import psycopg

from hazmon.shard import shard_of
from tests.conftest import new_database
from tests.support import Gateway, Hazmon, wait_for

POINTS = "tag,kind,hi,deadband\nP-1,pressure,80,0\nP-2,pressure,80,0\n"
N_READINGS = 50


def enterprises_for_both_shards() -> list[str]:
    """Enterprise codes that land on shard 0 and on shard 1 (two each)."""
    codes: dict[int, list[str]] = {0: [], 1: []}
    i = 0
    while min(len(v) for v in codes.values()) < 2:
        code = f"SH-{i}"
        bucket = codes[shard_of(code, 2)]
        if len(bucket) < 2:
            bucket.append(code)
        i += 1
    return codes[0] + codes[1]


def diagnose(shards: list[Hazmon], conn: psycopg.Connection) -> str:
    """What each shard counted and logged, and what the database holds: for a failure message."""
    wanted = ("hazmon_ingest_readings_total", "hazmon_engine_readings_not_judged_total",
              "hazmon_alarm_transitions_total", "hazmon_ingest_rejected_total",
              "hazmon_ingest_duplicates_total", "hazmon_ingest_subscribed_enterprises")
    out = []
    for k, shard in enumerate(shards):
        text = httpx.get(shard.url + "/metrics").text
        out.append(f"shard {k} metrics:\n" + "\n".join(
            ln for ln in text.splitlines() if ln.startswith(wanted)))
        log_file = shard.data_dir / "serve.log"
        if log_file.exists():
            out.append(f"shard {k} log tail:\n" + "\n".join(log_file.read_text().splitlines()[-30:]))
    out.append("readings per enterprise: " + repr(conn.execute(
        """SELECT e.code, count(*), min(r.ts), max(r.ts) FROM readings r
           JOIN points p ON p.id = r.point_id JOIN enterprises e ON e.id = p.enterprise_id
           GROUP BY 1 ORDER BY 1""").fetchall()))
    out.append("alarm events: " + repr(conn.execute(
        """SELECT e.code, a.condition, ev.action, count(*) FROM alarm_events ev
           JOIN alarms a ON a.id = ev.alarm_id JOIN enterprises e ON e.id = a.enterprise_id
           GROUP BY 1, 2, 3 ORDER BY 1, 2, 3""").fetchall()))
    out.append("rejections: " + repr(conn.execute(
        "SELECT code, count(*) FROM rejections GROUP BY 1").fetchall()))
    return "\n".join(out)


def test_two_shards_store_every_reading_once_and_raise_every_alarm_once(
        pg_server: str, mqtt_url: str, tmp_path: Path) -> None:
    db_url = new_database(pg_server)
    api_proc = Hazmon(tmp_path / "api", db_url, mqtt_url, args=("serve", "--api-only"))
    shards = [Hazmon(tmp_path / f"s{k}", db_url, mqtt_url, token=api_proc.token,
                     args=("ingest", "--shard", f"{k}/2")) for k in (0, 1)]
    procs = [api_proc, *shards]
    for p in procs:
        p.data_dir.mkdir()
        p.start()
    gateways: list[Gateway] = []
    try:
        api = api_proc.api()
        codes = enterprises_for_both_shards()
        for code in codes:
            assert api.post("/api/v1/enterprises", json={"code": code, "name": code}).status_code == 201
            r = api.put(f"/api/v1/enterprises/{code}/points", content=POINTS,
                        headers={"Content-Type": "text/csv"})
            assert r.status_code == 200
        def subscribed() -> bool:  # shards learn new enterprises and subscribe to their topics
            total = 0.0
            for shard in shards:
                text = httpx.get(shard.url + "/metrics").text
                line = next(ln for ln in text.splitlines()
                            if ln.startswith("hazmon_ingest_subscribed_enterprises "))
                total += float(line.split()[1])
            return total == len(codes)
        wait_for(subscribed, what="both shards subscribed to their enterprises")
        time.sleep(0.5)  # the SUBSCRIBE packets reach the broker
        t0 = time.time_ns() // 1_000_000 - 600_000
        for code in codes:
            gw = Gateway(mqtt_url, code)
            gateways.append(gw)
            for i in range(N_READINGS):
                value = 85 if i % 10 == 5 else 50  # HI raised and returned 5 times per point
                gw.publish([{"tag": "P-1", "value": value, "ts": t0 + i * 1000},
                            {"tag": "P-2", "value": 50, "ts": t0 + i * 1000}])
        expected = len(codes) * N_READINGS * 2

        def stored() -> int:
            with psycopg.connect(db_url) as c:
                return int(c.execute("SELECT count(*) FROM readings").fetchone()[0])
        wait_for(lambda: stored() == expected, timeout=60, what=f"{expected} readings")
        with psycopg.connect(db_url) as c:
            per_alarm = c.execute(
                """SELECT e.code, count(*) FILTER (WHERE ev.action = 'activate')
                   FROM alarms a JOIN enterprises e ON e.id = a.enterprise_id
                   JOIN alarm_events ev ON ev.alarm_id = a.id GROUP BY e.code""").fetchall()
            assert sorted(per_alarm) == sorted((code, 5) for code in codes), diagnose(shards, c)
            dup = c.execute("SELECT count(*) FROM (SELECT point_id, ts FROM readings "
                            "GROUP BY 1, 2 HAVING count(*) > 1) d").fetchone()[0]
            assert dup == 0
        # each shard judged only its own enterprises
        for k, shard in enumerate(shards):
            text = httpx.get(shard.url + "/metrics").text
            line = next(ln for ln in text.splitlines() if ln.startswith("hazmon_ingest_readings_total "))
            assert float(line.split()[1]) == 2 * N_READINGS * 2, (k, line)
    finally:
        for gw in gateways:
            gw.close()
        for p in procs:
            p.stop()


def test_shard_needs_shared_database_and_broker(tmp_path: Path) -> None:
    import subprocess
    import sys
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("HAZMON_")}
    env["HAZMON_DATA_DIR"] = str(tmp_path)
    r = subprocess.run([sys.executable, "-m", "hazmon.cli", "ingest", "--shard", "0/2"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "HAZMON_DATABASE_URL" in r.stderr
    r = subprocess.run([sys.executable, "-m", "hazmon.cli", "ingest", "--shard", "2/2"],
                       env={**env, "HAZMON_DATABASE_URL": "postgresql://x@127.0.0.1:1/x"},
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "K < N" in r.stderr

"""End-to-end ingest benchmark: load generator → mosquitto → ``hazmon serve`` → PostgreSQL.

    python benchmarks/bench_ingest.py [--quick] [--database-url URL] [--write-md]

Starts its own mosquitto and PostgreSQL (embedded, in a temporary directory, or a fresh
database on ``--database-url``) and a real ``hazmon serve`` process, registers
``--enterprises`` × ``--points`` points (100,000 by default) through the API, then measures:

1. a bare paho → mosquitto → paho pipe at 1 reading per message, QoS 1 (the reference);
2. sustained messages/s of hazmon at 1 reading per message, QoS 1 (target ≥ 70 % of 1.);
3. sustained readings/s of hazmon at 100 readings per message, QoS 1 (target ≥ 200,000/s);
4. alarm latency, publish → the API's event stream, at half the rate of 3.
   (targets p50 ≤ 100 ms, p99 ≤ 500 ms);
5. RSS of ``hazmon serve`` with the points configured, and bytes per reading on disk.

A reading counts only once hazmon has committed it to the database and judged it
(``hazmon_ingest_readings_total`` + duplicates on ``/metrics``; checked against the table at the
end). "Sustained" means: offered at a paced rate for ``--confirm-s`` seconds, the backlog
(sent − counted) does not grow (batches make it a sawtooth, so its minimum in the last third of
the run is compared with its minimum in the first third: it may grow by at most 2 % of the rate
per second), and everything is counted within 10 s of the end. The first rate tried is 95 % of
what the consumer achieved when saturated; after a failed attempt, 95 % of what it managed then.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import psycopg

from benchmarks.common import (
    LoadProcess,
    Services,
    command_line,
    committed,
    cpu_seconds,
    machine,
    machine_cpu,
    machine_line,
    percentile,
    proc_status,
    readings_size,
    say,
    scrape,
    slope,
    start_services,
    tree_cpu,
    write_section,
)
from tests.support import Hazmon

TARGET_READINGS = 200_000
TARGET_PIPE_RATIO = 0.70
TARGET_P50_MS, TARGET_P99_MS = 100.0, 500.0
PROBE_ENTERPRISE, PROBE_POINTS = "PROBE", 10  # probes cycle over points PR-0..PR-9


# --- the consumers ------------------------------------------------------------------------------


def _bare_subscriber(url: str, topic: str, protocol: int, count: Any, ready: Any,
                     stop: Any) -> None:
    """A paho subscriber that only counts (QoS 1, automatic PUBACK), like hazmon's client."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from ingest.mqtt import BrokerAddress

    addr = BrokerAddress.parse(url)
    n = 0

    def on_message(_c: Any, _u: Any, _m: Any) -> None:
        nonlocal n
        n += 1

    def on_connect(c: Any, _u: Any, _f: Any, _rc: Any, _p: Any = None) -> None:
        c.subscribe(topic, qos=1)

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pipe-{protocol}",
                         protocol=mqtt.MQTTv5 if protocol == 5 else mqtt.MQTTv311)
    client.on_message = on_message
    client.on_connect = on_connect
    client.on_subscribe = lambda *_a: ready.set()
    client.connect(addr.host, addr.port, keepalive=60)
    client.loop_start()
    while not stop.wait(0.2):
        count.value = n
    count.value = n
    client.disconnect()
    client.loop_stop()


class PipeConsumer:
    """The bare pipe's subscriber in a process of its own; ``count()`` is what it received."""

    def __init__(self, mqtt_url: str, topic: str, protocol: int) -> None:
        ctx = mp.get_context("spawn")
        self.value = ctx.Value("q", 0, lock=False)
        self.ready, self.stop_event = ctx.Event(), ctx.Event()
        self.proc = ctx.Process(target=_bare_subscriber, daemon=True, args=(
            mqtt_url, topic, protocol, self.value, self.ready, self.stop_event))
        self.proc.start()
        if not self.ready.wait(20):
            raise RuntimeError("bare subscriber did not subscribe")

    def count(self) -> float:
        return float(self.value.value)

    def close(self) -> None:
        self.stop_event.set()
        self.proc.join(10)


class HazmonConsumer:
    """Readings hazmon committed and judged, from its /metrics."""

    def __init__(self, hz: Hazmon) -> None:
        self.hz = hz
        self.client = httpx.Client(timeout=10)

    def count(self) -> float:
        return committed(scrape(self.hz.url, self.client))


# --- phases ---------------------------------------------------------------------------------------


@dataclass
class Phase:
    """One load-generator run and what the consumer did meanwhile."""

    label: str
    offered: float  # readings/s asked of the generator (0 = flat out)
    sent_rate: float = 0.0  # readings/s the generator achieved over its whole run
    window_sent: float = 0.0  # readings/s sent in the steady window (after the first quarter)
    window_counted: float = 0.0  # readings/s counted in the same window
    backlog_slope: float = 0.0  # readings/s by which the troughs of sent − counted grew
    backlog_end: float = 0.0  # sent − counted when the generator stopped
    drain_s: float = 0.0  # seconds after the stop until everything was counted
    sent: int = 0
    counted: int = 0
    cpu: dict[str, int] = field(default_factory=dict)  # % of one core in the window
    gen: dict[str, Any] = field(default_factory=dict)

    @property
    def sustained(self) -> bool:
        """Everything counted soon after the stop, and the backlog's troughs did not grow.

        Batches make the backlog a sawtooth (it drops at each commit), so growth is judged on
        its minimum in the first and in the last third of the steady window.
        """
        rate = max(self.sent_rate, 1.0)
        return (self.counted >= self.sent and self.backlog_slope <= 0.02 * rate
                and self.drain_s <= 10.0)

    def line(self) -> str:
        verdict = "sustained" if self.sustained else "NOT sustained"
        cpu = ", ".join(f"{k} {v}" for k, v in self.cpu.items())
        return (f"{self.label}: offered {_fmt_rate(self.offered)}, sent {self.sent_rate:,.0f}/s; "
                f"steady window sent {self.window_sent:,.0f}/s, counted "
                f"{self.window_counted:,.0f}/s, backlog troughs {self.backlog_slope:+,.0f}/s; "
                f"{self.backlog_end:,.0f} behind at the stop, all counted "
                f"{self.drain_s:.1f} s later -> {verdict}" + (f" [CPU %: {cpu}]" if cpu else ""))


def _fmt_rate(rate: float) -> str:
    return f"{rate:,.0f}/s" if rate else "flat out"


class Runner:
    """Drives load-generator runs against one consumer and one broker."""

    def __init__(self, args: argparse.Namespace, services: Services, topic_root: str,
                 consumer: Callable[[], float], pids: dict[str, int]) -> None:
        self.args = args
        self.services = services
        self.topic_root = topic_root
        self.consumer = consumer
        self.pids = pids
        self.next_ts = 0

    def gen_args(self, rate: float, seconds: float, batch: int) -> list[str]:
        a = self.args
        return ["--mqtt", self.services.mqtt_url, "--enterprises", str(a.enterprises),
                "--points", str(a.points), "--gateways", str(a.gateways), "--batch", str(batch),
                "--qos", "1", "--rate", str(rate), "--duration", str(seconds),
                "--processes", str(a.gen_processes), "--topic-root", self.topic_root,
                "--hi-fraction", str(a.hi_fraction), "--min-ts-ms", str(self.next_ts)]

    def _cpu_snapshot(self, gen_pid: int) -> dict[str, float]:
        snap = tree_cpu({**self.pids, "generator": gen_pid})
        snap["bench"] = cpu_seconds(os.getpid())
        busy, _ = machine_cpu()
        snap["machine"] = busy
        return snap

    def wait_quiet(self) -> None:
        """Wait (up to --quiet-wait-s) until processes not ours use < --quiet-pct of a core."""
        deadline = time.monotonic() + self.args.quiet_wait_s
        other = 0.0
        while True:
            a = self._cpu_snapshot(0)
            time.sleep(2.0)
            b = self._cpu_snapshot(0)
            other = ((b["machine"] - a["machine"]) - sum(
                b[k] - a[k] for k in a if k != "machine")) / 2.0 * 100
            if other < self.args.quiet_pct:
                return
            if time.monotonic() >= deadline:
                say(f"  other processes still use {other:.0f} % of a core; going on")
                return

    def run(self, label: str, rate: float, seconds: float, batch: int,
            drain_max_s: float = 180.0) -> Phase:
        """One phase; run again (once) when other processes took much CPU during it."""
        for attempt in range(2):
            self.wait_quiet()
            phase = self._run(label, rate, seconds, batch, drain_max_s)
            other = phase.cpu.get("other", 0)
            if other <= self.args.disturbed_pct or attempt:
                return phase
            say(f"  other processes used {other} % of a core during the run: once more")
        return phase

    def _run(self, label: str, rate: float, seconds: float, batch: int,
             drain_max_s: float) -> Phase:
        phase = Phase(label, rate)
        base = self.consumer()
        gen = LoadProcess(self.gen_args(rate, seconds, batch))
        samples: list[tuple[float, float, dict[str, float]]] = []
        while gen.proc.poll() is None:
            samples.append((time.time(), self.consumer() - base, self._cpu_snapshot(gen.proc.pid)))
            time.sleep(0.5)
        result = gen.result()
        stop_t = time.time()
        phase.gen = result
        self.next_ts = int(result["last_ts_ms"]) + 1
        phase.sent = int(result["readings"])
        phase.sent_rate = float(result["rate_readings_s"])
        if result["errors"] or result["disconnects"] or result.get("unacked"):
            say(f"  generator trouble: {json.dumps(result)}")
        prog = gen.progress
        if len(prog) >= 3:
            t_first, t_last = prog[0][0], prog[-1][0]
            lo = t_first + (t_last - t_first) / 4
            window = [s for s in samples if lo <= s[0] <= t_last]
            if len(window) >= 3:
                phase.window_counted = slope([(t, c) for t, c, _ in window])
                phase.window_sent = slope([(t, n) for t, n in prog if lo <= t <= t_last])
                backlog = [(t, gen.sent_at(t) - c) for t, c, _ in window]
                third = max(1, len(backlog) // 3)
                (ta, ba), (tb, bb) = (min(backlog[:third], key=lambda x: x[1]),
                                      min(backlog[-third:], key=lambda x: x[1]))
                phase.backlog_slope = (bb - ba) / (tb - ta) if tb > ta else 0.0
                (t0, _, c0), (t1, _, c1) = window[0], window[-1]
                phase.cpu = {k: round((c1[k] - c0[k]) / (t1 - t0) * 100) for k in c0}
                phase.cpu["other"] = phase.cpu.pop("machine") - sum(phase.cpu.values())
                phase.cpu.pop("bench", None)
        at_stop = self.consumer() - base
        phase.backlog_end = phase.sent - at_stop
        deadline = stop_t + drain_max_s
        counted = at_stop
        while counted < phase.sent and time.time() < deadline:
            time.sleep(0.1)
            counted = self.consumer() - base
        phase.drain_s = time.time() - stop_t
        phase.counted = int(counted)
        if counted < phase.sent:
            say(f"  not drained after {drain_max_s:.0f} s: {phase.sent - counted:,.0f} missing")
        say("  " + phase.line())
        return phase

    def find_sustained(self, label: str, batch: int, saturate_rates: list[float]) -> dict[str, Any]:
        """Saturate to learn the capacity, then confirm a paced rate (stepping down if needed).

        The sustained rate is what the generator sent in the confirmed run (all of it counted).
        """
        a = self.args
        capacity, sat_phases = 0.0, []
        for rate in saturate_rates:
            ph = self.run(f"{label} saturate", rate, a.saturate_s, batch)
            sat_phases.append(ph)
            capacity = max(capacity, ph.window_counted)
            if not rate or ph.window_counted < 0.97 * ph.window_sent:
                break  # the consumer is the bottleneck: its rate is the capacity
        confirmed: Phase | None = None
        tried = []
        rate = _round(0.95 * capacity)
        for _ in range(a.attempts):
            ph = self.run(f"{label} confirm", rate, a.confirm_s, batch)
            tried.append(ph)
            if ph.sustained:
                confirmed = ph
                break
            # 5 % under what it managed meanwhile (and always lower than this attempt)
            rate = _round(0.95 * min(rate, ph.window_counted or rate))
        return {"capacity": capacity, "saturate": sat_phases, "tried": tried,
                "sustained": confirmed.sent_rate if confirmed else 0.0,
                "sustained_offered": confirmed.offered if confirmed else 0.0,
                "confirmed": confirmed}


def _round(x: float) -> float:
    """Three significant digits."""
    if x <= 0:
        return 0.0
    from math import floor, log10

    step = 10 ** (floor(log10(x)) - 2)
    return float(int(x / step) * step)


# --- alarm latency --------------------------------------------------------------------------------


class StreamListener:
    """Reads the alarm event stream in a thread; records (arrival wall time, alarm) per event."""

    def __init__(self, hz: Hazmon, params: dict[str, str]) -> None:
        self.events: queue.Queue[tuple[float, dict[str, Any]]] = queue.Queue()
        self.client = httpx.Client(base_url=hz.url, timeout=httpx.Timeout(10, read=None))
        self.response = self.client.send(self.client.build_request(
            "GET", "/api/v1/alarms/stream", params=params,
            headers={"Authorization": f"Bearer {hz.token}"}), stream=True)
        if self.response.status_code != 200:
            raise RuntimeError(f"alarm stream: HTTP {self.response.status_code}")
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        data = None
        try:
            for line in self.response.iter_lines():
                if not line:
                    if data is not None:
                        self.events.put((time.time(), json.loads(data)))
                    data = None
                elif line.startswith("data:"):
                    data = line[5:].strip()
        except (httpx.HTTPError, ValueError):
            pass

    def close(self) -> None:
        self.response.close()
        self.client.close()


def _epoch_ms(text: str) -> int:
    from datetime import datetime

    return round(datetime.fromisoformat(text).timestamp() * 1000)


def wait_settled(db_url: str, max_s: float = 240.0) -> float:
    """Wait until the trend rollup has caught up with the saturated runs before (no pending
    marker older than 3 minutes): latency is measured at a steady half load, not while
    PostgreSQL still summarises the backlog the overload left. Returns the seconds waited."""
    t0 = time.monotonic()
    with psycopg.connect(db_url, autocommit=True) as conn:
        if conn.execute("SELECT to_regclass('rollup_pending')").fetchone() == (None,):
            return 0.0
        while time.monotonic() - t0 < max_s:
            row = conn.execute("SELECT count(*) FROM rollup_pending "
                               "WHERE lo < now() - interval '3 minutes'").fetchone()
            if not row or row[0] == 0:
                break
            time.sleep(2.0)
    waited = time.monotonic() - t0
    say(f"  waited {waited:.0f} s for the rollup to catch up with the runs before")
    return waited


def _dirty_kb() -> dict[str, int]:
    """The kernel's dirty and under-writeback page cache (kB), from /proc/meminfo."""
    try:
        with open("/proc/meminfo") as f:
            return {k: int(v.split()[0]) for k, v in (ln.split(":", 1) for ln in f)
                    if k in ("Dirty", "Writeback")}
    except OSError:
        return {}


def _written(pid: int) -> int:
    """Bytes process ``pid`` has caused to be written to storage (/proc/PID/io), -1 unknown."""
    try:
        with open(f"/proc/{pid}/io") as f:
            return next(int(ln.split()[1]) for ln in f if ln.startswith("write_bytes"))
    except (OSError, StopIteration):
        return -1


class ActivityTracer:
    """``--trace DIR``: what the database's backends do every 50 ms (to explain latency outliers)."""

    def __init__(self, db_url: str, directory: str) -> None:
        Path(directory).mkdir(parents=True, exist_ok=True)
        self.path = Path(directory) / "activity.jsonl"
        self.db_url = db_url
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with psycopg.connect(self.db_url, autocommit=True) as conn, open(self.path, "a") as f:
            while not self.stopping.wait(0.05):
                rows = conn.execute(
                    """SELECT pid, state, wait_event_type, wait_event, left(query, 70),
                              extract(epoch FROM now() - xact_start)
                       FROM pg_stat_activity WHERE state <> 'idle' AND pid <> pg_backend_pid()
                         AND backend_type IN ('client backend', 'autovacuum worker')""").fetchall()
                kinds = conn.execute("SELECT pid, backend_type FROM pg_stat_activity").fetchall()
                f.write(json.dumps({"t": time.time(), "active": [
                    [r[0], r[1], r[2], r[3], r[4], float(r[5] or 0)] for r in rows],
                    "mem_kb": _dirty_kb(), "written": {
                        f"{kind}:{pid}": _written(pid) for pid, kind in kinds}}) + "\n")

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join()


def measure_latency(args: argparse.Namespace, runner: Runner, hz: Hazmon, rate: float,
                    batch: int) -> dict[str, Any]:
    """Probe alarms while the generator offers ``rate``.

    Every ``--probe-every-s`` one reading goes to the next probe point, alternately 60 and 40
    with HI at 50, so each probe activates or returns an alarm; a point is probed again only
    after the other nine, so one batch never holds two changes of one alarm.
    """
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from ingest.mqtt import BrokerAddress

    listener = StreamListener(hz, {"enterprise": PROBE_ENTERPRISE})
    addr = BrokerAddress.parse(runner.services.mqtt_url)
    probe = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-probe")
    probe.connect(addr.host, addr.port)
    probe.loop_start()
    sent: dict[int, float] = {}  # reading ts (ms) -> publish wall time
    result: dict[str, Any] = {}

    def probes() -> None:
        time.sleep(min(3.0, args.latency_s / 4))  # past the generator's start
        end = time.time() + args.latency_s - 4
        last, i = 0, 0
        while time.time() < end:
            t = time.time()
            ts = max(int(t * 1000), last + 1)
            last = ts
            tag = f"PR-{i % PROBE_POINTS}"
            value = 60.0 if (i // PROBE_POINTS) % 2 == 0 else 40.0  # HI is 50: on, then back
            sent[ts] = t
            probe.publish(f"hazmon/v1/{PROBE_ENTERPRISE}/gw/readings",
                          json.dumps({"ts": ts, "readings": [{"tag": tag, "value": value}]}),
                          qos=1)
            i += 1
            time.sleep(args.probe_every_s)

    thread = threading.Thread(target=probes, daemon=True)
    thread.start()
    tracer = ActivityTracer(runner.services.db_url, args.trace) if args.trace else None
    phase = runner.run("latency background", rate, args.latency_s, batch)
    thread.join()
    if tracer is not None:
        tracer.stop()
    time.sleep(2.0)
    latencies: list[float] = []
    seen: set[int] = set()
    while True:
        try:
            arrived, alarm = listener.events.get_nowait()
        except queue.Empty:
            break
        key = alarm.get("cleared_at") if alarm.get("state") == "RTN_UNACK" else alarm.get(
            "activated_at")
        if not key:
            continue
        ts = _epoch_ms(key)
        if ts in sent and ts not in seen:
            seen.add(ts)
            latencies.append((arrived - sent[ts]) * 1000)
            if args.trace:
                with open(Path(args.trace) / "probes.jsonl", "a") as f:
                    f.write(json.dumps({"sent": sent[ts], "ms": latencies[-1]}) + "\n")
    listener.close()
    probe.loop_stop()
    probe.disconnect()
    result.update({
        "rate": rate, "phase": phase, "probes": len(sent), "events": len(latencies),
        "p50_ms": percentile(latencies, 50), "p90_ms": percentile(latencies, 90),
        "p99_ms": percentile(latencies, 99), "max_ms": max(latencies, default=float("nan")),
    })
    return result


# --- setup, memory, disk ----------------------------------------------------------------------------


def setup_points(args: argparse.Namespace, hz: Hazmon, mqtt_url: str) -> float:
    """Register the load's enterprises and points, and the probe point; seconds taken."""
    t0 = time.monotonic()
    gen = LoadProcess(["--mqtt", mqtt_url, "--enterprises", str(args.enterprises), "--points",
                       str(args.points), "--gateways", str(args.gateways), "--hi-fraction",
                       str(args.hi_fraction), "--setup-only", "--api", hz.url, "--token",
                       hz.token])
    gen.result()
    with hz.api() as api:
        api.post("/api/v1/enterprises", json={"code": PROBE_ENTERPRISE, "name": "latency probe"})
        rows = "".join(f"PR-{i},pressure,50,0\n" for i in range(PROBE_POINTS))
        r = api.put(f"/api/v1/enterprises/{PROBE_ENTERPRISE}/points",
                    content="tag,kind,hi,deadband\n" + rows,
                    headers={"Content-Type": "text/csv"})
        r.raise_for_status()
    return time.monotonic() - t0


# --- the run -------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a short smoke run (10,000 points)")
    p.add_argument("--database-url", help="PostgreSQL server to create a fresh database on "
                   "(default: an embedded PostgreSQL in a temporary directory)")
    p.add_argument("--work-dir", help="where the embedded services live (default: a temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the work dir / database")
    p.add_argument("--enterprises", type=int, default=10)
    p.add_argument("--points", type=int, default=10_000, help="points per enterprise")
    p.add_argument("--gateways", type=int, default=10, help="gateways per enterprise")
    p.add_argument("--hi-fraction", type=float, default=1e-5,
                   help="fraction of load readings at or above HI (alarm churn)")
    p.add_argument("--gen-processes", type=int, default=1, help="load generator processes")
    p.add_argument("--saturate-s", type=float, default=12.0)
    p.add_argument("--confirm-s", type=float, default=30.0)
    p.add_argument("--attempts", type=int, default=3, help="confirm runs before giving up")
    p.add_argument("--latency-s", type=float, default=40.0)
    p.add_argument("--latency-rate", type=float, default=0.0,
                   help="background readings/s for the latency run (default: half the "
                   "sustained rate found, else 50,000)")
    p.add_argument("--probe-every-s", type=float, default=0.1)
    p.add_argument("--trace", metavar="DIR", default="",
                   help="write each probe's latency and the database's activity every 50 ms "
                        "during the latency run to DIR (probes.jsonl, activity.jsonl)")
    p.add_argument("--quiet-pct", type=float, default=15.0,
                   help="before each run, wait until other processes use less than this %% "
                   "of a core (the machine is shared)")
    p.add_argument("--quiet-wait-s", type=float, default=90.0, help="longest such wait")
    p.add_argument("--disturbed-pct", type=float, default=30.0,
                   help="run a phase again when other processes used more than this %% of a "
                   "core during it")
    p.add_argument("--pipe-protocol", type=int, choices=(4, 5), default=5,
                   help="MQTT version of the bare pipe's subscriber (hazmon uses 5)")
    p.add_argument("--only", default="pipe,messages,readings,latency,memory",
                   help="comma-separated parts to run")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                   help="extra environment for hazmon serve (e.g. HAZMON_INGEST_FLUSH_MS=20)")
    p.add_argument("--hazmon-root", help="run `hazmon serve` from this source tree (to measure "
                   "a change in a scratch copy); default: this repository")
    p.add_argument("--pg-set", action="append", default=[], metavar="NAME=VALUE",
                   help="ALTER SYSTEM SET on the benchmark's PostgreSQL (e.g. max_wal_size=8GB)")
    p.add_argument("--pg-sql", action="append", default=[], metavar="SQL",
                   help="run this SQL after hazmon's migrations, before the load (to measure a "
                   "schema change, e.g. a different readings index)")
    p.add_argument("--write-md", action="store_true", help="write the results to BENCHMARKS.md")
    args = p.parse_args(argv)
    if args.quick:
        args.enterprises, args.points, args.gateways = 10, 1000, 5
        args.saturate_s, args.confirm_s, args.latency_s, args.attempts = 6.0, 8.0, 12.0, 1
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    parts = set(args.only.split(","))
    say(f"command: {command_line()}")
    services = start_services(args.database_url, args.work_dir, args.keep)
    out: dict[str, Any] = {"command": command_line(),
                           "started": time.strftime("%Y-%m-%d %H:%M %Z")}
    t_start = time.monotonic()
    with services.stack:
        info = machine(services.db_url)
        out["machine"] = info
        say(f"machine: {machine_line(info)}")
        n_points = args.enterprises * args.points
        say(f"load: {args.enterprises} enterprises x {args.points} points = {n_points:,} points, "
            f"{args.enterprises * args.gateways} gateways, QoS 1, hi-fraction {args.hi_fraction:g}")
        broker_pid = services.broker.proc.pid if services.broker.proc else 0
        pids = {"mosquitto": broker_pid}
        if args.pg_set:
            with psycopg.connect(services.db_url, autocommit=True) as conn:
                for kv in args.pg_set:
                    name, value = kv.split("=", 1)
                    conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
                conn.execute("SELECT pg_reload_conf()")
            if services.pg is not None:  # shared_buffers and the like need a restart
                services.pg.stop()
                services.pg.start()
            say(f"PostgreSQL settings: {', '.join(args.pg_set)}")
        if args.hazmon_root:
            import tests.support

            tests.support.ROOT = Path(args.hazmon_root).resolve()
            say(f"hazmon serve from {tests.support.ROOT}")
        if args.env:
            say(f"hazmon environment: {' '.join(args.env)}")

        if "pipe" in parts:
            say(f"[1] bare paho -> mosquitto -> paho pipe (MQTT v{args.pipe_protocol} subscriber), "
                "1 reading per message, QoS 1")
            pipe = PipeConsumer(services.mqtt_url, "bench/v1/+/+/readings", args.pipe_protocol)
            try:
                pr = Runner(args, services, "bench/v1", pipe.count,
                            {**pids, "subscriber": pipe.proc.pid or 0})
                out["pipe"] = pr.find_sustained("pipe", 1, [0.0])
            finally:
                pipe.close()

        hz = Hazmon(data_dir=services.work / "hazmon", db_url=services.db_url,
                    mqtt_url=services.mqtt_url,
                    extra_env=dict(kv.split("=", 1) for kv in args.env))
        hz.data_dir.mkdir(parents=True, exist_ok=True)
        hz.start(timeout=120)
        try:
            assert hz.proc is not None
            if args.pg_sql:
                with psycopg.connect(services.db_url, autocommit=True) as conn:
                    for sql in args.pg_sql:
                        conn.execute(sql)
                say(f"SQL after migrations: {' ; '.join(args.pg_sql)}")
            time.sleep(1.0)
            mem: dict[str, Any] = {"empty": proc_status(hz.proc.pid)}
            setup_s = setup_points(args, hz, services.mqtt_url)
            say(f"setup: {n_points + 1:,} points registered through the API in {setup_s:.1f} s")
            time.sleep(3.0)
            mem["configured"] = proc_status(hz.proc.pid)
            mem["points"] = n_points + 1
            say(f"hazmon serve RSS: {mem['empty']['VmRSS'] / 2**20:.0f} MiB with no points, "
                f"{mem['configured']['VmRSS'] / 2**20:.0f} MiB with {n_points + 1:,} points")
            consumer = HazmonConsumer(hz)
            runner = Runner(args, services, "hazmon/v1", consumer.count,
                            {**pids, "hazmon": hz.proc.pid,
                             "postgres": services.postmaster_pid()})
            if "messages" in parts:
                say("[2] hazmon, 1 reading per message, QoS 1")
                out["messages"] = runner.find_sustained("1/msg", 1, [0.0])
            if "readings" in parts:
                say("[3] hazmon, 100 readings per message, QoS 1")
                first = 300_000.0 if not args.quick else 150_000.0
                out["readings"] = runner.find_sustained("100/msg", 100,
                                                        [first, first * 1.5, first * 2.25])
            if "latency" in parts:
                base = out.get("readings", {}).get("sustained") or 100_000.0
                rate = args.latency_rate or _round(base / 2)
                out["latency_basis"] = (
                    "--latency-rate" if args.latency_rate else
                    "half the sustained rate" if out.get("readings", {}).get("sustained") else
                    "no sustained rate found: half of 100,000")
                say(f"[4] alarm latency, publish -> event stream, at {rate:,.0f} readings/s "
                    "(half the sustained rate), 100 readings per message")
                out["settled_s"] = wait_settled(services.db_url)
                out["latency"] = measure_latency(args, runner, hz, rate, 100)
                lat = out["latency"]
                say(f"  {lat['events']} of {lat['probes']} probe alarms seen: p50 "
                    f"{lat['p50_ms']:.0f} ms, p90 {lat['p90_ms']:.0f} ms, p99 {lat['p99_ms']:.0f} ms, "
                    f"max {lat['max_ms']:.0f} ms")
            mem["after_load"] = proc_status(hz.proc.pid)
            out["memory"] = mem
            metrics = scrape(hz.url)
            out["metrics"] = {k: v for k, v in metrics.items() if k.startswith(
                ("hazmon_ingest_rejected_total", "hazmon_engine_readings_not_judged_total",
                 "hazmon_ingest_readings_total", "hazmon_ingest_duplicate",
                 "hazmon_alarm_transitions_total", "hazmon_ingest_db_errors_total"))
                and "{" not in k}
        finally:
            hz.stop()
        if "memory" in parts:
            out["disk"] = readings_size(services.db_url)
        out["took_s"] = time.monotonic() - t_start
        report(args, out)
    return 0


def _mib(b: float) -> str:
    return f"{b / 2**20:,.0f} MiB"


def ok(met: bool) -> str:
    return "**met**" if met else "**missed**"


def report(args: argparse.Namespace, out: dict[str, Any]) -> None:
    """Print the numbers against the targets, and write BENCHMARKS.md when asked."""
    pipe, msgs, rds = out.get("pipe"), out.get("messages"), out.get("readings")
    rows: list[str] = []
    if rds:
        v = rds["sustained"]
        low = min(p.offered for p in rds["tried"])
        shown, ratio = (f"{v:,.0f}", f"{v / TARGET_READINGS:.2f}×") if v else (
            f"< {low:,.0f}", "not sustained at any rate tried")
        rows.append(f"| hazmon readings/s, 100 readings/message, QoS 1 | {shown} | ≥ 200,000 | "
                    f"{ok(v >= TARGET_READINGS)} ({ratio}) |")
    if pipe:
        rows.append(f"| bare paho → mosquitto → paho, 1 reading/message, QoS 1 | "
                    f"{pipe['sustained']:,.0f} msg/s | (the reference) | |")
    if msgs:
        share = msgs["sustained"] / pipe["sustained"] if pipe and pipe["sustained"] else None
        verdict = f"{ok(share >= TARGET_PIPE_RATIO)} ({share:.0%})" if share is not None else ""
        shown = (f"{msgs['sustained']:,.0f}" if msgs["sustained"]
                 else f"< {min(p.offered for p in msgs['tried']):,.0f}")
        rows.append(f"| hazmon messages/s, 1 reading/message, QoS 1 | "
                    f"{shown} msg/s | ≥ 70 % of the pipe | {verdict} |")
    detail: list[str] = []
    for name, res in (("pipe", pipe), ("1 reading/message", msgs), ("100 readings/message", rds)):
        if res:
            detail.append(f"- {name}: {res['capacity']:,.0f}/s counted when saturated; runs:")
            detail += ["  - " + ph.line().strip() for ph in res["saturate"] + res["tried"]]
    m = out.get("metrics", {})
    disk = out.get("disk")
    check = (f"hazmon counted {m.get('hazmon_ingest_readings_total', 0):,.0f} readings committed, "
             f"{m.get('hazmon_ingest_duplicate_readings_total', 0):,.0f} duplicates, "
             f"{m.get('hazmon_ingest_rejected_total', 0):,.0f} rejected, "
             f"{m.get('hazmon_engine_readings_not_judged_total', 0):,.0f} not judged and "
             f"{m.get('hazmon_alarm_transitions_total', 0):,.0f} alarm transitions"
             + (f"; the readings table holds {disk['rows']:,} rows." if disk else "."))
    a = args
    took = f"run {out['started']}, took {out['took_s'] / 60:.1f} min"
    setup = [f"Command: `{out['command']}` ({took})", "",
             f"Machine: {machine_line(out['machine'])}", "",
             (f"Load: {a.enterprises} enterprises × {a.points:,} points = "
              f"{a.enterprises * a.points:,} points (+{PROBE_POINTS} probe points), "
              f"{a.enterprises * a.gateways} gateways, QoS 1, {a.hi_fraction:g} of readings at "
              f"or above HI, one generator process (simulators/load.py); hazmon serve with "
              f"embedded-default settings unless listed here: "
              f"{' '.join(a.env + a.pg_set + a.pg_sql) or 'none'}"
              + (f"; hazmon from {a.hazmon_root}" if a.hazmon_root else "") + "."), ""]
    how = ("Sent = published by the generator and acknowledged by the broker; counted = committed "
           "to the database and judged by hazmon (its /metrics), or received by the bare "
           "subscriber. CPU in % of one core during the steady part of each run; `other` is "
           "processes outside the benchmark (the machine is shared).")
    say("")
    sections: list[tuple[str, list[str]]] = []
    if rows:
        sections.append(("Ingest throughput", [
            *setup, "| | measured | target | |", "|---|---|---|---|", *rows, "", how, "",
            *detail, "", check]))
    lat = out.get("latency")
    if lat:
        sections.append(("Alarm latency", [
            *setup,
            (f"Background: {lat['rate']:,.0f} readings/s ({out.get('latency_basis')}; 100 "
             "readings/message), after waiting "
             f"{out.get('settled_s', 0):.0f} s for the 1-minute rollup to catch up with the "
             "saturated runs before (steady state). Probes: "
             f"{lat['probes']} readings on {PROBE_POINTS} probe points (HI 50), each one "
             "activating or returning an alarm, published QoS 1 with the publish time as the "
             "reading's ts; latency = arrival of the alarm's event on "
             f"`GET /api/v1/alarms/stream` − publish time, {lat['events']} events matched."),
            "",
            "| | measured | target | |",
            "|---|---|---|---|",
            f"| p50 | {lat['p50_ms']:.0f} ms | ≤ 100 ms | {ok(lat['p50_ms'] <= TARGET_P50_MS)} |",
            f"| p90 | {lat['p90_ms']:.0f} ms | | |",
            f"| p99 | {lat['p99_ms']:.0f} ms | ≤ 500 ms | {ok(lat['p99_ms'] <= TARGET_P99_MS)} |",
            f"| max | {lat['max_ms']:.0f} ms | | |",
            "",
            "Background run: " + lat["phase"].line().strip()]))
    mem = out.get("memory")
    lines_mem: list[str] = []
    if mem:
        lines_mem.append(
            f"`hazmon serve` (API + ingest + engine in one process) RSS: "
            f"{_mib(mem['empty']['VmRSS'])} with no points, "
            f"{_mib(mem['configured']['VmRSS'])} idle with {mem['points']:,} points configured, "
            f"{_mib(mem['after_load']['VmRSS'])} after the runs above (peak "
            f"{_mib(mem['after_load']['VmHWM'])}).")
    if disk:
        lines_mem += ["", (
            f"Disk, plain PostgreSQL (daily partitions, UNIQUE (point_id, ts)), after this run's "
            f"{disk['rows']:,} readings: {disk['bytes_per_reading']:.1f} bytes per reading "
            f"({disk['heap_per_reading']:.1f} table + "
            f"{disk['bytes_per_reading'] - disk['heap_per_reading']:.1f} index), "
            f"{_mib(disk['total_bytes'])} in {disk['partitions']} partitions. TimescaleDB "
            "compression: `benchmarks/bench_compression.py` against a server that has the "
            "extension (section \"TimescaleDB compression\").")]
    if lines_mem:
        sections.append(("Memory and disk", [*setup, *lines_mem]))
    for title, lines in sections:
        say(f"## {title}\n\n" + "\n".join(lines) + "\n")
        if args.write_md:
            write_section(title, "\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())

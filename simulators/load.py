"""``hazmon load``: publish synthetic readings at a set rate, for benchmarks and soak tests.

N enterprises × M points, split over G gateways per enterprise; each message carries ``--batch``
readings of distinct points of one gateway, with the message ``ts`` (integer epoch ms) that is
strictly increasing per gateway, so every point's reading times are strictly increasing too,
also across runs (``--min-ts-ms``). Values are uniform on [0, 100); with ``--setup`` every
point is registered through the API with ``hi = 100 × (1 − --hi-fraction)``, so that fraction
of readings is at or above HI (``lo``, ``lolo``, ``hihi`` are configured and never reached).

Publishing is spread over ``--processes`` processes, each driving ``--clients`` paho
connections from one thread (no network thread: ``publish`` writes straight to the socket and
PUBACKs are read between bursts). The rate is paced per process in readings per second
(``--rate 0``: as fast as possible). At the end QoS 1 PUBACKs are awaited (``--drain-s``).
What was sent is printed as one JSON object on stdout; ``--progress`` adds one JSON line per
second on stderr with the running totals.

    python -m simulators.load --mqtt mqtt://127.0.0.1:1883 --enterprises 20 --points 5000 \\
        --gateways 5 --rate 200000 --batch 100 --qos 1 --duration 30 --processes 2
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from operator import itemgetter
from typing import Any

import numpy as np

VALUE_POOL = 10_000  # distinct values, an even grid over [0, 100) shuffled
INDEX_POOL = 1 << 20  # pre-drawn random picks into the value pool
VALUE_SPAN = 100.0
SETUP_CHUNK = 10_000  # point-table rows per PUT


# --- layout ---------------------------------------------------------------------------------


def enterprise_code(prefix: str, e: int) -> str:
    return f"{prefix}{e:03d}"


def tag_of(i: int) -> str:
    return f"P{i:06d}"


def hi_limit(hi_fraction: float) -> float:
    """HI such that ``hi_fraction`` of values uniform on [0, 100) are at or above it."""
    return round(VALUE_SPAN * (1.0 - hi_fraction), 6)


@dataclass(frozen=True)
class GatewayPlan:
    """One gateway: its topic and the point indices (tags P{i}) it reports."""

    topic: str
    first: int
    count: int


def gateway_plans(args: argparse.Namespace) -> list[GatewayPlan]:
    """Every gateway of every enterprise, in order; points split into contiguous groups."""
    plans = []
    for e in range(args.enterprises):
        code = enterprise_code(args.prefix, e)
        base, extra = divmod(args.points, args.gateways)
        first = 0
        for g in range(args.gateways):
            count = base + (1 if g < extra else 0)
            plans.append(GatewayPlan(f"{args.topic_root}/{code}/gw{g:02d}/readings", first, count))
            first += count
    return plans


def point_table_csv(first: int, count: int, hi: float) -> str:
    """Point-table rows P{first}..P{first+count-1}: range 0..100, lolo/lo never reached."""
    hihi = max(hi, VALUE_SPAN) + 100.0
    head = "tag,name,kind,unit,range_low,range_high,lolo,lo,hi,hihi,deadband\n"
    rows = (f"{tag_of(i)},load point {i},pressure,kPa,-1000,1000,-20,-10,{hi:g},{hihi:g},0\n"
            for i in range(first, first + count))
    return head + "".join(rows)


def setup(args: argparse.Namespace) -> dict[str, Any]:
    """Register the enterprises and their point tables through the API (idempotent)."""
    import httpx

    if not args.token:
        raise SystemExit("hazmon load: --setup needs --token (or HAZMON_ADMIN_TOKEN)")
    hi = hi_limit(args.hi_fraction)
    created = updated = 0
    started = time.monotonic()
    with httpx.Client(base_url=args.api.rstrip("/"), timeout=300,
                      headers={"Authorization": f"Bearer {args.token}"}) as client:
        for e in range(args.enterprises):
            code = enterprise_code(args.prefix, e)
            r = client.post("/api/v1/enterprises", json={"code": code, "name": f"load {code}"})
            if r.status_code not in (200, 201, 409):
                raise SystemExit(f"hazmon load: creating {code}: HTTP {r.status_code} {r.text[:300]}")
            for first in range(0, args.points, SETUP_CHUNK):
                count = min(SETUP_CHUNK, args.points - first)
                r = client.put(f"/api/v1/enterprises/{code}/points",
                               content=point_table_csv(first, count, hi).encode(),
                               headers={"Content-Type": "text/csv"})
                if r.status_code != 200:
                    raise SystemExit(f"hazmon load: point table of {code}: HTTP {r.status_code} "
                                     f"{r.text[:300]}")
                created += r.json().get("created", 0)
                updated += r.json().get("updated", 0)
    return {"points_created": created, "points_updated": updated, "hi": hi,
            "setup_s": round(time.monotonic() - started, 2)}


# --- one publishing process -----------------------------------------------------------------


@dataclass
class ProcStats:
    """What one process sent."""

    messages: int = 0
    readings: int = 0
    acked: int = 0
    errors: int = 0
    disconnects: int = 0
    over_hi: int = 0
    first_ts_ms: int = 0
    last_ts_ms: int = 0
    publish_s: float = 0.0
    unacked: int = 0
    error_codes: dict[str, int] = field(default_factory=dict)


class _Gateway:
    """A gateway's message pieces: per point ``{"tag":"P…","value":`` ready to join."""

    def __init__(self, plan: GatewayPlan, batch: int) -> None:
        self.topic = plan.topic
        self.last_ts = 0
        pieces = [b'{"tag":"' + tag_of(i).encode() + b'","value":'
                  for i in range(plan.first, plan.first + plan.count)]
        self.chunks = [pieces[k:k + batch] for k in range(0, len(pieces), batch)]


def _connect(url: str, client_id: str, qos: int, inflight: int, stats: ProcStats) -> Any:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from ingest.mqtt import BrokerAddress

    addr = BrokerAddress.parse(url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=mqtt.MQTTv311)
    if addr.username:
        client.username_pw_set(addr.username, addr.password)
    client.max_inflight_messages_set(inflight)
    client.max_queued_messages_set(0)

    def on_publish(_c: Any, _u: Any, _mid: int, _rc: Any, _p: Any) -> None:
        stats.acked += 1

    def on_disconnect(_c: Any, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if getattr(rc, "is_failure", True):  # not our own DISCONNECT at the end
            stats.disconnects += 1

    if qos:
        client.on_publish = on_publish
    client.on_disconnect = on_disconnect
    client.connect(addr.host, addr.port, keepalive=60)
    deadline = time.monotonic() + 10
    while not client.is_connected():
        client.loop(0.05)
        if time.monotonic() > deadline:
            raise SystemExit(f"hazmon load: no CONNACK from {url}")
    return client


def _publisher(index: int, args: argparse.Namespace, plans: list[GatewayPlan], rate: float,
               start_at: float, progress: Any, result: Any) -> None:
    """Body of one publishing process; puts its ProcStats (as a dict) on ``result``."""
    import paho.mqtt.client as mqtt

    stats = ProcStats()
    try:
        rng = np.random.default_rng((args.seed, index))
        hi = hi_limit(args.hi_fraction)
        grid = (np.arange(VALUE_POOL) + 0.5) * (VALUE_SPAN / VALUE_POOL)
        rng.shuffle(grid)
        pool = [f"{v:.3f}}}".encode() for v in grid]
        over = grid >= hi
        picks = rng.integers(0, VALUE_POOL, INDEX_POOL)
        over_picks = over[picks]
        gateways = [_Gateway(p, args.batch) for p in plans]
        # Messages interleave gateways: chunk 0 of every gateway, then chunk 1, ...
        order = [(g, k) for k in range(max(len(g.chunks) for g in gateways))
                 for g in gateways if k < len(g.chunks)]
        run_id = uuid.uuid4().hex[:6]
        clients = [_connect(args.mqtt, f"hazmon-load-{run_id}-{index}-{c}", args.qos,
                            args.inflight, stats) for c in range(args.clients)]
        client_of = {id(g): clients[i % len(clients)] for i, g in enumerate(gateways)}
        qos, min_ts = args.qos, args.min_ts_ms
        window = args.inflight * len(clients)
        pos = slot = 0
        wait = start_at - time.time()
        if wait > 0:
            time.sleep(wait)
        t0 = time.monotonic()
        end = t0 + args.duration
        tick = 0.002 if rate else 0.0
        next_report = t0
        while True:
            now = time.monotonic()
            if now >= end:
                break
            due = (now - t0) * rate - stats.readings if rate else 2_000
            if due <= 0:
                for c in clients:
                    c.loop(0)
                time.sleep(min(tick, end - now))
                continue
            budget = min(due, 20_000)
            if qos:  # stay within the in-flight window: paho's queue beyond it is O(n) per ack
                room = window - (stats.messages - stats.acked)
                if room <= 0:
                    for c in clients:
                        c.loop(0.001)
                    continue
                budget = min(budget, room * args.batch)
            now_ms = time.time_ns() // 1_000_000
            while budget > 0:
                g, k = order[slot]
                slot = (slot + 1) % len(order)
                pieces = g.chunks[k]
                n = len(pieces)
                if pos + n > INDEX_POOL:
                    pos = 0
                ids = picks[pos:pos + n].tolist()
                vals = [pool[ids[0]]] if n == 1 else itemgetter(*ids)(pool)
                over_n = int(over_picks[pos:pos + n].sum()) if n > 1 else int(over_picks[pos])
                pos += n
                ts = max(now_ms, g.last_ts + 1, min_ts)
                g.last_ts = ts
                payload = (b'{"ts":' + str(ts).encode() + b',"readings":['
                           + b",".join(map(bytes.__add__, pieces, vals)) + b"]}")
                info = client_of[id(g)].publish(g.topic, payload, qos=qos)
                if info.rc != mqtt.MQTT_ERR_SUCCESS:
                    stats.errors += 1
                    code = mqtt.error_string(info.rc)
                    stats.error_codes[code] = stats.error_codes.get(code, 0) + 1
                else:
                    stats.messages += 1
                    stats.readings += n
                    stats.over_hi += over_n
                    stats.first_ts_ms = stats.first_ts_ms or ts
                    stats.last_ts_ms = max(stats.last_ts_ms, ts)
                budget -= n
            for c in clients:
                c.loop(0)
            if now >= next_report:
                progress[index * 3] = stats.messages
                progress[index * 3 + 1] = stats.readings
                progress[index * 3 + 2] = stats.errors
                next_report = now + 0.25
        stats.publish_s = time.monotonic() - t0
        progress[index * 3], progress[index * 3 + 1] = stats.messages, stats.readings
        progress[index * 3 + 2] = stats.errors
        # Wait for the PUBACKs of everything sent (QoS 1), and flush what paho still holds.
        deadline = time.monotonic() + args.drain_s
        while time.monotonic() < deadline:
            pending = sum(len(c._out_messages) + len(c._out_packet) for c in clients)
            if pending == 0 and (not qos or stats.acked >= stats.messages):
                break
            for c in clients:
                c.loop(0.01)
        stats.unacked = (stats.messages - stats.acked) if qos else sum(
            len(c._out_packet) for c in clients)
        for c in clients:
            c.disconnect()
            c.loop(0.01)
    except BaseException as exc:  # noqa: BLE001 - report it to the parent, do not hang it
        result.put({"index": index, "error": f"{type(exc).__name__}: {exc}", **asdict(stats)})
        return
    result.put({"index": index, **asdict(stats)})


# --- the command ----------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {text}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``hazmon load``."""
    env = os.environ
    a = parser.add_argument
    a("--mqtt", default=env.get("HAZMON_MQTT_URL", "mqtt://127.0.0.1:1883"), metavar="URL",
      help="broker, mqtt://[user:password@]host:port (default $HAZMON_MQTT_URL or 127.0.0.1:1883)")
    a("--enterprises", type=_positive_int, default=10, metavar="N", help="enterprises (default 10)")
    a("--points", type=_positive_int, default=1000, metavar="M",
      help="points per enterprise (default 1000)")
    a("--gateways", type=_positive_int, default=1, metavar="G",
      help="gateways per enterprise; its points are split among them (default 1)")
    a("--rate", type=float, default=10_000.0, metavar="R",
      help="readings per second over all processes; 0 = as fast as possible (default 10000)")
    a("--batch", type=_positive_int, default=100, metavar="B",
      help="readings per message, at most the points of a gateway (default 100)")
    a("--qos", type=int, choices=(0, 1), default=1)
    a("--duration", type=float, default=10.0, metavar="S", help="seconds to publish (default 10)")
    a("--processes", type=_positive_int, default=1, metavar="P",
      help="publishing processes (default 1)")
    a("--clients", type=_positive_int, default=1, metavar="C",
      help="MQTT connections per process (default 1)")
    a("--inflight", type=_positive_int, default=1000,
      help="unacknowledged QoS 1 messages per connection before paho queues (default 1000)")
    a("--drain-s", type=float, default=30.0, metavar="S",
      help="how long to wait for outstanding PUBACKs at the end (default 30)")
    a("--hi-fraction", type=_fraction, default=0.0, metavar="F",
      help="fraction of readings at or above HI (sets HI at --setup; default 0)")
    a("--prefix", default="LOAD", help="enterprise codes are PREFIX000, PREFIX001, ...")
    a("--topic-root", default="hazmon/v1",
      help="topics are ROOT/{enterprise}/{gateway}/readings (default hazmon/v1)")
    a("--min-ts-ms", type=int, default=0, metavar="MS",
      help="no reading time below this (epoch ms): pass last_ts_ms+1 of a previous run")
    a("--seed", type=int, default=1)
    a("--setup", action="store_true",
      help="first create the enterprises and upload their point tables through the API")
    a("--setup-only", action="store_true", help="set up and exit without publishing")
    a("--api", default=f"http://127.0.0.1:{env.get('HAZMON_HTTP_PORT', '8000')}", metavar="URL",
      help="hazmon API for --setup")
    a("--token", default=env.get("HAZMON_ADMIN_TOKEN"), help="admin token for --setup")
    a("--progress", action="store_true",
      help="print running totals as a JSON line on stderr every second")


def run(args: argparse.Namespace) -> int:
    """Set up if asked, publish, print what was sent as JSON on stdout; exit code."""
    report = load(args)
    print(json.dumps(report), flush=True)
    return 1 if report.get("failed") else 0


def load(args: argparse.Namespace) -> dict[str, Any]:
    """Everything ``run`` does, returning the report instead of printing it."""
    if args.gateways > args.points:
        raise SystemExit("hazmon load: more gateways than points per enterprise")
    if args.batch > args.points // args.gateways:
        raise SystemExit(f"hazmon load: --batch {args.batch} is more than the "
                         f"{args.points // args.gateways} points of a gateway: a message would "
                         "hold one point twice")
    report: dict[str, Any] = {}
    if args.setup or args.setup_only:
        report["setup"] = setup(args)
        if args.setup_only:
            return report
    plans = gateway_plans(args)
    procs = min(args.processes, len(plans))
    shares = [plans[i::procs] for i in range(procs)]
    total_points = args.enterprises * args.points
    ctx = mp.get_context("fork")
    progress = ctx.Array("q", procs * 3, lock=False)
    result = ctx.Queue()
    start_at = time.time() + 0.5 + 0.2 * procs
    workers = []
    for i, share in enumerate(shares):
        rate = args.rate * sum(p.count for p in share) / total_points
        w = ctx.Process(target=_publisher, args=(i, args, share, rate, start_at, progress, result),
                        name=f"hazmon-load-{i}", daemon=True)
        w.start()
        workers.append(w)
    results: list[dict[str, Any]] = []
    last_line = time.monotonic()
    t_start = None
    while len(results) < procs:
        try:
            results.append(result.get(timeout=0.2))
        except Exception:  # noqa: BLE001 - queue.Empty: not done yet
            if not any(w.is_alive() for w in workers) and result.empty():
                break
        if args.progress and time.monotonic() - last_line >= 1.0 and time.time() >= start_at:
            t_start = t_start or start_at
            last_line = time.monotonic()
            print(json.dumps({"t": round(time.time() - start_at, 3),
                              "messages": sum(progress[0::3]), "readings": sum(progress[1::3]),
                              "errors": sum(progress[2::3])}), file=sys.stderr, flush=True)
    for w in workers:
        w.join(5)
    missing = procs - len(results)
    failed = [r["error"] for r in results if "error" in r]
    publish_s = max((r["publish_s"] for r in results), default=0.0)
    messages = sum(r["messages"] for r in results)
    readings = sum(r["readings"] for r in results)
    codes: dict[str, int] = {}
    for r in results:
        for k, v in r["error_codes"].items():
            codes[k] = codes.get(k, 0) + v
    gw_msg_rate = (messages / publish_s / len(plans)) if publish_s else 0.0
    report.update({
        "mqtt": args.mqtt, "topic_root": args.topic_root, "qos": args.qos, "batch": args.batch,
        "enterprises": args.enterprises, "points_per_enterprise": args.points,
        "points": total_points, "gateways": len(plans), "processes": procs,
        "clients_per_process": args.clients, "target_rate": args.rate,
        "duration_s": round(publish_s, 3),
        "messages": messages, "readings": readings,
        "acked": sum(r["acked"] for r in results) if args.qos else None,
        "unacked": sum(r["unacked"] for r in results),
        "errors": sum(r["errors"] for r in results), "error_codes": codes,
        "disconnects": sum(r["disconnects"] for r in results),
        "rate_readings_s": round(readings / publish_s, 1) if publish_s else 0.0,
        "rate_messages_s": round(messages / publish_s, 1) if publish_s else 0.0,
        "hi": hi_limit(args.hi_fraction), "hi_fraction": args.hi_fraction,
        "readings_over_hi": sum(r["over_hi"] for r in results),
        "first_ts_ms": min((r["first_ts_ms"] for r in results if r["first_ts_ms"]), default=0),
        "last_ts_ms": max((r["last_ts_ms"] for r in results), default=0),
        "ts_ahead_of_clock": gw_msg_rate > 1000,
    })
    if missing or failed:
        report["failed"] = failed + [f"{missing} process(es) gave no report"] * bool(missing)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators.load", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

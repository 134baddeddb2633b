"""Throughput of the alarm engine core (judge + apply) against the per-reading oracle.

    python benchmarks/bench_engine.py [--points 100000] [--batch 1000000] [--batches 5]

Every rule is on for every point. Readings come ~10 per point per batch, one per
second per point with jitter, in arrival (time) order across points, so each
batch must be regrouped by point. Realistic values wander slowly around a setpoint,
a share of points (--wanderers, 2 %) drifting through limits and range ends;
``--scenario stress`` draws values uniformly over the whole range, so every point
crosses limits all the time (worst case, ~40 % of readings cause a transition).
One thread (numpy's elementwise work never uses BLAS/OpenMP threads); --pin N
pins the process to one CPU.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alerting.engine import Engine, PointConfig, Transitions  # noqa: E402
from alerting.oracle import Oracle  # noqa: E402

T0 = 1_763_892_000_000  # epoch ms


def full_config(n: int, rng: np.random.Generator) -> PointConfig:
    """Every rule configured on every point."""
    cfg = PointConfig.empty(n)
    cfg.lolo[:], cfg.lo[:], cfg.hi[:], cfg.hihi[:] = 10.0, 20.0, 80.0, 90.0
    cfg.deadband[:] = rng.choice([0.5, 1.0, 2.0], n)
    cfg.range_low[:], cfg.range_high[:] = 0.0, 100.0
    cfg.roc_per_min[:] = rng.choice([30.0, 60.0, 120.0], n)
    cfg.on_delay_ms[:] = rng.choice([0, 2000, 5000], n)
    cfg.off_delay_ms[:] = rng.choice([0, 3000, 10000], n)
    cfg.stale_ms[:] = 60_000
    return cfg


Batch = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]


def make_batches(args: argparse.Namespace, rng: np.random.Generator) -> list[Batch]:
    """Batches of (point, ts, value, bad, arrival_ms), each in arrival order across points."""
    n, per = args.points, max(1, args.batch // args.points)
    base = rng.uniform(30, 70, n)
    level = base.copy()
    drift = np.where(rng.random(n) < args.wanderers, rng.normal(0, 2.0, n), 0.0)
    phase = np.tile(rng.integers(0, 1000, n), per)  # each point reports once a second
    out = []
    for b in range(args.batches + 1):
        k = np.repeat(np.arange(per), n)
        point = np.tile(np.arange(n, dtype=np.int32), per)
        ts = T0 + (b * per + k) * 1000 + phase + rng.integers(0, 20, n * per)
        if args.scenario == "stress":
            value = rng.uniform(-5, 105, n * per)
        else:
            steps = drift + rng.normal(0, 0.1, (per, n))
            value = (level + np.cumsum(steps, axis=0)).ravel()
            level = value[-n:].copy()
            level += (base - level) * 0.05 * (np.abs(level - base) > 40)  # wanderers come back
        bad = rng.random(n * per) < 1e-4
        order = np.argsort(ts, kind="stable")  # as it arrives: by time, points interleaved
        out.append((point[order], ts[order], value[order], bad[order], int(ts.max()) + 50))
    return out


def run_engine(cfg: PointConfig, batches: list[Batch]) -> tuple[np.ndarray, list[Transitions]]:
    """(wall s, CPU s) of judge+apply per batch (the first, a warm-up, left out); transitions."""
    engine = Engine(cfg, now_ms=T0)
    seconds, trans = [], []
    for batch in batches:
        wall, cpu = time.perf_counter(), time.process_time()
        j = engine.judge(*batch)
        engine.apply(j)
        seconds.append((time.perf_counter() - wall, time.process_time() - cpu))
        trans.append(j.transitions)
    return np.array(seconds[1:]), trans


def subset(batch: Batch, points: int) -> Batch:
    """The readings of points below ``points``."""
    keep = batch[0] < points
    return batch[0][keep], batch[1][keep], batch[2][keep], batch[3][keep], batch[4]


def run_oracle(cfg: PointConfig, batches: list[Batch], points: int) -> tuple[float, int, list[Any]]:
    """CPU seconds of oracle judge+apply on the readings of the first ``points`` points."""
    small = PointConfig(**{k: v[:points] for k, v in vars(cfg).items()})
    oracle = Oracle(small, now_ms=T0)
    seconds, readings, trans = 0.0, 0, []
    for i, batch in enumerate(batches):
        part = subset(batch, points)
        start = time.process_time()
        j = oracle.judge(*part)
        oracle.apply(j)
        if i:
            seconds += time.process_time() - start
            readings += len(part[0])
        trans.append(j.transitions.rows())
    return seconds, readings, trans


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=1_000_000, help="readings per batch")
    ap.add_argument("--batches", type=int, default=5, help="timed batches (plus one warm-up)")
    ap.add_argument("--oracle-points", type=int, default=2_000, help="points the oracle judges")
    ap.add_argument("--state-points", type=int, default=1_000_000)
    ap.add_argument("--scenario", choices=["realistic", "stress"], default="realistic")
    ap.add_argument("--wanderers", type=float, default=0.02,
                    help="realistic: share of points drifting across their limits")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--pin", type=int, help="pin to this CPU (default: not pinned)")
    args = ap.parse_args()
    if args.pin is not None:
        os.sched_setaffinity(0, {args.pin})
    print("command:", " ".join([Path(sys.executable).name, *sys.argv]))
    print(f"numpy {np.__version__}, python {platform.python_version()}, cpu: {cpu_model()}")
    pinned = f"pinned to CPU {args.pin}" if args.pin is not None else "not pinned"
    print(f"one core: single thread, numpy elementwise ops do not use BLAS/OpenMP ({pinned}); "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    rng = np.random.default_rng(args.seed)
    cfg = full_config(args.points, rng)
    batches = make_batches(args, rng)

    e_sec, e_trans = run_engine(cfg, batches)
    per = len(batches[0][0])
    print(f"scenario {args.scenario}: {args.points} points, {per} readings/batch, "
          f"{args.batches} timed batches (+1 warm-up), "
          f"{sum(len(t) for t in e_trans[1:]) / args.batches:.0f} transitions/batch")
    for label, col in (("wall", 0), ("CPU ", 1)):
        s = e_sec[:, col]
        print(f"engine  judge+apply, {label} time: {per / np.median(s) / 1e6:6.2f} M readings/s "
              f"median, {per / s.min() / 1e6:6.2f} best (ms/batch median {np.median(s) * 1e3:.1f}, "
              f"best {s.min() * 1e3:.1f}, worst {s.max() * 1e3:.1f})")
    e_rate = per / float(np.median(e_sec[:, 1]))

    o_sec, o_n, o_trans = run_oracle(cfg, batches, args.oracle_points)
    o_rate = o_n / o_sec
    print(f"oracle  judge+apply, CPU time: {o_rate / 1e6:8.4f} M readings/s ({o_n} readings of "
          f"{args.oracle_points} points)")
    print(f"engine / oracle (median CPU time): {e_rate / o_rate:.0f}x")
    same = all(
        str([r for r in t.rows() if r[0] < args.oracle_points]) == str(o)
        for t, o in zip(e_trans, o_trans, strict=True)
    )
    print(f"engine transitions equal the oracle's on those points: {same}")

    big = Engine(full_config(args.state_points, rng), now_ms=T0)
    print(f"state+config: {big.state_nbytes() / args.state_points:.0f} bytes/point "
          f"at {args.state_points} points")


if __name__ == "__main__":
    main()

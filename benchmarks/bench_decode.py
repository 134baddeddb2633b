"""Throughput of ingest.decode.decode_readings.

Run: python benchmarks/bench_decode.py [--seconds 1] [--repeat 3]
Prints messages/s and readings/s for 100-reading and 1-reading messages: all valid with
tags known (message ts only; integer ts and quality on every reading; a fresh RFC 3339
string on every reading), and one with an unknown tag per message. Rates are per second
of this process's CPU time, the best of ``--repeat`` runs, so that other processes sharing
a 2-core box disturb them little.
"""

from __future__ import annotations

import argparse
import itertools
import time

import orjson

from ingest.decode import decode_readings

T0 = 1_763_892_000_000
WINDOW = {"min_ts_ms": T0 - 86_400_000, "max_ts_ms": T0 + 86_400_000}
LOOKUP = {f"LT-{i:05d}": i for i in range(5000)}
VARIANTS = 200  # distinct payloads cycled through, so RFC 3339 strings mostly miss the cache


def reading(i: int, m: int, kind: str) -> dict[str, object]:
    """Reading ``i`` of message ``m``."""
    r: dict[str, object] = {"tag": f"LT-{i:05d}", "value": 20.0 + i * 0.25 + m}
    if kind == "int":
        r["ts"] = T0 + m * 1000 + i
        r["quality"] = "good"
    elif kind == "rfc3339":
        ms = m * 1000 + i
        r["ts"] = f"2025-11-23T{16 + ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:" + (
            f"{ms // 1000 % 60:02d}.{ms % 1000:03d}+08:00"
        )
    elif kind == "unknown" and i == 0:  # one tag missing from the point table
        r["tag"] = "NOT-IN-TABLE"
    return r


def payloads(n: int, kind: str) -> list[bytes]:
    """VARIANTS messages of ``n`` readings each."""
    return [
        orjson.dumps({"ts": T0 + m, "readings": [reading(i, m, kind) for i in range(n)]})
        for m in range(VARIANTS)
    ]


def rate(items: list[bytes], seconds: float) -> float:
    """Messages per CPU second decoded, cycling through ``items`` for about ``seconds``."""
    calls, start, cycle = 0, time.process_time(), itertools.cycle(items)
    while (elapsed := time.process_time() - start) < seconds:
        for payload in itertools.islice(cycle, 100):
            decode_readings(payload, enterprise="E1", lookup=LOOKUP, received_ms=T0, **WINDOW)
        calls += 100
    return calls / elapsed


def bench(n: int, kind: str, seconds: float, repeat: int) -> tuple[float, float]:
    """(messages/s, readings/s kept) for one message shape."""
    items = payloads(n, kind)
    first = decode_readings(items[0], enterprise="E1", lookup=LOOKUP, received_ms=T0, **WINDOW)
    expected_rejections = 1 if kind == "unknown" else 0
    assert len(first.rejections) == expected_rejections, first.rejections[:1]
    msgs = max(rate(items, seconds) for _ in range(repeat))
    return msgs, msgs * len(first)


CASES = [
    (100, "msg-ts", "100 readings, message ts only"),
    (100, "int", "100 readings, int ts + quality each"),
    (100, "rfc3339", "100 readings, RFC 3339 ts each"),
    (100, "unknown", "100 readings, 1 unknown tag"),
    (1, "msg-ts", "1 reading, message ts only"),
    (1, "int", "1 reading, int ts + quality"),
    (1, "rfc3339", "1 reading, RFC 3339 ts"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description="Throughput of decode_readings.")
    parser.add_argument("--seconds", type=float, default=1.0, help="time per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the best counts")
    args = parser.parse_args()
    for n, kind, label in CASES:
        msgs, readings = bench(n, kind, args.seconds, args.repeat)
        print(f"{label:38s} {msgs:10,.0f} messages/s {readings:12,.0f} readings/s")


if __name__ == "__main__":
    main()

"""End-to-end fuzz of ingest: a few hundred hypothesis-made messages over MQTT to a real
``hazmon serve``, valid, near-valid, garbage and huge. Ingest keeps running; every valid reading
is stored exactly once with its value; nothing invalid is stored; every bad reading and every bad
message has a rejection with a code and a non-empty reason (GET /api/v1/rejections); /readyz
stays 200.

Each message goes out on a gateway code of its own, so its rejections are told apart by their
``gateway``. Every reading carries a time used by no other, so what is stored is told apart by
time. Each example ends with a sentinel (garbage): once its rejection is listed, everything
published before it has been handled (one subscriber, in order).
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.support import Gateway, Hazmon, wait_for

E = "FZ"
TAGS = ("T1", "T2", "T3", "T4", "T5")
MAX_PAYLOAD = 256 * 1024  # HAZMON_MAX_PAYLOAD_BYTES, the fixture's default
T0 = time.time_ns() // 1_000_000 - 3_600_000  # readings an hour back, 1 ms apart: never equal
_clock = itertools.count()
_gateways = itertools.count()


def next_ts() -> int:
    return T0 + next(_clock)


@pytest.fixture(scope="module")
def world(hazmon: Hazmon, mqtt_url: str) -> Iterator[dict[str, Any]]:
    api = hazmon.api()
    assert api.post("/api/v1/enterprises", json={"code": E, "name": "fuzz"}).status_code == 201
    table = "tag,kind\n" + "".join(f"{t},level\n" for t in TAGS)
    r = api.put(f"/api/v1/enterprises/{E}/points", content=table, headers={"Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    gw = Gateway(mqtt_url, E, "fuzzer")
    yield {"api": api, "gw": gw, "kinds": Counter(), "messages": 0, "readings": 0}
    gw.close()
    api.close()


# ---------------------------------------------------------------- what a message may hold

@dataclass
class Message:
    """A payload and what ingest must make of it."""

    kind: str
    payload: bytes
    stored: list[tuple[str, int, float, str]] = field(default_factory=list)  # tag, ts, value, quality
    not_stored: list[tuple[str, int]] = field(default_factory=list)          # tag, ts
    rejections: int = 0
    topic_kind: str = "readings"


def rfc3339(ts_ms: int, offset_min: int) -> str:
    zone = UTC if offset_min == 0 else timezone(timedelta(minutes=offset_min))
    text = datetime.fromtimestamp(ts_ms / 1000, zone).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z") if offset_min == 0 else text


VALUES = st.floats(allow_nan=False, allow_infinity=False, width=64)
OFFSETS = st.sampled_from([0, 480, -330, 345, -720, 840])


@st.composite
def good_reading(draw: st.DrawFn) -> tuple[dict[str, Any], tuple[str, int, float, str]]:
    tag, value, ts = draw(st.sampled_from(TAGS)), draw(VALUES), next_ts()
    reading: dict[str, Any] = {"tag": tag, "value": value,
                               "ts": ts if draw(st.booleans()) else rfc3339(ts, draw(OFFSETS))}
    quality = draw(st.sampled_from(["good", "bad", None, "absent"]))
    if quality != "absent":
        reading["quality"] = quality
    return reading, (tag, ts, value, "bad" if quality == "bad" else "good")


BAD_TAGS = st.one_of(st.integers(), st.none(), st.just(""), st.just("T" * 65), st.just(["T1"]),
                     st.text(min_size=1, max_size=10).filter(lambda t: any(
                         not (c.isascii() and (c.isalnum() or c in "_.:-")) for c in t)))
# Non-finite values as JSON can write them: numbers that overflow a double (NaN and Infinity are
# not JSON; a message holding them is refused whole, below).
RAW = {'"@1e400@"': "1e400", '"@-1e400@"': "-1e400", '"@bigint@"': "1" + "0" * 400}
BAD_VALUES = st.sampled_from([True, False, "1.5", None, [], {}, "NaN", *(k.strip('"') for k in RAW)])
BAD_QUALITY = st.sampled_from(["BAD", "Good", "uncertain", 0, 1, True, ["bad"], {}])


@st.composite
def bad_reading(draw: st.DrawFn) -> tuple[dict[str, Any], tuple[str, int]]:
    """A reading with exactly one defect."""
    tag, ts = draw(st.sampled_from(TAGS)), next_ts()
    reading: dict[str, Any] = {"tag": tag, "value": 1.0, "ts": ts}
    defect = draw(st.sampled_from(["unknown_tag", "bad_tag", "bad_value", "no_value",
                                   "bad_quality", "bad_ts", "old_ts", "future_ts"]))
    if defect == "unknown_tag":
        reading["tag"] = "NOPE-" + draw(st.sampled_from(TAGS))
    elif defect == "bad_tag":
        reading["tag"] = draw(BAD_TAGS)
    elif defect == "bad_value":
        reading["value"] = draw(BAD_VALUES)
    elif defect == "no_value":
        del reading["value"]
    elif defect == "bad_quality":
        reading["quality"] = draw(BAD_QUALITY)
    elif defect == "bad_ts":
        reading["ts"] = draw(st.sampled_from([-1, 1.5, float(ts), str(ts), True, 2**63, "yesterday",
                                              "2026-13-01T00:00:00Z", "2026-11-23T10:00:00"]))
    elif defect == "old_ts":
        reading["ts"] = draw(st.integers(0, 946_684_799_999))  # before 2000
    else:
        reading["ts"] = time.time_ns() // 1_000_000 + 3 * 3_600_000  # past the 1 h tolerance
    return reading, (tag, ts)


def dumps(obj: Any) -> bytes:
    text = json.dumps(obj, allow_nan=True, ensure_ascii=False)
    for placeholder, raw in RAW.items():
        text = text.replace(placeholder, raw)
    return text.encode()


@st.composite
def valid_message(draw: st.DrawFn) -> Message:
    pairs = draw(st.lists(good_reading(), min_size=1, max_size=6))
    body: dict[str, Any] = {"readings": [r for r, _ in pairs]}
    if draw(st.booleans()):
        body["ts"] = next_ts()  # every reading has its own ts: the message's is not used
    return Message("valid", dumps(body), stored=[e for _, e in pairs])


@st.composite
def mixed_message(draw: st.DrawFn) -> Message:
    goods = draw(st.lists(good_reading(), max_size=4))
    bads = draw(st.lists(bad_reading(), min_size=1, max_size=4))
    items = [("good", r, e) for r, e in goods] + [("bad", r, e) for r, e in bads]
    items = draw(st.permutations(items))
    body = {"readings": [r for _, r, _ in items]}
    return Message("mixed", dumps(body), stored=[e for k, _, e in items if k == "good"],
                   not_stored=[e for k, _, e in items if k == "bad"], rejections=len(bads))


def _looks_like_a_message(data: bytes) -> bool:
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return False
    return isinstance(obj, dict) and "readings" in obj


@st.composite
def bad_message(draw: st.DrawFn) -> Message:
    """Rejected whole: nothing of it is stored."""
    pairs = draw(st.lists(good_reading(), min_size=1, max_size=3))
    inner = [e for _, e in pairs]
    good = dumps({"readings": [r for r, _ in pairs]})
    variant = draw(st.sampled_from([
        "bytes", "text", "cut", "trailing", "utf16", "not_object", "no_readings",
        "readings_not_list", "bad_message_ts", "nan_token", "not_objects", "oversized"]))
    if variant == "bytes":
        payload = draw(st.binary(max_size=300).filter(lambda b: not _looks_like_a_message(b)))
    elif variant == "text":
        payload = draw(st.text(max_size=200).filter(
            lambda t: not _looks_like_a_message(t.encode("utf-8", "surrogatepass")))).encode(
            "utf-8", "surrogatepass")
    elif variant == "cut":
        payload = good[: draw(st.integers(0, len(good) - 1))]
    elif variant == "trailing":
        payload = good + draw(st.sampled_from([b"x", b"}", b",", b"\x00", b"{}"]))
    elif variant == "utf16":
        payload = good.decode().encode("utf-16")
    elif variant == "not_object":
        payload = dumps(draw(st.one_of(st.integers(), st.text(max_size=20), st.none(),
                                       st.just([r for r, _ in pairs]), st.booleans())))
    elif variant == "no_readings":
        payload = dumps({"reading": [r for r, _ in pairs], "ts": next_ts()})
    elif variant == "readings_not_list":
        payload = dumps({"readings": draw(st.one_of(st.just(pairs[0][0]), st.text(max_size=10),
                                                    st.integers(), st.none()))})
    elif variant == "bad_message_ts":
        body = {"ts": draw(st.sampled_from([-5, "soon", 1.25, [], "2026-11-23"])),
                "readings": [r for r, _ in pairs]}
        payload = dumps(body)
    elif variant == "nan_token":
        body = {"readings": [r for r, _ in pairs] + [{"tag": "T1", "value": draw(st.sampled_from(
            [math.nan, math.inf, -math.inf])), "ts": next_ts()}]}
        payload = dumps(body)
    elif variant == "not_objects":
        payload = dumps({"readings": [r for r, _ in pairs] + [draw(st.one_of(
            st.integers(), st.text(max_size=5), st.none(), st.just(["T1", 1.0])))]})
    else:
        filler = [{"tag": "T1", "value": 1.0, "ts": next_ts()} for _ in range(9000)]
        payload = dumps({"readings": [r for r, _ in pairs] + filler})
        assert len(payload) > MAX_PAYLOAD
    return Message(f"bad:{variant}", payload, not_stored=[(t, ts) for t, ts, _, _ in inner],
                   rejections=1)


@st.composite
def bad_status(draw: st.DrawFn) -> Message:
    """Anything but online/offline (trimmed, any case: those are accepted by design)."""
    payload = draw(st.one_of(st.binary(max_size=80), st.sampled_from(
        [b'"online"', b"", b"1", b"on line", b"online!", b"offline" * 10, b"\xff\xfeonline"])))
    if payload.decode("utf-8", "replace").strip().lower() in ("online", "offline"):
        payload = b"?" + payload
    return Message("bad:status", payload, rejections=1, topic_kind="status")


MESSAGES = st.one_of(valid_message(), mixed_message(), bad_message(), bad_status())


# ---------------------------------------------------------------- the run

def rejections_by_gateway(api: httpx.Client, since: str) -> dict[str, list[dict[str, Any]]]:
    items = api.get("/api/v1/rejections", params={"enterprise": E, "since": since,
                                                   "limit": 10000}).json()["items"]
    out: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        out.setdefault(item["gateway"], []).append(item)
    return out


def stored_readings(api: httpx.Client) -> dict[tuple[str, int], tuple[float, str]]:
    start = datetime.fromtimestamp((T0 - 1000) / 1000, UTC).isoformat()
    end = datetime.fromtimestamp((T0 + 86_400_000) / 1000, UTC).isoformat()
    out = {}
    for tag in TAGS:
        r = api.get(f"/api/v1/enterprises/{E}/points/{tag}/readings",
                    params={"start": start, "end": end})
        assert r.status_code == 200, r.text
        for item in r.json()["items"]:
            ts = int(datetime.fromisoformat(item["ts"]).timestamp() * 1000 + 0.5)
            out[(tag, ts)] = (item["value"], item["quality"])
    return out


@settings(max_examples=25, derandomize=True, deadline=None, database=None,
          phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.filter_too_much, HealthCheck.large_base_example])
@given(messages=st.lists(MESSAGES, min_size=8, max_size=30))
def test_ingest_survives_and_accounts_for_every_message(hazmon: Hazmon, world: dict[str, Any],
                                                         messages: list[Message]) -> None:
    api, gw = world["api"], world["gw"]
    since = datetime.now(UTC).isoformat()
    sentinel = Message("sentinel", b"\xffsentinel", rejections=1)
    sent: dict[str, Message] = {}
    for message in [*messages, sentinel]:
        code = f"fz{next(_gateways):05d}"
        sent[code] = message
        gw.publish_raw(message.payload, topic=f"hazmon/v1/{E}/{code}/{message.topic_kind}")
    world["messages"] += len(sent)
    world["kinds"].update(m.kind.split(":")[0] for m in messages)
    world["readings"] += sum(len(m.stored) for m in messages)
    sentinel_gw = next(reversed(sent))
    wait_for(lambda: sentinel_gw in rejections_by_gateway(api, since), timeout=30,
             what="the sentinel's rejection (ingest is stuck or dead)")

    rejected = rejections_by_gateway(api, since)
    stored = stored_readings(api)
    problems = []
    for code, message in sent.items():
        got = rejected.get(code, [])
        shown = message.payload[:300]
        if len(got) != message.rejections:
            problems.append(f"{code} {message.kind}: {len(got)} rejections, expected "
                            f"{message.rejections}: {shown!r} -> {[g['code'] for g in got]}")
        for item in got:
            if not (item["reason"] or "").strip() or not item["code"]:
                problems.append(f"{code}: a rejection without a reason: {item}")
            if item["topic"] != f"hazmon/v1/{E}/{code}/{message.topic_kind}":
                problems.append(f"{code}: rejection names topic {item['topic']!r}")
        for tag, ts, value, quality in message.stored:
            if stored.get((tag, ts)) != (value, quality) and not (
                    (tag, ts) in stored and stored[(tag, ts)][0] == value == 0):  # -0.0
                problems.append(f"{code} {message.kind}: reading {tag}@{ts}={value!r} ({quality}) "
                                f"stored as {stored.get((tag, ts))}: {shown!r}")
        for tag, ts in message.not_stored:
            if (tag, ts) in stored:
                problems.append(f"{code} {message.kind}: refused reading {tag}@{ts} was stored: "
                                f"{shown!r}")
    assert not problems, "\n".join(problems[:30])
    assert httpx.get(hazmon.url + "/readyz", timeout=10).status_code == 200


def test_after_the_fuzz(hazmon: Hazmon, world: dict[str, Any]) -> None:
    """Hundreds of messages went through, and a plain reading still goes in."""
    assert world["messages"] >= 200, world["messages"]
    assert world["readings"] >= 100 and {"valid", "mixed", "bad"} <= set(world["kinds"]), world
    ts = next_ts()
    world["gw"].publish([{"tag": "T1", "value": 7.25, "ts": ts}])
    wait_for(lambda: stored_readings(world["api"]).get(("T1", ts)), what="a reading after the fuzz")
    assert hazmon.proc is not None and hazmon.proc.poll() is None
    assert httpx.get(hazmon.url + "/readyz", timeout=10).status_code == 200

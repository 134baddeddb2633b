"""Decode one gateway MQTT message into columns (CONTRACT.md, "MQTT: readings").

Pure: bytes and the enterprise's tag lookup in, numpy columns and rejections out;
no I/O, no clock (the time of receipt and the accepted window are arguments), and
nothing raises, whatever the bytes.

Speed: the payload is parsed once by orjson; the columns are built with a handful
of C-level list operations per message (not per reading) and checked as arrays.
Only readings that fail a check go through the per-reading validator
(``_check_reading``), which is also the reference the fast path is tested against.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import repeat
from typing import Any, NamedTuple

import numpy as np
import orjson

__all__ = [
    "TAG_RE",
    "TOPIC_RE",
    "Decoded",
    "Rejection",
    "Topic",
    "decode_readings",
    "decode_status",
    "parse_topic",
    "status_rejection",
    "topic_rejection",
]

_NAME = r"[A-Za-z0-9_.-]{1,64}"
TOPIC_RE = re.compile(rf"\Ahazmon/v1/({_NAME})/({_NAME})/(readings|status)\Z")
TAG_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}\Z")
# All tags of a message joined by "\n" (outside the tag alphabet): one regex call, not n.
_TAGS_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}(?:\n[A-Za-z0-9_.:-]{1,64})*\Z")
_RFC3339_RE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}"
    r"(?:\.[0-9]+)?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})\Z"
)
_NAIVE_RE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?\Z"
)
_EXCERPT = 200
_I64_MAX = 2**63 - 1
_UNIX_DAY0 = date(1970, 1, 1).toordinal()
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_QUALITY = {None: 0, "good": 0, "bad": 1}  # 2 = anything else
_TS_HINT = (
    "send integer epoch milliseconds or an RFC 3339 string with an offset, "
    'e.g. "2026-11-23T10:00:00.100+08:00"'
)
_NUMBER_TYPES = frozenset((int, float))  # by exact type: bool is not a number here
_MISSING: Any = object()


@dataclass(frozen=True, slots=True)
class Topic:
    """The parts of a hazmon topic."""

    enterprise: str
    gateway: str
    kind: str  # "readings" | "status"


@dataclass(slots=True)
class Rejection:
    """Why (part of) a message was refused; ``code`` is a stable Prometheus label."""

    code: str
    reason: str
    tag: str | None
    excerpt: str
    index: int | None = None  # position in "readings"; None when the whole message is refused


@dataclass(slots=True)
class Decoded:
    """The kept readings of one message as columns, and what was refused."""

    point: np.ndarray  # int32
    ts_ms: np.ndarray  # int64 epoch milliseconds
    value: np.ndarray  # float64, finite
    bad: np.ndarray  # bool, quality "bad"
    rejections: list[Rejection] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.point)


class _Ctx(NamedTuple):
    """What every reading of one message is judged against."""

    enterprise: str
    lookup: Mapping[str, int]
    msg_ts: int
    msg_ts_from: str  # "the message ts" | "the time of receipt"
    min_ts: int
    max_ts: int


# ---------------------------------------------------------------- topics and status


def parse_topic(topic: str) -> Topic | None:
    """Split ``hazmon/v1/{enterprise}/{gateway}/(readings|status)``; None when it is not one."""
    m = TOPIC_RE.match(topic) if type(topic) is str else None
    return Topic(m[1], m[2], m[3]) if m else None


def decode_status(payload: bytes) -> str | None:
    """``"online"`` or ``"offline"`` (whitespace trimmed, any case); None for anything else."""
    if not isinstance(payload, (bytes, bytearray, memoryview)) or len(payload) > 64:
        return None
    try:
        text = bytes(payload).decode("utf-8").strip().lower()
    except (UnicodeDecodeError, TypeError):
        return None
    return text if text in ("online", "offline") else None


def topic_rejection(topic: str) -> Rejection:
    """The rejection of a message on a topic that ``parse_topic`` refuses."""
    return Rejection(
        "bad_topic",
        f"topic {_show(topic)} is not hazmon/v1/{{enterprise}}/{{gateway}}/readings or .../status "
        "with enterprise and gateway matching [A-Za-z0-9_.-]{1,64}",
        None,
        _show(topic)[:_EXCERPT],
    )


def status_rejection(payload: bytes) -> Rejection:
    """The rejection of a status payload that ``decode_status`` refuses."""
    return Rejection(
        "bad_status",
        'status payload must be "online" or "offline"',
        None,
        _payload_excerpt(payload),
    )


# ---------------------------------------------------------------- readings


def decode_readings(
    payload: bytes,
    *,
    enterprise: str,
    lookup: Mapping[str, int] | None,
    received_ms: int,
    min_ts_ms: int,
    max_ts_ms: int,
    max_payload: int = 256 * 1024,
    max_readings: int = 10_000,
) -> Decoded:
    """Decode a readings message; readings failing a rule are left out, each with a Rejection.

    A JSON ``null`` for the optional ``ts`` or ``quality`` counts as absent.
    """
    if lookup is None:
        return _empty([_unknown_enterprise(enterprise, payload)])
    oversized = _check_size(payload, max_payload)
    if oversized is not None:
        return _empty([oversized])
    obj = _parse_json(payload)
    if isinstance(obj, Rejection):
        return _empty([obj])
    readings = _readings_of(obj, payload, max_readings)
    if isinstance(readings, Rejection):
        return _empty([readings])
    msg_ts = obj.get("ts")
    if msg_ts is None:
        ctx = _Ctx(enterprise, lookup, received_ms, "the time of receipt", min_ts_ms, max_ts_ms)
    else:
        ms = _ts_ms(msg_ts)
        if ms is None:
            why = _ts_problem(msg_ts)
            return _empty([_whole("bad_ts", f"message ts {_show(msg_ts)} {why}", payload)])
        ctx = _Ctx(enterprise, lookup, ms, "the message ts", min_ts_ms, max_ts_ms)
    if not readings:
        return _empty([])
    try:
        fast = _decode_fast(readings, ctx)
    except Exception:  # noqa: BLE001 - an odd Mapping or a fast-path gap: the reference decides
        fast = None
    return fast if fast is not None else _decode_slow(readings, ctx)


def _unknown_enterprise(enterprise: str, payload: bytes) -> Rejection:
    return _whole(
        "unknown_enterprise",
        f"enterprise {enterprise!r} is not registered; create it with POST /api/v1/enterprises "
        "and upload its point table, or correct the enterprise in the gateway's topic",
        payload,
    )


def _check_size(payload: bytes, max_payload: int) -> Rejection | None:
    """Bytes within the size limit (checked before parsing), or the Rejection."""
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        return _whole("not_json", f"payload is a {type(payload).__name__}, not bytes", b"")
    if len(payload) > max_payload:
        return _whole(
            "oversized",
            f"payload is {len(payload)} bytes, over the limit of {max_payload}; "
            "split the readings across several messages",
            payload,
        )
    return None


def _parse_json(payload: bytes) -> Any:
    """The parsed payload, or a not_json Rejection.

    orjson refuses numbers that overflow a double (1e400); the contract makes such a value
    one bad reading, not a bad message, so the standard parser (which yields inf) retries.
    """
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        error = str(exc)
    try:
        text = bytes(payload).decode("utf-8")
    except UnicodeDecodeError as exc:
        return _whole(
            "not_json",
            f"payload is not valid UTF-8 (byte {exc.start}); encode the JSON as UTF-8",
            payload,
        )
    obj = _parse_json_stdlib(text)
    if obj is not _MISSING:
        return obj
    hint = ""
    if re.search(r"\b(NaN|-?Infinity)\b", text):
        hint = (
            '; NaN and Infinity are not JSON: send a finite number (with quality "bad" if invalid)'
        )
    return _whole("not_json", f"payload is not valid JSON: {error}{hint}", payload)


def _parse_json_stdlib(text: str) -> Any:
    """``text`` parsed by the standard library (no BOM, no NaN/Infinity), or _MISSING."""
    if text.startswith("\ufeff"):
        return _MISSING
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        return _MISSING


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _readings_of(obj: Any, payload: bytes, max_readings: int) -> list[Any] | Rejection:
    """The ``readings`` list of a message, or the bad_shape / too_many_readings Rejection."""
    if type(obj) is not dict:
        return _whole(
            "bad_shape",
            f'payload must be a JSON object {{"ts"?, "readings": [...]}}, got {_json_kind(obj)}',
            payload,
        )
    readings = obj.get("readings", _MISSING)
    if readings is _MISSING:
        return _whole("bad_shape", 'message has no "readings" list', payload)
    if type(readings) is not list:
        return _whole(
            "bad_shape", f'"readings" must be a list, got {_json_kind(readings)}', payload
        )
    if len(readings) > max_readings:
        return _whole(
            "too_many_readings",
            f"message holds {len(readings)} readings, over the limit of {max_readings}; "
            "split them across several messages",
            payload,
        )
    if readings and set(map(type, readings)) != {dict}:
        i, r = next((i, r) for i, r in enumerate(readings) if type(r) is not dict)
        return _whole(
            "bad_shape",
            f'readings[{i}] must be an object {{"tag", "value", "ts"?, "quality"?}}, '
            f"got {_json_kind(r)}",
            payload,
        )
    return readings


def _decode_fast(readings: list[dict[str, Any]], ctx: _Ctx) -> Decoded | None:
    """Columns built list-at-a-time; None when a reading lacks "tag"/"value" or a tag is unhashable.

    Each column step is a few C-level passes over the message and only marks the
    positions it refuses in ``flag``; ``_check_reading`` then explains those.
    """
    try:
        tags = [r["tag"] for r in readings]
        vals = [r["value"] for r in readings]
        points = list(map(ctx.lookup.get, tags))
    except (KeyError, TypeError):
        return None
    flag = np.zeros(len(readings), np.bool_)
    point = _point_column(tags, points, flag)
    value = _value_column(vals, flag)
    ts = _ts_column(list(map(dict.get, readings, repeat("ts"))), ctx, flag)
    bad = _bad_column(list(map(dict.get, readings, repeat("quality"))), flag)
    if not flag.any():
        return Decoded(point, ts, value, bad, [])
    rejections = []
    for i in np.flatnonzero(flag).tolist():
        checked = _check_reading(i, readings[i], ctx)
        if isinstance(checked, Rejection):
            rejections.append(checked)
        else:  # the reference accepts what a fast check flagged: it decides
            point[i], ts[i], value[i], bad[i] = checked
            flag[i] = False
    keep = ~flag
    return Decoded(point[keep], ts[keep], value[keep], bad[keep], rejections)


def _point_column(tags: list[Any], points: list[int | None], flag: np.ndarray) -> np.ndarray:
    """Point ids; flags unknown tags and tags off the pattern."""
    n = len(tags)
    if None in points:
        flag[[i for i, p in enumerate(points) if p is None]] = True
        points = [0 if p is None else p for p in points]
    try:
        joined = "\n".join(tags)
        tags_ok = joined.count("\n") == n - 1 and _TAGS_RE.match(joined) is not None
    except TypeError:  # a tag that is not a string
        tags_ok = False
    if not tags_ok:
        flag[[i for i, t in enumerate(tags) if type(t) is not str or not TAG_RE.match(t)]] = True
    return np.array(points, np.int32)


def _value_column(vals: list[Any], flag: np.ndarray) -> np.ndarray:
    """Values as float64; flags anything not a finite JSON number."""
    value = None
    if set(map(type, vals)) <= _NUMBER_TYPES:
        with contextlib.suppress(OverflowError):  # an integer too large for a double
            value = np.array(vals, np.float64)
    if value is None:  # NaN marks "not a number" here; non-finite values are refused anyway
        value = np.array([_finite_or_nan(v) for v in vals], np.float64)
    flag |= ~np.isfinite(value)
    return value


def _ts_column(tss: list[Any], ctx: _Ctx, flag: np.ndarray) -> np.ndarray:
    """Times as int64 ms (inherited where absent); flags invalid and out-of-window times."""
    n = len(tss)
    if tss.count(None) == n:
        if not ctx.min_ts <= ctx.msg_ts <= ctx.max_ts:
            flag[:] = True
        return np.full(n, ctx.msg_ts, np.int64)
    ts = _int_ts_column(tss)
    if ts is not None:  # every reading has integer ms: negatives are refused with the window
        flag |= (ts < max(ctx.min_ts, 0)) | (ts > ctx.max_ts)
        return ts
    ms = [ctx.msg_ts if t is None else _ts_ms(t) for t in tss]
    if None in ms:
        flag[[i for i, t in enumerate(ms) if t is None]] = True
        ms = [ctx.msg_ts if t is None else t for t in ms]
    ts = np.array(ms, np.int64)
    flag |= (ts < ctx.min_ts) | (ts > ctx.max_ts)
    return ts


def _bad_column(quals: list[Any], flag: np.ndarray) -> np.ndarray:
    """Quality "bad" as bool; flags qualities other than good/bad/absent."""
    if quals.count(None) == len(quals):
        return np.zeros(len(quals), np.bool_)
    try:
        codes = np.array(list(map(_QUALITY.get, quals, repeat(2))), np.int8)
    except TypeError:  # an unhashable quality (array, object)
        codes = np.array([_QUALITY.get(q, 2) if type(q) is str else 2 for q in quals], np.int8)
    flag |= codes == 2
    bad: np.ndarray = codes == 1
    return bad


def _int_ts_column(tss: list[Any]) -> np.ndarray | None:
    """The ts column when every reading's ts is a JSON integer that fits int64, else None."""
    if set(map(type, tss)) != {int}:
        return None
    try:
        return np.array(tss, np.int64)
    except OverflowError:
        return None


def _decode_slow(readings: list[dict[str, Any]], ctx: _Ctx) -> Decoded:
    """Reading by reading through ``_check_reading``: the reference for ``_decode_fast``."""
    rows: list[tuple[int, int, float, bool]] = []
    rejections: list[Rejection] = []
    for i, r in enumerate(readings):
        checked = _check_reading(i, r, ctx)
        if isinstance(checked, Rejection):
            rejections.append(checked)
        else:
            rows.append(checked)
    return Decoded(
        np.array([r[0] for r in rows], np.int32),
        np.array([r[1] for r in rows], np.int64),
        np.array([r[2] for r in rows], np.float64),
        np.array([r[3] for r in rows], np.bool_),
        rejections,
    )


def _check_reading(
    i: int, r: dict[str, Any], ctx: _Ctx
) -> tuple[int, int, float, bool] | Rejection:
    """One reading judged by every rule in turn: its columns, or the first rule it breaks."""
    tag = r.get("tag", _MISSING)
    if tag is _MISSING:
        return _reading_rej(
            i, r, "bad_tag", None, 'has no "tag"; send the tag number (位号) as a string'
        )
    if type(tag) is not str or not TAG_RE.match(tag):
        return _reading_rej(
            i,
            r,
            "bad_tag",
            None,
            f"tag {_show(tag)} is not a string matching [A-Za-z0-9_.:-]{{1,64}}",
        )
    point = ctx.lookup.get(tag)
    if point is None:
        ent = ctx.enterprise
        return _reading_rej(
            i, r, "unknown_tag", tag,
            f"not in the point table of enterprise {ent!r}; "
            f"upload it with PUT /api/v1/enterprises/{ent}/points",
        )  # fmt: skip
    value = r.get("value", _MISSING)
    if value is _MISSING:
        return _reading_rej(i, r, "bad_value", tag, 'has no "value"; send it as a JSON number')
    number = _finite_or_nan(value)
    if math.isnan(number):  # not a finite JSON number
        return _reading_rej(i, r, "bad_value", tag, _value_problem(value))
    raw_ts = r.get("ts")
    ts = ctx.msg_ts if raw_ts is None else _ts_ms(raw_ts)
    if ts is None:
        return _reading_rej(i, r, "bad_ts", tag, f"ts {_show(raw_ts)} {_ts_problem(raw_ts)}")
    if not ctx.min_ts <= ts <= ctx.max_ts:
        origin = "ts" if raw_ts is not None else f"time (from {ctx.msg_ts_from})"
        return _reading_rej(
            i, r, "ts_out_of_range", tag,
            f"{origin} {_fmt_ms(ts)} ({ts} ms) is outside the accepted window "
            f"{_fmt_ms(ctx.min_ts)} .. {_fmt_ms(ctx.max_ts)}; check the gateway's clock",
        )  # fmt: skip
    quality = r.get("quality")
    if quality is not None and (type(quality) is not str or quality not in _QUALITY):
        return _reading_rej(
            i, r, "bad_quality", tag, f'quality {_show(quality)} is not "good" or "bad"'
        )
    return point, ts, number, quality == "bad"


# ---------------------------------------------------------------- values and times


def _finite_or_nan(v: Any) -> float:
    """A JSON number as a finite float; NaN for anything else (bool, string, inf, too large)."""
    if type(v) is float:
        return v if v - v == 0.0 else float("nan")  # inf - inf is nan
    if type(v) is int:
        try:
            return float(v)
        except OverflowError:
            return float("nan")
    return float("nan")


def _value_problem(v: Any) -> str:
    if type(v) is float:
        return "value is not a finite number (it overflows a 64-bit float); send a finite number"
    if type(v) is int:
        return f"value {_show(v)} is too large for a 64-bit float"
    return f"value {_show(v)} is a {_json_kind(v)}; send a JSON number"


def _ts_ms(t: Any) -> int | None:
    """A time as epoch milliseconds, or None when it is not one the contract allows."""
    if type(t) is int:
        return t if 0 <= t <= _I64_MAX else None
    if type(t) is str:
        return _parse_rfc3339(t)
    return None


# The start of each (local minute, offset) seen, as epoch ms: a gateway's readings share
# a few minutes, so the date arithmetic runs once per minute, not once per reading.
_MINUTE_MS: dict[str, int] = {}
# The first 1-3 digits of a fraction of a second as milliseconds: "1" 100, "12" 120, "123" 123.
_FRACTION_MS = {f"{i:0{w}d}": i * 10 ** (3 - w) for w in (1, 2, 3) for i in range(10**w)}


def _parse_rfc3339(s: str) -> int | None:
    """An RFC 3339 time with an offset as epoch ms (sub-ms truncated); None if invalid.

    After the layout check the fields sit at fixed positions: "YYYY-MM-DDTHH:MM:SS",
    then an optional fraction, then "Z" or "+hh:mm".
    """
    if _RFC3339_RE.match(s) is None:
        return None
    if s[-1] in "Zz":
        offset, frac = "Z", s[19:-1]
    else:
        offset, frac = s[-6:], s[19:-6]
    key = s[:16] + offset
    minute = _MINUTE_MS.get(key)
    if minute is None:
        minute = _minute_ms(s[:16], offset)
        if minute is None:
            return None
        if len(_MINUTE_MS) >= 4096:
            _MINUTE_MS.clear()
        _MINUTE_MS[key] = minute
    sec = int(s[17:19])
    ms = _FRACTION_MS[frac[1:4]] if frac else 0
    if sec >= 60:
        if sec > 60:
            return None
        sec, ms = 59, 999  # a leap second: the last millisecond of its minute keeps the order
    return minute + sec * 1000 + ms


def _minute_ms(local: str, offset: str) -> int | None:
    """Epoch ms of "YYYY-MM-DDTHH:MM" at ``offset`` ("Z" or "+hh:mm"); None if no such time."""
    hour, minute = int(local[11:13]), int(local[14:16])
    off_h, off_m = (0, 0) if offset == "Z" else (int(offset[1:3]), int(offset[4:6]))
    if hour > 23 or minute > 59 or off_h > 23 or off_m > 59:
        return None
    try:
        days = date(int(local[0:4]), int(local[5:7]), int(local[8:10])).toordinal() - _UNIX_DAY0
    except ValueError:
        return None
    off = (off_h * 60 + off_m) * (-1 if offset[0] == "-" else 1)
    return (days * 1440 + hour * 60 + minute - off) * 60_000


def _ts_problem(t: Any) -> str:
    """Why ``_ts_ms`` refused ``t``, for a person."""
    if type(t) is int:
        return f"is {'negative' if t < 0 else 'too large'}; {_TS_HINT}"
    if type(t) is float:
        return f"is a float; {_TS_HINT}"
    if type(t) is str and _NAIVE_RE.match(t):
        return 'has no UTC offset; append "Z" or an offset such as "+08:00"'
    if type(t) is str and _RFC3339_RE.match(t):
        return "is not a valid date and time"
    return f"is not a time; {_TS_HINT}"


def _fmt_ms(ms: int) -> str:
    try:
        when = _EPOCH + timedelta(milliseconds=ms)
        return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    except OverflowError:
        return f"{ms} ms"


# ---------------------------------------------------------------- rejections


def _empty(rejections: list[Rejection]) -> Decoded:
    return Decoded(
        np.empty(0, np.int32), np.empty(0, np.int64), np.empty(0, np.float64),
        np.empty(0, np.bool_), rejections,
    )  # fmt: skip


def _whole(code: str, reason: str, payload: bytes) -> Rejection:
    """A rejection of the whole message."""
    return Rejection(code, reason, None, _payload_excerpt(payload))


def _reading_rej(i: int, r: Any, code: str, tag: str | None, problem: str) -> Rejection:
    """A rejection of reading ``i``; ``tag`` only when it is a well-formed tag."""
    where = f"readings[{i}]" + (f" (tag {tag!r})" if tag is not None else "")
    return Rejection(code, f"{where}: {problem}", tag, _obj_excerpt(r), i)


def _payload_excerpt(payload: Any) -> str:
    try:
        return bytes(payload[:_EXCERPT]).decode("utf-8", errors="replace")
    except (TypeError, ValueError):  # not bytes-like
        return ""


def _obj_excerpt(obj: Any) -> str:
    """A reading re-encoded as JSON (inf as Infinity), cut to the excerpt length, UTF-8 safe."""
    try:
        text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    except (RecursionError, ValueError, TypeError):  # deep nesting; nothing else from parsed JSON
        text = "(not representable)"
    return text.encode("utf-8", "backslashreplace").decode("utf-8")[:_EXCERPT]


def _show(x: Any) -> str:
    """A value for a reason sentence: its JSON text (strings quoted), cut short."""
    text = _obj_excerpt(x)
    return text if len(text) <= 80 else text[:77] + "..."


def _json_kind(x: Any) -> str:
    kinds = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return kinds.get(type(x), "number")

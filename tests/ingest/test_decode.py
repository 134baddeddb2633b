"""Tests of ingest.decode: every rule of CONTRACT.md "MQTT: readings" on both sides of its edge.

The fast column path is also checked against the per-reading reference path on random messages.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest import decode as dec
from ingest.decode import Decoded, Topic, decode_readings, decode_status, parse_topic

T0 = 1_763_892_000_123  # 2025-11-23T10:00:00.123Z
RECEIVED = T0 + 500
MIN, MAX = T0 - 10_000, T0 + 10_000
TAG64 = "T" * 64
TAG65 = "T" * 65
LOOKUP = {"LT-1": 1, "LT-2": 2, "TT-1": 3, TAG64: 64, TAG65: 65, "a.Z_0:9-x": 7}
KW: dict[str, Any] = {
    "enterprise": "E1",
    "lookup": LOOKUP,
    "received_ms": RECEIVED,
    "min_ts_ms": MIN,
    "max_ts_ms": MAX,
}


def decode(payload: Any, **overrides: Any) -> Decoded:
    """decode_readings of bytes, or of a structure encoded as JSON (NaN/Infinity allowed)."""
    if not isinstance(payload, bytes):
        payload = json.dumps(payload).encode()
    return decode_readings(payload, **{**KW, **overrides})


def rows(d: Decoded) -> list[tuple[int, int, float, bool]]:
    return list(
        zip(d.point.tolist(), d.ts_ms.tolist(), d.value.tolist(), d.bad.tolist(), strict=True)
    )


def msg(*readings: Any, **top: Any) -> dict[str, Any]:
    return {**top, "readings": list(readings)}


def r(tag: Any = "LT-1", value: Any = 1.5, **more: Any) -> dict[str, Any]:
    return {"tag": tag, "value": value, **more}


GOOD = (1, RECEIVED, 1.5, False)  # r() kept, with the time of receipt

# (payload, kept rows, rejection codes); one comment per case.
READING_CASES = [
    # values
    pytest.param(msg(r(value=3)), [(1, RECEIVED, 3.0, False)], [], id="value-int-kept-as-float"),
    pytest.param(msg(r(value=3.42)), [(1, RECEIVED, 3.42, False)], [], id="value-float"),
    pytest.param(msg(r(value=-0.0)), [(1, RECEIVED, 0.0, False)], [], id="value-negative-zero"),
    pytest.param(msg(r(value=True)), [], ["bad_value"], id="value-bool"),
    pytest.param(msg(r(value="3.4")), [], ["bad_value"], id="value-string"),
    pytest.param(msg(r(value=None)), [], ["bad_value"], id="value-null"),
    pytest.param(msg(r(value=[1])), [], ["bad_value"], id="value-array"),
    pytest.param(msg({"tag": "LT-1"}), [], ["bad_value"], id="value-missing"),
    # 1e400 overflows a double: that reading is refused, the message is not
    pytest.param(
        b'{"readings":[{"tag":"LT-1","value":1e400},{"tag":"LT-2","value":2}]}',
        [(2, RECEIVED, 2.0, False)],
        ["bad_value"],
        id="value-1e400-overflows",
    ),
    pytest.param(
        b'{"readings":[{"tag":"LT-1","value":-1e400}]}', [], ["bad_value"], id="value-minus-1e400"
    ),
    # an integer literal too large for a double: that reading only
    pytest.param(
        b'{"readings":[{"tag":"LT-1","value":1' + b"0" * 400 + b'},{"tag":"LT-2","value":2}]}',
        [(2, RECEIVED, 2.0, False)],
        ["bad_value"],
        id="value-400-digit-integer",
    ),
    # an integer beyond int64 is still a finite float
    pytest.param(
        msg(r(value=2**64)), [(1, RECEIVED, float(2**64), False)], [], id="value-uint64-plus"
    ),
    # quality
    pytest.param(msg(r(quality="good")), [GOOD], [], id="quality-good"),
    pytest.param(msg(r(quality="bad")), [(1, RECEIVED, 1.5, True)], [], id="quality-bad"),
    pytest.param(msg(r(quality=None)), [GOOD], [], id="quality-null-is-default"),
    pytest.param(msg(r(quality="BAD")), [], ["bad_quality"], id="quality-wrong-case"),
    pytest.param(msg(r(quality="uncertain")), [], ["bad_quality"], id="quality-other-word"),
    pytest.param(msg(r(quality=0)), [], ["bad_quality"], id="quality-number"),
    pytest.param(msg(r(quality=["bad"])), [], ["bad_quality"], id="quality-array"),
    # tags
    pytest.param(msg(r(tag=TAG64)), [(64, RECEIVED, 1.5, False)], [], id="tag-64-chars"),
    # 65 chars is refused even when the lookup knows it
    pytest.param(msg(r(tag=TAG65)), [], ["bad_tag"], id="tag-65-chars"),
    pytest.param(
        msg(r(tag="a.Z_0:9-x")), [(7, RECEIVED, 1.5, False)], [], id="tag-every-char-class"
    ),
    pytest.param(msg(r(tag="")), [], ["bad_tag"], id="tag-empty"),
    pytest.param(msg(r(tag="LT 1")), [], ["bad_tag"], id="tag-space"),
    pytest.param(msg(r(tag="LT-1\n")), [], ["bad_tag"], id="tag-trailing-newline"),
    pytest.param(msg(r(tag="位号")), [], ["bad_tag"], id="tag-non-ascii"),
    pytest.param(msg(r(tag=5)), [], ["bad_tag"], id="tag-number"),
    pytest.param(msg(r(tag=["LT-1"])), [], ["bad_tag"], id="tag-array-unhashable"),
    pytest.param(msg({"value": 1}), [], ["bad_tag"], id="tag-missing"),
    pytest.param(msg(r(tag="LT-9")), [], ["unknown_tag"], id="tag-unknown"),
    # one unknown tag among known ones: the others are kept, in order
    pytest.param(
        msg(r("LT-1", 1), r("LT-9", 2), r("LT-2", 3)),
        [(1, RECEIVED, 1.0, False), (2, RECEIVED, 3.0, False)],
        ["unknown_tag"],
        id="unknown-tag-amid-good",
    ),
    # reading times
    pytest.param(msg(r(ts=T0)), [(1, T0, 1.5, False)], [], id="ts-int-ms"),
    pytest.param(msg(r(ts=float(T0))), [], ["bad_ts"], id="ts-float"),
    pytest.param(msg(r(ts=True)), [], ["bad_ts"], id="ts-bool"),
    pytest.param(msg(r(ts=-1)), [], ["bad_ts"], id="ts-negative"),
    pytest.param(msg(r(ts=2**63)), [], ["bad_ts"], id="ts-beyond-int64"),
    pytest.param(msg(r(ts=str(T0))), [], ["bad_ts"], id="ts-digits-string"),
    pytest.param(
        msg(r(ts="2025-11-23T10:00:00.123Z")), [(1, T0, 1.5, False)], [], id="ts-rfc3339-Z"
    ),
    pytest.param(
        msg(r(ts="2025-11-23T18:00:00.123+08:00")),
        [(1, T0, 1.5, False)],
        [],
        id="ts-rfc3339-plus-0800",
    ),
    pytest.param(
        msg(r(ts="2025-11-23T04:30:00.123-05:30")),
        [(1, T0, 1.5, False)],
        [],
        id="ts-rfc3339-minus-0530",
    ),
    pytest.param(
        msg(r(ts="2025-11-23t10:00:00.123z")),
        [(1, T0, 1.5, False)],
        [],
        id="ts-rfc3339-lowercase-t-z",
    ),
    # sub-millisecond digits are truncated, not rounded
    pytest.param(
        msg(r(ts="2025-11-23T10:00:00.123999Z")),
        [(1, T0, 1.5, False)],
        [],
        id="ts-rfc3339-sub-ms-truncated",
    ),
    pytest.param(
        msg(r(ts="2025-11-23T10:00:00Z")),
        [(1, T0 - 123, 1.5, False)],
        [],
        id="ts-rfc3339-no-fraction",
    ),
    pytest.param(
        msg(r(ts="2025-11-23T10:00:00.1Z")),
        [(1, T0 - 23, 1.5, False)],
        [],
        id="ts-rfc3339-one-digit-fraction",
    ),
    pytest.param(
        msg(r(ts="2025-11-23T10:00:00.12Z")),
        [(1, T0 - 3, 1.5, False)],
        [],
        id="ts-rfc3339-two-digit-fraction",
    ),
    # a leap second reads as the last millisecond of its minute
    pytest.param(
        msg(r(ts="2025-11-23T10:00:09.500Z")),
        [(1, T0 + 9377, 1.5, False)],
        [],
        id="ts-rfc3339-plain-second",
    ),
    pytest.param(
        msg(r(ts="2025-11-23T09:59:60Z"), r(ts="2025-11-23T09:59:60.5Z")),
        [(1, T0 - 124, 1.5, False), (1, T0 - 124, 1.5, False)],
        [],
        id="ts-leap-second",
    ),
    pytest.param(msg(r(ts="2025-11-23T10:00:00.123")), [], ["bad_ts"], id="ts-naive"),
    pytest.param(msg(r(ts="2025-11-23")), [], ["bad_ts"], id="ts-date-only"),
    pytest.param(msg(r(ts="2025-02-30T10:00:00Z")), [], ["bad_ts"], id="ts-no-such-day"),
    pytest.param(msg(r(ts="2025-11-23T24:00:00Z")), [], ["bad_ts"], id="ts-hour-24"),
    pytest.param(msg(r(ts="2025-11-23T10:60:00Z")), [], ["bad_ts"], id="ts-minute-60"),
    pytest.param(msg(r(ts="2025-11-23T10:00:61Z")), [], ["bad_ts"], id="ts-second-61"),
    pytest.param(msg(r(ts="2025-11-23T10:00:00+24:00")), [], ["bad_ts"], id="ts-offset-24h"),
    pytest.param(msg(r(ts="2025-11-23T10:00:00+0800")), [], ["bad_ts"], id="ts-offset-no-colon"),
    pytest.param(
        msg(r(ts="\uff12\uff10\uff12\uff15-11-23T10:00:00Z")),
        [],
        ["bad_ts"],
        id="ts-non-ascii-digits",
    ),
    # message ts and its inheritance
    pytest.param(msg(r(), ts=T0), [(1, T0, 1.5, False)], [], id="msg-ts-int-inherited"),
    pytest.param(
        msg(r(), ts="2025-11-23T18:00:00.123+08:00"),
        [(1, T0, 1.5, False)],
        [],
        id="msg-ts-rfc3339-inherited",
    ),
    pytest.param(msg(r(ts=T0 + 1), ts=T0), [(1, T0 + 1, 1.5, False)], [], id="reading-ts-wins"),
    pytest.param(msg(r()), [GOOD], [], id="no-ts-anywhere-takes-received"),
    pytest.param(msg(r(), ts=None), [GOOD], [], id="msg-ts-null-takes-received"),
    pytest.param(msg(r(ts=None), ts=T0), [(1, T0, 1.5, False)], [], id="reading-ts-null-inherits"),
    # the accepted window, inclusive at both ends
    pytest.param(msg(r(ts=MIN)), [(1, MIN, 1.5, False)], [], id="window-exactly-min"),
    pytest.param(msg(r(ts=MAX)), [(1, MAX, 1.5, False)], [], id="window-exactly-max"),
    pytest.param(msg(r(ts=MIN - 1)), [], ["ts_out_of_range"], id="window-1ms-before"),
    pytest.param(msg(r(ts=MAX + 1)), [], ["ts_out_of_range"], id="window-1ms-after"),
    pytest.param(
        msg(r(ts="1969-12-31T23:59:59.999Z")), [], ["ts_out_of_range"], id="window-pre-1970"
    ),
    # beyond year 9999: still a time, far out of the window
    pytest.param(msg(r(ts=2**62)), [], ["ts_out_of_range"], id="window-year-beyond-9999"),
    # an out-of-window message ts refuses the readings that inherit it, not the others
    pytest.param(
        msg(r("LT-1"), r("LT-2", ts=T0), ts=MAX + 1),
        [(2, T0, 1.5, False)],
        ["ts_out_of_range"],
        id="msg-ts-out-of-window",
    ),
    # several faults at once: one rejection per reading, in reading order
    pytest.param(
        msg(r("LT-9"), r(value="x"), r(quality="?"), r(ts=1.0), r(tag="LT-2")),
        [(2, RECEIVED, 1.5, False)],
        ["unknown_tag", "bad_value", "bad_quality", "bad_ts"],
        id="mixed-faults",
    ),
    # unknown fields are ignored, at both levels
    pytest.param(
        {"gw": "x", "readings": [r(unit="m", extra={"a": [1]})]},
        [GOOD],
        [],
        id="extra-fields-ignored",
    ),
    pytest.param(msg(), [], [], id="empty-readings"),
]


@pytest.mark.parametrize(("payload", "kept", "codes"), READING_CASES)
def test_readings(payload: Any, kept: list[tuple[int, int, float, bool]], codes: list[str]) -> None:
    d = decode(payload)
    assert rows(d) == kept
    assert [x.code for x in d.rejections] == codes
    assert_columns(d)
    for x in d.rejections:
        assert x.reason and x.index is not None and len(x.excerpt) <= 200
        assert x.reason.startswith(f"readings[{x.index}]")


def test_one_local_minute_at_two_offsets_is_two_instants() -> None:
    # the per-minute cache is keyed by the offset too
    d = decode(
        msg(r(ts="2025-11-23T10:00:00.123Z"), r(ts="2025-11-23T10:00:00.123+00:01")),
        min_ts_ms=T0 - 60_000,
    )
    assert d.ts_ms.tolist() == [T0, T0 - 60_000]


def test_received_ms_outside_window_is_refused() -> None:
    d = decode(msg(r()), received_ms=MAX + 1)
    assert [x.code for x in d.rejections] == ["ts_out_of_range"]
    assert "time of receipt" in d.rejections[0].reason


def pad(payload: bytes, size: int) -> bytes:
    """``payload`` padded with trailing JSON whitespace to exactly ``size`` bytes."""
    return payload + b" " * (size - len(payload))


ONE = json.dumps(msg(r())).encode()

# (payload, overrides, code); every case is a whole-message rejection or none (code None).
MESSAGE_CASES = [
    # size is checked on the bytes, before parsing
    pytest.param(pad(ONE, 1000), {"max_payload": 1000}, None, id="payload-exactly-max"),
    pytest.param(pad(ONE, 1001), {"max_payload": 1000}, "oversized", id="payload-max-plus-1"),
    pytest.param(b"{" * 1001, {"max_payload": 1000}, "oversized", id="oversized-before-parse"),
    pytest.param(
        json.dumps(msg(r(), r(), r())).encode(),
        {"max_readings": 3},
        None,
        id="readings-exactly-max",
    ),
    pytest.param(
        json.dumps(msg(r(), r(), r(), r())).encode(),
        {"max_readings": 3},
        "too_many_readings",
        id="readings-max-plus-1",
    ),
    pytest.param(ONE, {"lookup": None}, "unknown_enterprise", id="unknown-enterprise"),
    # an empty point table is a registered enterprise
    pytest.param(json.dumps(msg()).encode(), {"lookup": {}}, None, id="empty-lookup-registered"),
    pytest.param(b"", {}, "not_json", id="empty-payload"),
    pytest.param(b"{", {}, "not_json", id="truncated-json"),
    pytest.param(b"online", {}, "not_json", id="plain-text"),
    pytest.param(b'{"readings":[{"tag":"LT-1","value":NaN}]}', {}, "not_json", id="nan-literal"),
    pytest.param(
        b'{"readings":[{"tag":"LT-1","value":-Infinity}]}', {}, "not_json", id="infinity-literal"
    ),
    pytest.param(b'{"readings":[{"tag":"LT-1","value":1,}]}', {}, "not_json", id="trailing-comma"),
    pytest.param(b"\xff\xfe{}", {}, "not_json", id="not-utf8"),
    pytest.param(
        b'{"readings":[{"tag":"LT-\xe9","value":1}]}', {}, "not_json", id="latin1-in-string"
    ),
    pytest.param(b"\xef\xbb\xbf" + ONE, {}, "not_json", id="utf8-bom"),
    pytest.param(b"[" * 5000 + b"]" * 5000, {"max_payload": 10**6}, "not_json", id="too-deep"),
    pytest.param(b"[]", {}, "bad_shape", id="top-level-array"),
    pytest.param(b"null", {}, "bad_shape", id="top-level-null"),
    pytest.param(b'"x"', {}, "bad_shape", id="top-level-string"),
    pytest.param(b"{}", {}, "bad_shape", id="readings-missing"),
    pytest.param(b'{"readings":{}}', {}, "bad_shape", id="readings-object"),
    pytest.param(b'{"readings":null}', {}, "bad_shape", id="readings-null"),
    pytest.param(b'{"readings":"LT-1"}', {}, "bad_shape", id="readings-string"),
    # one reading that is not an object refuses the whole message
    pytest.param(
        b'{"readings":[{"tag":"LT-1","value":1},5]}', {}, "bad_shape", id="reading-number"
    ),
    pytest.param(b'{"readings":[["LT-1",1]]}', {}, "bad_shape", id="reading-array"),
    pytest.param(b'{"ts":1.5,"readings":[]}', {}, "bad_ts", id="msg-ts-float"),
    pytest.param(b'{"ts":true,"readings":[]}', {}, "bad_ts", id="msg-ts-bool"),
    pytest.param(b'{"ts":-5,"readings":[]}', {}, "bad_ts", id="msg-ts-negative"),
    pytest.param(b'{"ts":"2025-11-23T10:00:00","readings":[]}', {}, "bad_ts", id="msg-ts-naive"),
]


@pytest.mark.parametrize(("payload", "overrides", "code"), MESSAGE_CASES)
def test_messages(payload: bytes, overrides: dict[str, Any], code: str | None) -> None:
    d = decode(payload, **overrides)
    assert_columns(d)
    if code is None:
        assert not d.rejections
        return
    assert len(d) == 0
    [x] = d.rejections
    assert (x.code, x.tag, x.index) == (code, None, None)
    assert x.reason
    assert x.excerpt == payload[:200].decode("utf-8", errors="replace")


def test_payload_that_is_not_bytes_is_refused() -> None:
    [x] = decode_readings("{}", **KW).rejections  # type: ignore[arg-type]
    assert x.code == "not_json"


def test_reason_unknown_tag_says_how_to_fix() -> None:
    [x] = decode(msg(r(), r(), r(), r("LT-9"))).rejections
    assert x.tag == "LT-9"
    assert x.reason == (
        "readings[3] (tag 'LT-9'): not in the point table of enterprise 'E1'; "
        "upload it with PUT /api/v1/enterprises/E1/points"
    )
    assert x.excerpt == '{"tag":"LT-9","value":1.5}'


def test_reason_out_of_range_gives_time_and_window() -> None:
    [x] = decode(msg(r(ts=MAX + 1))).rejections
    assert "2025-11-23T10:00:10.124Z" in x.reason and str(MAX + 1) in x.reason
    assert "2025-11-23T09:59:50.123Z .. 2025-11-23T10:00:10.123Z" in x.reason


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        (b'{"readings":[{"tag":"LT-1","value":NaN}]}', "NaN"),  # names the culprit
        (b"\xff", "UTF-8"),  # says it is the encoding, not the syntax
        (b'{"readings":[{"tag":"LT-1","value":1e400}]}', "finite"),  # a reading, not the message
        (b'{"readings":[{"tag":"LT-1","value":1,"ts":"2025-11-23T10:00:00"}]}', "offset"),
        (b'{"readings":[{"tag":"LT-1","value":1,"ts":1.5e12}]}', "integer epoch milliseconds"),
    ],
)
def test_reasons_name_the_problem(payload: bytes, words: str) -> None:
    assert words in decode(payload).rejections[0].reason


def test_bad_tag_is_not_echoed_as_tag_but_in_excerpt() -> None:
    [x] = decode(msg(r(tag=TAG65))).rejections
    assert x.tag is None and TAG65 in x.excerpt


def test_long_reading_excerpt_is_cut() -> None:
    [x] = decode(msg(r(tag="LT-9", note="n" * 1000))).rejections
    assert len(x.excerpt) == 200


def test_lone_surrogate_is_a_bad_tag_with_a_utf8_safe_excerpt() -> None:
    [x] = decode(b'{"readings":[{"tag":"\\ud800","value":1}]}').rejections
    assert x.code == "bad_tag"
    (x.reason + x.excerpt).encode("utf-8")  # storable as text


def test_excerpt_of_many_surrogates_stays_short() -> None:
    [x] = decode(b'{"readings":[{"tag":"' + b"\\udc80" * 100 + b'","value":1}]}').rejections
    assert len(x.excerpt) == 200


def assert_columns(d: Decoded) -> None:
    assert d.point.dtype == np.int32 and d.ts_ms.dtype == np.int64
    assert d.value.dtype == np.float64 and d.bad.dtype == np.bool_
    assert len(d.point) == len(d.ts_ms) == len(d.value) == len(d.bad) == len(d)


# ---------------------------------------------------------------- topics and status

TOPIC_CASES = [
    pytest.param("hazmon/v1/E1/gw-1/readings", Topic("E1", "gw-1", "readings"), id="readings"),
    pytest.param("hazmon/v1/E1/gw-1/status", Topic("E1", "gw-1", "status"), id="status"),
    pytest.param(
        "hazmon/v1/a_b.c-9/G.7/readings", Topic("a_b.c-9", "G.7", "readings"), id="all-chars"
    ),
    pytest.param(
        f"hazmon/v1/{'e' * 64}/{'g' * 64}/readings",
        Topic("e" * 64, "g" * 64, "readings"),
        id="names-64-chars",
    ),
    pytest.param(f"hazmon/v1/{'e' * 65}/g/readings", None, id="enterprise-65-chars"),
    pytest.param(f"hazmon/v1/e/{'g' * 65}/readings", None, id="gateway-65-chars"),
    pytest.param("hazmon/v1//gw/readings", None, id="enterprise-empty"),
    pytest.param("hazmon/v1/E1/gw:1/readings", None, id="colon-not-allowed-in-gateway"),
    pytest.param("hazmon/v1/E 1/gw/readings", None, id="space"),
    pytest.param("hazmon/v1/E1/+/readings", None, id="wildcard"),
    pytest.param("hazmon/v1/E1/gw/reading", None, id="kind-singular"),
    pytest.param("hazmon/v1/E1/gw/alarms", None, id="kind-unknown"),
    pytest.param("hazmon/v2/E1/gw/readings", None, id="other-version"),
    pytest.param("hazmon/v1/E1/gw/readings/x", None, id="extra-level"),
    pytest.param("hazmon/v1/E1/gw/readings\n", None, id="trailing-newline"),
    pytest.param("/hazmon/v1/E1/gw/readings", None, id="leading-slash"),
    pytest.param("hazmon/v1/E1/readings", None, id="gateway-missing"),
    pytest.param("", None, id="empty"),
]


@pytest.mark.parametrize(("topic", "expected"), TOPIC_CASES)
def test_parse_topic(topic: str, expected: Topic | None) -> None:
    assert parse_topic(topic) == expected
    assert (dec.TOPIC_RE.match(topic) is not None) == (expected is not None)


STATUS_CASES = [
    pytest.param(b"online", "online", id="online"),
    pytest.param(b"offline", "offline", id="offline"),
    pytest.param(b"OFFLINE", "offline", id="upper-case"),
    pytest.param(b" Online\r\n", "online", id="whitespace-trimmed"),
    pytest.param(bytearray(b"online"), "online", id="bytearray"),
    pytest.param(b"on line", None, id="inner-space"),
    pytest.param(b'"online"', None, id="json-string"),
    pytest.param(b"online1", None, id="suffix"),
    pytest.param(b"", None, id="empty"),
    pytest.param(b"\xff", None, id="not-utf8"),
    pytest.param(b"online" + b" " * 100, None, id="too-long"),
]


@pytest.mark.parametrize(("payload", "expected"), STATUS_CASES)
def test_decode_status(payload: bytes, expected: str | None) -> None:
    assert decode_status(payload) == expected


def test_topic_and_status_rejections() -> None:
    assert dec.topic_rejection("a/b").code == "bad_topic"
    x = dec.status_rejection(b"maybe")
    assert (x.code, x.excerpt) == ("bad_status", "maybe")


# ---------------------------------------------------------------- fuzz

KNOWN = {"LT-1": 1, "LT-2": 2, "TT-1": 3}
# text now and then holds lone surrogates: JSON can escape them ("\\ud800"), orjson refuses them
json_text = st.text(st.characters() | st.characters(categories=["Cs"]), max_size=8)
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), json_text)
json_any = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)
tags = st.sampled_from(["LT-1", "LT-2", "TT-1", "LT-9", "", "LT 1", TAG65, "x\n"]) | json_leaf
values = (
    st.one_of(st.floats(allow_nan=True), st.integers(), st.sampled_from([1e308, 2**70])) | json_leaf
)
times = st.one_of(
    st.integers(MIN - 5, MAX + 5),
    st.integers(),
    st.sampled_from(
        [
            "2025-11-23T10:00:00.123Z",
            "2025-11-23T18:00:05+08:00",
            "2025-11-23T10:00:00",
            "2025-13-01T00:00:00Z",
        ]
    ),
    json_leaf,
)
qualities = st.sampled_from(["good", "bad", "Bad", None]) | json_leaf


@st.composite
def readings(draw: st.DrawFn) -> Any:
    """A reading that is often valid and often wrong in one or more fields."""
    out: dict[str, Any] = {}
    for key, strategy in (("tag", tags), ("value", values), ("ts", times), ("quality", qualities)):
        if draw(st.integers(0, 5)):  # mostly present
            out[key] = draw(strategy)
    if not draw(st.integers(0, 20)):
        return draw(json_any)  # now and then not an object at all
    return out


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    obj: Any = {"readings": draw(st.lists(readings(), max_size=12))}
    if draw(st.booleans()):
        obj["ts"] = draw(times)
    if not draw(st.integers(0, 15)):
        obj = draw(json_any)
    text = json.dumps(obj)  # NaN / Infinity literals appear: not JSON, refused whole
    return text.encode("utf-8", "surrogatepass")


FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check_invariants(payload: bytes, d: Decoded) -> None:
    """What holds for any input: valid kept readings, one rejection per dropped reading."""
    assert_columns(d)
    assert np.isfinite(d.value).all()
    assert set(d.point.tolist()) <= set(KNOWN.values())
    assert ((d.ts_ms >= MIN) & (d.ts_ms <= MAX)).all()
    for x in d.rejections:
        assert x.code and x.reason and len(x.excerpt) <= 200
        (x.reason + x.excerpt).encode("utf-8")
    whole = [x for x in d.rejections if x.index is None]
    if whole:
        assert len(d.rejections) == 1 and len(d) == 0
        return
    n = len(json.loads(payload)["readings"])  # the stdlib parser accepts all that decode does
    indices = [x.index for x in d.rejections]
    assert None not in indices and len(set(indices)) == len(indices)
    assert all(0 <= i < n for i in indices if i is not None)
    assert len(d) + len(d.rejections) == n


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
offsets = st.integers(-1439, 1439).map(lambda m: timezone(timedelta(minutes=m)))


@FUZZ
@given(
    st.datetimes(timezones=offsets),
    st.sampled_from(["seconds", "milliseconds", "microseconds"]),
    st.booleans(),
)
def test_fuzz_rfc3339_matches_datetime(when: datetime, timespec: str, zulu: bool) -> None:
    text = when.isoformat(timespec=timespec)
    if zulu and text.endswith("+00:00"):
        text = text[:-6] + "Z"
    shown = datetime.fromisoformat(text)  # what the text says, by CPython's own parser
    assert dec._parse_rfc3339(text) == (shown - EPOCH) // timedelta(milliseconds=1)


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_arbitrary_bytes_never_raise(payload: bytes) -> None:
    check_invariants(payload, decode_readings(payload, **{**KW, "lookup": KNOWN}))


@FUZZ
@given(messages())
def test_fuzz_json_messages(payload: bytes) -> None:
    check_invariants(payload, decode_readings(payload, **{**KW, "lookup": KNOWN}))


@FUZZ
@given(
    st.lists(readings().filter(lambda x: type(x) is dict), min_size=1, max_size=12),
    st.sampled_from([T0, MAX + 1]),
)
def test_fuzz_fast_path_matches_reference(items: list[dict[str, Any]], msg_ts: int) -> None:
    ctx = dec._Ctx("E1", KNOWN, msg_ts, "the message ts", MIN, MAX)
    fast = dec._decode_fast(items, ctx)
    slow = dec._decode_slow(items, ctx)
    if fast is None:  # a reading without "tag"/"value", or an unhashable tag: reference only
        assert any(
            "tag" not in x or "value" not in x or isinstance(x["tag"], (list, dict)) for x in items
        )
        return
    assert rows(fast) == rows(slow)
    assert fast.rejections == slow.rejections

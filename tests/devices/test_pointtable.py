"""Point table (点位表) CSV parsing: headers, encodings, every rule on both sides, properties."""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.pointtable import COLUMNS, KIND_ZH, KINDS, PointSpec, parse_point_table
from hazmon.errors import InputError, PointTableError

CODES = {"HS-01", "HS-02"}
EN = [c.field for c in COLUMNS]
NUMERIC = EN[5:EN.index("stale_s") + 1]  # range_low … stale_s
ZH = [c.zh for c in COLUMNS]
FULL_ROW = [
    "TT-1101",  # tag
    "反应釜温度",  # name
    "HS-01",  # hazard_source
    "temperature",  # kind
    "°C",  # unit
    "0",  # range_low
    "200",  # range_high
    "10",  # lolo
    "20",  # lo
    "150",  # hi
    "180",  # hihi
    "1.5",  # deadband
    "15",  # on_delay_s
    "30",  # off_delay_s
    "20",  # roc_per_min
    "300",  # stale_s
    "是",  # latching (Chinese yes)
    "high",  # priority_hihi
    "高",  # priority_hi (Chinese high)
    "",  # priority_lo: default
    "",  # priority_lolo: default
    "LOW",  # priority_roc (case-insensitive)
    "",  # priority_stale
    "中",  # priority_bad (Chinese medium)
]
FULL_SPEC = PointSpec(
    tag="TT-1101",
    name="反应釜温度",
    hazard_source="HS-01",
    kind="temperature",
    unit="°C",
    range_low=0.0,
    range_high=200.0,
    lolo=10.0,
    lo=20.0,
    hi=150.0,
    hihi=180.0,
    deadband=1.5,
    on_delay_s=15.0,
    off_delay_s=30.0,
    roc_per_min=20.0,
    stale_s=300.0,
    latching=True,
    priority_hihi="high",
    priority_hi="high",
    priority_roc="low",
    priority_bad="medium",
)


def to_csv(rows: list[list[str]]) -> bytes:
    """Rows written as Excel would (quoting where needed), UTF-8."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode()


def table(*rows: dict[str, str], header: list[str] | None = None) -> bytes:
    """A table with the given columns; each row maps column names to cells."""
    header = header or ["tag", "kind", *sorted({k for r in rows for k in r} - {"tag", "kind"})]
    return to_csv([header, *[[r.get(h, "") for h in header] for r in rows]])


def point(**cells: str) -> dict[str, str]:
    """A valid row (tag P1, kind flow) with some cells changed."""
    return {"tag": "P1", "kind": "flow", **cells}


def parse(data: bytes, codes: set[str] = CODES, **kw: Any) -> list[PointSpec]:
    return parse_point_table(data, codes, **kw)


def errors_of(data: bytes, codes: set[str] = CODES, **kw: Any) -> list[dict[str, Any]]:
    with pytest.raises(PointTableError) as info:
        parse(data, codes, **kw)
    assert isinstance(info.value, InputError)
    return info.value.errors


def one_error(data: bytes, codes: set[str] = CODES) -> dict[str, Any]:
    (error,) = errors_of(data, codes)
    return error


def only(data: bytes, codes: set[str] = CODES) -> PointSpec:
    (spec,) = parse(data, codes)
    return spec


# --- the happy path -------------------------------------------------------------------


def test_english_headers() -> None:
    assert parse(to_csv([EN, FULL_ROW])) == [FULL_SPEC]


def test_chinese_headers() -> None:
    assert parse(to_csv([ZH, FULL_ROW])) == [FULL_SPEC]


def test_mixed_languages_case_and_spaces_in_headers() -> None:
    header = [f"  {h.upper()} " if i % 2 else f" {z}" for i, (h, z) in enumerate(zip(EN, ZH))]
    assert parse(to_csv([header, FULL_ROW])) == [FULL_SPEC]


def test_columns_in_any_order() -> None:
    order = list(reversed(range(len(EN))))
    rows = [[EN[i] for i in order], [FULL_ROW[i] for i in order]]
    assert parse(to_csv(rows)) == [FULL_SPEC]


def test_bom_and_crlf() -> None:
    assert parse(b"\xef\xbb\xbf" + to_csv([EN, FULL_ROW])) == [FULL_SPEC]


def test_lf_line_endings() -> None:
    assert parse(to_csv([EN, FULL_ROW]).replace(b"\r\n", b"\n")) == [FULL_SPEC]


def test_minimal_table_has_defaults() -> None:
    spec = only(b"tag,kind\nFT-1,flow\n")
    assert spec == PointSpec(
        "FT-1", None, None, "flow", None, None, None, None, None, None, None,
        0.0, 0.0, 0.0, None, None,
    )  # fmt: skip


def test_header_only_is_valid_and_empty() -> None:
    assert parse(b"tag,kind\n") == []
    assert parse(b"\xef\xbb\xbftag,kind") == []


def test_unknown_columns_are_ignored() -> None:
    data = b"remark,tag,kind,priority,remark,\nx,P1,flow,high,y,z\n"
    assert only(data).tag == "P1"


def test_short_rows_leave_cells_empty() -> None:
    assert only(b"tag,kind,lo,hi\nP1,flow\n").lo is None


def test_extra_cells_are_ignored() -> None:
    assert only(b"tag,kind\nP1,flow,3,4,5\n").kind == "flow"


def test_quoted_fields_with_commas_quotes_and_newlines() -> None:
    data = b'tag,name,kind,unit\nP1,"Tank 1, north ""A""\nsecond line",level,"m,3"\n'
    spec = only(data)
    assert spec.name == 'Tank 1, north "A"\nsecond line'
    assert spec.unit == "m,3"


def test_cells_are_trimmed_and_empty_text_is_none() -> None:
    spec = only(table(point(tag="  P1 ", name="   ", unit=" m ", hazard_source=" HS-02 ")))
    assert (spec.tag, spec.name, spec.unit, spec.hazard_source) == ("P1", None, "m", "HS-02")


def test_point_spec_matches_columns() -> None:
    # Adding a column is one COLUMNS entry plus a PointSpec field of the same name.
    assert [f.name for f in dataclasses.fields(PointSpec)] == EN


# --- whole-file errors ----------------------------------------------------------------


def test_not_utf8() -> None:
    gbk = "位号,类型\nP1,温度\n".encode("gbk")
    error = one_error(gbk)
    assert (error["row"], error["column"]) == (1, None)
    assert "UTF-8" in error["message"]


def test_not_utf8_names_the_line() -> None:
    assert "line 3" in one_error(b"tag,kind\nP1,flow\nP2,\xff\n")["message"]


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf", b"\n\n", b" , ,\n"])
def test_empty_file_has_no_header(data: bytes) -> None:
    error = one_error(data)
    assert (error["row"], error["column"]) == (1, None)


@pytest.mark.parametrize(
    ("data", "column"),
    [
        (b"name,kind\nx,flow\ny,flow\n", "tag"),  # tag column missing
        (b"tag,name\nP1,x\nP2,y\n", "kind"),  # kind column missing
    ],
)
def test_required_column_missing(data: bytes, column: str) -> None:
    # Reported once for the header, not once per row.
    error = one_error(data)
    assert (error["row"], error["column"]) == (1, column)
    assert column in error["message"]


@pytest.mark.parametrize(
    "header",
    [
        "tag,kind,tag",  # the same English name twice
        "tag,kind,位号",  # English and Chinese names of one column
        "tag,kind, TAG ",  # case and spaces do not make it another column
    ],
)
def test_duplicate_header(header: str) -> None:
    error = one_error(f"{header}\nP1,flow,P1\n".encode())
    assert (error["row"], error["column"]) == (1, "tag")
    assert "columns A" not in error["message"] and "column A" in error["message"]
    assert "column C" in error["message"]


def test_row_limit() -> None:
    rows = "".join(f"P{i},flow\n" for i in range(3))
    # Exactly max_rows points (blank rows do not count) are accepted.
    assert len(parse(f"tag,kind\n{rows}\n\n".encode(), max_rows=3)) == 3
    # One more gives one error at the first row over the limit, whatever else is wrong.
    errors = errors_of(f"tag,kind\n{rows}bad tag,?\nP4,flow\n".encode(), max_rows=3)
    assert errors == [{"row": 5, "column": None, "message": errors[0]["message"]}]
    assert "more than 3" in errors[0]["message"]


def test_oversized_cell_is_an_error_not_a_crash() -> None:
    # The csv module refuses fields over its limit (128 KiB by default).
    data = b"tag,kind,name\nP1,flow,ok\nP2,flow," + b"x" * 200_000 + b"\n"
    error = one_error(data)
    assert (error["row"], error["column"]) == (3, None)


# --- row numbers and reporting every error -----------------------------------------------


def test_every_error_at_once_with_spreadsheet_rows() -> None:
    data = (
        b"tag,kind,lo,hi,name\n"  # row 1
        b"P1,flow,90,80,\n"  # row 2: hi below lo
        b"\n"  # row 3: blank, skipped but counted
        b",,,,\n"  # row 4: blank cells only, skipped
        b'P2,flow,1,2,"two\nlines"\n'  # row 5: one row over two lines, valid
        b"P1,oops,x,,\n"  # row 6: duplicate tag, bad kind, bad number
    )
    errors = errors_of(data)
    assert [(e["row"], e["column"]) for e in errors] == [
        (2, "hi"),
        (6, "kind"),
        (6, "lo"),
        (6, "tag"),
    ]
    assert errors[0]["message"] == "hi (80) must be greater than lo (90)"
    assert "row 2" in errors[3]["message"]


def test_chinese_table_messages_name_the_chinese_column() -> None:
    error = one_error("位号,类型,低报,高报\nP1,流量,90,80\n".encode())
    assert error["column"] == "hi"
    assert error["message"] == "高报/hi (80) must be greater than 低报/lo (90)"


# --- tag --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tag",
    [
        "A",  # one character
        "x" * 64,  # the longest
        "TT-1101.PV:raw_2",  # every punctuation allowed
        "0123456789",
    ],
)
def test_valid_tags(tag: str) -> None:
    assert only(table(point(tag=tag))).tag == tag


@pytest.mark.parametrize(
    ("tag", "words"),
    [
        ("", "required"),  # missing
        ("   ", "required"),  # blank
        ("x" * 65, "not a valid tag"),  # one too long
        ("TT 1101", "not a valid tag"),  # inner space
        ("TT/1101", "not a valid tag"),  # slash
        ("温度1", "not a valid tag"),  # not ASCII
        ("P1\nx", "not a valid tag"),  # a newline inside a quoted cell
    ],
)
def test_invalid_tags(tag: str, words: str) -> None:
    error = one_error(to_csv([["tag", "kind"], ["P0", "flow"], [tag, "flow"]]))
    assert (error["row"], error["column"]) == (3, "tag")
    assert words in error["message"]


def test_duplicate_tag_names_the_first_row() -> None:
    errors = errors_of(table(point(tag="A"), point(tag="B"), point(tag="A"), point(tag="A")))
    assert [(e["row"], e["column"]) for e in errors] == [(4, "tag"), (5, "tag")]
    assert all("row 2" in e["message"] for e in errors)


def test_tags_differing_in_case_are_different() -> None:
    assert len(parse(table(point(tag="a"), point(tag="A")))) == 2


# --- kind --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_every_english_kind(kind: str) -> None:
    assert only(table(point(kind=kind))).kind == kind


@pytest.mark.parametrize(("word", "kind"), KIND_ZH.items())
def test_every_chinese_kind(word: str, kind: str) -> None:
    assert only(table(point(kind=word))).kind == kind


def test_kind_is_case_insensitive() -> None:
    assert only(table(point(kind=" Toxic_Gas "))).kind == "toxic_gas"


@pytest.mark.parametrize(("kind", "words"), [("", "required"), ("温度计", "not a known kind")])
def test_invalid_kind(kind: str, words: str) -> None:
    error = one_error(table(point(kind=kind)))
    assert error["column"] == "kind" and words in error["message"]
    assert "temperature" in error["message"] and "温度" in error["message"]


def test_all_chinese_kinds_cover_all_kinds() -> None:
    assert sorted(KIND_ZH.values()) == sorted(KINDS)


# --- hazard source -----------------------------------------------------------------------


@pytest.mark.parametrize("code", ["", "HS-01", "HS-02"])
def test_hazard_source_empty_or_registered(code: str) -> None:
    assert only(table(point(hazard_source=code))).hazard_source == (code or None)


def test_unknown_hazard_source_lists_the_codes() -> None:
    error = one_error(table(point(hazard_source="HS-03")))
    assert error["column"] == "hazard_source"
    assert "HS-03" in error["message"] and "HS-01, HS-02" in error["message"]


def test_hazard_source_codes_are_exact() -> None:
    assert one_error(table(point(hazard_source="hs-01")))["column"] == "hazard_source"


def test_unknown_hazard_source_when_none_registered() -> None:
    error = one_error(table(point(hazard_source="HS-01")), codes=set())
    assert "no hazard sources are registered" in error["message"]


def test_many_codes_are_cut_short() -> None:
    codes = {f"H{i:03}" for i in range(500)}
    message = one_error(table(point(hazard_source="X")), codes=codes)["message"]
    assert "and 480 more" in message and len(message) < 400


# --- numbers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("", None),  # empty = not given
        ("   ", None),  # blank = not given
        (" 42 ", 42.0),  # surrounding whitespace
        ("-5", -5.0),
        ("+5", 5.0),
        (".5", 0.5),
        ("5.", 5.0),
        ("1e3", 1000.0),
        ("1.5E-2", 0.015),
        ("\uff11\uff12", 12.0),  # full-width digits １２ (typed with a Chinese IME)
        ("\u22123", -3.0),  # the minus sign −
        ("1e308", 1e308),
    ],
)
def test_numbers(text: str, value: float | None) -> None:
    assert only(table(point(hi=text))).hi == value


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("abc", "not a number"),
        ("nan", "not a number"),  # not finite
        ("inf", "not a number"),
        ("-Infinity", "not a number"),
        ("1e999", "too large"),  # overflows to infinity
        ("1_000", "not a number"),  # Python-only syntax
        ("1,000", "not a number"),  # thousands separator
        ("0x10", "not a number"),
        ("80%", "not a number"),
        ("1 2", "not a number"),
    ],
)
def test_not_numbers(text: str, words: str) -> None:
    error = one_error(table(point(hi=text)))
    assert error["column"] == "hi" and words in error["message"]


def test_huge_cells_are_cut_short_in_messages() -> None:
    error = one_error(table(point(hi="9" * 5000 + "x")))
    assert len(error["message"]) < 200


# --- limit order: lolo <= lo < hi <= hihi, every given pair ----------------------------------

LIMIT_CASES = [
    # (cells, column named by the error or None when valid)
    ({"lo": "10", "hi": "10"}, "hi"),  # lo == hi rejected
    ({"lo": "10", "hi": "10.001"}, None),  # lo < hi ok
    ({"lo": "90", "hi": "80"}, "hi"),  # hi below lo
    ({"lolo": "5", "lo": "5"}, None),  # lolo == lo ok
    ({"lolo": "5.001", "lo": "5"}, "lo"),  # lolo above lo
    ({"hi": "90", "hihi": "90"}, None),  # hi == hihi ok
    ({"hi": "90", "hihi": "89.999"}, "hihi"),  # hihi below hi
    ({"lolo": "10", "hi": "10"}, "hi"),  # lolo == hi rejected (lo not given)
    ({"lolo": "10", "hi": "10.5"}, None),  # lolo < hi ok
    ({"lo": "10", "hihi": "10"}, "hihi"),  # lo == hihi rejected (hi not given)
    ({"lolo": "10", "hihi": "10"}, "hihi"),  # lolo == hihi rejected
    ({"lolo": "9", "hihi": "10"}, None),
    ({"lolo": "1", "lo": "1", "hi": "2", "hihi": "2"}, None),  # tightest valid chain
    ({"lolo": "-20", "lo": "-10"}, None),  # only low limits
    ({"hihi": "5"}, None),  # a single limit
]


@pytest.mark.parametrize(("cells", "column"), LIMIT_CASES)
def test_limit_order(cells: dict[str, str], column: str | None) -> None:
    data = table(point(**cells))
    if column is None:
        spec = only(data)
        assert all(getattr(spec, k) == float(v) for k, v in cells.items())
    else:
        assert one_error(data)["column"] == column


def test_every_broken_pair_is_reported() -> None:
    # lolo above everything breaks lolo<=lo, lolo<hi and lolo<hihi.
    errors = errors_of(table(point(lolo="100", lo="10", hi="20", hihi="30")))
    assert [e["column"] for e in errors] == ["lo", "hi", "hihi"]
    assert errors[2]["message"] == "hihi (30) must be greater than lolo (100)"


def test_at_least_message() -> None:
    assert (
        one_error(table(point(hi="5", hihi="4")))["message"] == "hihi (4) must be at least hi (5)"
    )


def test_unparsable_limit_is_not_compared() -> None:
    errors = errors_of(table(point(lo="x", hi="1")))
    assert [e["column"] for e in errors] == ["lo"]


# --- range, deadband, delays, rate of change, stale ------------------------------------------


@pytest.mark.parametrize(
    ("cells", "column"),
    [
        ({"range_low": "0", "range_high": "100"}, None),
        ({"range_low": "100", "range_high": "100"}, "range_high"),  # equal rejected
        ({"range_low": "100", "range_high": "0"}, "range_high"),
        ({"range_low": "100"}, None),  # one end alone is fine
        ({"range_high": "-5"}, None),
        ({"deadband": "0"}, None),
        ({"deadband": "-0.1"}, "deadband"),
        ({"deadband": "0.1"}, None),
        ({"on_delay_s": "0"}, None),
        ({"on_delay_s": "-1"}, "on_delay_s"),
        ({"off_delay_s": "0"}, None),
        ({"off_delay_s": "-0.001"}, "off_delay_s"),
        ({"roc_per_min": "0"}, "roc_per_min"),  # must be > 0
        ({"roc_per_min": "0.001"}, None),
        ({"roc_per_min": "-1"}, "roc_per_min"),
        ({"stale_s": "0"}, "stale_s"),  # must be > 0
        ({"stale_s": "0.5"}, None),
        ({"stale_s": "-60"}, "stale_s"),
    ],
)
def test_other_numeric_rules(cells: dict[str, str], column: str | None) -> None:
    data = table(point(**cells))
    if column is None:
        spec = only(data)
        assert all(getattr(spec, k) == float(v) for k, v in cells.items())
    else:
        error = one_error(data)
        assert error["column"] == column
        assert cells[column] in error["message"]


def test_empty_defaults() -> None:
    spec = only(table(point(deadband=" ", on_delay_s="", off_delay_s="", roc_per_min="")))
    assert (spec.deadband, spec.on_delay_s, spec.off_delay_s, spec.roc_per_min) == (0, 0, 0, None)


# --- properties ------------------------------------------------------------------------------

TAG = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def check_invariants(specs: list[PointSpec], codes: set[str]) -> None:
    """What every accepted table satisfies, written independently of the parser."""
    assert len({s.tag for s in specs}) == len(specs)
    for s in specs:
        assert TAG.fullmatch(s.tag)
        assert s.kind in KINDS
        assert s.hazard_source is None or s.hazard_source in codes
        numbers = [getattr(s, c) for c in NUMERIC]
        assert all(v is None or (isinstance(v, float) and math.isfinite(v)) for v in numbers)
        assert limits_ordered(s.lolo, s.lo, s.hi, s.hihi)
        assert s.range_low is None or s.range_high is None or s.range_low < s.range_high
        assert s.deadband >= 0 and s.on_delay_s >= 0 and s.off_delay_s >= 0
        assert s.roc_per_min is None or s.roc_per_min > 0
        assert s.stale_s is None or s.stale_s > 0


def limits_ordered(*limits: float | None) -> bool:
    """Reference: low limits non-decreasing, high limits non-decreasing, all lows < all highs."""
    lows = [v for v in limits[:2] if v is not None]
    highs = [v for v in limits[2:] if v is not None]
    apart = not lows or not highs or max(lows) < min(highs)
    return lows == sorted(lows) and highs == sorted(highs) and apart


def check_errors(errors: list[dict[str, Any]]) -> None:
    assert errors
    for e in errors:
        assert set(e) == {"row", "column", "message"}
        assert isinstance(e["row"], int) and e["row"] >= 1
        assert e["column"] is None or e["column"] in EN
        assert isinstance(e["message"], str) and e["message"]


def parse_checked(data: bytes, codes: set[str] = CODES) -> list[PointSpec] | None:
    try:
        specs = parse_point_table(data, codes, max_rows=50)
    except PointTableError as exc:
        check_errors(exc.errors)
        return None
    check_invariants(specs, codes)
    return specs


@settings(max_examples=300)
@given(st.binary(max_size=400))
def test_arbitrary_bytes(data: bytes) -> None:
    parse_checked(data)
    parse_checked(b"tag,kind,lo,hi,hazard_source\n" + data)


NUMBERS = ["", " ", "0", "-0", "1", "-1", "-0.5", "0.5", "2.5", "1e999", "nan", "x"]
CELLS = st.one_of(
    st.sampled_from([*NUMBERS, "HS-01", "HS-9", "P1", "flow"]),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=8),
)


@settings(max_examples=300)
@given(
    st.lists(st.sampled_from([*EN, *ZH, "other", ""]), min_size=1, max_size=8),
    st.lists(st.lists(CELLS, max_size=8), max_size=6),
)
def test_arbitrary_tables(header: list[str], rows: list[list[str]]) -> None:
    parse_checked(to_csv([header, *rows]))


@st.composite
def near_valid_tables(draw: st.DrawFn) -> bytes:
    """Tables with tag and kind columns and mostly sensible cells, so many are accepted."""
    others = draw(st.lists(st.sampled_from(EN[4:] + ["name", "hazard_source"]), unique=True))
    tags = [f"P{i}" for i in range(8)] + ["", "bad tag"]
    kinds = ["flow", "温度", " GAS ", "other", "", "x"]
    numbers = ["", "", "", "", "0", "-0", "1", "2.5", "100", "-1", "-0.5", "1e999", "x"]
    codes = ["", "", "HS-01", "HS-9"]
    cells = {c: st.sampled_from(codes if c == "hazard_source" else numbers) for c in others}
    rows = [
        [
            draw(st.sampled_from(tags)),
            draw(st.sampled_from(kinds)),
            *[draw(cells[c]) for c in others],
        ]
        for _ in range(draw(st.integers(0, 4)))
    ]
    return to_csv([["tag", "kind", *others], *rows])


@settings(max_examples=500)
@given(near_valid_tables())
def test_near_valid_tables(data: bytes) -> None:
    parse_checked(data)


LIMIT = st.one_of(st.none(), st.integers(-2, 2).map(float), st.floats(-1e9, 1e9))


@settings(max_examples=500)
@given(st.tuples(LIMIT, LIMIT, LIMIT, LIMIT), st.tuples(LIMIT, LIMIT))
def test_limits_match_reference(limits: tuple[float | None, ...], rng: tuple[Any, ...]) -> None:
    # A row is accepted exactly when the reference says its limits and range are in order.
    cells = {k: repr(v) for k, v in zip(["lolo", "lo", "hi", "hihi"], limits) if v is not None}
    cells |= {k: repr(v) for k, v in zip(["range_low", "range_high"], rng) if v is not None}
    specs = parse_checked(table(point(**cells)))
    range_ok = None in rng or rng[0] < rng[1]
    assert (specs is not None) == (limits_ordered(*limits) and range_ok)
    if specs:
        assert (specs[0].lolo, specs[0].lo, specs[0].hi, specs[0].hihi) == limits


@st.composite
def valid_specs(draw: st.DrawFn) -> list[PointSpec]:
    tags = draw(st.lists(st.from_regex(TAG, fullmatch=True), unique=True, max_size=5))
    finite = st.floats(allow_nan=False, allow_infinity=False)
    maybe = st.none() | finite
    specs = []
    for tag in tags:
        limits = sorted(draw(st.lists(finite, min_size=4, max_size=4, unique=True)))
        given_ = draw(st.lists(st.booleans(), min_size=4, max_size=4))
        lolo, lo, hi, hihi = (v if g else None for v, g in zip(limits, given_))
        specs.append(
            PointSpec(
                tag=tag,
                name=draw(st.none() | st.text(min_size=1).map(str.strip).filter(bool)),
                hazard_source=draw(st.sampled_from([None, *sorted(CODES)])),
                kind=draw(st.sampled_from(KINDS)),
                unit=draw(st.sampled_from([None, "°C", "MPa", "%LEL", "m³/h"])),
                range_low=None,
                range_high=None,
                lolo=lolo, lo=lo, hi=hi, hihi=hihi,
                deadband=draw(st.floats(0, 1e6)),
                on_delay_s=draw(st.floats(0, 1e6)),
                off_delay_s=draw(st.floats(0, 1e6)),
                roc_per_min=draw(st.none() | st.floats(1e-9, 1e6)),
                stale_s=draw(maybe.filter(lambda v: v is None or v > 0)),
            )
        )  # fmt: skip
    return specs


def render(spec: PointSpec) -> list[str]:
    return ["" if v is None else repr(v) if isinstance(v, float) else v for v in
            dataclasses.astuple(spec)]  # fmt: skip


@settings(max_examples=200)
@given(valid_specs(), st.booleans())
def test_valid_tables_round_trip(specs: list[PointSpec], chinese: bool) -> None:
    # Any table of valid points (written with exact float reprs) parses back to the same points.
    data = to_csv([ZH if chinese else EN, *[render(s) for s in specs]])
    assert parse_point_table(data, CODES) == specs


@pytest.mark.parametrize("cell, expected", [
    ("", False),       # empty: not latching
    ("0", False),      # explicit no
    ("否", False),     # Chinese no
    ("1", True),       # explicit yes
    ("TRUE", True),    # case-insensitive
    ("是", True),      # Chinese yes
])
def test_latching_values(cell: str, expected: bool) -> None:
    spec = parse_point_table(f"tag,kind,latching\nA,level,{cell}\n".encode(), set())[0]
    assert spec.latching is expected


@pytest.mark.parametrize("cell", ["maybe", "2", "锁"])  # not a yes/no word
def test_latching_rejects_other_words(cell: str) -> None:
    with pytest.raises(PointTableError) as info:
        parse_point_table(f"tag,kind,latching\nA,level,{cell}\n".encode(), set())
    assert info.value.errors[0]["column"] == "latching"


@pytest.mark.parametrize("cell, expected", [
    ("", None), ("high", "high"), ("Medium", "medium"), ("低", "low"), ("高", "high")])
def test_priority_override_values(cell: str, expected: str | None) -> None:
    spec = parse_point_table(f"tag,kind,priority_hi\nA,level,{cell}\n".encode(), set())[0]
    assert spec.priority_hi == expected
    assert spec.priorities() == ({} if expected is None else {"HI": expected})


def test_priority_override_rejects_unknown() -> None:
    with pytest.raises(PointTableError) as info:
        parse_point_table("高报优先级,位号,类型\nurgent,A,液位\n".encode(), set())
    assert info.value.errors[0]["column"] == "priority_hi"
    assert "high, medium or low" in info.value.errors[0]["message"]

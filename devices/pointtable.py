"""Parse and validate a point table (点位表) CSV into ``PointSpec`` rows (pure, no I/O).

The file is UTF-8 (a BOM is allowed) with one header row; headers are English or Chinese
(CONTRACT.md), may be mixed, and unknown columns are ignored. A table with any error is
rejected whole: ``PointTableError.errors`` lists every error as ``{"row", "column",
"message"}``, where ``row`` is the spreadsheet row (the header is row 1, the first data row
row 2; a quoted cell spanning lines is one row) and ``column`` the English column name
(``None`` for errors about the whole file).

Adding a column is one ``_Column`` entry in ``COLUMNS`` plus a ``PointSpec`` field (with a
default, so older callers keep working); its parser turns the trimmed cell text (``""`` when
empty or absent) into the value.
"""

from __future__ import annotations

import csv
import io
import math
import re
import unicodedata
from collections.abc import Callable, Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any

from hazmon.errors import PointTableError

KINDS = (
    "temperature",
    "pressure",
    "level",
    "flow",
    "gas",
    "toxic_gas",
    "oxygen",
    "composition",
    "valve",
    "other",
)
# Chinese words accepted in the kind (类型) column, mapped to the English kinds.
KIND_ZH = {
    "温度": "temperature",
    "压力": "pressure",
    "液位": "level",
    "流量": "flow",
    "可燃气体": "gas",
    "有毒气体": "toxic_gas",
    "氧气": "oxygen",
    "组分": "composition",
    "阀位": "valve",
    "其他": "other",
}
TAG_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)


@dataclass(frozen=True)
class PointSpec:
    """One validated row of a point table; limits are ``None`` when not configured."""

    tag: str
    name: str | None
    hazard_source: str | None
    kind: str
    unit: str | None
    range_low: float | None
    range_high: float | None
    lolo: float | None
    lo: float | None
    hi: float | None
    hihi: float | None
    deadband: float
    on_delay_s: float
    off_delay_s: float
    roc_per_min: float | None
    stale_s: float | None
    latching: bool = False
    priority_hihi: str | None = None
    priority_hi: str | None = None
    priority_lo: str | None = None
    priority_lolo: str | None = None
    priority_roc: str | None = None
    priority_stale: str | None = None
    priority_bad: str | None = None

    def priorities(self) -> dict[str, str]:
        """Per-condition priority overrides given in the table, e.g. ``{"HI": "high"}``."""
        return {c.upper(): p for c in PRIORITY_CONDITIONS
                if (p := getattr(self, f"priority_{c}")) is not None}


PRIORITY_CONDITIONS = ("hihi", "hi", "lo", "lolo", "roc", "stale", "bad")
PRIORITY_ZH = {"高": "high", "中": "medium", "低": "low"}
_TRUE = {"1", "true", "yes", "y", "是", "锁存"}
_FALSE = {"", "0", "false", "no", "n", "否"}


class _CellError(Exception):
    """A cell's value is invalid; the message is meant for the person who wrote it."""


class _Unreadable(Exception):
    """The CSV structure breaks at ``row`` and the rest cannot be read."""

    def __init__(self, row: int, message: str) -> None:
        super().__init__(message)
        self.row = row


# --- cell parsers: (trimmed text, column label) -> value -----------------------------


def _cut(text: str, limit: int = 40) -> str:
    """A cell cut short for a message, so that a huge cell cannot flood the error list."""
    return text if len(text) <= limit else text[:limit] + "…"


def _show(text: str) -> str:
    """A cell quoted for a message."""
    return repr(_cut(text))


def _text(text: str, label: str) -> str | None:
    return text or None


def _tag(text: str, label: str) -> str:
    if not text:
        raise _CellError(f"{label} is required")
    if not TAG_RE.fullmatch(text):
        raise _CellError(
            f"{label} {_show(text)} is not a valid tag: use 1 to 64 of the characters "
            "A-Z a-z 0-9 _ . : -"
        )
    return text


def _kind(text: str, label: str) -> str:
    kind = KIND_ZH.get(text, text.casefold())
    if kind in KINDS:
        return kind
    choices = f"one of {', '.join(KINDS)} (or {', '.join(KIND_ZH)})"
    if not text:
        raise _CellError(f"{label} is required: {choices}")
    raise _CellError(f"{label} {_show(text)} is not a known kind: use {choices}")


def _number(text: str, label: str) -> float | None:
    """A finite decimal number; full-width digits and the minus sign − are accepted."""
    if not text:
        return None
    folded = unicodedata.normalize("NFKC", text).replace("\u2212", "-").strip()
    if not _NUMBER_RE.fullmatch(folded):
        raise _CellError(f"{label} {_show(text)} is not a number")
    value = float(folded)
    if not math.isfinite(value):
        raise _CellError(f"{label} {_show(text)} is too large")
    return value


def _at_least_zero(text: str, label: str) -> float:
    value = _number(text, label)
    if value is None:
        return 0.0
    if value < 0:
        raise _CellError(f"{label} ({_cut(text)}) must be 0 or more")
    return value


def _positive(text: str, label: str) -> float | None:
    value = _number(text, label)
    if value is not None and value <= 0:
        raise _CellError(f"{label} ({_cut(text)}) must be greater than 0; leave it empty for none")
    return value


def _flag(text: str, label: str) -> bool:
    folded = text.casefold()
    if folded in _TRUE:
        return True
    if folded in _FALSE:
        return False
    raise _CellError(f"{label} {_show(text)} must be true/false (是/否, 1/0); empty means false")


def _priority(text: str, label: str) -> str | None:
    if not text:
        return None
    value = PRIORITY_ZH.get(text, text.casefold())
    if value not in ("high", "medium", "low"):
        raise _CellError(f"{label} {_show(text)} must be high, medium or low (高/中/低); "
                         "empty keeps the default priority")
    return value


@dataclass(frozen=True)
class _Column:
    field: str
    zh: str
    parse: Callable[[str, str], Any]
    required: bool = False


COLUMNS: tuple[_Column, ...] = (
    _Column("tag", "位号", _tag, required=True),
    _Column("name", "名称", _text),
    _Column("hazard_source", "重大危险源编码", _text),
    _Column("kind", "类型", _kind, required=True),
    _Column("unit", "单位", _text),
    _Column("range_low", "量程下限", _number),
    _Column("range_high", "量程上限", _number),
    _Column("lolo", "低低报", _number),
    _Column("lo", "低报", _number),
    _Column("hi", "高报", _number),
    _Column("hihi", "高高报", _number),
    _Column("deadband", "回差", _at_least_zero),
    _Column("on_delay_s", "报警延时", _at_least_zero),
    _Column("off_delay_s", "恢复延时", _at_least_zero),
    _Column("roc_per_min", "变化率", _positive),
    _Column("stale_s", "超时", _positive),
    _Column("latching", "锁存", _flag),
    _Column("priority_hihi", "高高报优先级", _priority),
    _Column("priority_hi", "高报优先级", _priority),
    _Column("priority_lo", "低报优先级", _priority),
    _Column("priority_lolo", "低低报优先级", _priority),
    _Column("priority_roc", "变化率优先级", _priority),
    _Column("priority_stale", "超时优先级", _priority),
    _Column("priority_bad", "坏值优先级", _priority),
)
_BY_HEADER = {name.casefold(): c for c in COLUMNS for name in (c.field, c.zh)}
_LIMITS = ("lolo", "lo", "hi", "hihi")  # ordered lolo <= lo < hi <= hihi
_LOW_SIDE = frozenset({"lolo", "lo"})
_MAX_CODES_SHOWN = 20


@dataclass
class _Header:
    """Where each known column is (0-based index) and how the file names it."""

    index: dict[str, int]
    name: dict[str, str]

    def label(self, field: str) -> str:
        """The column as a person knows it: ``hi``, or ``高报/hi`` in a Chinese table."""
        name = self.name.get(field, field)
        return field if name.casefold() == field else f"{name}/{field}"


@dataclass
class _Row:
    """One data row: parsed values, the trimmed texts behind them, and its errors."""

    number: int
    values: dict[str, Any]
    texts: dict[str, str]
    errors: list[dict[str, Any]]

    def error(self, column: str | None, message: str) -> None:
        self.errors.append(_error(self.number, column, message))


def _error(row: int, column: str | None, message: str) -> dict[str, Any]:
    return {"row": row, "column": column, "message": message}


def _column_letter(index: int) -> str:
    """Spreadsheet column letters: 0 → A, 25 → Z, 26 → AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def _decode(data: bytes) -> str:
    """The file as text; not UTF-8 is one error naming the first bad line."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        message = (
            f"the file is not UTF-8 (first bad byte on line {line}); it may be GBK. Save it as "
            "'CSV UTF-8' (Excel: 另存为 → CSV UTF-8(逗号分隔)) and upload again"
        )
        raise PointTableError([_error(1, None, message)]) from exc


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    """(row number, cells) of each record that is not blank; blank rows still count."""
    reader = csv.reader(io.StringIO(text, newline=""))
    row = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise _Unreadable(row + 1, f"the CSV cannot be read from this row on: {exc}") from exc
        row += 1
        if any(cell.strip() for cell in cells):
            yield row, cells


def _read_header(row: int, cells: list[str]) -> tuple[_Header, list[dict[str, Any]]]:
    """Locate the known columns; a duplicate or a missing required column is an error."""
    header, errors = _Header({}, {}), []
    for index, cell in enumerate(cells):
        name = cell.strip()
        column = _BY_HEADER.get(name.casefold())
        if column is None:
            continue  # unknown columns are ignored
        field = column.field
        if field in header.index:
            first = f"{header.name[field]!r} in column {_column_letter(header.index[field])}"
            again = f"{name!r} in column {_column_letter(index)}"
            message = f"the {field!r} column appears twice, as {first} and {again}: keep one"
            errors.append(_error(row, field, message))
            continue
        header.index[field], header.name[field] = index, name
    for column in COLUMNS:
        if column.required and column.field not in header.index:
            message = f"required column {column.field!r} ({column.zh}) is missing from the header"
            errors.append(_error(row, column.field, message))
    return header, errors


def _parse_cells(row: _Row, cells: list[str], header: _Header) -> None:
    """Parse each known column's cell into ``row.values`` (failed cells are left out)."""
    for column in COLUMNS:
        field, index = column.field, header.index.get(column.field)
        if index is None and column.required:
            continue  # reported once, at the header
        text = cells[index].strip() if index is not None and index < len(cells) else ""
        row.texts[field] = text
        try:
            row.values[field] = column.parse(text, header.label(field))
        except _CellError as exc:
            row.error(field, str(exc))


def _check_order(row: _Row, header: _Header, low: str, high: str, strict: bool) -> None:
    """Error on ``high`` when both are given and ``high`` is below (or equal to) ``low``."""
    a, b = row.values.get(low), row.values.get(high)
    if a is None or b is None or (b > a if strict else b >= a):
        return
    rel = "greater than" if strict else "at least"
    row.error(
        high,
        f"{header.label(high)} ({_cut(row.texts[high])}) must be {rel} "
        f"{header.label(low)} ({_cut(row.texts[low])})",
    )


def _check_limits(row: _Row, header: _Header) -> None:
    """Every given pair of limits in order: lolo <= lo < hi <= hihi; range_low < range_high."""
    for i, low in enumerate(_LIMITS):
        for high in _LIMITS[i + 1 :]:
            strict = low in _LOW_SIDE and high not in _LOW_SIDE
            _check_order(row, header, low, high, strict)
    _check_order(row, header, "range_low", "range_high", strict=True)


def _check_hazard_source(row: _Row, header: _Header, codes: AbstractSet[str]) -> None:
    code = row.values.get("hazard_source")
    if code is None or code in codes:
        return
    label = header.label("hazard_source")
    if not codes:
        known = "no hazard sources are registered for this enterprise; register it first"
    else:
        shown = sorted(codes)[:_MAX_CODES_SHOWN]
        more = f" and {len(codes) - len(shown)} more" if len(codes) > len(shown) else ""
        known = f"registered codes: {', '.join(shown)}{more}"
    message = f"{label} {_show(code)} is not a hazard source of this enterprise; {known}"
    row.error("hazard_source", f"{message} (or leave it empty)")


def _check_unique(row: _Row, first_row_of_tag: dict[str, int]) -> None:
    tag = row.values.get("tag")
    if tag is None:
        return
    first = first_row_of_tag.setdefault(tag, row.number)
    if first != row.number:
        row.error("tag", f"tag {tag!r} is already used in row {first}; tags must be unique")


def parse_point_table(
    data: bytes, hazard_sources: AbstractSet[str], *, max_rows: int = 100_000
) -> list[PointSpec]:
    """Parse a point table CSV; raise ``PointTableError`` with every error, or return its rows.

    Row numbers in errors are spreadsheet rows: the header is row 1, the first data row 2.
    Fully blank rows are skipped; a table with a header and no data rows is valid (``[]``).
    The kind column also takes the Chinese words in ``KIND_ZH``.
    """
    records = _records(_decode(data))
    errors: list[dict[str, Any]] = []
    rows: list[_Row] = []
    try:
        first = next(records, None)
        if first is None:
            raise PointTableError([_error(1, None, "the file is empty: row 1 must be the header")])
        header, errors = _read_header(*first)
        first_row_of_tag: dict[str, int] = {}
        for count, (number, cells) in enumerate(records, start=1):
            if count > max_rows:
                message = f"the table has more than {max_rows} rows of points: split it"
                raise PointTableError([_error(number, None, message)])
            row = _Row(number, {}, {}, [])
            _parse_cells(row, cells, header)
            _check_limits(row, header)
            _check_hazard_source(row, header, hazard_sources)
            _check_unique(row, first_row_of_tag)
            errors.extend(row.errors)
            rows.append(row)
    except _Unreadable as exc:
        errors.append(_error(exc.row, None, str(exc)))
    if errors:
        raise PointTableError(errors)
    return [PointSpec(**row.values) for row in rows]

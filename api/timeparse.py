"""RFC 3339 times in query strings."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from hazmon.errors import InputError

# "+08:00" sent unencoded in a query string arrives as " 08:00": take it back.
_SPACE_OFFSET = re.compile(r" (\d{2}:?\d{2})$")


def parse_time(text: str, name: str) -> datetime:
    """Parse an RFC 3339 time with an offset; InputError naming the parameter otherwise."""
    shown = repr(text) if len(text) <= 64 else repr(text[:64]) + "…"
    fixed = _SPACE_OFFSET.sub(r"+\1", text.strip())
    try:
        value = datetime.fromisoformat(fixed)
    except ValueError:
        raise InputError(f"{name}: {shown} is not an RFC 3339 time "
                         "(e.g. 2026-11-23T10:00:00+08:00; encode '+' as %2B)") from None
    if value.tzinfo is None:
        raise InputError(f"{name}: {shown} has no offset; add Z or +08:00")
    if not in_range(value):
        raise InputError(f"{name}: {shown} is out of range ({RANGE_TEXT})")
    return value


# Times a request may give: the span that PostgreSQL stores and Python reads back, with a year
# to spare on each side for the arithmetic of defaults (end - 1 h, start + a bucket).
EARLIEST = datetime(2, 1, 1, tzinfo=UTC)
LATEST = datetime(9998, 12, 31, tzinfo=UTC)
RANGE_TEXT = "years 2 to 9998"


def in_range(value: datetime) -> bool:
    """Whether an aware time lies between EARLIEST and LATEST."""
    try:
        return EARLIEST <= value.astimezone(UTC) <= LATEST
    except OverflowError:
        return False

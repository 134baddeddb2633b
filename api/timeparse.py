"""RFC 3339 times in query strings."""

from __future__ import annotations

import re
from datetime import datetime

from hazmon.errors import InputError

# "+08:00" sent unencoded in a query string arrives as " 08:00": take it back.
_SPACE_OFFSET = re.compile(r" (\d{2}:?\d{2})$")


def parse_time(text: str, name: str) -> datetime:
    """Parse an RFC 3339 time with an offset; InputError naming the parameter otherwise."""
    fixed = _SPACE_OFFSET.sub(r"+\1", text.strip())
    try:
        value = datetime.fromisoformat(fixed)
    except ValueError:
        raise InputError(f"{name}: {text!r} is not an RFC 3339 time "
                         "(e.g. 2026-11-23T10:00:00+08:00; encode '+' as %2B)") from None
    if value.tzinfo is None:
        raise InputError(f"{name}: {text!r} has no offset; add Z or +08:00")
    return value

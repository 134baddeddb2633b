"""The one exception tree of hazmon.

    HazmonError
    ├── ConfigError            settings or environment that cannot work
    ├── ServiceError           an embedded or external service failed
    │   ├── DatabaseUnavailable    PostgreSQL cannot be reached (retry later)
    │   └── BrokerUnavailable      the MQTT broker cannot be reached (retry later)
    ├── InputError             something a client sent is invalid (never a 5xx)
    │   ├── PointTableError        a point table with row/column errors (nothing applied)
    │   └── UnknownSubstance       a chemical not in the GB 18218 table without critical_t
    ├── NotFound               a named resource does not exist
    ├── Forbidden              the caller's role or scope does not allow the request
    └── Conflict               the request conflicts with current state (duplicate, wrong state)

Library errors (psycopg, paho) are converted at the boundary with ``raise X(...) from exc``.
"""

from __future__ import annotations

from typing import Any


class HazmonError(Exception):
    """Base of every error hazmon raises on purpose."""


class ConfigError(HazmonError):
    """Settings or environment that cannot work."""


class ServiceError(HazmonError):
    """An embedded or external service failed."""


class DatabaseUnavailable(ServiceError):
    """PostgreSQL cannot be reached; the caller should retry later."""


class BrokerUnavailable(ServiceError):
    """The MQTT broker cannot be reached; the caller should retry later."""


class InputError(HazmonError):
    """Something a client sent is invalid."""

    def __init__(self, message: str, *, detail: Any = None) -> None:
        super().__init__(message)
        self.detail = detail if detail is not None else message


class PointTableError(InputError):
    """A point table with errors; ``errors`` lists ``{"row", "column", "message"}``."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(f"point table rejected: {len(errors)} error(s)", detail=errors)
        self.errors = errors


class UnknownSubstance(InputError):
    """A chemical not in the built-in table and given without ``critical_t``."""


class NotFound(HazmonError):
    """A named resource does not exist."""


class Forbidden(HazmonError):
    """The caller's role or scope does not allow the request."""


class Conflict(HazmonError):
    """The request conflicts with the current state."""

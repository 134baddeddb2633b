"""An immutable, array-shaped snapshot of every point, for ingest and the alarm engine.

Points get a dense index (0..n-1) ordered by id; per-point configuration is a set of numpy
columns indexed by it. A new snapshot is built when the points change and swapped in whole,
so readers never see half a reload.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psycopg

from devices import repository
from hazmon.shard import owns

NUMERIC_COLUMNS = ("range_low", "range_high", "lolo", "lo", "hi", "hihi", "deadband",
                   "on_delay_s", "off_delay_s", "roc_per_min", "stale_s")


@dataclass(frozen=True)
class Registry:
    """Points by enterprise and tag, with dense per-point columns."""

    version: int
    enterprises: dict[str, int]                      # code -> enterprise id
    tags: dict[str, dict[str, int]]                  # enterprise code -> tag -> point id
    point_ids: np.ndarray                            # idx -> point id (int32, ascending)
    enterprise_ids: np.ndarray                       # idx -> enterprise id (int32)
    hazard_levels: np.ndarray                        # idx -> level 1..4 of its hazard source, 0 none
    columns: dict[str, np.ndarray] = field(repr=False)  # NUMERIC_COLUMNS -> float64 (NaN = empty)
    meta: list[dict[str, Any]] = field(repr=False)   # idx -> enterprise, tag, hazard_source

    def __len__(self) -> int:
        return int(self.point_ids.size)

    def index_of(self, ids: np.ndarray) -> np.ndarray:
        """Dense indices of point ids (all must be known)."""
        return np.searchsorted(self.point_ids, ids).astype(np.int32)


def build_registry(version: int, enterprises: dict[str, int], rows: list[dict[str, Any]]) -> Registry:
    """Build a registry from ``repository.registry_rows`` output (ordered by id)."""
    n = len(rows)
    tags: dict[str, dict[str, int]] = {code: {} for code in enterprises}
    for r in rows:
        tags.setdefault(r["enterprise"], {})[r["tag"]] = int(r["id"])
    columns = {
        c: np.array([np.nan if r[c] is None else float(r[c]) for r in rows], dtype=np.float64)
        for c in NUMERIC_COLUMNS
    }
    return Registry(
        version=version,
        enterprises=dict(enterprises),
        tags=tags,
        point_ids=np.array([r["id"] for r in rows], dtype=np.int32).reshape(n),
        enterprise_ids=np.array([r["enterprise_id"] for r in rows], dtype=np.int32).reshape(n),
        hazard_levels=np.array([r["hazard_level"] or 0 for r in rows], dtype=np.int8).reshape(n),
        columns=columns,
        meta=[{"enterprise": r["enterprise"], "tag": r["tag"],
               "hazard_source": r["hazard_source"], "latching": bool(r.get("latching")),
               "priorities": r.get("priorities") or {}} for r in rows],
    )


def load_registry(conn: psycopg.Connection, shard: tuple[int, int] | None = None) -> Registry:
    """Read the points (of this shard's enterprises, when sharded) into a new snapshot."""
    version = repository.points_version(conn)
    enterprises = {c: i for c, i in repository.enterprise_codes(conn).items() if owns(shard, c)}
    rows = [r for r in repository.registry_rows(conn) if r["enterprise"] in enterprises]
    return build_registry(version, enterprises, rows)

"""Glue between the registry, the database and the pure engine: config arrays and restart seeds."""

from __future__ import annotations

import numpy as np

from alerting.engine import PointConfig
from devices.registry import Registry


def engine_config(registry: Registry) -> PointConfig:
    """The engine's per-point configuration from a registry snapshot."""
    c = registry.columns

    def ms(name: str) -> np.ndarray:
        return np.nan_to_num(c[name] * 1000.0, nan=0.0).round().astype(np.int64)

    return PointConfig(
        hihi=c["hihi"], hi=c["hi"], lo=c["lo"], lolo=c["lolo"],
        deadband=np.nan_to_num(c["deadband"], nan=0.0),
        range_low=c["range_low"], range_high=c["range_high"], roc_per_min=c["roc_per_min"],
        on_delay_ms=ms("on_delay_s"), off_delay_ms=ms("off_delay_s"), stale_ms=ms("stale_s"),
    )

"""A plain, per-reading reference implementation of the alarm rules (CONTRACT.md).

Slow on purpose: one Python object per point, one reading at a time, every rule
written out as the contract states it. ``alerting.engine`` must produce exactly
the same transitions; the property tests check that on random streams.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np

from alerting.engine import (
    BAD,
    LIMIT_FIELDS,
    ROC,
    RUN_START_NEVER,
    STALE,
    Judgement,
    PointConfig,
    Transitions,
)


@dataclass
class _Point:
    """Everything remembered about one point."""

    last_arrival: int | None
    last_ts: int | None = None  # newest judged reading
    last_good: tuple[int, float] | None = None  # (ts, value) of the newest good judged reading
    raw: list[bool] = field(default_factory=lambda: [False] * 4)
    run_start: list[int] = field(default_factory=lambda: [RUN_START_NEVER] * 4)
    active: list[bool] = field(default_factory=lambda: [False] * 7)


class Oracle:
    """Reference engine with the Engine interface (judge, apply, check_stale)."""

    def __init__(self, config: PointConfig, now_ms: int | None = None) -> None:
        self.config = config
        self.points = [_Point(last_arrival=now_ms) for _ in range(len(config.hihi))]

    def judge(
        self,
        point: np.ndarray,
        ts_ms: np.ndarray,
        value: np.ndarray,
        bad: np.ndarray,
        arrival_ms: int,
    ) -> Judgement:
        """Judge a batch reading by reading, in (point, ts, batch position) order."""
        batch = sorted(
            (int(p), int(t), i, float(v), bool(b))
            for i, (p, t, v, b) in enumerate(zip(point, ts_ms, value, bad))
        )
        touched: dict[int, _Point] = {}
        rows: list[tuple] = []  # type: ignore[type-arg]
        judged = 0
        for p, t, _i, v, b in batch:
            st = touched.setdefault(p, copy.deepcopy(self.points[p]))
            if st.last_ts is not None and t <= st.last_ts:
                continue  # older than (or as old as) the newest judged reading: not judged
            judged += 1
            self._judge_reading(p, st, t, v, b, rows)
            st.last_ts = t
        for p, st in touched.items():
            st.last_arrival = arrival_ms
            if st.active[STALE]:  # cleared by the arrival; value of the newest reading
                mine = [r for r in batch if r[0] == p]  # in (ts, batch position) order
                newest_ts = max(r[1] for r in mine)
                value = next(r[3] for r in mine if r[1] == newest_ts)
                self._set(p, st, STALE, False, arrival_ms, value, math.nan, rows)
        trans = Transitions.build(*zip(*rows)) if rows else Transitions.empty()
        return Judgement(trans, judged, len(batch) - judged, list(touched.items()))  # type: ignore[arg-type]

    def check_stale(self, now_ms: int, suppressed: np.ndarray | None = None) -> Transitions:
        """Raise STALE for silent points (clear it where stale_ms became 0); mutates state."""
        rows: list[tuple] = []  # type: ignore[type-arg]
        for p, st in enumerate(self.points):
            if st.last_arrival is None:
                st.last_arrival = now_ms  # never heard of: counts from the first check
            stale_ms = int(self.config.stale_ms[p])
            if stale_ms == 0:
                self._set(p, st, STALE, False, now_ms, math.nan, math.nan, rows)
            elif now_ms - st.last_arrival >= stale_ms and not (
                suppressed is not None and suppressed[p]
            ):
                self._set(p, st, STALE, True, now_ms, math.nan, math.nan, rows)
        return Transitions.build(*zip(*rows)) if rows else Transitions.empty()

    def apply(self, j: Judgement) -> None:
        """Commit the point states a judgement computed."""
        for p, st in j._patch:
            self.points[p] = st  # type: ignore[call-overload]

    def _judge_reading(self, p: int, st: _Point, t: int, v: float, b: bool, rows: list) -> None:  # type: ignore[type-arg]
        """Apply every rule to one judged reading of point p."""
        cfg = self.config
        low, high = float(cfg.range_low[p]), float(cfg.range_high[p])
        is_bad = b or not math.isfinite(v) or v < low or v > high  # NaN range: no bound
        self._set(p, st, BAD, is_bad, t, v, math.nan, rows)
        if is_bad:
            return  # no limit and no ROC is judged on a bad reading
        if st.last_good is not None:
            prev_t, prev_v = st.last_good
            rate = abs((v - prev_v) / ((t - prev_t) / 1000.0)) * 60.0
            roc_limit = float(cfg.roc_per_min[p])
            self._set(p, st, ROC, rate >= roc_limit, t, v, roc_limit, rows)
        st.last_good = (t, v)
        for c, name in enumerate(LIMIT_FIELDS):
            limit = float(getattr(cfg, name)[p])
            deadband = float(cfg.deadband[p])
            raw = st.raw[c]
            if math.isnan(limit):
                raw = False
            elif c < 2:  # HIHI, HI: high limits
                if v >= limit:
                    raw = True
                elif v < limit - deadband:
                    raw = False
            else:  # LO, LOLO: low limits
                if v <= limit:
                    raw = True
                elif v > limit + deadband:
                    raw = False
            if raw != st.raw[c]:
                st.raw[c] = raw
                st.run_start[c] = t  # a new run of raw states starts at this reading
            held = t - st.run_start[c]
            if raw and held >= int(cfg.on_delay_ms[p]):
                self._set(p, st, c, True, t, v, limit, rows)
            elif not raw and held >= int(cfg.off_delay_ms[p]):
                self._set(p, st, c, False, t, v, limit, rows)

    @staticmethod
    def _set(p: int, st: _Point, c: int, active: bool, t: int, v: float, limit: float, rows: list) -> None:  # type: ignore[type-arg]
        """Record a transition when condition c of point p changes to ``active``."""
        if st.active[c] != active:
            st.active[c] = active
            rows.append((p, t, c, active, v, limit))


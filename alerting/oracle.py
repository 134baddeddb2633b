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
    PointConfig,
    Transitions,
)

Row = tuple[int, int, int, bool, float, float]  # point, ts, cond, active, value, limit


@dataclass
class _Point:
    """Everything remembered about one point."""

    last_arrival: int | None  # None: never heard of, and no configuration time given
    last_ts: int | None = None  # newest judged reading
    last_good: tuple[int, float] | None = None  # (ts, value) of the newest good judged reading
    raw: list[bool] = field(default_factory=lambda: [False] * 4)  # per limit, before delays
    run_start: list[int] = field(default_factory=lambda: [RUN_START_NEVER] * 4)
    active: list[bool] = field(default_factory=lambda: [False] * 7)  # per condition


@dataclass
class OracleJudgement:
    """What a batch changes: transitions, counts, and the new states of the points it touched."""

    transitions: Transitions
    judged: int
    skipped_old: int
    states: dict[int, _Point]


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
    ) -> OracleJudgement:
        """Judge a batch reading by reading, in (point, ts, batch position) order."""
        batch = sorted(
            (int(p), int(t), i, float(v), bool(b))
            for i, (p, t, v, b) in enumerate(zip(point, ts_ms, value, bad, strict=True))
        )
        touched: dict[int, _Point] = {}
        rows: list[Row] = []
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
            if st.active[STALE]:  # cleared by the arrival, with the newest reading's value
                mine = [r for r in batch if r[0] == p]  # in (ts, batch position) order
                newest_ts = max(r[1] for r in mine)
                newest_value = next(r[3] for r in mine if r[1] == newest_ts)
                self._set(p, st, STALE, False, arrival_ms, newest_value, math.nan, rows)
        return OracleJudgement(_transitions(rows), judged, len(batch) - judged, touched)

    def apply(self, j: OracleJudgement) -> None:
        """Commit the point states a judgement computed."""
        for p, st in j.states.items():
            self.points[p] = st

    def check_stale(self, now_ms: int, suppressed: np.ndarray | None = None) -> Transitions:
        """Raise STALE for silent points (clear it where stale_ms became 0); changes state."""
        rows: list[Row] = []
        for p, st in enumerate(self.points):
            if st.last_arrival is None:
                st.last_arrival = now_ms  # never heard of: counts from the first check
            stale_ms = int(self.config.stale_ms[p])
            silent = now_ms - st.last_arrival >= stale_ms
            if stale_ms == 0:
                self._set(p, st, STALE, False, now_ms, math.nan, math.nan, rows)
            elif silent and not (suppressed is not None and suppressed[p]):
                self._set(p, st, STALE, True, now_ms, math.nan, math.nan, rows)
        return _transitions(rows)

    def _judge_reading(
        self, p: int, st: _Point, t: int, v: float, b: bool, rows: list[Row]
    ) -> None:
        """Apply every rule to one judged reading of point p."""
        cfg = self.config
        low, high = float(cfg.range_low[p]), float(cfg.range_high[p])
        is_bad = b or not math.isfinite(v) or v < low or v > high  # a NaN bound is no bound
        self._set(p, st, BAD, is_bad, t, v, math.nan, rows)
        if is_bad:
            return  # no limit and no ROC is judged on a bad reading
        if st.last_good is not None:
            prev_t, prev_v = st.last_good
            rate = abs((v - prev_v) / ((t - prev_t) / 1000.0)) * 60.0
            roc_limit = float(cfg.roc_per_min[p])
            self._set(p, st, ROC, rate >= roc_limit, t, v, roc_limit, rows)  # NaN limit: never
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
    def _set(p: int, st: _Point, c: int, active: bool, t: int, v: float, limit: float,
             rows: list[Row]) -> None:  # fmt: skip
        """Record a transition when condition c of point p changes to ``active``."""
        if st.active[c] != active:
            st.active[c] = active
            rows.append((p, t, c, active, v, limit))


def _transitions(rows: list[Row]) -> Transitions:
    """Rows as sorted Transitions."""
    if not rows:
        return Transitions.empty()
    return Transitions.build(*zip(*rows, strict=True))

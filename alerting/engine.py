"""The pure, vectorized alarm engine core: readings in, alarm transitions out.

No SQL, MQTT, threads, logging or clock reads: time comes in as arguments, so
every result is reproducible. Semantics are CONTRACT.md "Alarm semantics";
``alerting.oracle`` is the plain per-reading reference this module is tested
against, and the docstrings of its rules are the readable statement of them.

How a batch is judged (DESIGN-NOTES "Stateful rules on arrays"):
- One np.sort of a packed int64 key orders the batch by (point, ts, position);
  the readings of one point form a *segment*, seeded by that point's carried
  state. Every rule reuses this one ordering; no per-reading Python loop.
- Hysteresis, run starts and delays are forward fills (np.maximum.accumulate
  over marked indices) seeded at segment starts; transitions are where the
  judged state differs from the one before. A limit only works on segments
  whose min/max show that something can change there ("quiet" ones are skipped),
  so the cost follows the excursions, not the readings.
- judge() returns the transitions and a state patch without touching the
  state; apply() commits the patch once the caller has stored the transitions.

State is dense per-point arrays (see _fresh_state): 75 bytes per point, plus 88
of config. judge() keeps reusable work buffers (~40 bytes per reading of the
largest batch). An Engine is not thread-safe: one caller at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from hazmon.errors import Conflict

CONDITIONS: tuple[str, ...] = ("HIHI", "HI", "LO", "LOLO", "ROC", "BAD")
HIHI, HI, LO, LOLO, ROC, BAD = range(6)
STALE = 6
CONDITION_NAMES: tuple[str, ...] = (*CONDITIONS, "STALE")
LIMIT_CONDITIONS: tuple[int, ...] = (HIHI, HI, LO, LOLO)
LIMIT_FIELDS: tuple[str, ...] = ("hihi", "hi", "lo", "lolo")
NO_TIME = int(np.iinfo(np.int64).min)  # "never": no reading judged / arrived yet
RUN_START_NEVER = -(2**62)  # run start of a fresh point: every delay long elapsed, no overflow

_FLOAT_FIELDS = ("hihi", "hi", "lo", "lolo", "deadband", "range_low", "range_high", "roc_per_min")
_INT_FIELDS = ("on_delay_ms", "off_delay_ms", "stale_ms")

Patch = list[tuple[str, int, np.ndarray, np.ndarray]]  # (state array, row or -1, points, values)


class StaleJudgement(Conflict):
    """A judgement was applied after the engine's state changed since it was judged."""


@dataclass
class PointConfig:
    """Per-point rules as dense arrays, index = point number, all of one length n."""

    hihi: np.ndarray  # float64 limits, NaN = not configured
    hi: np.ndarray
    lo: np.ndarray
    lolo: np.ndarray
    deadband: np.ndarray  # float64 >= 0
    range_low: np.ndarray  # float64 instrument range, NaN = none
    range_high: np.ndarray
    roc_per_min: np.ndarray  # float64, NaN = none
    on_delay_ms: np.ndarray  # int64 >= 0
    off_delay_ms: np.ndarray
    stale_ms: np.ndarray  # int64, 0 = none

    @classmethod
    def empty(cls, n: int) -> PointConfig:
        """A configuration of ``n`` points with nothing configured."""
        arrays = {name: np.full(n, np.nan) for name in _FLOAT_FIELDS}
        arrays["deadband"] = np.zeros(n)
        arrays.update({name: np.zeros(n, np.int64) for name in _INT_FIELDS})
        return cls(**arrays)

    def __len__(self) -> int:
        return len(self.hihi)

    def checked(self) -> PointConfig:
        """A private, contiguous, typed copy; ValueError on malformed arrays."""
        n = len(self.hihi)
        out = {}
        for f in fields(self):
            dtype = np.float64 if f.name in _FLOAT_FIELDS else np.int64
            arr = np.array(getattr(self, f.name), dtype=dtype, copy=True)
            if arr.shape != (n,):
                raise ValueError(f"PointConfig.{f.name} must have shape ({n},), got {arr.shape}")
            out[f.name] = arr
        if not (out["deadband"] >= 0).all():
            raise ValueError("deadband must be >= 0 and not NaN")
        for name in _INT_FIELDS:
            if (out[name] < 0).any():
                raise ValueError(f"{name} must be >= 0")
        return PointConfig(**out)

    def limit(self, cond: int) -> np.ndarray:
        """The limit of a condition: hihi/hi/lo/lolo, roc_per_min for ROC."""
        return getattr(self, LIMIT_FIELDS[cond]) if cond < 4 else self.roc_per_min


@dataclass
class Transitions:
    """Alarm state changes, ordered by (point, ts_ms, cond)."""

    point: np.ndarray  # int32
    ts_ms: np.ndarray  # int64
    cond: np.ndarray  # int8, index into CONDITION_NAMES
    active: np.ndarray  # bool
    value: np.ndarray  # float64, the reading's value (NaN for STALE raised by check_stale)
    limit: np.ndarray  # float64, the limit (roc_per_min for ROC, NaN for BAD/STALE)

    def __len__(self) -> int:
        return len(self.point)

    @classmethod
    def empty(cls) -> Transitions:
        """No transitions."""
        return cls.build([], [], [], [], [], [])

    @classmethod
    def build(cls, *columns: Sequence[Any] | np.ndarray) -> Transitions:
        """Typed arrays from the six columns in field order, sorted by (point, ts_ms, cond)."""
        dtypes = (np.int32, np.int64, np.int8, bool, np.float64, np.float64)
        t = cls(*(np.asarray(col, dtype) for col, dtype in zip(columns, dtypes, strict=True)))
        if len(t) > 1:
            order = _order_by(t.point, t.ts_ms, t.cond)
            t = cls(*(getattr(t, f.name)[order] for f in fields(cls)))
        return t

    def rows(self) -> list[tuple[int, int, str, bool, float, float]]:
        """Plain tuples (point, ts_ms, condition name, active, value, limit), for tests and logs."""
        cols = (self.point, self.ts_ms, self.cond, self.active, self.value, self.limit)
        return [
            (int(p), int(ts), CONDITION_NAMES[c], bool(a), float(v), float(lim))
            for p, ts, c, a, v, lim in zip(*cols, strict=True)
        ]


@dataclass
class Judgement:
    """What one batch changes: the transitions, counts, and the state patch for apply()."""

    transitions: Transitions
    judged: int  # readings judged
    skipped_old: int  # readings not newer than the newest judged one of their point
    _patch: Patch = field(default_factory=list, repr=False)
    _generation: int = field(default=-1, repr=False)


class Engine:
    """Judges batches of readings against per-point rules; state in dense arrays."""

    def __init__(self, config: PointConfig, now_ms: int | None = None) -> None:
        """Start with every point fresh; STALE counts from now_ms (else the first check_stale)."""
        self._cfg = config.checked()
        self._s = _fresh_state(len(self._cfg), now_ms)
        self._generation = 0  # bumped by every state change; a judgement must match it
        self._scratch = _Scratch()

    @property
    def n(self) -> int:
        """Number of points."""
        return len(self._cfg)

    def judge(
        self,
        point: np.ndarray,
        ts_ms: np.ndarray,
        value: np.ndarray,
        bad: np.ndarray,
        arrival_ms: int,
    ) -> Judgement:
        """Judge a batch (any order) against the current state; the state is not changed."""
        batch = self._batch_arrays(point, ts_ms, value, bad)
        judging = _Judging(self._cfg, self._s, self._scratch)
        judged, skipped = judging.run(*batch, arrival_ms=int(arrival_ms))
        return Judgement(judging.transitions(), judged, skipped, judging.patch, self._generation)

    def apply(self, j: Judgement) -> None:
        """Commit a judgement's state patch (after its transitions were stored)."""
        if j._generation != self._generation:
            raise StaleJudgement("engine state changed since this batch was judged; judge it again")
        for name, row, idx, values in j._patch:
            (self._s[name] if row < 0 else self._s[name][row])[idx] = values
        self._generation += 1

    def check_stale(self, now_ms: int, suppressed: np.ndarray | None = None) -> Transitions:
        """Raise STALE where no reading arrived for stale_ms; changes the state itself (own commit).

        A point never heard of counts from the ``now_ms`` given to __init__/reconfigure,
        else from its first check_stale. While ``suppressed[point]`` (its gateway's COMM
        alarm is active) STALE is not raised. STALE clears at the next arrival (judge
        emits that), or here when stale_ms was set to 0. Invalidates pending judgements
        when it changes an alarm.
        """
        last, active = self._s["last_arrival"], self._s["active"][STALE]
        last[last == NO_TIME] = now_ms
        stale_ms = self._cfg.stale_ms
        rise = ~active & (stale_ms > 0) & (now_ms - last >= stale_ms)
        if suppressed is not None:
            suppressed = np.asarray(suppressed, bool)
            if suppressed.shape != (self.n,):
                raise ValueError(f"suppressed must have shape ({self.n},)")
            rise &= ~suppressed
        changed = np.flatnonzero(rise | (active & (stale_ms == 0)))
        if not len(changed):
            return Transitions.empty()
        active[changed] = ~active[changed]
        self._generation += 1
        k = len(changed)
        nan = np.full(k, np.nan)
        ts, cond = np.full(k, now_ms), np.full(k, STALE)
        return Transitions.build(changed, ts, cond, active[changed], nan, nan)

    def reconfigure(
        self, config: PointConfig, keep: np.ndarray | None = None, now_ms: int | None = None
    ) -> None:
        """Take a new config; keep[i] = old index whose state point i carries, -1 = fresh.

        keep=None carries the indices present in both. Fresh points count STALE from
        now_ms. Carried state meets the new rules at the point's next reading (a removed
        limit's alarm returns there, after its off delay).
        """
        cfg = config.checked()
        n_old, n_new = self.n, len(cfg)
        if keep is None:
            keep = np.arange(n_new)
            keep[keep >= n_old] = -1
        keep = np.asarray(keep, np.int64)
        if keep.shape != (n_new,) or (keep < -1).any() or (keep >= n_old).any():
            raise ValueError(f"keep must have shape ({n_new},) with values in -1..{n_old - 1}")
        state = _fresh_state(n_new, now_ms)
        carried = np.flatnonzero(keep >= 0)
        for name, arr in self._s.items():
            state[name][..., carried] = arr[..., keep[carried]]
        self._cfg, self._s = cfg, state
        self._generation += 1

    def active_mask(self) -> np.ndarray:
        """(n, 7) bool: which alarms are active now, columns in CONDITION_NAMES order."""
        return self._s["active"].T.copy()

    def export_state(self) -> dict[str, np.ndarray]:
        """Copies of every per-point state array (1-D, length n); enough to resume exactly."""
        return {name: arr.copy() for name, arr in self._flat_state().items()}

    def import_state(self, state: dict[str, np.ndarray]) -> None:
        """Resume from export_state() of an engine with the same points."""
        mine = self._flat_state()
        if set(state) != set(mine):
            raise ValueError(f"state keys differ: {sorted(set(state) ^ set(mine))}")
        for name, arr in mine.items():
            new = np.asarray(state[name], arr.dtype)
            if new.shape != arr.shape:
                raise ValueError(f"state {name!r} must have shape {arr.shape}, got {new.shape}")
            arr[...] = new
        self._generation += 1

    def state_nbytes(self) -> int:
        """Bytes of per-point state plus config held by the engine (not the work buffers)."""
        cfg = sum(getattr(self._cfg, f.name).nbytes for f in fields(self._cfg))
        return cfg + sum(arr.nbytes for arr in self._s.values())

    def _flat_state(self) -> dict[str, np.ndarray]:
        """Views of the state as 1-D arrays, a 2-D one split into one per condition."""
        flat = {}
        for name, arr in self._s.items():
            if arr.ndim == 1:
                flat[name] = arr
            else:
                flat.update({f"{name}_{CONDITION_NAMES[c]}": row for c, row in enumerate(arr)})
        return flat

    def _batch_arrays(
        self, point: np.ndarray, ts_ms: np.ndarray, value: np.ndarray, bad: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The batch as typed 1-D arrays of one length; ValueError otherwise."""
        arrs = (
            np.asarray(point, np.int32),
            np.asarray(ts_ms, np.int64),
            np.asarray(value, np.float64),
            np.asarray(bad, bool),
        )
        m = len(arrs[0])
        if any(a.ndim != 1 or len(a) != m for a in arrs):
            raise ValueError("point, ts_ms, value and bad must be 1-D arrays of one length")
        if m and (arrs[0].min() < 0 or arrs[0].max() >= self.n):
            raise ValueError(f"point index out of range 0..{self.n - 1}")
        return arrs


def _fresh_state(n: int, now_ms: int | None) -> dict[str, np.ndarray]:
    """State of ``n`` points never heard of (75 bytes per point)."""
    return {
        "last_ts": np.full(n, NO_TIME, np.int64),  # newest judged reading
        "last_arrival": np.full(n, NO_TIME if now_ms is None else now_ms, np.int64),
        "last_good_ts": np.full(n, NO_TIME, np.int64),  # newest good judged reading, for ROC
        "last_good_value": np.full(n, np.nan),
        "raw": np.zeros((4, n), bool),  # per limit: condition before delays
        "run_start": np.full((4, n), RUN_START_NEVER, np.int64),  # per limit: run of equal raw
        "active": np.zeros((7, n), bool),  # per condition (CONDITION_NAMES): the alarm
    }


class _Judging:
    """One judge() call: reads the state, collects transitions and the state patch."""

    def __init__(self, cfg: PointConfig, state: dict[str, np.ndarray], scratch: _Scratch) -> None:
        self.cfg, self.s, self.scratch = cfg, state, scratch
        self.patch: Patch = []
        self.parts: list[tuple[np.ndarray, ...]] = []

    def run(
        self, point: np.ndarray, ts: np.ndarray, value: np.ndarray, bad: np.ndarray, arrival_ms: int
    ) -> tuple[int, int]:
        """Judge the batch; (readings judged, readings skipped as old or duplicate)."""
        if not len(point):
            return 0, 0
        p, t, src = _sort_batch(point, ts, len(self.cfg), self.scratch)
        q = (bad if src is None else bad[src]) if bad.any() else None
        if src is not None:
            value = np.take(value, src, out=self.scratch.get("v", len(p), np.float64), mode="clip")
        arrived = _Batch.of(p, t, value, q)
        dup, skip = self.skipped(arrived)
        j = arrived if skip is None else arrived.take(~skip)
        self.patch.append(("last_arrival", -1, arrived.pts, np.full(len(arrived.pts), arrival_ms)))
        self.clear_stale(arrived, dup, arrival_ms)
        if len(j):
            self.patch.append(("last_ts", -1, j.pts, j.t[j.ends]))
            seg_lo, seg_hi = np.minimum.reduceat(j.v, j.starts), np.maximum.reduceat(j.v, j.starts)
            bad_mask = self.judge_bad(j, seg_lo, seg_hi)
            self.judge_roc(j, None if bad_mask is None else _BadAt(bad_mask))
            good = None if bad_mask is None else ~bad_mask
            for c in LIMIT_CONDITIONS:
                self.judge_limit(j, good, c, seg_lo, seg_hi)
        return len(j), len(arrived) - len(j)

    def add(self, b: _Batch, at: np.ndarray, cond: int, active: np.ndarray, limit: np.ndarray,
            ts_ms: int | None = None) -> None:  # fmt: skip
        """Transitions of ``cond`` at readings ``at`` of ``b`` (at their own ts unless given)."""
        if len(at):
            ts = b.t[at] if ts_ms is None else np.full(len(at), ts_ms, np.int64)
            cond_col = np.full(len(at), cond, np.int8)
            self.parts.append((b.p[at], ts, cond_col, active, b.v[at], limit))

    def transitions(self) -> Transitions:
        """All collected transitions in (point, ts, cond) order."""
        if not self.parts:
            return Transitions.empty()
        return Transitions.build(*(np.concatenate(col) for col in zip(*self.parts, strict=True)))

    def skipped(self, b: _Batch) -> tuple[np.ndarray, np.ndarray | None]:
        """(dup, skip): repeated (point, ts); not judged (dup, or ts <= newest judged) or None."""
        dup = np.zeros(len(b), bool)
        np.equal(b.t[1:], b.t[:-1], out=dup[1:])
        dup[b.starts] = False
        skip = dup
        last = self.s["last_ts"][b.pts]
        if (b.t[b.starts] <= last).any():  # ts ascend within a segment: old ones lead it
            skip = dup | (b.t <= b.per_reading(last))
        return dup, (skip if skip.any() else None)

    def clear_stale(self, b: _Batch, dup: np.ndarray, arrival_ms: int) -> None:
        """STALE clears at any arrival, with the value of the newest reading (first of its ts)."""
        sel = np.flatnonzero(self.s["active"][STALE][b.pts])
        if not len(sel):
            return
        firsts = np.flatnonzero(~dup)
        newest = firsts[np.searchsorted(firsts, b.ends[sel], side="right") - 1]
        off = np.zeros(len(sel), bool)
        self.add(b, newest, STALE, off, np.full(len(sel), np.nan), ts_ms=arrival_ms)
        self.patch.append(("active", STALE, b.pts[sel], off))

    def judge_bad(self, j: _Batch, seg_lo: np.ndarray, seg_hi: np.ndarray) -> np.ndarray | None:
        """BAD at each reading: quality bad, not finite, or outside the range. The mask or None."""
        rlo, rhi = self.cfg.range_low[j.pts], self.cfg.range_high[j.pts]
        bad = np.zeros(len(j), bool) if j.q is None else j.q.copy()
        if not (np.isfinite(seg_lo).all() and np.isfinite(seg_hi).all()):
            bad |= ~np.isfinite(j.v)
            bad |= (j.v < j.per_reading(rlo)) | (j.v > j.per_reading(rhi))
        else:  # only segments whose extremes leave the range hold out-of-range readings
            sel = np.flatnonzero((seg_lo < rlo) | (seg_hi > rhi))
            if len(sel):
                lens = j.lens[sel]
                at = _expand(j.starts[sel], lens)
                v = j.v[at]
                bad[at] |= (v < np.repeat(rlo[sel], lens)) | (v > np.repeat(rhi[sel], lens))
        any_bad = bool(bad.any())
        seed = self.s["active"][BAD][j.pts]
        if any_bad or seed.any():
            ch = _changes(bad, j.starts, seed)
            self.add(j, ch, BAD, bad[ch], np.full(len(ch), np.nan))
            self.patch.append(("active", BAD, j.pts, bad[j.ends]))
        return bad if any_bad else None

    def judge_roc(self, j: _Batch, bad: _BadAt | None) -> None:
        """ROC between consecutive good readings; the first ever good reading is not judged.

        The rate is computed at every reading from the one before it; where that is not
        the previous good reading (segment starts, after bad readings) it is fixed up.
        """
        seed_t, seed_v = self.s["last_good_ts"][j.pts], self.s["last_good_value"][j.pts]
        last_t, last_v = j.t[j.ends], j.v[j.ends]
        if bad is not None:  # segments ending in a bad reading: their last good one, if any
            seg = np.minimum(np.searchsorted(j.ends, bad.at), len(j.ends) - 1)
            seg = seg[j.ends[seg] == bad.at]
            k = bad.last_good(j, j.ends[seg])
            last_t[seg] = np.where(k >= 0, j.t[k], seed_t[seg])
            last_v[seg] = np.where(k >= 0, j.v[k], seed_v[seg])
        self.patch.append(("last_good_ts", -1, j.pts, last_t))
        self.patch.append(("last_good_value", -1, j.pts, last_v))
        thr = self.cfg.roc_per_min[j.pts]
        seed = self.s["active"][ROC][j.pts]
        if np.isnan(thr).all() and not seed.any():
            return
        fix, seg, prev_t, prev_v = j.starts, _iota(len(j.starts)), seed_t, seed_v
        if bad is not None:
            pos = bad.after(j)
            k = bad.last_good(j, pos - 1)
            s = j.segment_of(pos)
            fix, seg = np.concatenate([fix, pos]), np.concatenate([seg, s])
            prev_t = np.concatenate([seed_t, np.where(k >= 0, j.t[k], seed_t[s])])
            prev_v = np.concatenate([seed_v, np.where(k >= 0, j.v[k], seed_v[s])])
        first = prev_t == NO_TIME  # no earlier good reading ever: not judged, seed kept
        prev_t = np.where(first, j.t[fix] - 1000, prev_t)
        roc = _rate_reached(j, fix, prev_t, prev_v, thr, self.scratch)
        roc[fix[first]] = seed[seg[first]]
        if bad is not None:  # a bad reading holds the state of the last good one before it
            k = bad.last_good(j, bad.at)
            roc[bad.at] = np.where(k >= 0, roc[k], seed[j.segment_of(bad.at)])
        ch = _changes(roc, j.starts, seed)
        self.add(j, ch, ROC, roc[ch], self.cfg.roc_per_min[j.p[ch]])
        self.patch.append(("active", ROC, j.pts, roc[j.ends]))

    def judge_limit(
        self, j: _Batch, good: np.ndarray | None, c: int, seg_lo: np.ndarray, seg_hi: np.ndarray
    ) -> None:
        """One limit: hysteresis and delays as seeded forward fills, on segments that can change."""
        high = c in (HIHI, HI)
        lim = self.cfg.limit(c)[j.pts]
        db = self.cfg.deadband[j.pts]
        reset = lim - db if high else lim + db
        reset[np.isnan(lim)] = np.inf if high else -np.inf  # an unconfigured limit always resets
        raw0, al0 = self.s["raw"][c][j.pts], self.s["active"][c][j.pts]
        # A quiet segment keeps raw and alarm as they are at every reading (all set while
        # active, all reset while clear): no transition, no state change. Bad readings'
        # values only make the test stricter.
        if high:
            quiet = np.where(raw0, seg_lo >= lim, seg_hi < reset)
        else:
            quiet = np.where(raw0, seg_hi <= lim, seg_lo > reset)
        sel = np.flatnonzero(~(quiet & (raw0 == al0)))
        if not len(sel):
            return
        if 2 * len(sel) > len(j.pts):  # most segments: working all is cheaper than gathering
            sel = _iota(len(j.pts))
        lens = j.lens[sel]
        st = np.cumsum(lens) - lens  # segment starts within the selection
        at = _expand(j.starts[sel], lens) if len(sel) < len(j.pts) else None
        v, t = (j.v, j.t) if at is None else (j.v[at], j.t[at])
        ok = good if good is None or at is None else good[at]
        lim_r, reset_r = np.repeat(lim[sel], lens), np.repeat(reset[sel], lens)
        setm = v >= lim_r if high else v <= lim_r
        resm = v < reset_r if high else v > reset_r
        if ok is not None:  # nothing is judged at a bad reading
            setm &= ok
            resm &= ok
        raw0, al0, pts = raw0[sel], al0[sel], j.pts[sel]
        raw = _seeded_fill(setm | resm, setm, st, raw0)
        alarm, rs_end = self.delays(raw, t, st, ok, raw0, al0, c, pts)
        ch = _changes(alarm, st, al0)
        ch_at = ch if at is None else at[ch]
        self.add(j, ch_at, c, alarm[ch], self.cfg.limit(c)[j.p[ch_at]])
        ends = st + lens - 1
        self.patch.append(("raw", c, pts, raw[ends]))
        self.patch.append(("run_start", c, pts, rs_end))
        self.patch.append(("active", c, pts, alarm[ends]))

    def delays(self, raw: np.ndarray, t: np.ndarray, st: np.ndarray, ok: np.ndarray | None,
               raw0: np.ndarray, al0: np.ndarray, c: int, pts: np.ndarray,
               ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """(alarm per reading, run start at each segment's end) after on/off delays.

        Each run of equal raw states gets a deadline, its first reading's ts plus the
        on delay (raw) or off delay (clear); the alarm follows raw at the first good
        reading at or past it. Deadlines are forward-filled like the raw states.
        """
        on, off = self.cfg.on_delay_ms[pts], self.cfg.off_delay_ms[pts]
        rs0 = self.s["run_start"][c][pts]
        newrun = _change_mask(raw, st, raw0)
        runs = np.flatnonzero(newrun)
        ends = np.append(st[1:], len(raw)) - 1
        if ok is None and not (on.any() or off.any()) and (raw0 == al0).all():
            k = np.searchsorted(runs, ends, side="right") - 1  # last run start in each segment
            found = k >= 0
            found[found] = runs[k[found]] >= st[found]
            rs_end = np.where(found, t[runs[k]] if len(runs) else 0, rs0)
            return raw, rs_end  # no delays: the alarm is the raw condition
        if 16 * len(runs) < len(raw):
            seg = np.searchsorted(st, runs, side="right") - 1
        else:  # many runs: a segment number per reading is cheaper than a search per run
            seg = np.repeat(_iota(len(st), np.int32), ends - st + 1)[runs]
        deadline = np.empty(len(raw), np.int64)
        deadline[runs] = t[runs] + np.where(raw[runs], on[seg], off[seg])
        deadline = _seeded_fill(newrun, deadline, st, rs0 + np.where(raw0, on, off))
        due = t >= deadline
        if ok is not None:
            due &= ok
        alarm = _seeded_fill(due, raw & due, st, al0)
        return alarm, deadline[ends] - np.where(raw[ends], on, off)


def _rate_reached(j: _Batch, fix: np.ndarray, prev_t: np.ndarray, prev_v: np.ndarray,
                  thr: np.ndarray, scratch: _Scratch) -> np.ndarray:  # fmt: skip
    """rate >= roc_per_min at each reading, from the reading before it (prev_t/prev_v at fix).

    Bit for bit the oracle's abs((v - pv) / ((t - pt) / 1000.0)) * 60.0: Δt is taken in
    int64 and converted once (exact below 2**53 ms), then the same float operations.
    """
    t, v = j.t, j.v
    den = scratch.get("den", len(t), np.float64)
    np.subtract(t[1:], t[:-1], out=den[1:])
    den[fix] = t[fix] - prev_t
    den /= 1000.0
    rate = scratch.get("rate", len(t), np.float64)
    with np.errstate(invalid="ignore", over="ignore"):  # non-finite values are BAD anyway
        np.subtract(v[1:], v[:-1], out=rate[1:])
        rate[fix] = v[fix] - prev_v
        rate /= den
    np.abs(rate, out=rate)
    rate *= 60.0
    lo, hi = np.min(thr), np.max(thr)
    return rate >= (lo if lo == hi else j.per_reading(thr))


@dataclass
class _Batch:
    """Readings sorted by (point, ts, batch position), cut into one segment per point."""

    p: np.ndarray  # int32 point
    t: np.ndarray  # int64 ts_ms
    v: np.ndarray  # float64 value
    q: np.ndarray | None  # bool quality bad, None when all are good
    starts: np.ndarray  # index of each segment's first reading
    ends: np.ndarray  # index of each segment's last reading
    lens: np.ndarray  # readings per segment
    pts: np.ndarray  # point of each segment

    @classmethod
    def of(cls, p: np.ndarray, t: np.ndarray, v: np.ndarray, q: np.ndarray | None) -> _Batch:
        """Cut sorted readings into segments."""
        newseg = np.empty(len(p), bool)
        newseg[:1] = True
        np.not_equal(p[1:], p[:-1], out=newseg[1:])
        starts = np.flatnonzero(newseg)
        ends = np.append(starts[1:], len(p)) - 1
        return cls(p, t, v, q, starts, ends, ends - starts + 1, p[starts])

    def __len__(self) -> int:
        return len(self.p)

    def take(self, keep: np.ndarray) -> _Batch:
        """The readings where ``keep`` is True (segments recomputed)."""
        q = None if self.q is None else self.q[keep]
        return _Batch.of(self.p[keep], self.t[keep], self.v[keep], q)

    def per_reading(self, seg_values: np.ndarray) -> np.ndarray:
        """One value per segment, repeated for each of its readings."""
        return np.repeat(seg_values, self.lens)

    def segment_of(self, pos: np.ndarray) -> np.ndarray:
        """Segment number of reading positions."""
        return np.searchsorted(self.starts, pos, side="right") - 1


class _BadAt:
    """The (few) bad readings of a batch, to find the good reading before a position."""

    def __init__(self, bad: np.ndarray) -> None:
        self.at = np.flatnonzero(bad)
        brk = np.ones(len(self.at), bool)
        np.not_equal(self.at[1:], self.at[:-1] + 1, out=brk[1:])
        self.run_first = self.at[np.maximum.accumulate(np.where(brk, _iota(len(brk)), 0))]
        self.run_last = self.at[np.append(brk[1:], True)]  # last of each run of adjacent bads

    def last_good(self, j: _Batch, pos: np.ndarray) -> np.ndarray:
        """Per position, the last good reading at or before it in its segment, or -1."""
        i = np.minimum(np.searchsorted(self.at, pos), len(self.at) - 1)
        cand = np.where(self.at[i] == pos, self.run_first[i] - 1, pos)
        return np.where(cand >= j.starts[j.segment_of(pos)], cand, -1)

    def after(self, j: _Batch) -> np.ndarray:
        """Good readings right after a bad one, in the same segment."""
        pos = self.run_last + 1
        pos = pos[pos < len(j)]
        return pos[j.starts[j.segment_of(pos)] != pos]


class _Scratch:
    """Work buffers reused from batch to batch: a fresh 8 MB array costs more in page
    faults than the numpy pass that fills it. Never part of a result or of the state."""

    def __init__(self) -> None:
        self._bufs: dict[str, np.ndarray] = {}

    def get(self, slot: str, m: int, dtype: type) -> np.ndarray:
        """An uninitialised array of m items, valid until the slot is asked for again."""
        nbytes = m * np.dtype(dtype).itemsize
        buf = self._bufs.get(slot)
        if buf is None or buf.nbytes < nbytes:
            buf = self._bufs[slot] = np.empty(nbytes, np.uint8)
        return buf[:nbytes].view(dtype)


def _sort_batch(
    point: np.ndarray, ts: np.ndarray, n: int, scratch: _Scratch
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(p, t, src): the batch ordered by (point, ts, batch position); src = batch position.

    src is None when the batch is already in that order. t and src may live in scratch.
    """
    in_order = (point[1:] >= point[:-1]).all() and not (
        (point[1:] == point[:-1]) & (ts[1:] < ts[:-1])
    ).any()
    if in_order:
        return point, ts, None
    m = len(point)
    tmin, bt = _span(ts)
    bp, bi = max(n - 1, 0).bit_length(), (m - 1).bit_length()
    if bp + bt + bi > 63:
        src = np.lexsort((ts, point))
        return point[src], ts[src], src
    key = np.left_shift(point, bt + bi, out=scratch.get("key", m, np.int64), dtype=np.int64)
    src = np.subtract(ts, tmin, out=scratch.get("src", m, np.int64))
    src <<= bi
    key |= src
    key |= _iota(m)
    key.sort()
    p = np.right_shift(key, bt + bi, out=np.empty(m, np.int32), casting="unsafe")
    np.bitwise_and(key, (1 << bi) - 1, out=src)
    key >>= bi  # the key becomes t
    key &= (1 << bt) - 1
    key += tmin
    return p, key, src


def _order_by(point: np.ndarray, ts: np.ndarray, cond: np.ndarray) -> np.ndarray:
    """Stable order by (point, ts, cond): one sort of a packed int64 key when it fits."""
    m = len(point)
    tmin, bt = _span(ts)
    bp, bi = int(point.max()).bit_length(), (m - 1).bit_length()
    if point.min() < 0 or bp + bt + 3 + bi > 63:
        return np.lexsort((cond, ts, point))
    key = np.left_shift(point, bt + 3 + bi, dtype=np.int64)
    key |= (ts - tmin) << (3 + bi)
    key |= cond.astype(np.int64) << bi
    key |= _iota(m)
    key.sort()
    return key & ((1 << bi) - 1)


def _span(ts: np.ndarray) -> tuple[int, int]:
    """(min, bits of max - min) of timestamps."""
    tmin = int(ts.min())
    return tmin, (int(ts.max()) - tmin).bit_length()


_IOTA: dict[str, np.ndarray] = {}


def _iota(m: int, dtype: type = np.int64) -> np.ndarray:
    """A read-only 0..m-1 (cached: a batch needs several)."""
    name = np.dtype(dtype).name
    a = _IOTA.get(name)
    if a is None or len(a) < m:
        a = np.arange(max(m, 2 * len(a) if a is not None else 0), dtype=dtype)
        a.flags.writeable = False
        _IOTA[name] = a
    return a[:m]


def _change_mask(x: np.ndarray, starts: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """Where x differs from the element before it (from the seed at segment starts)."""
    d = np.empty(len(x), bool)
    np.not_equal(x[1:], x[:-1], out=d[1:])
    d[starts] = x[starts] != seed
    return d


def _changes(x: np.ndarray, starts: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """Positions where x differs from the element before it (from the seed at segment starts)."""
    return np.flatnonzero(_change_mask(x, starts, seed))


def _seeded_fill(
    mark: np.ndarray, vals: np.ndarray, starts: np.ndarray, seed: np.ndarray
) -> np.ndarray:
    """Per reading, vals at the last marked reading at or before it in its segment, else
    the segment's seed. Overwrites ``mark`` and ``vals``."""
    seedless = ~mark[starts]
    vals[starts[seedless]] = seed[seedless]
    mark[starts] = True
    idx = np.multiply(_iota(len(mark), np.int64 if len(mark) >= 2**31 else np.int32), mark)
    np.maximum.accumulate(idx, out=idx)
    return vals[idx]


def _expand(starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Reading indices of the segments given by starts and lens, concatenated."""
    offs = np.cumsum(lens) - lens
    return _iota(int(lens.sum())) + np.repeat(starts - offs, lens)

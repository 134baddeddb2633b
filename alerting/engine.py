"""The pure, vectorized alarm engine core: readings in, alarm transitions out.

No SQL, MQTT, threads or clock reads: time comes in as arguments. Per-point state
lives in dense arrays indexed by point number. A batch is sorted once by
(point, ts); every rule then runs on that one ordering with whole-array numpy
operations (segment = the readings of one point, seeded by the carried state).

Semantics are CONTRACT.md "Alarm semantics"; ``alerting.oracle`` is the plain
per-reading reference the tests hold this module to.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from hazmon.errors import Conflict

CONDITIONS: tuple[str, ...] = ("HIHI", "HI", "LO", "LOLO", "ROC", "BAD")
HIHI, HI, LO, LOLO, ROC, BAD = range(6)
STALE = 6
CONDITION_NAMES: tuple[str, ...] = CONDITIONS + ("STALE",)
LIMIT_CONDITIONS: tuple[int, ...] = (HIHI, HI, LO, LOLO)
LIMIT_FIELDS: tuple[str, ...] = ("hihi", "hi", "lo", "lolo")
NO_TIME = int(np.iinfo(np.int64).min)  # "never": no reading judged / no arrival yet

_FLOAT_FIELDS = ("hihi", "hi", "lo", "lolo", "deadband", "range_low", "range_high", "roc_per_min")
_INT_FIELDS = ("on_delay_ms", "off_delay_ms", "stale_ms")


class StaleJudgement(Conflict):
    """A judgement was applied after the engine's state changed since it was judged."""


@dataclass
class PointConfig:
    """Per-point rule configuration as dense arrays, index = point number."""

    hihi: np.ndarray
    hi: np.ndarray
    lo: np.ndarray
    lolo: np.ndarray
    deadband: np.ndarray
    range_low: np.ndarray
    range_high: np.ndarray
    roc_per_min: np.ndarray
    on_delay_ms: np.ndarray
    off_delay_ms: np.ndarray
    stale_ms: np.ndarray

    @classmethod
    def empty(cls, n: int) -> PointConfig:
        """A configuration of ``n`` points with nothing configured."""
        nan = {name: np.full(n, np.nan) for name in _FLOAT_FIELDS}
        nan["deadband"] = np.zeros(n)
        return cls(**nan, **{name: np.zeros(n, np.int64) for name in _INT_FIELDS})

    def __len__(self) -> int:
        return len(self.hihi)

    def checked(self) -> PointConfig:
        """A private, contiguous, type-checked copy; ValueError on malformed arrays."""
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
        """The limit array of a condition (roc_per_min for ROC)."""
        return getattr(self, LIMIT_FIELDS[cond]) if cond < 4 else self.roc_per_min


@dataclass
class Transitions:
    """Alarm state changes, ordered by (point, ts_ms, cond)."""

    point: np.ndarray
    ts_ms: np.ndarray
    cond: np.ndarray
    active: np.ndarray
    value: np.ndarray
    limit: np.ndarray

    def __len__(self) -> int:
        return len(self.point)

    @classmethod
    def empty(cls) -> Transitions:
        """No transitions."""
        return cls.build([], [], [], [], [], [])

    @classmethod
    def build(cls, point, ts_ms, cond, active, value, limit) -> Transitions:  # type: ignore[no-untyped-def]
        """Typed arrays from sequences, sorted by (point, ts_ms, cond)."""
        t = cls(
            np.asarray(point, np.int32),
            np.asarray(ts_ms, np.int64),
            np.asarray(cond, np.int8),
            np.asarray(active, bool),
            np.asarray(value, np.float64),
            np.asarray(limit, np.float64),
        )
        if len(t) > 1:
            order = np.lexsort((t.cond, t.ts_ms, t.point))
            t = cls(*(getattr(t, f.name)[order] for f in fields(cls)))
        return t

    def rows(self) -> list[tuple[int, int, str, bool, float, float]]:
        """Plain tuples (point, ts_ms, condition name, active, value, limit), for tests and logs."""
        return [
            (int(p), int(ts), CONDITION_NAMES[c], bool(a), float(v), float(lim))
            for p, ts, c, a, v, lim in zip(
                self.point, self.ts_ms, self.cond, self.active, self.value, self.limit
            )
        ]


@dataclass
class Judgement:
    """What one batch changes: the transitions, counts, and the state patch for apply()."""

    transitions: Transitions
    judged: int
    skipped_old: int
    _patch: list[tuple[str, int, np.ndarray, np.ndarray]] = field(default_factory=list, repr=False)
    _generation: int = field(default=-1, repr=False)


@dataclass
class _Batch:
    """Readings sorted by (point, ts, batch position), cut into one segment per point."""

    p: np.ndarray  # int32 point
    t: np.ndarray  # int64 ts_ms
    v: np.ndarray  # float64 value
    q: np.ndarray  # bool: quality bad
    starts: np.ndarray  # int64 index of each segment's first reading
    pts: np.ndarray  # int32 point of each segment

    @classmethod
    def of(cls, p: np.ndarray, t: np.ndarray, v: np.ndarray, q: np.ndarray) -> _Batch:
        """Cut sorted readings into segments."""
        newseg = np.empty(len(p), bool)
        newseg[:1] = True
        np.not_equal(p[1:], p[:-1], out=newseg[1:])
        starts = np.flatnonzero(newseg)
        return cls(p, t, v, q, starts, p[starts])

    def __len__(self) -> int:
        return len(self.p)

    @property
    def lens(self) -> np.ndarray:
        """Readings per segment."""
        return np.diff(self.starts, append=len(self.p))

    @property
    def ends(self) -> np.ndarray:
        """Index of each segment's last reading."""
        return np.append(self.starts[1:], len(self.p)) - 1

    def take(self, keep: np.ndarray) -> _Batch:
        """The readings where ``keep`` is True (segments recomputed)."""
        return _Batch.of(self.p[keep], self.t[keep], self.v[keep], self.q[keep])

    def per_reading(self, seg_values: np.ndarray) -> np.ndarray:
        """Broadcast one value per segment to its readings."""
        return np.repeat(seg_values, self.lens)


def _sort_batch(point: np.ndarray, ts: np.ndarray, n: int) -> tuple[np.ndarray, ...]:
    """(p, t, src): the batch ordered by (point, ts, batch position); src = batch position.

    One np.sort of a packed int64 key (point | ts - min | position) when it fits in
    63 bits, which it does for any batch spanning less than a few days; else lexsort.
    """
    m = len(point)
    bi, bp = (m - 1).bit_length(), max(n - 1, 0).bit_length()
    tmin = int(ts.min())
    bt = (int(ts.max()) - tmin).bit_length()
    if bp + bt + bi <= 63:
        key = point.astype(np.int64) << (bt + bi)
        key |= (ts - tmin) << bi
        key |= np.arange(m, dtype=np.int64)
        key.sort()
        src = key & ((1 << bi) - 1)
        t = ((key >> bi) & ((1 << bt) - 1)) + tmin
        return (key >> (bt + bi)).astype(np.int32), t, src
    src = np.lexsort((ts, point))
    return point[src], ts[src], src


def _fill(mark: np.ndarray, vals: np.ndarray) -> np.ndarray:
    """Forward fill: vals at the last marked index at or before each index (mark[0] True)."""
    idx = np.arange(len(mark), dtype=np.int64 if len(mark) >= 2**31 else np.int32)
    idx *= mark
    np.maximum.accumulate(idx, out=idx)
    return vals[idx]


def _previous(x: np.ndarray, starts: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """x shifted by one reading within segments, the seed at each segment's start."""
    prev = np.empty_like(x)
    prev[1:] = x[:-1]
    prev[starts] = seed
    return prev


def _expand(starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Reading indices of the segments given by starts/lens, concatenated."""
    offs = np.cumsum(lens) - lens
    return np.arange(int(lens.sum()), dtype=np.int64) + np.repeat(starts - offs, lens)


class _Out:
    """Transitions collected piecewise, assembled once at the end."""

    def __init__(self) -> None:
        self.parts: list[tuple[np.ndarray, ...]] = []

    def add(self, b, idx, cond, active, limit, ts=None):  # type: ignore[no-untyped-def]
        """Transitions of ``cond`` at readings ``idx`` of batch ``b`` (at their ts unless given)."""
        if len(idx):
            ts = b.t[idx] if ts is None else np.full(len(idx), ts, np.int64)
            cond_arr = np.full(len(idx), cond, np.int8)
            self.parts.append((b.p[idx], ts, cond_arr, active, b.v[idx], limit))

    def transitions(self) -> Transitions:
        """All collected transitions in (point, ts, cond) order."""
        if not self.parts:
            return Transitions.empty()
        return Transitions.build(*(np.concatenate(col) for col in zip(*self.parts)))


def _fresh_state(n: int, now_ms: int | None) -> dict[str, np.ndarray]:
    """State of ``n`` points never heard of."""
    return {
        "last_ts": np.full(n, NO_TIME, np.int64),
        "last_arrival": np.full(n, NO_TIME if now_ms is None else now_ms, np.int64),
        "last_good_ts": np.full(n, NO_TIME, np.int64),
        "last_good_value": np.full(n, np.nan),
        "raw": np.zeros((4, n), bool),
        "run_start": np.zeros((4, n), np.int64),
        "active": np.zeros((7, n), bool),
    }


class Engine:
    """Judges batches of readings against per-point rules; state in dense arrays."""

    def __init__(self, config: PointConfig, now_ms: int | None = None) -> None:
        """Start with every point fresh; STALE counts from now_ms (else the first check_stale)."""
        self._cfg = config.checked()
        self._s = _fresh_state(len(self._cfg), now_ms)
        self._generation = 0

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
        point, ts_ms, value, bad = self._batch_arrays(point, ts_ms, value, bad)
        out, patch = _Out(), []
        if not len(point):
            return Judgement(Transitions.empty(), 0, 0, patch, self._generation)
        p, t, src = _sort_batch(point, ts_ms, self.n)
        arrived = _Batch.of(p, t, value[src], bad[src])
        dup, skip = self._skipped(arrived)
        j = arrived if skip is None else arrived.take(~skip)
        patch.append(("last_arrival", -1, arrived.pts, np.full(len(arrived.pts), arrival_ms)))
        self._clear_stale(arrived, dup, arrival_ms, out, patch)
        if len(j):
            patch.append(("last_ts", -1, j.pts, j.t[j.ends]))
            seg_lo, seg_hi = np.minimum.reduceat(j.v, j.starts), np.maximum.reduceat(j.v, j.starts)
            bad = self._judge_bad(j, seg_lo, seg_hi, out, patch)
            g = j
            if bad is not None:  # limits and ROC are judged on good readings only
                g = j.take(~bad)
                seg_lo, seg_hi = np.minimum.reduceat(g.v, g.starts), np.maximum.reduceat(g.v, g.starts)
            if len(g):
                self._judge_roc(g, out, patch)
                self._judge_limits(g, seg_lo, seg_hi, out, patch)
        return Judgement(out.transitions(), len(j), len(arrived) - len(j), patch, self._generation)

    def apply(self, j: Judgement) -> None:
        """Commit a judgement's state patch (after its transitions were stored)."""
        if j._generation != self._generation:
            raise StaleJudgement("engine state changed since this batch was judged; judge it again")
        for name, row, idx, values in j._patch:
            arr = self._s[name] if row < 0 else self._s[name][row]
            arr[idx] = values
        self._generation += 1

    def check_stale(self, now_ms: int, suppressed: np.ndarray | None = None) -> Transitions:
        """Raise STALE where no reading arrived for stale_ms; mutates the state itself (own commit).

        A point never heard of counts from the ``now_ms`` given to __init__/reconfigure,
        else from its first check_stale. While ``suppressed[point]`` (its gateway's COMM
        alarm is active) STALE is not raised. STALE clears at the next arrival (judge),
        or here when stale_ms was set to 0.
        """
        last, active = self._s["last_arrival"], self._s["active"][STALE]
        last[last == NO_TIME] = now_ms
        stale_ms = self._cfg.stale_ms
        raise_ = ~active & (stale_ms > 0) & (now_ms - last >= stale_ms)
        if suppressed is not None:
            raise_ &= ~np.asarray(suppressed, bool)
        changed = np.flatnonzero(raise_ | (active & (stale_ms == 0)))
        if not len(changed):
            return Transitions.empty()
        active[changed] = ~active[changed]
        self._generation += 1
        k = len(changed)
        nan = np.full(k, np.nan)
        return Transitions.build(changed, np.full(k, now_ms), np.full(k, STALE), active[changed], nan, nan)

    def reconfigure(
        self, config: PointConfig, keep: np.ndarray | None = None, now_ms: int | None = None
    ) -> None:
        """Take a new config; keep[i] = old index whose state point i carries, -1 = fresh.

        keep=None carries indices present in both. Fresh points count STALE from now_ms.
        Kept state is judged against the new limits from the next reading on.
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
        new_idx = np.flatnonzero(keep >= 0)
        for name, arr in self._s.items():
            state[name][..., new_idx] = arr[..., keep[new_idx]]
        self._cfg, self._s = cfg, state
        self._generation += 1

    def export_state(self) -> dict[str, np.ndarray]:
        """Copies of every per-point state array (1-D, length n), to resume exactly after a restart."""
        return {name: arr.copy() for name, arr in self._flat_state().items()}

    def import_state(self, state: dict[str, np.ndarray]) -> None:
        """Resume from export_state() output of an engine with the same points."""
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
        """Bytes of per-point state plus config held by the engine."""
        cfg = sum(getattr(self._cfg, f.name).nbytes for f in fields(self._cfg))
        return cfg + sum(arr.nbytes for arr in self._s.values())

    def _flat_state(self) -> dict[str, np.ndarray]:
        """Views of the state as 1-D arrays, 2-D ones split into one array per condition."""
        flat = {}
        for name, arr in self._s.items():
            if arr.ndim == 1:
                flat[name] = arr
            else:
                for c, row in enumerate(arr):
                    flat[f"{name}_{CONDITION_NAMES[c]}"] = row
        return flat

    def active_mask(self) -> np.ndarray:
        """(n, 7) bool: which alarms are active now, columns in CONDITION_NAMES order."""
        return self._s["active"].T.copy()

    def _batch_arrays(self, point, ts_ms, value, bad):  # type: ignore[no-untyped-def]
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

    def _skipped(self, b: _Batch) -> tuple[np.ndarray, np.ndarray | None]:
        """(dup, skip): repeated (point, ts); not judged (dup, or ts <= newest judged ts) or None."""
        dup = np.zeros(len(b), bool)
        np.equal(b.t[1:], b.t[:-1], out=dup[1:])
        dup[b.starts] = False
        skip = dup
        last = self._s["last_ts"][b.pts]
        if (b.t[b.starts] <= last).any():  # ts ascend within a segment: old ones lead it
            skip = dup | (b.t <= b.per_reading(last))
        return dup, (skip if skip.any() else None)

    def _clear_stale(self, b, dup, arrival_ms, out, patch):  # type: ignore[no-untyped-def]
        """STALE clears at the arrival; value of the newest reading (first of equal ts)."""
        sel = np.flatnonzero(self._s["active"][STALE][b.pts])
        if not len(sel):
            return
        firsts = np.flatnonzero(~dup)
        newest = firsts[np.searchsorted(firsts, b.ends[sel], side="right") - 1]
        k = len(sel)
        out.add(b, newest, STALE, np.zeros(k, bool), np.full(k, np.nan), ts=arrival_ms)
        patch.append(("active", STALE, b.pts[sel], np.zeros(len(sel), bool)))

    def _judge_bad(self, j, seg_lo, seg_hi, out, patch):  # type: ignore[no-untyped-def]
        """BAD per judged reading (quality bad, not finite, outside the range); the bad mask or None."""
        rlo, rhi = self._cfg.range_low[j.pts], self._cfg.range_high[j.pts]
        bad = j.q.copy()
        if not np.isfinite(seg_lo).all() or not np.isfinite(seg_hi).all():
            bad |= ~np.isfinite(j.v)
            bad |= (j.v < j.per_reading(rlo)) | (j.v > j.per_reading(rhi))
        else:  # only segments whose extremes leave the range hold out-of-range readings
            sel = np.flatnonzero((seg_lo < rlo) | (seg_hi > rhi))
            if len(sel):
                lens = j.lens[sel]
                idx = _expand(j.starts[sel], lens)
                v = j.v[idx]
                bad[idx] |= (v < np.repeat(rlo[sel], lens)) | (v > np.repeat(rhi[sel], lens))
        any_bad = bool(bad.any())
        seed = self._s["active"][BAD][j.pts]
        if any_bad or seed.any():
            ch = np.flatnonzero(bad != _previous(bad, j.starts, seed))
            out.add(j, ch, BAD, bad[ch], np.full(len(ch), np.nan))
            patch.append(("active", BAD, j.pts, bad[j.ends]))
        return bad if any_bad else None

    def _judge_roc(self, g: _Batch, out: _Out, patch: list) -> None:  # type: ignore[type-arg]
        """ROC between consecutive good readings; the first ever good reading is not judged."""
        ends = g.ends
        patch.append(("last_good_ts", -1, g.pts, g.t[ends]))
        patch.append(("last_good_value", -1, g.pts, g.v[ends]))
        thr = self._cfg.roc_per_min[g.pts]
        seed = self._s["active"][ROC][g.pts]
        if np.isnan(thr).all() and not seed.any():
            return
        prev_t = _previous(g.t, g.starts, self._s["last_good_ts"][g.pts])
        first = g.starts[prev_t[g.starts] == NO_TIME]  # no earlier good reading ever
        prev_t[first] = g.t[first] - 1000  # any Δt > 0; overwritten with the seed below
        prev_v = _previous(g.v, g.starts, self._s["last_good_value"][g.pts])
        rate = np.abs((g.v - prev_v) / ((g.t - prev_t) / 1000.0)) * 60.0
        roc = rate >= g.per_reading(thr)
        roc[first] = seed[np.searchsorted(g.starts, first)]
        ch = np.flatnonzero(roc != _previous(roc, g.starts, seed))
        out.add(g, ch, ROC, roc[ch], self._cfg.roc_per_min[g.p[ch]])
        patch.append(("active", ROC, g.pts, roc[ends]))

    def _judge_limits(self, g, seg_lo, seg_hi, out, patch):  # type: ignore[no-untyped-def]
        """HIHI/HI/LO/LOLO on the good readings ``g``; only segments that can change are worked."""
        lens = g.lens
        for c in LIMIT_CONDITIONS:
            self._judge_limit(g, c, lens, seg_lo, seg_hi, out, patch)

    def _judge_limit(self, g, c, lens, seg_lo, seg_hi, out, patch):  # type: ignore[no-untyped-def]
        """One limit: hysteresis forward fill over the segments that are not quiet."""
        high = c in (HIHI, HI)
        lim = self._cfg.limit(c)[g.pts]
        db = self._cfg.deadband[g.pts]
        reset = lim - db if high else lim + db
        reset[np.isnan(lim)] = np.inf if high else -np.inf  # an unconfigured limit always resets
        raw0 = self._s["raw"][c][g.pts]
        al0 = self._s["active"][c][g.pts]
        # Quiet segment: every reading keeps raw and alarm as they are (all set while
        # active, or all reset while clear): no transition, no state change.
        if high:
            quiet = np.where(raw0, seg_lo >= lim, seg_hi < reset)
        else:
            quiet = np.where(raw0, seg_hi <= lim, seg_lo > reset)
        sel = np.flatnonzero(~(quiet & (raw0 == al0)))
        if not len(sel):
            return
        lens_s = lens[sel]
        st = np.cumsum(lens_s) - lens_s
        idx = _expand(g.starts[sel], lens_s) if len(sel) < len(g.pts) else None
        v = g.v if idx is None else g.v[idx]
        lim_r, reset_r = np.repeat(lim[sel], lens_s), np.repeat(reset[sel], lens_s)
        setm = v >= lim_r if high else v <= lim_r
        resm = v < reset_r if high else v > reset_r
        mark = setm | resm
        vals = setm.copy()
        seedless = ~mark[st]
        vals[st[seedless]] = raw0[sel][seedless]
        mark[st] = True
        raw = _fill(mark, vals)
        pts = g.pts[sel]
        t = g.t if idx is None else g.t[idx]
        rs = self._run_starts(c, t, raw, st, pts, raw0[sel])
        alarm = _delayed(raw, t - rs, st, self._delays(pts, lens_s), al0[sel])
        ch = np.flatnonzero(alarm != _previous(alarm, st, al0[sel]))
        gi = ch if idx is None else idx[ch]
        out.add(g, gi, c, alarm[ch], self._cfg.limit(c)[g.p[gi]])
        ends = st + lens_s - 1
        patch.append(("raw", c, pts, raw[ends]))
        patch.append(("run_start", c, pts, rs[ends]))
        patch.append(("active", c, pts, alarm[ends]))

    def _run_starts(self, c, t, raw, st, pts, raw0):  # type: ignore[no-untyped-def]
        """ts of the first reading of the current run of equal raw states (carried across batches)."""
        mark = raw != _previous(raw, st, raw0)
        vals = t.copy()
        seedless = ~mark[st]
        vals[st[seedless]] = self._s["run_start"][c][pts[seedless]]
        mark[st] = True
        return _fill(mark, vals)

    def _delays(self, pts: np.ndarray, lens: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """(on_delay, off_delay) per reading, or None when every delay is 0."""
        on, off = self._cfg.on_delay_ms[pts], self._cfg.off_delay_ms[pts]
        if not (on.any() or off.any()):
            return None
        return np.repeat(on, lens), np.repeat(off, lens)


def _delayed(raw, elapsed, st, delays, al0):  # type: ignore[no-untyped-def]
    """Alarm state after on/off delays: set once raw held for on_delay, reset once clear for off_delay."""
    if delays is None:
        return raw
    on, off = delays
    aset = raw & (elapsed >= on)
    mark = aset | (~raw & (elapsed >= off))
    seedless = ~mark[st]
    aset[st[seedless]] = al0[seedless]
    mark[st] = True
    return _fill(mark, aset)

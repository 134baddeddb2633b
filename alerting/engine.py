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
RUN_START_NEVER = -(2**62)  # run start of a fresh point: any delay has long elapsed, no overflow

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
            order = _order_by(t.point, t.ts_ms, t.cond)
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


def _order_by(point: np.ndarray, ts: np.ndarray, cond: np.ndarray) -> np.ndarray:
    """Stable order by (point, ts, cond): one sort of a packed int64 key when it fits, else lexsort."""
    m = len(point)
    bi, bp = (m - 1).bit_length(), int(point.max()).bit_length()
    tmin = int(ts.min())
    bt = (int(ts.max()) - tmin).bit_length()
    if point.min() < 0 or bp + bt + 3 + bi > 63:
        return np.lexsort((cond, ts, point))
    key = np.left_shift(point, bt + 3 + bi, dtype=np.int64)
    key |= (ts - tmin) << (3 + bi)
    key |= cond.astype(np.int64) << bi
    key |= np.arange(m)
    key.sort()
    return key & ((1 << bi) - 1)


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
    q: np.ndarray | None  # bool quality bad, None when all good
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
        """Broadcast one value per segment to its readings."""
        return np.repeat(seg_values, self.lens)

    def segment_of(self, pos: np.ndarray) -> np.ndarray:
        """Segment number of reading positions."""
        return np.searchsorted(self.starts, pos, side="right") - 1

    def changes(self, x: np.ndarray, seed: np.ndarray) -> np.ndarray:
        """Positions where x differs from the reading before (from the seed at segment starts)."""
        return _changes(x, self.starts, seed)

    def last_marked(self, marked: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """Per position, the last marked reading at or before it in its segment, or -1.

        ``marked`` is the sorted array of marked positions (np.flatnonzero of a mask).
        """
        k = np.searchsorted(marked, pos, side="right") - 1
        found = marked[np.maximum(k, 0)] if len(marked) else np.full(len(pos), -1)
        ok = (k >= 0) & (found >= self.starts[self.segment_of(pos)])
        return np.where(ok, found, -1)


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


def _sort_batch(point, ts, n, scratch):  # type: ignore[no-untyped-def]
    """(p, t, src): the batch ordered by (point, ts, batch position); src = batch position.

    One np.sort of a packed int64 key (point | ts - min | position) when it fits in
    63 bits, which it does for batches spanning up to days; else lexsort. src is
    None when the batch is already in order. t and src live in ``scratch``.
    """
    m = len(point)
    if (point[1:] >= point[:-1]).all() and not (
        (point[1:] == point[:-1]) & (ts[1:] < ts[:-1])
    ).any():
        return point, ts, None
    bi, bp = (m - 1).bit_length(), max(n - 1, 0).bit_length()
    tmin = int(ts.min())
    bt = (int(ts.max()) - tmin).bit_length()
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
    key >>= bi  # key becomes t
    key &= (1 << bt) - 1
    key += tmin
    return p, key, src


_IOTA: dict[str, np.ndarray] = {}


def _iota(m: int, dtype: type = np.int64) -> np.ndarray:
    """A read-only 0..m-1 (cached: a batch needs it several times)."""
    name = np.dtype(dtype).name
    a = _IOTA.get(name)
    if a is None or len(a) < m:
        a = np.arange(max(m, 2 * len(a) if a is not None else 0), dtype=dtype)
        a.flags.writeable = False
        _IOTA[name] = a
    return a[:m]


def _change_mask(x: np.ndarray, starts: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """Where x differs from the element before (from the seed at segment starts)."""
    d = np.empty(len(x), bool)
    np.not_equal(x[1:], x[:-1], out=d[1:])
    d[starts] = x[starts] != seed
    return d


def _changes(x: np.ndarray, starts: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """Positions where x differs from the element before (from the seed at segment starts)."""
    return np.flatnonzero(_change_mask(x, starts, seed))


def _fill(mark: np.ndarray, vals: np.ndarray) -> np.ndarray:
    """Forward fill: vals at the last marked index at or before each index (mark[0] True)."""
    idx = np.multiply(_iota(len(mark), np.int64 if len(mark) >= 2**31 else np.int32), mark)
    np.maximum.accumulate(idx, out=idx)
    return vals[idx]


def _seeded_fill(mark: np.ndarray, vals: np.ndarray, starts: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """Forward fill of vals over marked readings within segments, from the seed at each start.

    Overwrites ``mark`` and ``vals``.
    """
    seedless = ~mark[starts]
    vals[starts[seedless]] = seed[seedless]
    mark[starts] = True
    return _fill(mark, vals)


def _expand(starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Reading indices of the segments given by starts/lens, concatenated."""
    offs = np.cumsum(lens) - lens
    return _iota(int(lens.sum())) + np.repeat(starts - offs, lens)


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
        "run_start": np.full((4, n), RUN_START_NEVER, np.int64),
        "active": np.zeros((7, n), bool),
    }


class Engine:
    """Judges batches of readings against per-point rules; state in dense arrays."""

    def __init__(self, config: PointConfig, now_ms: int | None = None) -> None:
        """Start with every point fresh; STALE counts from now_ms (else the first check_stale)."""
        self._cfg = config.checked()
        self._s = _fresh_state(len(self._cfg), now_ms)
        self._generation = 0
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
        point, ts_ms, value, bad = self._batch_arrays(point, ts_ms, value, bad)
        out, patch = _Out(), []
        if not len(point):
            return Judgement(Transitions.empty(), 0, 0, patch, self._generation)
        p, t, src = _sort_batch(point, ts_ms, self.n, self._scratch)
        q = (bad if src is None else bad[src]) if bad.any() else None
        v = value if src is None else np.take(value, src, out=self._scratch.get("v", len(p), float), mode="clip")
        arrived = _Batch.of(p, t, v, q)
        dup, skip = self._skipped(arrived)
        j = arrived if skip is None else arrived.take(~skip)
        patch.append(("last_arrival", -1, arrived.pts, np.full(len(arrived.pts), arrival_ms)))
        self._clear_stale(arrived, dup, arrival_ms, out, patch)
        if len(j):
            patch.append(("last_ts", -1, j.pts, j.t[j.ends]))
            seg_lo, seg_hi = np.minimum.reduceat(j.v, j.starts), np.maximum.reduceat(j.v, j.starts)
            bad_mask = self._judge_bad(j, seg_lo, seg_hi, out, patch)
            good = None if bad_mask is None else ~bad_mask
            self._judge_roc(j, good, out, patch)
            for c in LIMIT_CONDITIONS:
                self._judge_limit(j, good, c, seg_lo, seg_hi, out, patch)
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
        bad = np.zeros(len(j), bool) if j.q is None else j.q.copy()
        if not (np.isfinite(seg_lo).all() and np.isfinite(seg_hi).all()):
            bad |= ~np.isfinite(j.v)
            bad |= (j.v < j.per_reading(rlo)) | (j.v > j.per_reading(rhi))
        else:  # only segments whose extremes leave the range hold out-of-range readings
            sel = np.flatnonzero((seg_lo < rlo) | (seg_hi > rhi))
            if len(sel):
                idx = _expand(j.starts[sel], j.lens[sel])
                v = j.v[idx]
                bad[idx] |= (v < np.repeat(rlo[sel], j.lens[sel])) | (v > np.repeat(rhi[sel], j.lens[sel]))
        any_bad = bool(bad.any())
        seed = self._s["active"][BAD][j.pts]
        if any_bad or seed.any():
            ch = j.changes(bad, seed)
            out.add(j, ch, BAD, bad[ch], np.full(len(ch), np.nan))
            patch.append(("active", BAD, j.pts, bad[j.ends]))
        return bad if any_bad else None

    def _judge_roc(self, j, good, out, patch):  # type: ignore[no-untyped-def]
        """ROC between consecutive good readings; the first ever good reading is not judged.

        The rate is computed at every reading from its predecessor; where that is not
        the previous good reading (segment starts, after bad readings) it is fixed up.
        """
        seed_t, seed_v = self._s["last_good_ts"][j.pts], self._s["last_good_value"][j.pts]
        good_at = None if good is None else np.flatnonzero(good)
        last = j.ends
        if good_at is not None:  # segments ending in a bad reading: their last good one, or -1
            last = last.copy()
            bad_end = np.flatnonzero(~good[last])
            last[bad_end] = j.last_marked(good_at, last[bad_end])
        if good_at is None:
            patch.append(("last_good_ts", -1, j.pts, j.t[last]))
            patch.append(("last_good_value", -1, j.pts, j.v[last]))
        else:
            has = last >= 0
            patch.append(("last_good_ts", -1, j.pts, np.where(has, j.t[last], seed_t)))
            patch.append(("last_good_value", -1, j.pts, np.where(has, j.v[last], seed_v)))
        thr = self._cfg.roc_per_min[j.pts]
        seed = self._s["active"][ROC][j.pts]
        if np.isnan(thr).all() and not seed.any():
            return
        fix, seg, prev_t, prev_v = j.starts, _iota(len(j.starts)), seed_t, seed_v
        if good_at is not None:  # good readings right after a bad one, past their segment start
            after_bad = np.zeros(len(j), bool)
            np.greater(good[1:], good[:-1], out=after_bad[1:])
            after_bad[j.starts] = False
            pos = np.flatnonzero(after_bad)
            k = j.last_marked(good_at, pos - 1)
            s = j.segment_of(pos)
            fix, seg = np.concatenate([fix, pos]), np.concatenate([seg, s])
            prev_t = np.concatenate([seed_t, np.where(k >= 0, j.t[k], seed_t[s])])
            prev_v = np.concatenate([seed_v, np.where(k >= 0, j.v[k], seed_v[s])])
        first = prev_t == NO_TIME  # no earlier good reading ever: not judged, seed kept
        prev_t = np.where(first, j.t[fix] - 1000, prev_t)
        roc = _roc_states(j, fix, prev_t, prev_v, thr, self._scratch)
        roc[fix[first]] = seed[seg[first]]
        if good_at is not None:  # a bad reading holds the state of the last good one before it
            bad_at = np.flatnonzero(~good)
            k = j.last_marked(good_at, bad_at)
            roc[bad_at] = np.where(k >= 0, roc[k], seed[j.segment_of(bad_at)])
        ch = j.changes(roc, seed)
        out.add(j, ch, ROC, roc[ch], self._cfg.roc_per_min[j.p[ch]])
        patch.append(("active", ROC, j.pts, roc[j.ends]))

    def _judge_limit(self, j, good, c, seg_lo, seg_hi, out, patch):  # type: ignore[no-untyped-def]
        """One limit: hysteresis and delays as forward fills, over the segments that can change."""
        high = c in (HIHI, HI)
        lim = self._cfg.limit(c)[j.pts]
        db = self._cfg.deadband[j.pts]
        reset = lim - db if high else lim + db
        reset[np.isnan(lim)] = np.inf if high else -np.inf  # an unconfigured limit always resets
        raw0 = self._s["raw"][c][j.pts]
        al0 = self._s["active"][c][j.pts]
        # A quiet segment keeps raw and alarm as they are at every reading (all set while
        # active, or all reset while clear): no transition, no state change. Bad readings'
        # values only make this test stricter.
        if high:
            quiet = np.where(raw0, seg_lo >= lim, seg_hi < reset)
        else:
            quiet = np.where(raw0, seg_hi <= lim, seg_lo > reset)
        sel = np.flatnonzero(~(quiet & (raw0 == al0)))
        if not len(sel):
            return
        lens = j.lens[sel]
        st = np.cumsum(lens) - lens
        idx = _expand(j.starts[sel], lens) if len(sel) < len(j.pts) else None
        v = j.v if idx is None else j.v[idx]
        t = j.t if idx is None else j.t[idx]
        ok = None if good is None else (good if idx is None else good[idx])
        lim_r, reset_r = np.repeat(lim[sel], lens), np.repeat(reset[sel], lens)
        setm = v >= lim_r if high else v <= lim_r
        resm = v < reset_r if high else v > reset_r
        if ok is not None:
            setm &= ok
            resm &= ok
        raw0, al0 = raw0[sel], al0[sel]
        raw = _seeded_fill(setm | resm, setm, st, raw0)
        pts = j.pts[sel]
        on, off = self._cfg.on_delay_ms[pts], self._cfg.off_delay_ms[pts]
        rs0 = self._s["run_start"][c][pts]
        newrun = _change_mask(raw, st, raw0)
        runs = np.flatnonzero(newrun)  # readings that start a run of equal raw states
        ends = st + lens - 1
        if ok is None and (raw0 == al0).all() and not (on.any() or off.any()):
            alarm = raw  # no delays: the alarm is the raw condition
            k = np.searchsorted(runs, ends, side="right") - 1
            k_ok = k >= 0
            k_ok[k_ok] = runs[k[k_ok]] >= st[k_ok]
            rs_end = np.where(k_ok, t[runs[np.maximum(k, 0)]] if len(runs) else 0, rs0)
        else:
            # Fill each run's deadline (run start + on or off delay): the alarm follows
            # raw at the first reading at or past it; nothing is judged at a bad reading.
            seg = np.searchsorted(st, runs, side="right") - 1
            deadline = np.empty(len(raw), np.int64)
            deadline[runs] = t[runs] + np.where(raw[runs], on[seg], off[seg])
            deadline = _seeded_fill(newrun, deadline, st, rs0 + np.where(raw0, on, off))
            due = t >= deadline
            if ok is not None:
                due &= ok
            aset = raw & due
            alarm = _seeded_fill(due, aset, st, al0)
            rs_end = deadline[ends] - np.where(raw[ends], on, off)
        ch = _changes(alarm, st, al0)
        at = ch if idx is None else idx[ch]
        out.add(j, at, c, alarm[ch], self._cfg.limit(c)[j.p[at]])
        patch.append(("raw", c, pts, raw[ends]))
        patch.append(("run_start", c, pts, rs_end))
        patch.append(("active", c, pts, alarm[ends]))


def _roc_states(j, fix, prev_t, prev_v, thr, scratch):  # type: ignore[no-untyped-def]
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

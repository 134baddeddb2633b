"""Property tests: the vectorized engine equals the per-reading oracle on random streams."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from alerting.engine import Engine, PointConfig, Transitions
from alerting.oracle import Oracle

LIMITS = {"lolo": 10.0, "lo": 20.0, "hi": 80.0, "hihi": 90.0}
DEADBANDS = (0.0, 0.5, 2.0)
RANGE = (0.0, 100.0)
# with readings 250 ms apart, steps of 0.5 and 2 between edge values hit 120 and 480 /min exactly
ROC_LIMITS = (120.0, 480.0, 1200.0)
NAN = float("nan")


@st.composite
def configs(draw: st.DrawFn, n: int) -> PointConfig:
    """Random per-point rules; any limit, range or ROC may be unconfigured."""
    cfg = PointConfig.empty(n)
    for p in range(n):
        for name, limit in LIMITS.items():
            getattr(cfg, name)[p] = draw(st.sampled_from([limit, NAN]))
        cfg.deadband[p] = draw(st.sampled_from(DEADBANDS))
        cfg.range_low[p] = draw(st.sampled_from([RANGE[0], NAN]))
        cfg.range_high[p] = draw(st.sampled_from([RANGE[1], NAN]))
        cfg.roc_per_min[p] = draw(st.sampled_from([NAN, *ROC_LIMITS]))
        cfg.on_delay_ms[p] = draw(st.sampled_from([0, 500, 1000, 2500]))
        cfg.off_delay_ms[p] = draw(st.sampled_from([0, 500, 1000, 2500]))
        cfg.stale_ms[p] = draw(st.sampled_from([0, 2000, 5000]))
    return cfg


def edge_values() -> list[float]:
    """Values exactly at every limit, limit ± deadband and range edge, and just beside them."""
    out = {50.0, 1e9, -1e9}
    for edge in [*LIMITS.values(), *RANGE]:
        for db in DEADBANDS:
            for x in (edge - db, edge + db):
                out |= {x, float(np.nextafter(x, -np.inf)), float(np.nextafter(x, np.inf))}
    return sorted(out)


VALUES = edge_values()
COLUMNS = ("point", "ts_ms", "value", "bad")


@dataclass
class Batch:
    """One batch of readings (any order) and its arrival time."""

    point: np.ndarray
    ts_ms: np.ndarray
    value: np.ndarray
    bad: np.ndarray
    arrival_ms: int

    def args(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
        return self.point, self.ts_ms, self.value, self.bad, self.arrival_ms


@st.composite
def streams(draw: st.DrawFn, n: int) -> list[Batch]:
    """Mostly rising timestamps with jitter (out of order, duplicates), cut anywhere."""
    k = draw(st.integers(0, 80))
    point = draw(st.lists(st.integers(0, n - 1), min_size=k, max_size=k))
    jitter = draw(st.lists(st.integers(-3, 2), min_size=k, max_size=k))
    ts = [max(0, i // 2 + j) * 250 for i, j in enumerate(jitter)]
    value = draw(st.lists(st.sampled_from(VALUES), min_size=k, max_size=k))
    bad = draw(st.lists(st.integers(0, 5).map(lambda x: x == 0), min_size=k, max_size=k))
    cuts = sorted(draw(st.lists(st.integers(0, k), max_size=6)))
    return [
        Batch(
            np.array(point[lo:hi], np.int32),
            np.array(ts[lo:hi], np.int64),
            np.array(value[lo:hi], np.float64),
            np.array(bad[lo:hi], bool),
            arrival_ms=1000 * b + draw(st.integers(0, 999)),
        )
        for b, (lo, hi) in enumerate(zip([0, *cuts], [*cuts, k], strict=True))
    ]


def assert_same(got: Transitions, want: Transitions) -> None:
    """Transitions equal field by field (NaN equals NaN)."""
    for f in fields(Transitions):
        a, b = getattr(got, f.name), getattr(want, f.name)
        assert a.dtype == b.dtype, f.name
        same = np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
        assert same, (f.name, got.rows(), want.rows())


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[PointConfig, list[Batch], list[tuple[Any, ...]]]:
    n = draw(st.integers(1, 4))
    cfg = draw(configs(n))
    batches = draw(streams(n))
    # after each batch maybe: a stale check (with suppression), a restart from the exported
    # state, a reconfigure to the same rules (state carried)
    extras = [
        (
            draw(st.none() | st.integers(0, 8000)),
            draw(st.none() | st.lists(st.booleans(), min_size=n, max_size=n)),
            draw(st.sampled_from(["", "", "restart", "reconfigure"])),
        )
        for _ in batches
    ]
    return cfg, batches, extras


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_engine_equals_oracle(scenario: tuple[PointConfig, list[Batch], list[Any]]) -> None:
    cfg, batches, extras = scenario
    engine, oracle = Engine(cfg, now_ms=0), Oracle(cfg, now_ms=0)
    for batch, (stale_at, suppressed, event) in zip(batches, extras, strict=True):
        before = engine.export_state()
        j, jo = engine.judge(*batch.args()), oracle.judge(*batch.args())
        assert_same(j.transitions, jo.transitions)
        assert (j.judged, j.skipped_old) == (jo.judged, jo.skipped_old)
        after = engine.export_state()  # judge() must not have touched the state
        assert all(np.array_equal(before[k], after[k], equal_nan=True) for k in before)
        engine.apply(j)
        oracle.apply(jo)
        if event == "restart":  # resume from the exported state, as after a process restart
            state = engine.export_state()
            engine = Engine(cfg)
            engine.import_state(state)
        elif event == "reconfigure":
            engine.reconfigure(cfg)
        if stale_at is not None:
            now = batch.arrival_ms + stale_at
            sup = None if suppressed is None else np.array(suppressed)
            assert_same(engine.check_stale(now, sup), oracle.check_stale(now, sup))
    want = np.array([st.active for st in oracle.points], bool).reshape(-1, 7)
    assert np.array_equal(engine.active_mask(), want)


def concat(batches: list[Batch]) -> dict[str, np.ndarray]:
    """The readings columns of batches, one after the other."""
    return {name: np.concatenate([getattr(b, name) for b in batches]) for name in COLUMNS}


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_batch_cuts_do_not_matter(data: st.DataObject) -> None:
    # a stream in time order, cut anywhere into batches shuffled within: the same limit, ROC
    # and BAD transitions as one batch (a cut only makes a reading old if it was out of order)
    n = data.draw(st.integers(1, 3))
    cfg = data.draw(configs(n))
    batches = data.draw(streams(n))
    columns = concat(batches)
    stream = np.argsort(columns["ts_ms"], kind="stable")
    lo = 0
    for b in batches:
        hi = lo + len(b.point)
        order = stream[lo:hi][data.draw(st.permutations(range(hi - lo)))]
        for name, column in columns.items():
            setattr(b, name, column[order])
        lo = hi
    one = Engine(cfg).judge(**concat(batches), arrival_ms=0).transitions
    engine, parts = Engine(cfg), []
    for batch in batches:
        j = engine.judge(*batch.args())
        engine.apply(j)
        parts.append(j.transitions)
    cut = Transitions.build(
        *(np.concatenate([getattr(t, f.name) for t in parts]) for f in fields(Transitions))
    )
    assert_same(cut, one)

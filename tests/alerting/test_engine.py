"""Table tests of the vectorized alarm engine, every rule on both sides of its edge.

Each case is also run through the reference oracle, so a table row checks both.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from alerting.engine import CONDITION_NAMES, Engine, Judgement, PointConfig
from alerting.oracle import Oracle, OracleJudgement

Reading = tuple[Any, ...]  # (ts_ms, value) or (ts_ms, value, "bad")
Batch = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def config(n: int = 1, **values: Any) -> PointConfig:
    """A config of n points, every point given the same ``values``."""
    cfg = PointConfig.empty(n)
    for name, value in values.items():
        getattr(cfg, name)[:] = value
    return cfg


def arrays(readings: list[Reading], point: int = 0) -> Batch:
    """Batch arrays from (ts, value[, "bad"]) tuples, all of one point."""
    ts = np.array([r[0] for r in readings], np.int64)
    value = np.array([r[1] for r in readings], np.float64)
    bad = np.array([len(r) > 2 and r[2] == "bad" for r in readings], bool)
    return np.full(len(readings), point, np.int32), ts, value, bad


AnyJudgement = Judgement | OracleJudgement


def feed(engine: Any, readings: list[Reading], arrival_ms: int = 0, point: int = 0) -> AnyJudgement:
    """Judge one batch and apply it."""
    j = engine.judge(*arrays(readings, point), arrival_ms)
    engine.apply(j)
    return j


def rows(j: AnyJudgement) -> list[tuple[int, str, bool]]:
    """(ts, condition, active) of a judgement's transitions."""
    return [(ts, cond, active) for _p, ts, cond, active, _v, _l in j.transitions.rows()]


def run(cfg: PointConfig, batches: list[list[Reading]]) -> list[tuple[int, str, bool]]:
    """Transitions of batches fed in turn; the oracle must agree."""
    engine, oracle = Engine(cfg), Oracle(cfg)
    got, want = [], []
    for batch in batches:
        got += rows(feed(engine, batch))
        want += rows(feed(oracle, batch))
    assert got == want, "engine and oracle disagree"
    return got


T, F = True, False

LIMIT_CASES = [
    # HI: a value exactly at the limit activates
    pytest.param({"hi": 80}, [(1, 80.0)], [(1, "HI", T)], id="hi-at-limit"),
    # HI: just below the limit does not
    pytest.param({"hi": 80}, [(1, 79.999)], [], id="hi-just-below"),
    # HI: exactly at limit - deadband holds the alarm
    pytest.param({"hi": 80, "deadband": 2}, [(1, 80), (2, 78.0)], [(1, "HI", T)], id="hi-db-holds"),
    # HI: just below limit - deadband returns
    pytest.param(
        {"hi": 80, "deadband": 2}, [(1, 80), (2, 77.999)], [(1, "HI", T), (2, "HI", F)],
        id="hi-db-returns",
    ),
    # HI: inside the deadband while clear does not activate
    pytest.param({"hi": 80, "deadband": 2}, [(1, 79), (2, 78.5)], [], id="hi-db-no-set"),
    # HI with deadband 0 returns as soon as the value is below the limit
    pytest.param({"hi": 80}, [(1, 80), (2, 79.999)], [(1, "HI", T), (2, "HI", F)], id="hi-db0"),
    # HIHI: at the limit activates, together with HI
    pytest.param(
        {"hi": 80, "hihi": 90}, [(1, 90.0)], [(1, "HIHI", T), (1, "HI", T)], id="hihi-and-hi"
    ),
    # HIHI: just below activates HI only
    pytest.param({"hi": 80, "hihi": 90}, [(1, 89.999)], [(1, "HI", T)], id="hihi-just-below"),
    # HIHI returns on its own deadband while HI stays
    pytest.param(
        {"hi": 80, "hihi": 90, "deadband": 1}, [(1, 95), (2, 89), (3, 88.9)],
        [(1, "HIHI", T), (1, "HI", T), (3, "HIHI", F)], id="hihi-returns-hi-stays",
    ),
    # LO: exactly at the limit activates
    pytest.param({"lo": 20}, [(1, 20.0)], [(1, "LO", T)], id="lo-at-limit"),
    # LO: just above the limit does not
    pytest.param({"lo": 20}, [(1, 20.001)], [], id="lo-just-above"),
    # LO: exactly at limit + deadband holds
    pytest.param({"lo": 20, "deadband": 2}, [(1, 20), (2, 22.0)], [(1, "LO", T)], id="lo-db-holds"),
    # LO: just above limit + deadband returns
    pytest.param(
        {"lo": 20, "deadband": 2}, [(1, 20), (2, 22.001)], [(1, "LO", T), (2, "LO", F)],
        id="lo-db-returns",
    ),
    # LOLO: at the limit activates together with LO
    pytest.param(
        {"lo": 20, "lolo": 10}, [(1, 10.0)], [(1, "LO", T), (1, "LOLO", T)], id="lolo-and-lo"
    ),
    # LOLO: just above activates LO only
    pytest.param({"lo": 20, "lolo": 10}, [(1, 10.001)], [(1, "LO", T)], id="lolo-just-above"),
    # LOLO: deadband hold exactly at limit + deadband, return just above
    pytest.param(
        {"lolo": 10, "deadband": 0.5}, [(1, 9), (2, 10.5), (3, 10.5001)],
        [(1, "LOLO", T), (3, "LOLO", F)], id="lolo-db-edge",
    ),
    # no limit configured: nothing ever activates
    pytest.param({}, [(1, -1e9), (2, 1e9)], [], id="unconfigured"),
]


@pytest.mark.parametrize(("cfg", "readings", "want"), LIMIT_CASES)
def test_limits(cfg: dict, readings: list[Reading], want: list) -> None:
    assert run(config(**cfg), [readings]) == want


ORDER_CASES = [
    # a batch in any order is judged in timestamp order
    pytest.param(
        [[(3, 70), (1, 85), (2, 79)]], [(1, "HI", T), (2, "HI", F)], id="out-of-order-batch"
    ),
    # duplicate (point, ts) in one batch: the first occurrence is the reading
    pytest.param([[(1, 85), (1, 70)]], [(1, "HI", T)], id="duplicate-first-wins"),
    # duplicate where the first occurrence is the clear value
    pytest.param([[(1, 70), (1, 85)]], [], id="duplicate-first-wins-clear"),
    # a later batch's readings at or before the newest judged ts are not judged
    pytest.param([[(5, 85)], [(4, 70), (5, 70)]], [(5, "HI", T)], id="old-across-batches"),
    # ... but newer readings of the same later batch are
    pytest.param(
        [[(5, 85)], [(4, 70), (6, 70)]], [(5, "HI", T), (6, "HI", F)], id="old-and-new-mixed"
    ),
]


@pytest.mark.parametrize(("batches", "want"), ORDER_CASES)
def test_ordering_and_old_readings(batches: list, want: list) -> None:
    assert run(config(hi=80), batches) == want


@pytest.mark.parametrize(
    ("batches", "skipped"),
    [
        # a duplicate within the batch counts as skipped
        pytest.param([[(1, 85), (1, 70), (2, 1)]], [1], id="dup"),
        # readings older or as old as the newest judged one count as skipped
        pytest.param([[(5, 85)], [(4, 70), (5, 70), (6, 1)]], [0, 2], id="old"),
    ],
)
def test_skipped_counts(batches: list, skipped: list[int]) -> None:
    for impl in (Engine, Oracle):
        e = impl(config(hi=80))
        js = [feed(e, b) for b in batches]
        assert [j.skipped_old for j in js] == skipped
        assert [j.judged for j in js] == [len(b) - s for b, s in zip(batches, skipped, strict=True)]


def test_several_points_in_one_batch() -> None:
    # interleaved points, each judged on its own readings only
    cfg = config(3, hi=80, deadband=1)
    cfg.hi[2] = np.nan
    point = np.array([1, 0, 1, 2, 0, 1], np.int32)
    ts = np.array([1, 1, 2, 1, 2, 3], np.int64)
    value = np.array([81, 79, 79.5, 99, 85, 78.9])
    for impl in (Engine, Oracle):
        j = impl(cfg).judge(point, ts, value, np.zeros(6, bool), 0)
        got = [(p, t, c, a) for p, t, c, a, _v, _l in j.transitions.rows()]
        assert got == [(0, 2, "HI", T), (1, 1, "HI", T), (1, 3, "HI", F)]


def test_timestamps_too_far_apart_to_pack() -> None:
    # a batch spanning more than a packed sort key holds still sorts by (point, ts)
    cfg = config(2, hi=80)
    point = np.array([1, 0, 1, 0], np.int32)
    ts = np.array([2**61, 5, -(2**61), 2**61], np.int64)
    value = np.array([70.0, 85, 85, 70])
    for impl in (Engine, Oracle):
        j = impl(cfg).judge(point, ts, value, np.zeros(4, bool), 0)
        got = [(p, t, a) for p, t, _c, a, _v, _l in j.transitions.rows()]
        assert got == [(0, 5, T), (0, 2**61, F), (1, -(2**61), T), (1, 2**61, F)]


SERIES = [(t, v) for t, v in enumerate([70, 80, 79, 78, 77.9, 81, 81, 60, 90, 90, 85, 79], 1)]


@pytest.mark.parametrize("cut", range(len(SERIES) + 1))
def test_batch_split_anywhere_is_one_batch(cut: int) -> None:
    # judging in two batches cut at any point gives the transitions of one batch
    cfg = config(hi=80, hihi=90, lo=78, deadband=1.0)
    assert run(cfg, [SERIES[:cut], SERIES[cut:]]) == run(cfg, [SERIES])


def test_judge_does_not_mutate_until_apply() -> None:
    e = Engine(config(hi=80))
    batch = arrays([(1, 85)])
    first = e.judge(*batch, 0)
    again = e.judge(*batch, 0)
    assert rows(first) == rows(again) == [(1, "HI", T)]
    assert not e.active_mask().any()
    e.apply(first)
    assert e.active_mask()[0, CONDITION_NAMES.index("HI")]
    assert rows(e.judge(*batch, 0)) == []  # now an old reading


def test_apply_after_state_changed_is_refused() -> None:
    e = Engine(config(hi=80))
    j1 = e.judge(*arrays([(1, 85)]), 0)
    j2 = e.judge(*arrays([(2, 85)]), 0)
    e.apply(j1)
    with pytest.raises(Exception, match="judge it again"):
        e.apply(j2)


@pytest.mark.parametrize(
    "batch",
    [
        # a point index past the end
        (np.array([1]), np.array([1]), np.array([1.0]), np.array([False])),
        # arrays of different lengths
        (np.array([0, 0]), np.array([1]), np.array([1.0]), np.array([False])),
    ],
)
def test_malformed_batch_is_a_value_error(batch: Batch) -> None:
    with pytest.raises(ValueError):
        Engine(config()).judge(*batch, 0)


def test_empty_batch() -> None:
    j = Engine(config(hi=1)).judge(*arrays([]), 0)
    assert (len(j.transitions), j.judged, j.skipped_old) == (0, 0, 0)


DELAY_CASES = [
    # on_delay: raw held exactly the delay activates
    pytest.param({"on_delay_ms": 1000}, [[(0, 85), (1000, 85)]], [(1000, "HI", T)], id="on-exact"),
    # on_delay: held delay - 1 ms is not yet
    pytest.param({"on_delay_ms": 1000}, [[(0, 85), (999, 85)]], [], id="on-1ms-short"),
    # on_delay: activation happens at a reading, the first one past the delay
    pytest.param({"on_delay_ms": 1000}, [[(0, 85), (5000, 85)]], [(5000, "HI", T)], id="on-late"),
    # on_delay: a dip below the return level restarts the run
    pytest.param(
        {"on_delay_ms": 1000}, [[(0, 85), (500, 79), (1000, 85), (1999, 85), (2000, 85)]],
        [(2000, "HI", T)], id="on-dip-restarts",
    ),
    # on_delay: a dip into the deadband does not restart the run
    pytest.param(
        {"on_delay_ms": 1000, "deadband": 2}, [[(0, 85), (500, 79), (1000, 85)]],
        [(1000, "HI", T)], id="on-deadband-dip-holds",
    ),
    # on_delay: a run that ends before the delay never activates
    pytest.param({"on_delay_ms": 1000}, [[(0, 85), (500, 70), (2000, 70)]], [], id="on-too-short"),
    # on_delay: the run start is carried to the next batch
    pytest.param(
        {"on_delay_ms": 1000}, [[(0, 85)], [(999, 85)], [(1000, 85)]], [(1000, "HI", T)],
        id="on-across-batches",
    ),
    # off_delay: clear held exactly the delay returns
    pytest.param(
        {"off_delay_ms": 1000}, [[(0, 85), (10, 70), (1010, 70)]],
        [(0, "HI", T), (1010, "HI", F)], id="off-exact",
    ),
    # off_delay: clear held delay - 1 ms has not returned yet
    pytest.param(
        {"off_delay_ms": 1000}, [[(0, 85), (10, 70), (1009, 70)]], [(0, "HI", T)],
        id="off-1ms-short",
    ),
    # off_delay: the condition coming back during the off delay restarts it
    pytest.param(
        {"off_delay_ms": 1000}, [[(0, 85), (10, 70), (500, 85), (600, 70), (1599, 70), (1600, 70)]],
        [(0, "HI", T), (1600, "HI", F)], id="off-restarts",
    ),
    # off_delay: carried across batches
    pytest.param(
        {"off_delay_ms": 1000}, [[(0, 85), (10, 70)], [(1009, 70)], [(1010, 70)]],
        [(0, "HI", T), (1010, "HI", F)], id="off-across-batches",
    ),
    # both delays: a short excursion does nothing, a long one activates and returns late
    pytest.param(
        {"on_delay_ms": 100, "off_delay_ms": 200},
        [[(0, 85), (50, 70), (100, 85), (200, 85), (250, 70), (449, 70), (450, 70)]],
        [(200, "HI", T), (450, "HI", F)], id="on-and-off",
    ),
    # delays apply to each limit on its own: HIHI waits while HI is already active
    pytest.param(
        {"hihi": 90, "on_delay_ms": 100}, [[(0, 85), (100, 95), (150, 95), (200, 95)]],
        [(100, "HI", T), (200, "HIHI", T)], id="per-limit-runs",
    ),
]


@pytest.mark.parametrize(("cfg", "batches", "want"), DELAY_CASES)
def test_delays(cfg: dict, batches: list, want: list) -> None:
    assert run(config(hi=80, **cfg), batches) == want


ROC_CASES = [
    # exactly at the threshold activates (1 unit in 1 s = 60/min)
    pytest.param({}, [[(0, 50), (1000, 51)]], [(1000, "ROC", T)], id="roc-at-threshold"),
    # just below the threshold does not
    pytest.param({}, [[(0, 50), (1000, 50.999)]], [], id="roc-just-below"),
    # falling values count the same (absolute rate)
    pytest.param({}, [[(0, 50), (1000, 49)]], [(1000, "ROC", T)], id="roc-falling"),
    # the rate uses the readings' own Δt: 0.5 in 0.5 s is 60/min
    pytest.param({}, [[(0, 50), (500, 50.5)]], [(500, "ROC", T)], id="roc-short-dt"),
    # clears at the first good reading whose rate is below the threshold
    pytest.param(
        {}, [[(0, 50), (1000, 51), (2000, 51.5)]], [(1000, "ROC", T), (2000, "ROC", F)],
        id="roc-clears",
    ),
    # the first ever reading has nothing to compare with
    pytest.param({}, [[(0, 1e6)]], [], id="roc-first-reading"),
    # the previous reading is carried across batches
    pytest.param({}, [[(0, 50)], [(1000, 51)]], [(1000, "ROC", T)], id="roc-across-batches"),
    # no delays for ROC, even when the point has them
    pytest.param(
        {"on_delay_ms": 10_000, "off_delay_ms": 10_000}, [[(0, 50), (1000, 51), (2000, 51)]],
        [(1000, "ROC", T), (2000, "ROC", F)], id="roc-no-delay",
    ),
    # a bad reading is skipped: the rate is taken between the good readings around it
    pytest.param(
        {}, [[(0, 50), (500, 99, "bad"), (1000, 50.5)]], [(500, "BAD", T), (1000, "BAD", F)],
        id="roc-skips-bad",
    ),
]


@pytest.mark.parametrize(("cfg", "batches", "want"), ROC_CASES)
def test_roc(cfg: dict, batches: list, want: list) -> None:
    assert run(config(roc_per_min=60.0, **cfg), batches) == want


BAD_CASES = [
    # quality bad makes BAD active
    pytest.param({}, [[(0, 50, "bad")]], [(0, "BAD", T)], id="quality-bad"),
    # the next good in-range reading clears it
    pytest.param({}, [[(0, 50, "bad"), (1, 50)]], [(0, "BAD", T), (1, "BAD", F)], id="bad-clears"),
    # a value exactly at range_high is good (and judged: HI)
    pytest.param({}, [[(0, 100.0)]], [(0, "HI", T)], id="at-range-high-good"),
    # just above range_high is BAD, and HI is not judged on it
    pytest.param({}, [[(0, 100.001)]], [(0, "BAD", T)], id="above-range-high"),
    # a value exactly at range_low is good
    pytest.param({}, [[(0, 0.0)]], [], id="at-range-low-good"),
    # just below range_low is BAD
    pytest.param({}, [[(0, -0.001)]], [(0, "BAD", T)], id="below-range-low"),
    # a non-finite value is BAD
    pytest.param({}, [[(0, float("inf")), (1, float("nan"))]], [(0, "BAD", T)], id="non-finite"),
    # no instrument range configured: any finite value is in range
    pytest.param(
        {"range_low": np.nan, "range_high": np.nan}, [[(0, 1e12)]], [(0, "HI", T)], id="no-range"
    ),
    # a bad reading holds the limit alarms as they were (no return on a bad value)
    pytest.param(
        {}, [[(0, 85), (1, 50, "bad"), (2, 85)]],
        [(0, "HI", T), (1, "BAD", T), (2, "BAD", F)], id="bad-holds-alarm",
    ),
    # a bad reading does not reset the raw state: the deadband still holds after it
    pytest.param(
        {"deadband": 2}, [[(0, 85), (1, 50, "bad"), (2, 79)]],
        [(0, "HI", T), (1, "BAD", T), (2, "BAD", F)], id="bad-holds-raw",
    ),
    # a bad reading does not activate a pending on-delay; the next good one does
    pytest.param(
        {"on_delay_ms": 1000}, [[(0, 85), (1000, 85, "bad"), (1001, 85)]],
        [(1000, "BAD", T), (1001, "HI", T), (1001, "BAD", F)], id="bad-no-delay-activation",
    ),
    # a bad reading counts as judged: older readings after it are skipped
    pytest.param({}, [[(5, 50, "bad")], [(4, 85)]], [(5, "BAD", T)], id="bad-advances-ts"),
]


@pytest.mark.parametrize(("cfg", "batches", "want"), BAD_CASES)
def test_bad(cfg: dict, batches: list, want: list) -> None:
    assert run(config(**{"hi": 80, "range_low": 0, "range_high": 100, **cfg}), batches) == want


def test_transition_values_and_limits() -> None:
    # value = the reading's value; limit = the limit (roc_per_min for ROC, NaN for BAD)
    cfg = config(hi=80, roc_per_min=60, range_high=100)
    for impl in (Engine, Oracle):
        j = feed(impl(cfg), [(0, 50), (1000, 85), (2000, 120)])
        got = [(c, v, lim) for _p, _t, c, _a, v, lim in j.transitions.rows()]
        assert got[:2] == [("HI", 85.0, 80.0), ("ROC", 85.0, 60.0)]
        assert got[2][:2] == ("BAD", 120.0) and np.isnan(got[2][2])


STALE_CASES = [
    # never heard of: counts from configuration (now_ms=0); stale_ms - 1 is not yet
    pytest.param([], [999], [], id="fresh-not-yet"),
    # never heard of: exactly stale_ms after configuration raises STALE
    pytest.param([], [1000], [(1000, "STALE", T)], id="fresh-exact"),
    # a reading that arrived at 500 postpones it to 1500
    pytest.param([(500, 10_000)], [1499, 1500], [(1500, "STALE", T)], id="after-arrival"),
    # arrival time counts, not the reading's own ts
    pytest.param([(0, 99_999)], [1000], [(1000, "STALE", T)], id="arrival-not-ts"),
    # raised once, not again on every check
    pytest.param([], [1000, 2000, 5000], [(1000, "STALE", T)], id="raised-once"),
]


@pytest.mark.parametrize(("arrivals", "checks", "want"), STALE_CASES)
def test_check_stale(arrivals: list[tuple[int, int]], checks: list[int], want: list) -> None:
    cfg = config(stale_ms=1000)
    for impl in (Engine, Oracle):
        e = impl(cfg, now_ms=0)
        for arrival_ms, ts in arrivals:
            feed(e, [(ts, 1.0)], arrival_ms=arrival_ms)
        got = [r for now in checks for r in e.check_stale(now).rows()]
        assert [(t, c, a) for _p, t, c, a, _v, _l in got] == want


def test_stale_clears_at_next_arrival() -> None:
    # the clearing transition is at the arrival time, with the newest reading's value
    for impl in (Engine, Oracle):
        e = impl(config(stale_ms=1000), now_ms=0)
        assert len(e.check_stale(1000)) == 1
        j = feed(e, [(7, 3.0), (9, 5.0), (9, 6.0), (8, 4.0)], arrival_ms=1234)
        (p, ts, cond, active, value, _limit), = j.transitions.rows()
        assert (p, ts, cond, active, value) == (0, 1234, "STALE", F, 5.0)
        assert len(e.check_stale(1235)) == 0


def test_stale_clears_even_on_an_old_reading() -> None:
    # a point that talks is not stale, even if what it sends is too old to judge
    for impl in (Engine, Oracle):
        e = impl(config(stale_ms=1000), now_ms=0)
        feed(e, [(50, 1.0)], arrival_ms=0)
        e.check_stale(1000)
        j = feed(e, [(10, 2.0)], arrival_ms=1100)
        assert rows(j) == [(1100, "STALE", F)] and j.skipped_old == 1


@pytest.mark.parametrize(
    ("suppressed", "want"),
    [
        # gateway COMM alarm active: STALE is not raised
        pytest.param([True], [], id="suppressed"),
        # not suppressed: raised
        pytest.param([False], [(1000, "STALE", T)], id="not-suppressed"),
    ],
)
def test_stale_suppression(suppressed: list[bool], want: list) -> None:
    for impl in (Engine, Oracle):
        e = impl(config(stale_ms=1000), now_ms=0)
        got = e.check_stale(1000, suppressed=np.array(suppressed))
        assert [(t, c, a) for _p, t, c, a, _v, _l in got.rows()] == want
        # once the suppression ends, the next check raises it
        assert len(e.check_stale(1001, suppressed=np.array([False]))) == len(suppressed) - len(want)


def test_stale_without_configuration_time_counts_from_first_check() -> None:
    for impl in (Engine, Oracle):
        e = impl(config(stale_ms=1000))
        assert len(e.check_stale(10**12)) == 0
        assert len(e.check_stale(10**12 + 1000)) == 1


def test_stale_off_when_not_configured() -> None:
    for impl in (Engine, Oracle):
        assert len(impl(config(), now_ms=0).check_stale(10**12)) == 0


def test_reconfigure_keeps_state() -> None:
    e = Engine(config(2, hi=80, deadband=5))
    feed(e, [(1, 85)], point=1)
    e.reconfigure(config(3, hi=80, deadband=5))
    assert e.active_mask()[:, 1].tolist() == [F, T, F]
    assert rows(feed(e, [(2, 76)], point=1)) == []  # still active, held by the deadband
    assert rows(feed(e, [(1, 90)], point=2)) == [(1, "HI", T)]  # the new point starts fresh


def test_reconfigure_with_keep_moves_state() -> None:
    e = Engine(config(2, hi=80))
    feed(e, [(1, 85)], point=0)
    e.reconfigure(config(2, hi=80), keep=np.array([-1, 0]))
    assert e.active_mask()[:, 1].tolist() == [F, T]
    assert rows(feed(e, [(1, 85)], point=1)) == []  # old reading of the carried point


def test_reconfigure_removing_a_limit_returns_its_alarm() -> None:
    e = Engine(config(hi=80))
    feed(e, [(1, 85)])
    e.reconfigure(config())
    assert rows(feed(e, [(2, 85)])) == [(2, "HI", F)]


def test_reconfigure_invalidates_pending_judgements() -> None:
    e = Engine(config(hi=80))
    j = e.judge(*arrays([(1, 85)]), 0)
    e.reconfigure(config(hi=80))
    with pytest.raises(Exception, match="judge it again"):
        e.apply(j)


def test_export_import_round_trip_mid_delay() -> None:
    cfg = config(hi=80, on_delay_ms=1000, off_delay_ms=500, roc_per_min=60, stale_ms=5000)
    straight = Engine(cfg, now_ms=0)
    feed(straight, [(0, 85), (100, 50, "bad")], arrival_ms=10)
    state = straight.export_state()
    assert all(a.ndim == 1 and len(a) == 1 for a in state.values())
    resumed = Engine(cfg)
    resumed.import_state(state)
    assert {k: v.tolist() for k, v in resumed.export_state().items()} == {
        k: v.tolist() for k, v in state.items()
    }
    later = [(1000, 85.5), (1200, 70)]
    want = [(1000, "HI", T), (1000, "BAD", F), (1200, "ROC", T)]  # on-delay run began at 0
    assert rows(feed(resumed, later)) == rows(feed(straight, later)) == want
    assert str(resumed.check_stale(5010).rows()) == str(straight.check_stale(5010).rows())


def test_import_rejects_foreign_state() -> None:
    state = Engine(config(2)).export_state()
    with pytest.raises(ValueError):
        Engine(config(3)).import_state(state)
    with pytest.raises(ValueError):
        Engine(config(2)).import_state({"last_ts": state["last_ts"]})


def test_state_bytes_per_point_within_target() -> None:
    n = 1_000_000
    assert Engine(PointConfig.empty(n)).state_nbytes() / n <= 200


def test_stale_cleared_when_unconfigured() -> None:
    e = Engine(config(stale_ms=1000), now_ms=0)
    e.check_stale(1000)
    assert e.active_mask().shape == (1, 7) and e.active_mask()[0, 6]
    e.reconfigure(config())
    assert [(t, c, a) for _p, t, c, a, _v, _l in e.check_stale(1001).rows()] == [(1001, "STALE", F)]

"""GB 18218-2018 identification and grading: table, lookup, α, levels, worked examples."""

from __future__ import annotations

import math
from typing import Any

import pytest

from devices.gb18218 import (
    SUBSTANCES,
    Assessment,
    alpha_for_residents,
    assess,
    find_substance,
    level_for,
)
from hazmon.errors import InputError, UnknownSubstance

# DOMAIN.md's table, transcribed independently of the module: (CAS, Q t, β).
DOMAIN_TABLE = [
    ("7782-50-5", 5, 4),  # chlorine
    ("7664-41-7", 10, 2),  # ammonia
    ("7783-06-4", 5, 5),  # hydrogen sulfide
    ("7446-09-5", 20, 2),  # sulfur dioxide
    ("75-44-5", 0.3, 20),  # phosgene
    ("75-21-8", 10, 2),  # ethylene oxide
    ("68476-85-7", 50, 1.5),  # LPG
    ("1333-74-0", 5, 1.5),  # hydrogen
    ("74-82-8", 50, 1.5),  # methane
    ("8006-14-2", 50, 1.5),  # natural gas
    ("74-86-2", 1, 1.5),  # acetylene
    ("74-85-1", 50, 1.5),  # ethylene
    ("115-07-1", 10, 1.5),  # propylene
    ("75-01-4", 50, 1.5),  # vinyl chloride
    ("86290-81-5", 200, 1),  # gasoline
    ("67-56-1", 500, 1),  # methanol
    ("64-17-5", 500, 1),  # ethanol
    ("71-43-2", 50, 1),  # benzene
    ("108-88-3", 500, 1),  # toluene
    ("7782-44-7", 200, 1),  # oxygen
    # further toxic gases: β from DOMAIN.md, Q from GB 18218-2018 Table 1
    ("630-08-0", 20, 2),  # carbon monoxide (as 煤气)
    ("74-83-9", 10, 3),  # methyl bromide
    ("7647-01-0", 20, 3),  # hydrogen chloride
    ("7664-39-3", 1, 5),  # hydrogen fluoride
    ("10102-44-0", 1, 10),  # nitrogen dioxide
    ("74-90-8", 1, 10),  # hydrogen cyanide
    ("7803-51-2", 1, 20),  # phosphine
    ("624-83-9", 0.75, 20),  # methyl isocyanate
]


def chem(name: str = "x", quantity_t: float = 1.0, **extra: Any) -> dict[str, Any]:
    """A chemical as the API passes it."""
    return {"name": name, "quantity_t": quantity_t, **extra}


def custom(q: float, critical_t: float = 1.0, beta: float = 1.0) -> dict[str, Any]:
    """A chemical outside the table whose q/Q and β the test controls exactly."""
    return chem("test substance", q, critical_t=critical_t, beta=beta)


# --- the built-in table ---------------------------------------------------------


@pytest.mark.parametrize(("cas", "q", "beta"), DOMAIN_TABLE)
def test_table_holds_domain_values(cas: str, q: float, beta: float) -> None:
    found = find_substance(None, cas)
    assert found is not None
    assert (found.critical_t, found.beta) == (q, beta)


def test_table_names_and_cas_are_unique() -> None:
    # A name or CAS shared by two substances would make lookup depend on table order.
    def fold(s: str) -> str:
        return s.casefold()

    cas = [c for s in SUBSTANCES for c in s.cas]
    names = [fold(n) for s in SUBSTANCES for n in (s.name_en, *s.aliases_en, *s.name_zh)]
    assert len(cas) == len(set(cas))
    assert len(names) == len(set(names))


def test_table_values_are_positive() -> None:
    assert all(s.critical_t > 0 and s.beta > 0 for s in SUBSTANCES)


# --- lookup ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "cas", "expected"),
    [
        (None, "7782-50-5", "chlorine"),  # by CAS
        (None, "  7782-50-5 ", "chlorine"),  # CAS with spaces around
        ("氨", None, "ammonia"),  # by Chinese name
        ("Ammonia", None, "ammonia"),  # by English name, case-insensitive
        ("  HYDROGEN SULFIDE  ", None, "hydrogen sulfide"),  # trimmed
        ("hydrogen   sulfide", None, "hydrogen sulfide"),  # inner spaces collapsed
        ("光气", None, "phosgene"),  # alias
        ("碳酰氯", None, "phosgene"),  # alias
        ("甲烷", None, "methane"),
        ("天然气", None, "methane"),  # alias
        ("Natural Gas", None, "methane"),  # English alias
        (None, "74-82-8", "methane"),  # first CAS of methane
        (None, "8006-14-2", "methane"),  # second CAS (natural gas)
        ("氯化氢（无水）", None, "hydrogen chloride"),  # full-width parentheses
        ("NO₂", None, "nitrogen dioxide"),  # subscript digit
        ("氨", "7782-50-5", "chlorine"),  # CAS wins over name
        ("氨", "0000-00-0", "ammonia"),  # unknown CAS falls back to the name
        ("氨", "", "ammonia"),  # empty CAS is not given
    ],
)
def test_find_substance(name: str | None, cas: str | None, expected: str) -> None:
    found = find_substance(name, cas)
    assert found is not None and found.name_en == expected


@pytest.mark.parametrize(
    ("name", "cas"),
    [(None, None), ("", ""), ("unobtainium", None), (None, "1-2-3"), ("氯 气 罐", None)],
)
def test_find_substance_misses(name: str | None, cas: str | None) -> None:
    assert find_substance(name, cas) is None


# --- α ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("residents", "alpha"),
    [
        (0, 0.5),
        (1, 1.0),
        (29, 1.0),
        (30, 1.2),
        (49, 1.2),
        (50, 1.5),
        (99, 1.5),
        (100, 2.0),
        (100_000, 2.0),
        (None, 2.0),  # unknown population: graded as the worst case
    ],
)
def test_alpha_bands(residents: int | None, alpha: float) -> None:
    assert alpha_for_residents(residents) == alpha


@pytest.mark.parametrize("bad", [-1, True, 1.5, "10"])
def test_alpha_rejects_bad_residents(bad: Any) -> None:
    with pytest.raises(InputError, match="residents_500m"):
        alpha_for_residents(bad)


# --- levels -------------------------------------------------------------------------

# residents 10 → α 1.0, so R = Σ β·q/Q with the values chosen below.
LEVEL_CASES = [
    (100.0, 1),  # R exactly 100 → level 1
    (99.999, 2),  # just under 100 → level 2
    (50.0, 2),  # exactly 50 → level 2
    (49.999, 3),  # just under 50 → level 3
    (10.0, 3),  # exactly 10 → level 3
    (9.999, 4),  # just under 10 → level 4
    (1.0, 4),  # S = 1 with β 1, α 1 → R 1 → still level 4
]


@pytest.mark.parametrize(("q", "level"), LEVEL_CASES)
def test_level_boundaries(q: float, level: int) -> None:
    result = assess([custom(q)], residents_500m=10)
    assert result.r == q
    assert result.level == level


@pytest.mark.parametrize(
    ("q", "level"),
    [
        (1.0, 4),  # S exactly 1 → a major hazard source
        (0.999, None),  # S just under 1 → not one
    ],
)
def test_s_threshold(q: float, level: int | None) -> None:
    assert assess([custom(q)], residents_500m=10).level == level


def test_below_s_one_is_ungraded_whatever_r() -> None:
    result = assess([custom(0.999, beta=1000)], residents_500m=1000)
    assert result.r > 100
    assert result.level is None


def test_level_for_uses_r_only_when_s_reaches_one() -> None:
    assert level_for(0.5, 500.0) is None
    assert level_for(1.0, 0.5) == 4


def test_s_sums_without_rounding_loss() -> None:
    # Three thirds of Q make exactly S = 1 (fsum), so the unit is a major hazard source.
    result = assess([custom(1.0, critical_t=3.0)] * 3, residents_500m=0)
    assert result.s == 1.0
    assert result.level == 4


# --- worked examples ---------------------------------------------------------------


def test_worked_example_chlorine_and_ammonia() -> None:
    # S = 20/5 + 50/10 = 9; R = 2.0 × (4·4 + 2·5) = 52 → level 2.
    result = assess([chem("氯", 20), chem("ammonia", 50)], residents_500m=120)
    assert result.s == 9.0
    assert result.alpha == 2.0
    assert result.r == 52.0
    assert result.level == 2
    chlorine, ammonia = result.items
    assert (chlorine.critical_t, chlorine.beta, chlorine.ratio) == (5.0, 4.0, 4.0)
    assert chlorine.substance == "chlorine"
    assert (ammonia.critical_t, ammonia.beta, ammonia.ratio) == (10.0, 2.0, 5.0)


def test_worked_example_phosgene_by_cas_small_village() -> None:
    # 0.6 t phosgene, 40 residents: S = 2, R = 1.2 × 20 × 2 = 48 → level 3.
    result = assess([chem("碳酰氯", 0.6, cas="75-44-5")], residents_500m=40)
    assert math.isclose(result.s, 2.0)
    assert math.isclose(result.r, 48.0)
    assert result.level == 3


def test_empty_unit() -> None:
    assert assess([], residents_500m=None) == Assessment(0.0, 0.0, 2.0, None, ())


def test_item_fields() -> None:
    (item,) = assess([chem("天然气", 25, cas=" 8006-14-2 ")], residents_500m=0).items
    assert item.name == "天然气"
    assert item.cas == "8006-14-2"
    assert item.quantity_t == 25.0
    assert item.ratio == 0.5
    assert item.substance == "methane"


# --- overrides and unknown substances ------------------------------------------------


def test_critical_t_overrides_table_q_and_keeps_table_beta() -> None:
    (item,) = assess([chem("chlorine", 20, critical_t=10)], residents_500m=0).items
    assert (item.critical_t, item.beta, item.ratio) == (10.0, 4.0, 2.0)


def test_beta_overrides_table_beta() -> None:
    # An admin corrects gasoline to the GHS-class β 1.5.
    result = assess([chem("汽油", 400, beta=1.5)], residents_500m=1)
    assert (result.items[0].beta, result.r) == (1.5, 3.0)


def test_unknown_substance_with_critical_t_has_beta_one() -> None:
    (item,) = assess([chem("丙酮", 10, critical_t=500)], residents_500m=0).items
    assert (item.beta, item.substance, item.ratio) == (1.0, None, 0.02)


def test_unknown_substance_with_critical_t_and_beta() -> None:
    result = assess([chem("硅烷", 2, critical_t=1, beta=2)], residents_500m=100)
    assert (result.s, result.r, result.level) == (2.0, 8.0, 4)


def test_unknown_substance_without_critical_t() -> None:
    with pytest.raises(UnknownSubstance) as info:
        assess([chem("chlorine", 1), chem("丙酮", 10, cas="67-64-1")], residents_500m=0)
    message = str(info.value)
    assert "丙酮" in message and "67-64-1" in message and "critical_t" in message
    assert isinstance(info.value, InputError)


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"quantity_t": 1}, "name"),  # no name
        ({"name": "  ", "quantity_t": 1}, "name"),  # blank name
        ({"name": 3, "quantity_t": 1}, "name"),  # name not a string
        ({"name": "chlorine"}, "quantity_t"),  # no quantity
        (chem("chlorine", -0.1), "quantity_t"),  # negative quantity
        (chem("chlorine", math.nan), "quantity_t"),  # NaN quantity
        (chem("chlorine", math.inf), "quantity_t"),  # infinite quantity
        (chem("chlorine", True), "quantity_t"),  # a bool is not a number
        ({"name": "chlorine", "quantity_t": "5"}, "quantity_t"),  # a string is not a number
        (chem("chlorine", 1, critical_t=0), "critical_t"),  # Q must be > 0
        (chem("chlorine", 1, critical_t=-1), "critical_t"),
        (chem("chlorine", 1, beta=0), "beta"),  # β must be > 0
        (chem("chlorine", 1, cas=7782), "cas"),  # CAS not a string
        ("chlorine", "object"),  # not an object at all
    ],
)
def test_invalid_chemicals(bad: Any, field: str) -> None:
    with pytest.raises(InputError, match=field) as info:
        assess([bad], residents_500m=0)
    assert not isinstance(info.value, UnknownSubstance)


def test_zero_quantity_is_allowed() -> None:
    result = assess([chem("chlorine", 0)], residents_500m=0)
    assert (result.s, result.r, result.level) == (0.0, 0.0, None)

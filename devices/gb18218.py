"""Identification and grading of major hazard sources by GB 18218-2018 (pure, no I/O).

A unit is a major hazard source when S = Σ qᵢ/Qᵢ ≥ 1 (q actual, Q critical quantity, t).
Its grade follows R = α · Σ βᵢ·qᵢ/Qᵢ: level 1 R ≥ 100, 2 for 50 ≤ R < 100, 3 for
10 ≤ R < 50, 4 below 10. α comes from the residents within 500 m, β from the substance.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hazmon.errors import InputError, UnknownSubstance


@dataclass(frozen=True)
class Substance:
    """One row of the built-in substance table: names, CAS numbers, Q (t) and β."""

    name_en: str
    name_zh: tuple[str, ...]
    cas: tuple[str, ...]
    critical_t: float
    beta: float
    aliases_en: tuple[str, ...] = ()


# Q and β as written in DOMAIN.md (GB 18218-2018 Table 1 and the β table).
# β 1 for gasoline, alcohols, benzene, toluene and oxygen follows the older "other classes"
# rule; the standard's GHS-class table gives 1.5 to category-1 flammable liquids (W5.1),
# so these are per-substance values an admin may need to correct.
_DOMAIN_TABLE: tuple[Substance, ...] = (
    Substance("chlorine", ("氯", "氯气", "液氯"), ("7782-50-5",), 5, 4, ("cl2",)),
    Substance("ammonia", ("氨", "氨气", "液氨"), ("7664-41-7",), 10, 2, ("nh3",)),
    Substance("hydrogen sulfide", ("硫化氢",), ("7783-06-4",), 5, 5, ("h2s",)),
    Substance("sulfur dioxide", ("二氧化硫",), ("7446-09-5",), 20, 2, ("so2",)),
    Substance("phosgene", ("光气", "碳酰氯"), ("75-44-5",), 0.3, 20, ("carbonyl chloride",)),
    Substance("ethylene oxide", ("环氧乙烷",), ("75-21-8",), 10, 2),
    Substance("liquefied petroleum gas", ("液化石油气",), ("68476-85-7",), 50, 1.5, ("lpg",)),
    Substance("hydrogen", ("氢", "氢气"), ("1333-74-0",), 5, 1.5),
    Substance("methane", ("甲烷", "天然气"), ("74-82-8", "8006-14-2"), 50, 1.5, ("natural gas",)),
    Substance("acetylene", ("乙炔",), ("74-86-2",), 1, 1.5),
    Substance("ethylene", ("乙烯",), ("74-85-1",), 50, 1.5),
    Substance("propylene", ("丙烯",), ("115-07-1",), 10, 1.5),
    Substance("vinyl chloride", ("氯乙烯",), ("75-01-4",), 50, 1.5),
    Substance("gasoline", ("汽油",), ("86290-81-5",), 200, 1),
    Substance("methanol", ("甲醇",), ("67-56-1",), 500, 1),
    Substance("ethanol", ("乙醇",), ("64-17-5",), 500, 1),
    Substance("benzene", ("苯",), ("71-43-2",), 50, 1),
    Substance("toluene", ("甲苯",), ("108-88-3",), 500, 1),
    Substance("oxygen", ("氧", "氧气", "液氧"), ("7782-44-7",), 200, 1),
)

# β of these toxic gases is from DOMAIN.md; their Q values are from memory of
# GB 18218-2018 Table 1 and should be checked against the standard text.
# CO is graded as 煤气 (coal gas: CO, CO/H2/CH4 mixtures), Q 20 t.
_FURTHER_TOXIC_GASES: tuple[Substance, ...] = (
    Substance("carbon monoxide", ("一氧化碳", "煤气"), ("630-08-0",), 20, 2, ("coal gas", "co")),
    Substance("methyl bromide", ("溴甲烷",), ("74-83-9",), 10, 3, ("bromomethane",)),
    Substance(
        "hydrogen chloride",
        ("氯化氢", "氯化氢(无水)"),
        ("7647-01-0",),
        20,
        3,
        ("hydrogen chloride (anhydrous)", "hcl"),
    ),
    Substance("hydrogen fluoride", ("氟化氢",), ("7664-39-3",), 1, 5, ("hf",)),
    Substance("nitrogen dioxide", ("二氧化氮",), ("10102-44-0",), 1, 10, ("no2",)),
    Substance("hydrogen cyanide", ("氰化氢",), ("74-90-8",), 1, 10, ("hcn",)),
    Substance("phosphine", ("磷化氢",), ("7803-51-2",), 1, 20, ("ph3",)),
    Substance("methyl isocyanate", ("异氰酸甲酯",), ("624-83-9",), 0.75, 20, ("mic",)),
)

SUBSTANCES: tuple[Substance, ...] = _DOMAIN_TABLE + _FURTHER_TOXIC_GASES


def _norm_name(name: str) -> str:
    """Fold a name for lookup: NFKC (full-width → ASCII), trimmed, inner spaces single."""
    return " ".join(unicodedata.normalize("NFKC", name).split()).casefold()


def _norm_cas(cas: str) -> str:
    """Fold a CAS number for lookup: NFKC and no whitespace at all."""
    return "".join(unicodedata.normalize("NFKC", cas).split())


def _names(sub: Substance) -> tuple[str, ...]:
    return (sub.name_en, *sub.aliases_en, *sub.name_zh)


_BY_CAS: dict[str, Substance] = {_norm_cas(c): s for s in SUBSTANCES for c in s.cas}
_BY_NAME: dict[str, Substance] = {_norm_name(n): s for s in SUBSTANCES for n in _names(s)}


def find_substance(name: str | None, cas: str | None) -> Substance | None:
    """Find a substance by CAS number first, else by Chinese or English name or alias."""
    if cas and (found := _BY_CAS.get(_norm_cas(cas))):
        return found
    if name:
        return _BY_NAME.get(_norm_name(name))
    return None


def alpha_for_residents(residents: int | None) -> float:
    """α correction for the permanent residents within 500 m of the plant boundary.

    ≥100 → 2.0; 50–99 → 1.5; 30–49 → 1.2; 1–29 → 1.0; 0 → 0.5. ``None`` (not known)
    gives 2.0: an unknown population is graded as the worst case, never under-graded.
    """
    if residents is None:
        return 2.0
    if not isinstance(residents, int) or isinstance(residents, bool) or residents < 0:
        raise InputError(f"residents_500m must be a whole number >= 0, got {residents!r}")
    for at_least, alpha in ((100, 2.0), (50, 1.5), (30, 1.2), (1, 1.0)):
        if residents >= at_least:
            return alpha
    return 0.5


def level_for(s: float, r: float) -> int | None:
    """Grade 1 (highest) to 4 from R, or ``None`` when S < 1 (not a major hazard source)."""
    if s < 1:
        return None
    if r >= 100:
        return 1
    if r >= 50:
        return 2
    if r >= 10:
        return 3
    return 4


@dataclass(frozen=True)
class AssessedChemical:
    """One chemical as assessed: the Q and β used and its ratio q/Q."""

    name: str
    cas: str | None
    quantity_t: float
    critical_t: float
    beta: float
    ratio: float
    substance: str | None  # name_en of the matched built-in substance, None if not matched


@dataclass(frozen=True)
class Assessment:
    """S, R, α and level (``None`` when S < 1) of one unit, with its chemicals."""

    s: float
    r: float
    alpha: float
    level: int | None
    items: tuple[AssessedChemical, ...]


def _label(index: int, chem: Mapping[str, Any]) -> str:
    name = chem.get("name")
    return f"chemicals[{index}] ({name!r})" if name else f"chemicals[{index}]"


def _number(chem: Mapping[str, Any], key: str, label: str, *, positive: bool) -> float | None:
    """The finite number under ``key`` (``None`` when absent); > 0 or >= 0 as asked."""
    value = chem.get(key)
    if value is None:
        return None
    bound = "> 0" if positive else ">= 0"
    ok_type = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok_type or not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise InputError(f"{label}: {key} must be a finite number {bound}, got {value!r}")
    return float(value)


def _text(chem: Mapping[str, Any], key: str, label: str) -> str | None:
    """The trimmed string under ``key``; ``None`` when absent or empty."""
    value = chem.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(f"{label}: {key} must be a string, got {value!r}")
    return value.strip() or None


def _unknown(label: str, name: str, cas: str | None) -> UnknownSubstance:
    cas_note = f" (CAS {cas})" if cas else ""
    return UnknownSubstance(
        f"{label}: {name!r}{cas_note} is not in the built-in GB 18218-2018 table; "
        "give its critical quantity in tonnes as critical_t (GB 18218-2018 Table 1 or 2)"
    )


def _assess_one(index: int, chem: Any) -> AssessedChemical:
    """Validate one chemical and resolve its Q and β (the given ones override the table's)."""
    if not isinstance(chem, Mapping):
        raise InputError(f"chemicals[{index}] must be an object, got {chem!r}")
    label = _label(index, chem)
    name, cas = _text(chem, "name", label), _text(chem, "cas", label)
    if name is None:
        raise InputError(f"{label}: name is required")
    quantity = _number(chem, "quantity_t", label, positive=False)
    if quantity is None:
        raise InputError(f"{label}: quantity_t (tonnes) is required")
    found = find_substance(name, cas)
    critical = _number(chem, "critical_t", label, positive=True)
    beta = _number(chem, "beta", label, positive=True)
    if critical is None:
        if found is None:
            raise _unknown(label, name, cas)
        critical = float(found.critical_t)
    if beta is None:
        beta = float(found.beta) if found else 1.0
    matched = found.name_en if found else None
    return AssessedChemical(name, cas, quantity, critical, beta, quantity / critical, matched)


def assess(chemicals: list[dict[str, Any]], residents_500m: int | None) -> Assessment:
    """Compute S, R and the GB 18218-2018 level of one unit (nothing rounded).

    Sums use ``math.fsum`` so that e.g. three thirds of Q give S exactly 1.
    """
    alpha = alpha_for_residents(residents_500m)
    items = tuple(_assess_one(i, chem) for i, chem in enumerate(chemicals))
    s = math.fsum(item.ratio for item in items)
    r = alpha * math.fsum(item.beta * item.ratio for item in items)
    return Assessment(s=s, r=r, alpha=alpha, level=level_for(s, r), items=items)

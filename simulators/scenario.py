"""The demo plant as data: enterprises, hazard sources, gateways, tanks, detectors, point tables.

Pure: no I/O. ``plant.py`` uploads what is described here and streams what ``model.step`` makes.

Numbers are meant to look like a real site (位号, ranges, setpoints):
- process limits: level HI 80 % / HIHI 90 % of range, LO 15 % / LOLO 10 %; deadbands and
  on-delays from the alarm-management starting points in DOMAIN.md (level 5 % / 60 s,
  pressure 2 % / 15 s, temperature 1 % / 60 s, flow 5 % / 15 s);
- combustible gas 25 / 50 %LEL, toxic gas ≤ 100 % / 200 % of the occupational exposure limit,
  oxygen 19.5 / 23.5 %VOL (GB/T 50493-2019), fast (2 s) on-delay as gas alarms must be quick.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

POINT_COLUMNS: tuple[str, ...] = (
    "tag", "name", "hazard_source", "kind", "unit", "range_low", "range_high",
    "lolo", "lo", "hi", "hihi", "deadband", "on_delay_s", "off_delay_s", "roc_per_min", "stale_s",
)
CHINESE_COLUMNS: tuple[str, ...] = (
    "位号", "名称", "重大危险源编码", "类型", "单位", "量程下限", "量程上限",
    "低低报", "低报", "高报", "高高报", "回差", "报警延时", "恢复延时", "变化率", "超时",
)


@dataclass(frozen=True)
class PointSpec:
    """One row of a point table, plus how many decimals its readings carry."""

    tag: str
    name: str
    kind: str
    unit: str
    range_low: float
    range_high: float
    hazard_source: str = ""
    lolo: float | None = None
    lo: float | None = None
    hi: float | None = None
    hihi: float | None = None
    deadband: float = 0.0
    on_delay_s: float = 0.0
    off_delay_s: float = 0.0
    roc_per_min: float | None = None
    decimals: int = 2


@dataclass(frozen=True)
class TankSpec:
    """A storage tank with LT/TT/PT-{number}01 and FT-{number}01 (in) / FT-{number}02 (out).

    ``pressure`` is ``vapour`` for liquefied gases (gauge MPa = Psat(T) - 0.101, Psat =
    ``p_ref`` · exp(``p_slope`` · (T - 20))), or ``atmospheric`` for a blanketed fixed-roof
    tank (kPa = ``p_ref`` + ``p_slope`` · (T - 20)).
    """

    number: str
    name: str
    hazard_source: str
    height_m: float
    volume_m3: float
    fill_m3h: float
    draw_m3h: float
    flow_range_m3h: float
    pressure: str
    p_ref: float
    p_slope: float
    p_range: tuple[float, float]
    p_lo: float | None
    p_hi: float
    p_hihi: float
    t_hi: float = 40.0
    t_hihi: float = 45.0

    @property
    def area_m2(self) -> float:
        """Mean liquid surface: the level integrates net flow over this area."""
        return self.volume_m3 / self.height_m

    def tag(self, prefix: str, suffix: str = "01") -> str:
        """The tank's tag for an instrument prefix (``LT``, ``TT``, ``PT``, ``FT``)."""
        return f"{prefix}-{self.number}{suffix}"


@dataclass(frozen=True)
class DetectorSpec:
    """A gas, toxic-gas or oxygen detector: its point and its clean-air reading."""

    point: PointSpec
    baseline: float
    noise: float


@dataclass(frozen=True)
class GatewaySpec:
    """A site gateway and the instruments it reports."""

    code: str
    tanks: tuple[TankSpec, ...] = ()
    detectors: tuple[DetectorSpec, ...] = ()

    @property
    def points(self) -> tuple[PointSpec, ...]:
        """Every point this gateway reports, tanks first."""
        tank_points = tuple(p for t in self.tanks for p in tank_point_specs(t))
        return tank_points + tuple(d.point for d in self.detectors)


@dataclass(frozen=True)
class Chemical:
    """One substance held in a hazard source."""

    name: str
    cas: str
    quantity_t: float


@dataclass(frozen=True)
class HazardSourceSpec:
    """A storage unit (罐区) as sent to ``POST …/hazard-sources``."""

    code: str
    name: str
    residents_500m: int
    chemicals: tuple[Chemical, ...]

    def api_body(self) -> dict[str, Any]:
        """The JSON body of the create request."""
        return {
            "code": self.code,
            "name": self.name,
            "unit_type": "storage",
            "residents_500m": self.residents_500m,
            "chemicals": [
                {"name": c.name, "cas": c.cas, "quantity_t": c.quantity_t} for c in self.chemicals
            ],
        }


@dataclass(frozen=True)
class EnterpriseSpec:
    """An enterprise with its hazard sources and gateways."""

    code: str
    name: str
    lat: float
    lon: float
    chinese_headers: bool
    hazard_sources: tuple[HazardSourceSpec, ...]
    gateways: tuple[GatewaySpec, ...] = field(default=())

    def api_body(self) -> dict[str, Any]:
        """The JSON body of ``POST /api/v1/enterprises``."""
        return {"code": self.code, "name": self.name, "lat": self.lat, "lon": self.lon}

    @property
    def points(self) -> tuple[PointSpec, ...]:
        """Every point of every gateway of the enterprise."""
        return tuple(p for g in self.gateways for p in g.points)


def _r(x: float) -> float:
    """Round a derived setpoint so the CSV shows tidy numbers."""
    return round(x, 4)


@functools.cache
def tank_point_specs(t: TankSpec) -> tuple[PointSpec, ...]:
    """The five points of a tank, limits derived from its range by the module's policy."""
    h, hs, p_span = t.height_m, t.hazard_source, t.p_range[1] - t.p_range[0]
    p_unit = "MPa" if t.pressure == "vapour" else "kPa"
    level = PointSpec(
        t.tag("LT"), f"{t.name}液位", "level", "m", 0.0, h, hs, lolo=_r(0.10 * h),
        lo=_r(0.15 * h), hi=_r(0.80 * h), hihi=_r(0.90 * h), deadband=_r(0.05 * h),
        on_delay_s=60, decimals=3,
    )
    temp = PointSpec(
        t.tag("TT"), f"{t.name}温度", "temperature", "°C", -20.0, 60.0, hs, hi=t.t_hi,
        hihi=t.t_hihi, deadband=0.8, on_delay_s=60, decimals=2,
    )
    pressure = PointSpec(
        t.tag("PT"), f"{t.name}压力", "pressure", p_unit, t.p_range[0], t.p_range[1], hs,
        lo=t.p_lo, hi=t.p_hi, hihi=t.p_hihi, deadband=_r(0.02 * p_span), on_delay_s=15,
        # A rise of 40 % of range per minute is a fault or a fire, never the sun.
        roc_per_min=_r(0.4 * p_span) if t.pressure == "vapour" else None, decimals=4,
    )
    flows = tuple(
        PointSpec(
            t.tag("FT", sfx), f"{t.name}{what}流量", "flow", "m³/h", 0.0, t.flow_range_m3h, hs,
            hi=_r(0.9 * t.flow_range_m3h), deadband=_r(0.05 * t.flow_range_m3h), on_delay_s=15,
        )
        for sfx, what in (("01", "进料"), ("02", "出料"))
    )
    return (level, temp, pressure) + flows


def level_limits(t: TankSpec) -> tuple[float, float]:
    """HI and deadband (m) of the tank's level point."""
    level = tank_point_specs(t)[0]
    assert level.hi is not None
    return level.hi, level.deadband


def combustible(tag: str, name: str, hazard_source: str) -> DetectorSpec:
    """A catalytic/IR combustible gas detector, 0–100 %LEL, alarms 25 / 50 %LEL."""
    point = PointSpec(
        tag, name, "gas", "%LEL", 0.0, 100.0, hazard_source, hi=25.0, hihi=50.0,
        deadband=2.0, on_delay_s=2, off_delay_s=5, decimals=1,
    )
    return DetectorSpec(point, baseline=0.4, noise=0.3)


def toxic(tag: str, name: str, hazard_source: str, gas: str) -> DetectorSpec:
    """A toxic gas detector for ``Cl2`` or ``NH3`` in ppm.

    Cl2: MAC 1 mg/m³ ≈ 0.34 ppm, so 0.3 / 0.6 ppm on a 0–10 ppm cell.
    NH3: PC-STEL 30 mg/m³ ≈ 42 ppm, so 40 / 80 ppm on a 0–100 ppm cell.
    """
    if gas == "Cl2":
        rng_high, hi, hihi, band, base, noise, dec = 10.0, 0.3, 0.6, 0.05, 0.02, 0.01, 2
    else:
        rng_high, hi, hihi, band, base, noise, dec = 100.0, 40.0, 80.0, 2.0, 1.0, 0.4, 1
    point = PointSpec(
        tag, name, "toxic_gas", "ppm", 0.0, rng_high, hazard_source, hi=hi, hihi=hihi,
        deadband=band, on_delay_s=2, off_delay_s=5, decimals=dec,
    )
    return DetectorSpec(point, baseline=base, noise=noise)


def oxygen(tag: str, name: str, hazard_source: str) -> DetectorSpec:
    """An oxygen deficiency/enrichment detector, 0–25 %VOL, alarms 19.5 / 23.5 %VOL."""
    point = PointSpec(
        tag, name, "oxygen", "%VOL", 0.0, 25.0, hazard_source, lo=19.5, hi=23.5,
        deadband=0.2, on_delay_s=2, off_delay_s=5, decimals=2,
    )
    return DetectorSpec(point, baseline=20.9, noise=0.04)


# Liquefied gases: Psat(20 °C) absolute and its slope fitted to 10–40 °C tables
# (Cl2 0.673 MPa, +2.65 %/°C; NH3 0.857 MPa, +3.05 %/°C; commercial LPG ≈ 0.70, +2.8 %/°C).
def _cl2_tank(number: str, name: str) -> TankSpec:
    return TankSpec(
        number, name, "HS01", height_m=2.6, volume_m3=50, fill_m3h=15, draw_m3h=6,
        flow_range_m3h=40, pressure="vapour", p_ref=0.673, p_slope=0.0265,
        p_range=(0.0, 2.5), p_lo=None, p_hi=1.0, p_hihi=1.2,
    )


def _meoh_tank(number: str, name: str) -> TankSpec:
    # Nitrogen-blanketed fixed roof, breather valve at +1.8 / -0.3 kPa.
    return TankSpec(
        number, name, "HS03", height_m=10.0, volume_m3=1000, fill_m3h=120, draw_m3h=40,
        flow_range_m3h=200, pressure="atmospheric", p_ref=0.4, p_slope=0.03,
        p_range=(-2.0, 6.0), p_lo=-0.5, p_hi=2.0, p_hihi=3.0, t_hi=35.0, t_hihi=40.0,
    )


def _lpg_tank(number: str, name: str) -> TankSpec:
    return TankSpec(
        number, name, "HS01", height_m=9.2, volume_m3=400, fill_m3h=60, draw_m3h=25,
        flow_range_m3h=120, pressure="vapour", p_ref=0.70, p_slope=0.028,
        p_range=(0.0, 2.5), p_lo=None, p_hi=1.2, p_hihi=1.4,
    )


_NH3_TANK = TankSpec(
    "13", "液氨储罐", "HS02", height_m=3.0, volume_m3=100, fill_m3h=20, draw_m3h=8,
    flow_range_m3h=50, pressure="vapour", p_ref=0.857, p_slope=0.0305,
    p_range=(0.0, 2.5), p_lo=None, p_hi=1.4, p_hihi=1.6,
)

# Inventories are design capacity × density × 0.8–0.9 fill. With the residents given, the
# GB 18218 grades come out different: chlorine level 2, ammonia 3, methanol 4, LPG 3.
DEMO_CHEM = EnterpriseSpec(
    code="DEMO-CHEM",
    name="示例化工有限公司",
    lat=32.2565,
    lon=118.7520,
    chinese_headers=True,
    hazard_sources=(
        HazardSourceSpec("HS01", "液氯储罐区", 20, (Chemical("氯", "7782-50-5", 117.6),)),
        HazardSourceSpec("HS02", "液氨储罐区", 20, (Chemical("氨", "7664-41-7", 51.9),)),
        HazardSourceSpec("HS03", "甲醇罐区", 20, (Chemical("甲醇", "67-56-1", 1422.0),)),
    ),
    gateways=(
        GatewaySpec(
            "GW-01",
            tanks=(_cl2_tank("11", "1#液氯储罐"), _cl2_tank("12", "2#液氯储罐"), _NH3_TANK),
            detectors=(
                toxic("AT-1101", "液氯储罐区东侧氯气检测", "HS01", "Cl2"),
                toxic("AT-1102", "液氯储罐区西侧氯气检测", "HS01", "Cl2"),
                toxic("AT-1103", "液氯汽化间氯气检测", "HS01", "Cl2"),
                oxygen("AT-1104", "液氯汽化间氧含量", "HS01"),
                toxic("AT-1301", "液氨储罐区氨气检测1", "HS02", "NH3"),
                toxic("AT-1302", "液氨储罐区氨气检测2", "HS02", "NH3"),
            ),
        ),
        GatewaySpec(
            "GW-02",
            tanks=(_meoh_tank("21", "1#甲醇储罐"), _meoh_tank("22", "2#甲醇储罐")),
            detectors=tuple(
                combustible(f"GT-210{i}", f"甲醇罐区可燃气体检测{i}", "HS03") for i in range(1, 5)
            ),
        ),
    ),
)

DEMO_GAS = EnterpriseSpec(
    code="DEMO-GAS",
    name="示例燃气储配站",
    lat=30.5728,
    lon=104.0668,
    chinese_headers=False,
    hazard_sources=(
        HazardSourceSpec(
            "HS01", "液化石油气球罐区", 120, (Chemical("液化石油气", "68476-85-7", 374.0),)
        ),
    ),
    gateways=(
        GatewaySpec(
            "GW-01",
            tanks=(_lpg_tank("31", "1#液化石油气球罐"), _lpg_tank("32", "2#液化石油气球罐")),
            detectors=tuple(
                combustible(f"GT-310{i}", f"球罐区可燃气体检测{i}", "HS01") for i in range(1, 7)
            ),
        ),
    ),
)

DEMO_PLANT: tuple[EnterpriseSpec, ...] = (DEMO_CHEM, DEMO_GAS)


def _cell(value: float | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return format(value, "g")


def point_table_csv(enterprise: EnterpriseSpec, stale_s: float | None = 30.0) -> str:
    """The enterprise's point table as CSV, with Chinese or English headers as it prefers."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CHINESE_COLUMNS if enterprise.chinese_headers else POINT_COLUMNS)
    for p in enterprise.points:
        row = {name: getattr(p, name, None) for name in POINT_COLUMNS}
        row["stale_s"] = stale_s
        writer.writerow([_cell(row[name]) for name in POINT_COLUMNS])
    return buf.getvalue()


# ----------------------------------------------------------------------------------------------
# The model: state + step(dt, rng) -> readings. Time is simulated seconds since start.

GatewayKey = tuple[str, str]
Reading = dict[str, Any]
P_ATM_MPA = 0.101


def ou(x: float, sigma: float, tau: float, dt: float, rng: np.random.Generator) -> float:
    """One exact step of an Ornstein-Uhlenbeck process: noise that looks the same at any dt."""
    a = math.exp(-dt / tau)
    return x * a + sigma * math.sqrt(1.0 - a * a) * float(rng.standard_normal())


def pulse(x: float, ramp_s: float, hold_s: float, tau_s: float) -> float:
    """0 before 0, a linear ramp to 1, a hold at 1, then exponential decay towards 0."""
    if x <= 0:
        return 0.0
    if x < ramp_s:
        return x / ramp_s
    if x < ramp_s + hold_s:
        return 1.0
    return math.exp(-(x - ramp_s - hold_s) / tau_s)


def lag(x: float, target: float, tau: float, dt: float) -> float:
    """First-order lag of ``x`` towards ``target``."""
    return target + (x - target) * math.exp(-dt / tau)


@dataclass
class TankState:
    """A tank's state: fill/draw cycle, flows through lagging valves, liquid temperature."""

    spec: TankSpec
    level: float
    temp: float
    filling: bool
    inflow: float = 0.0
    outflow: float = 0.0
    override: tuple[float, float] | None = None  # (in, out) m³/h forced by an excursion
    p_offset: float = 0.0  # added by an excursion, reset every step
    noise: list[float] = field(default_factory=lambda: [0.0] * 5)

    FILL_TO, DRAW_TO = 0.72, 0.30  # fractions of height where the cycle turns

    def pressure(self) -> float:
        """Noise-free pressure in the point's unit, including any excursion offset."""
        s = self.spec
        if s.pressure == "vapour":
            base = s.p_ref * math.exp(s.p_slope * (self.temp - 20.0)) - P_ATM_MPA
        else:  # filling pushes the blanket gas out through the breather, drawing pulls in
            base = s.p_ref + s.p_slope * (self.temp - 20.0)
            base += 0.4 * (self.inflow - self.outflow) / s.fill_m3h
        return base + self.p_offset

    def step(self, dt: float, ambient: float, rng: np.random.Generator) -> None:
        """Advance flows, level and temperature by ``dt`` seconds."""
        s = self.spec
        if self.filling and self.level >= self.FILL_TO * s.height_m:
            self.filling = False
        elif not self.filling and self.level <= self.DRAW_TO * s.height_m:
            self.filling = True
        want_in, want_out = self.override or (
            (s.fill_m3h, 0.0) if self.filling else (0.0, s.draw_m3h)
        )
        self.inflow = lag(self.inflow, want_in, 20.0, dt)
        self.outflow = lag(self.outflow, want_out, 20.0, dt)
        self.level += (self.inflow - self.outflow) / 3600.0 * dt / s.area_m2
        self.level = min(max(self.level, 0.0), s.height_m)
        self.temp = lag(self.temp, ambient, 3 * 3600.0, dt)
        # Sensor noise (σ, τ) of LT, TT, PT, FT in, FT out; slow enough for no nuisance ROC.
        p_sigma = 0.001 if s.pressure == "vapour" else 0.02
        noise = ((0.0005 * s.height_m, 5.0), (0.05, 30.0), (p_sigma, 10.0),
                 (0.01 * s.fill_m3h, 5.0), (0.01 * s.draw_m3h, 5.0))
        pairs = zip(self.noise, noise, strict=True)
        self.noise = [ou(x, sigma, tau, dt, rng) for x, (sigma, tau) in pairs]

    def values(self) -> list[float]:
        """Measured LT, TT, PT, FT in, FT out (before clipping to the instrument range)."""
        flows_on = (self.inflow > 0.5, self.outflow > 0.5)  # a closed line reads zero
        true = (self.level, self.temp, self.pressure(), self.inflow, self.outflow)
        on = (True, True, True) + flows_on
        return [v + n if o else 0.0 for v, n, o in zip(true, self.noise, on, strict=True)]


@dataclass
class DetectorState:
    """A detector: clean-air baseline with sensor noise, plus what excursions add."""

    spec: DetectorSpec
    noise: float = 0.0
    offset: float = 0.0

    def step(self, dt: float, rng: np.random.Generator) -> None:
        """Advance the sensor noise."""
        self.noise = ou(self.noise, self.spec.noise, 5.0, dt, rng)

    def value(self) -> float:
        """Measured value before clipping."""
        return self.spec.baseline + self.noise + self.offset


@dataclass
class GasLeak:
    """A leak seen by one detector, and faintly by its neighbours: ramp, hold with gusts, decay."""

    enterprise: str
    point: PointSpec
    peak: float  # offset above clean air at the detector
    start: float
    ramp_s: float
    hold_s: float
    tau_s: float
    neighbours: tuple[tuple[str, float], ...] = ()  # (tag, fraction of the offset)

    @property
    def equipment(self) -> tuple[str, str]:
        """What this excursion occupies (no two excursions on one thing)."""
        return (self.enterprise, self.point.tag)

    def describe(self) -> str:
        """One line for the console."""
        p = self.point
        return (f"gas leak at {self.enterprise}/{p.tag} to ~{self.peak:.3g} {p.unit} "
                f"(HI {p.hi:g}, HIHI {p.hihi:g}) for {self.hold_s:.0f} s")

    def apply(self, plant: Plant, t: float) -> bool:
        """Add the plume to the detectors; False once it has died away."""
        f = pulse(t - self.start, self.ramp_s, self.hold_s, self.tau_s)
        f *= 1.0 + 0.08 * math.sin(0.9 * t)  # gusts
        plant.detectors[self.equipment].offset += self.peak * f
        for tag, frac in self.neighbours:
            plant.detectors[(self.enterprise, tag)].offset += self.peak * frac * f
        return t < self.start + self.ramp_s + self.hold_s + 5 * self.tau_s


@dataclass
class PressureSpike:
    """A tank pressure excursion (blocked vent, failed regulator): ramp, hold, decay."""

    enterprise: str
    tank: TankSpec
    peak: float  # offset added to the pressure
    start: float
    ramp_s: float
    hold_s: float
    tau_s: float

    @property
    def equipment(self) -> tuple[str, str]:
        """What this excursion occupies."""
        return (self.enterprise, self.tank.number)

    def describe(self) -> str:
        """One line for the console."""
        return (f"pressure spike at {self.enterprise}/{self.tank.tag('PT')} +{self.peak:.3g} "
                f"(HI {self.tank.p_hi:g}, HIHI {self.tank.p_hihi:g}) for {self.hold_s:.0f} s")

    def apply(self, plant: Plant, t: float) -> bool:
        """Add the offset to the tank's pressure; False once it has decayed."""
        f = pulse(t - self.start, self.ramp_s, self.hold_s, self.tau_s)
        plant.tanks[self.equipment].p_offset += self.peak * f
        return t < self.start + self.ramp_s + self.hold_s + 5 * self.tau_s


@dataclass
class Overfill:
    """An unloading that overruns: fill at full rate past HI, hold, then pump down below HI."""

    enterprise: str
    tank: TankSpec
    target: float  # level (m) at which someone notices
    hold_s: float
    start: float
    phase: str = "fill"
    since: float = 0.0

    MAX_FILL_S = 3600.0  # give up filling after this: the demo must not overfill forever

    @staticmethod
    def rate(tank: TankSpec) -> float:
        """Flow (m³/h) of the runaway fill and of the pump-down after it."""
        return 0.8 * tank.flow_range_m3h

    @staticmethod
    def time_to_hi(state: TankState) -> float:
        """Seconds an overfill of this tank would take to reach its HI."""
        hi = level_limits(state.spec)[0]
        return max(hi - state.level, 0.0) * state.spec.area_m2 / Overfill.rate(state.spec) * 3600

    @property
    def equipment(self) -> tuple[str, str]:
        """What this excursion occupies."""
        return (self.enterprise, self.tank.number)

    def describe(self) -> str:
        """One line for the console."""
        hi = level_limits(self.tank)[0]
        return (f"overfill of {self.enterprise}/{self.tank.tag('LT')} to {self.target:.2f} m "
                f"(HI {hi:g} m)")

    def apply(self, plant: Plant, t: float) -> bool:
        """Drive the tank's flows by phase; False when the level is back below HI."""
        state = plant.tanks[self.equipment]
        full_rate = self.rate(self.tank)
        hi, deadband = level_limits(self.tank)
        if self.phase == "fill":
            state.override = (full_rate, 0.0)
            if state.level >= self.target or t - self.start > self.MAX_FILL_S:
                self.phase, self.since = "hold", t
        elif self.phase == "hold":
            state.override = (0.0, 0.0)
            if t - self.since >= self.hold_s:
                self.phase = "drain"
        else:
            state.override = (0.0, full_rate)
            if state.level < hi - 2 * deadband:
                state.override, state.filling = None, False
                return False
        return True


Excursion = GasLeak | PressureSpike | Overfill


class Plant:
    """Every tank and detector of every enterprise in ``layout``, and the excursions under way.

    ``step(dt, rng)`` advances simulated time and returns each gateway's readings. The first
    excursion (a combustible gas leak, through HI and HIHI) starts within ``first_excursion_s``
    so a demo shows alarms at once; later ones follow at random, on average
    ``excursion_every_s`` apart (0 turns excursions off), at most ``max_active`` at a time.
    """

    def __init__(
        self,
        layout: tuple[EnterpriseSpec, ...],
        rng: np.random.Generator,
        *,
        start_hour: float = 10.0,
        excursion_every_s: float = 180.0,
        first_excursion_s: tuple[float, float] = (4.0, 8.0),
        bad_quality_prob: float = 0.0005,
        max_active: int = 2,
    ) -> None:
        self.layout, self.t, self.start_hour = layout, 0.0, start_hour
        self.excursion_every_s, self.max_active = excursion_every_s, max_active
        self.bad_quality_prob = bad_quality_prob
        self.weather = {e.code: 0.0 for e in layout}  # slow deviation from the diurnal curve
        self.tanks: dict[tuple[str, str], TankState] = {}
        self.detectors: dict[tuple[str, str], DetectorState] = {}
        self.points: dict[tuple[str, str], PointSpec] = {}
        self.active: list[Excursion] = []
        self.events: list[str] = []
        self.started = 0
        self.next_excursion_at = (
            rng.uniform(*first_excursion_s) if excursion_every_s > 0 else math.inf
        )
        for e in layout:
            self.points.update({(e.code, p.tag): p for p in e.points})
            for gw in e.gateways:
                for t in gw.tanks:
                    self.tanks[(e.code, t.number)] = self._new_tank(e.code, t, rng)
                for d in gw.detectors:
                    self.detectors[(e.code, d.point.tag)] = DetectorState(d)

    def _new_tank(self, enterprise: str, spec: TankSpec, rng: np.random.Generator) -> TankState:
        filling = bool(rng.random() < 0.5)
        state = TankState(
            spec, level=rng.uniform(0.35, 0.68) * spec.height_m,
            temp=self.ambient(enterprise) + rng.normal(0.0, 1.0), filling=filling,
        )
        state.inflow, state.outflow = (spec.fill_m3h, 0.0) if filling else (0.0, spec.draw_m3h)
        return state

    def ambient(self, enterprise: str) -> float:
        """Air temperature (°C): 18 ± 6 with the warmest hour at 15:00, plus weather."""
        hour = self.start_hour + self.t / 3600.0
        return 18.0 + 6.0 * math.sin(2 * math.pi * (hour - 9.0) / 24.0) + self.weather[enterprise]

    @property
    def gateways(self) -> list[GatewayKey]:
        """Every (enterprise, gateway) of the layout."""
        return [(e.code, g.code) for e in self.layout for g in e.gateways]

    def step(self, dt: float, rng: np.random.Generator) -> dict[GatewayKey, list[Reading]]:
        """Advance ``dt`` seconds and return the readings of every gateway."""
        self.t += dt
        for code, w in self.weather.items():
            self.weather[code] = ou(w, 1.0, 1800.0, dt, rng)
        for (code, _), tank in self.tanks.items():
            tank.p_offset = 0.0
            tank.step(dt, self.ambient(code), rng)
        for det in self.detectors.values():
            det.offset = 0.0
            det.step(dt, rng)
        still = [x for x in self.active if x.apply(self, self.t)]
        self.events += [f"excursion over: {x.describe()}" for x in self.active if x not in still]
        self.active = still
        self._maybe_start(rng)
        return {(e.code, g.code): self._gateway_readings(e.code, g, rng)
                for e in self.layout for g in e.gateways}

    def _gateway_readings(
        self, enterprise: str, gw: GatewaySpec, rng: np.random.Generator
    ) -> list[Reading]:
        out: list[Reading] = []
        for t in gw.tanks:
            values = self.tanks[(enterprise, t.number)].values()
            out += [reading(p, v) for p, v in zip(tank_point_specs(t), values, strict=True)]
        for d in gw.detectors:
            out.append(reading(d.point, self.detectors[(enterprise, d.point.tag)].value()))
        if out and rng.random() < self.bad_quality_prob:  # a transmitter fault, now and then
            out[int(rng.integers(len(out)))]["quality"] = "bad"
        return out

    def _maybe_start(self, rng: np.random.Generator) -> None:
        if self.t < self.next_excursion_at or len(self.active) >= self.max_active:
            return
        first = self.started == 0
        kind = "leak" if first else str(rng.choice(["leak", "spike", "overfill"], p=[.5, .25, .25]))
        self.start_excursion(kind, rng, first=first)
        self.next_excursion_at = self.t + 30.0 + rng.exponential(self.excursion_every_s)

    def start_excursion(
        self, kind: str, rng: np.random.Generator, *, first: bool = False
    ) -> Excursion | None:
        """Start a ``leak``, ``spike`` or ``overfill`` now, if some equipment is free for it.

        ``first`` makes it the demo opener: a combustible gas leak through HI and HIHI.
        """
        x = self._new_excursion(kind, first, rng)
        if x is not None:
            x.apply(self, self.t)
            self.active.append(x)
            self.started += 1
            self.events.append(f"excursion: {x.describe()}")
        return x

    def _busy(self) -> set[tuple[str, str]]:
        return {x.equipment for x in self.active}

    def _new_excursion(self, kind: str, first: bool, rng: np.random.Generator) -> Excursion | None:
        if kind == "leak":
            kinds = ("gas",) if first else ("gas", "toxic_gas")
            return self._new_leak(kinds, first or rng.random() < 0.75, rng)
        tanks = [k for k in self.tanks if k not in self._busy()]
        if not tanks:
            return None
        if kind == "spike":
            code, number = tanks[int(rng.integers(len(tanks)))]
            return self._new_spike(code, self.tanks[(code, number)], rng)
        # Overfill the tank that would reach HI soonest: the one being topped up.
        code, number = min(tanks, key=lambda k: Overfill.time_to_hi(self.tanks[k]))
        spec = self.tanks[(code, number)].spec
        target = max(rng.uniform(0.82, 0.92) * spec.height_m, self.tanks[(code, number)].level)
        return Overfill(code, spec, round(target, 3), rng.uniform(30, 90), self.t)

    def _new_leak(
        self, kinds: tuple[str, ...], through_hihi: bool, rng: np.random.Generator
    ) -> GasLeak | None:
        free = [k for k, d in self.detectors.items()
                if d.spec.point.kind in kinds and k not in self._busy()]
        if not free:
            return None
        code, tag = free[int(rng.integers(len(free)))]
        d = self.detectors[(code, tag)].spec
        p = d.point
        assert p.hi is not None and p.hihi is not None
        if through_hihi:  # ≥ 1.15 HIHI so that the gusts (±8 %) stay above it
            peak = min(rng.uniform(1.15, 1.45) * p.hihi, 0.85 * p.range_high / 1.08)
        else:
            peak = rng.uniform(1.25 * p.hi, 0.85 * p.hihi)
        neighbours = tuple(
            (n.point.tag, min(rng.uniform(0.05, 0.3), 0.7 * p.hi / (peak * 1.08)))
            for n in self._gateway_of(code, tag).detectors
            if n.point.tag != tag and n.point.kind == p.kind
            and n.point.hazard_source == p.hazard_source and (code, n.point.tag) not in self._busy()
        )
        return GasLeak(code, p, peak - d.baseline, self.t, rng.uniform(8, 15), rng.uniform(30, 90),
                       rng.uniform(8, 20), neighbours)

    def _new_spike(self, code: str, tank: TankState, rng: np.random.Generator) -> PressureSpike:
        s = tank.spec
        span = s.p_range[1] - s.p_range[0]
        if rng.random() < 0.6:  # HI only
            target = s.p_hi + rng.uniform(0.3, 0.7) * (s.p_hihi - s.p_hi)
        else:
            target = min(s.p_hihi + rng.uniform(0.02, 0.1) * span, s.p_range[1] - 0.05 * span)
        return PressureSpike(code, s, target - tank.pressure(), self.t, rng.uniform(8, 20),
                             rng.uniform(20, 60), rng.uniform(10, 25))

    def _gateway_of(self, enterprise: str, tag: str) -> GatewaySpec:
        e = next(e for e in self.layout if e.code == enterprise)
        return next(g for g in e.gateways if any(p.tag == tag for p in g.points))

    def drain_events(self) -> list[str]:
        """Excursions started and ended since the last call, as console lines."""
        events, self.events = self.events, []
        return events


def reading(point: PointSpec, value: float) -> Reading:
    """A reading as sent: clipped to the instrument range, rounded to the point's decimals."""
    clipped = min(max(value, point.range_low), point.range_high)
    return {"tag": point.tag, "value": round(clipped, point.decimals)}


def readings_topic(enterprise: str, gateway: str) -> str:
    """``hazmon/v1/{enterprise}/{gateway}/readings``."""
    return f"hazmon/v1/{enterprise}/{gateway}/readings"


def status_topic(enterprise: str, gateway: str) -> str:
    """``hazmon/v1/{enterprise}/{gateway}/status`` (retained ``online`` / ``offline``)."""
    return f"hazmon/v1/{enterprise}/{gateway}/status"


def readings_message(ts_ms: int, readings: list[Reading]) -> bytes:
    """The JSON payload of one readings message; readings take the message's ``ts``."""
    body = {"ts": int(ts_ms), "readings": readings}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()

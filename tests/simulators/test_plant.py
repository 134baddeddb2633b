"""The simulated plant without a broker or server: point tables, dynamics, excursions, payloads.

The end-to-end run (``hazmon simulate`` against a real server and broker) is tested elsewhere.
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import json
import math
import re
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pytest

from devices.gb18218 import assess
from devices.pointtable import parse_point_table
from hazmon.errors import ConfigError, ServiceError
from simulators import plant as sim
from simulators.scenario import (
    CHINESE_COLUMNS,
    DEMO_CHEM,
    DEMO_GAS,
    DEMO_PLANT,
    POINT_COLUMNS,
    EnterpriseSpec,
    Plant,
    Reading,
    point_table_csv,
    readings_message,
    readings_topic,
    status_topic,
)

KINDS = {"temperature", "pressure", "level", "flow", "gas", "toxic_gas", "oxygen",
         "composition", "valve", "other"}
TAG = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
TOPIC = re.compile(r"hazmon/v1/[A-Za-z0-9_.-]{1,64}/[A-Za-z0-9_.-]{1,64}/(readings|status)")
LIMITS = ("lolo", "lo", "hi", "hihi")

Series = dict[tuple[str, str], list[tuple[float, float]]]  # (enterprise, tag) -> [(t, value)]


def run_plant(plant: Plant, rng: np.random.Generator, seconds: float, dt: float = 1.0,
              each: Callable[[Plant], bool | None] | None = None) -> Series:
    """Step ``plant`` until ``seconds`` (or ``each`` says True) and collect every reading."""
    series: Series = {}
    while plant.t < seconds - 1e-9:
        for (enterprise, _), readings in plant.step(dt, rng).items():
            for r in readings:
                series.setdefault((enterprise, r["tag"]), []).append((plant.t, r["value"]))
        if each and each(plant):
            break
    return series


def ended_a_minute_ago() -> Callable[[Plant], bool]:
    """A stop condition: no excursion active for the last 60 simulated seconds."""
    last_active = [0.0]

    def check(plant: Plant) -> bool:
        if plant.active:
            last_active[0] = plant.t
        return plant.t - last_active[0] >= 60

    return check


def quiet_plant(seed: int) -> tuple[Plant, np.random.Generator]:
    """A plant with no excursions and no bad readings."""
    rng = np.random.default_rng(seed)
    return Plant(DEMO_PLANT, rng, excursion_every_s=0, bad_quality_prob=0), rng


# --- point tables and API bodies ---------------------------------------------------------------


def csv_rows(e: EnterpriseSpec) -> list[dict[str, str]]:
    """The point table of ``e`` read back as CSV, keyed by English column names."""
    reader = csv.reader(io.StringIO(point_table_csv(e)))
    header = next(reader)
    english = dict(zip(CHINESE_COLUMNS, POINT_COLUMNS, strict=True))
    keys = [english.get(h, h) for h in header]
    return [dict(zip(keys, row, strict=True)) for row in reader]


@pytest.mark.parametrize(("enterprise", "header"), [
    (DEMO_CHEM, CHINESE_COLUMNS),  # the chemical plant uploads with Chinese headers
    (DEMO_GAS, POINT_COLUMNS),  # the gas station with English ones
])
def test_point_table_header_language(enterprise: EnterpriseSpec, header: tuple[str, ...]) -> None:
    first_line = point_table_csv(enterprise).splitlines()[0]
    assert next(csv.reader([first_line])) == list(header)


@pytest.mark.parametrize("enterprise", DEMO_PLANT, ids=lambda e: e.code)
def test_point_table_rows_follow_the_contract(enterprise: EnterpriseSpec) -> None:
    rows = csv_rows(enterprise)
    codes = {hs.code for hs in enterprise.hazard_sources}
    assert len(rows) == len(enterprise.points) >= 10
    assert len({r["tag"] for r in rows}) == len(rows)
    for r in rows:
        assert TAG.fullmatch(r["tag"]), r
        assert r["kind"] in KINDS and r["unit"] and r["name"], r
        assert r["hazard_source"] in codes, r
        low, high = float(r["range_low"]), float(r["range_high"])
        assert low < high, r
        limits = [float(r[c]) for c in LIMITS if r[c] != ""]
        assert limits, f"{r['tag']} has no limit"
        assert all(low <= x <= high for x in limits), r
        given = {c: float(r[c]) for c in LIMITS if r[c] != ""}
        ordered = [given[c] for c in LIMITS if c in given]
        assert ordered == sorted(ordered), r  # lolo <= lo < hi <= hihi
        if "lo" in given and "hi" in given:
            assert given["lo"] < given["hi"], r
        assert 0 <= float(r["deadband"]) < 0.1 * (high - low), r
        assert float(r["on_delay_s"]) >= 0 and float(r["off_delay_s"]) >= 0
        assert float(r["stale_s"]) > 0


@pytest.mark.parametrize("enterprise", DEMO_PLANT, ids=lambda e: e.code)
def test_point_table_passes_the_servers_parser(enterprise: EnterpriseSpec) -> None:
    codes = {hs.code for hs in enterprise.hazard_sources}
    parsed = parse_point_table(point_table_csv(enterprise).encode(), codes)
    assert [p.tag for p in parsed] == [p.tag for p in enterprise.points]


def test_gas_setpoints_follow_gb_t_50493() -> None:
    points = [p for e in DEMO_PLANT for p in e.points]
    combustible = [p for p in points if p.kind == "gas"]
    oxygen = [p for p in points if p.kind == "oxygen"]
    assert combustible and all((p.hi, p.hihi, p.unit) == (25, 50, "%LEL") for p in combustible)
    assert oxygen and all((p.lo, p.hi) == (19.5, 23.5) for p in oxygen)
    assert {p.unit for p in points if p.kind == "toxic_gas"} == {"ppm"}


def test_hazard_sources_grade_differently() -> None:
    levels = set()
    for e in DEMO_PLANT:
        for hs in e.hazard_sources:
            body = hs.api_body()
            json.dumps(body)
            assessed = assess(body["chemicals"], body["residents_500m"])
            assert assessed.s >= 1, hs  # every one is a major hazard source
            levels.add(assessed.level)
    assert len(levels) >= 3


def test_enterprises_are_in_china_with_two_gateways_or_more() -> None:
    for e in DEMO_PLANT:
        assert 18 < e.lat < 54 and 73 < e.lon < 135
        json.dumps(e.api_body())
    assert 2 <= len(Plant(DEMO_PLANT, np.random.default_rng(0)).gateways) <= 3


# --- the model ---------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_values_are_finite_and_inside_instrument_ranges(seed: int) -> None:
    rng = np.random.default_rng(seed)
    plant = Plant(DEMO_PLANT, rng, excursion_every_s=60)
    series = run_plant(plant, rng, 3600)
    assert plant.started >= 5  # excursions happened
    for key, values in series.items():
        p = plant.points[key]
        assert all(math.isfinite(v) and p.range_low <= v <= p.range_high for _, v in values), key


@pytest.mark.parametrize("dt", [0.1, 1.0, 5.0])
def test_normal_operation_raises_no_alarm(dt: float) -> None:
    plant, rng = quiet_plant(7)
    hours = {0.1: 0.3, 1.0: 2.0}.get(dt, 6.0)
    series = run_plant(plant, rng, hours * 3600, dt)
    for key, values in series.items():
        p = plant.points[key]
        vs = [v for _, v in values]
        assert p.hi is None or max(vs) < p.hi - p.deadband, key
        assert p.lo is None or min(vs) > p.lo + p.deadband, key
        if p.roc_per_min is not None:  # noise is Ornstein-Uhlenbeck: no nuisance ROC at any dt
            roc = max(abs(b[1] - a[1]) / (b[0] - a[0]) * 60 for a, b in itertools.pairwise(values))
            assert roc < 0.5 * p.roc_per_min, key


def test_dynamics_move() -> None:
    plant, rng = quiet_plant(3)
    series = run_plant(plant, rng, 4 * 3600, 5.0)
    for key, values in series.items():
        p = plant.points[key]
        if p.kind in ("level", "temperature", "pressure"):
            vs = [v for _, v in values]
            assert max(vs) - min(vs) > 0, key  # nothing flat-lines
    levels = [v for _, v in series[("DEMO-GAS", "LT-3101")]]
    assert max(levels) - min(levels) > 1.0  # fill/draw cycles over 4 h


def test_same_seed_same_readings() -> None:
    a, b = (run_plant(Plant(DEMO_PLANT, np.random.default_rng(5)), np.random.default_rng(6), 120)
            for _ in range(2))
    assert a == b


def first_time(values: list[tuple[float, float]], pred: Callable[[float], bool]) -> float | None:
    return next((t for t, v in values if pred(v)), None)


@pytest.mark.parametrize("dt", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("seed", range(10))
def test_first_excursion_crosses_hi_then_hihi_within_twenty_seconds(seed: int, dt: float) -> None:
    rng = np.random.default_rng(seed)
    plant = Plant(DEMO_PLANT, rng)
    series = run_plant(plant, rng, 30, dt)
    crossed = {}
    for key, values in series.items():
        hi = plant.points[key].hi
        if hi is not None and (t := first_time(values, hi.__le__)) is not None:
            crossed[key] = t
    assert crossed and min(crossed.values()) <= 20, crossed
    (key,) = crossed  # one detector only: its neighbours see a fraction below HI
    p = plant.points[key]
    assert p.kind == "gas" and p.hi is not None and p.hihi is not None
    hi_at, hihi = crossed[key], p.hihi
    hihi_at = first_time(series[key], lambda v: v >= hihi)
    assert hihi_at is not None and hihi_at <= 30
    # Once over HI it stays over for longer than the on-delay, so the alarm really activates.
    after = [v for t, v in series[key] if hi_at <= t <= hi_at + p.on_delay_s + dt]
    assert all(v >= p.hi for v in after)


def test_first_excursion_returns_to_normal() -> None:
    rng = np.random.default_rng(11)
    plant = Plant(DEMO_PLANT, rng, excursion_every_s=1e9)  # just the first one
    series = run_plant(plant, rng, 600, 1.0, ended_a_minute_ago())
    assert plant.started == 1 and not plant.active and plant.t < 300
    for key, values in series.items():
        p = plant.points[key]
        last = [v for t, v in values if t > plant.t - 60]
        assert p.hi is None or max(last) < p.hi - p.deadband, key
    events = plant.drain_events()
    assert events[0].startswith("excursion: gas leak") and events[1].startswith("excursion over")


@pytest.mark.parametrize(("kind", "instrument", "within_s"), [
    ("spike", "PT", 60),  # a pressure spike ramps over HI in seconds
    ("overfill", "LT", 3600),  # an overfill takes as long as the tank takes to fill
    ("leak", "", 60),  # a leak on any detector, toxic ones included
])
@pytest.mark.parametrize("seed", range(4))
def test_each_excursion_crosses_hi_and_returns(kind: str, instrument: str, within_s: float,
                                               seed: int) -> None:
    plant, rng = quiet_plant(seed)
    run_plant(plant, rng, 5)
    x = plant.start_excursion(kind, rng)
    assert x is not None
    enterprise = x.equipment[0]
    tag = x.tank.tag(instrument) if instrument else x.equipment[1]  # type: ignore[union-attr]
    p = plant.points[(enterprise, tag)]
    assert p.hi is not None
    hi = p.hi
    series = run_plant(plant, rng, 3 * 3600, 1.0, ended_a_minute_ago())[(enterprise, tag)]
    hi_at = first_time(series, lambda v: v >= hi)
    assert hi_at is not None and hi_at <= 5 + within_s, (x.describe(), max(series))
    assert max(v for _, v in series) < p.range_high  # excursions stay inside the range
    assert not plant.active, "the excursion never ended"
    back = [v for t, v in series if t > series[-1][0] - 60]
    assert max(back) < p.hi - p.deadband


def test_excursions_never_share_equipment_or_exceed_the_cap() -> None:
    rng = np.random.default_rng(9)
    plant = Plant(DEMO_PLANT, rng, excursion_every_s=20, max_active=2)
    seen: list[int] = []

    def check(p: Plant) -> None:
        equipment = [x.equipment for x in p.active]
        assert len(equipment) == len(set(equipment)) <= 2
        seen.append(len(equipment))

    run_plant(plant, rng, 3600, 2.0, check)
    assert max(seen) == 2 and plant.started > 10


def test_bad_quality_is_rare_but_happens() -> None:
    rng = np.random.default_rng(4)
    plant = Plant(DEMO_PLANT, rng, excursion_every_s=0, bad_quality_prob=0.05)
    messages = [m for _ in range(400) for m in plant.step(1.0, rng).values()]
    bad = [r for m in messages for r in m if r.get("quality") == "bad"]
    assert 0 < len(bad) < 0.1 * len(messages)
    assert all(sum(r.get("quality") == "bad" for r in m) <= 1 for m in messages)
    assert all(math.isfinite(r["value"]) for r in bad)  # finite, or ingest rejects it


# --- messages ----------------------------------------------------------------------------------


def check_message(enterprise: str, payload: bytes, ts_ms: int) -> list[Reading]:
    """Assert ``payload`` is a readings message per CONTRACT.md; return its readings."""
    body = json.loads(payload.decode("utf-8"))
    assert set(body) == {"ts", "readings"}
    assert type(body["ts"]) is int and body["ts"] == ts_ms
    assert isinstance(body["readings"], list) and body["readings"]
    known = {p.tag for e in DEMO_PLANT if e.code == enterprise for p in e.points}
    for r in body["readings"]:
        assert set(r) <= {"tag", "value", "quality"}
        assert TAG.fullmatch(r["tag"]) and r["tag"] in known
        assert type(r["value"]) is float and math.isfinite(r["value"])
        assert r.get("quality", "good") in ("good", "bad")
    return body["readings"]


def test_messages_follow_the_contract() -> None:
    rng = np.random.default_rng(1)
    plant = Plant(DEMO_PLANT, rng, bad_quality_prob=0.5)
    ts_ms = 1_763_892_000_123
    for _ in range(30):
        for (enterprise, gateway), readings in plant.step(1.0, rng).items():
            assert TOPIC.fullmatch(readings_topic(enterprise, gateway))
            assert TOPIC.fullmatch(status_topic(enterprise, gateway))
            got = check_message(enterprise, readings_message(ts_ms, readings), ts_ms)
            assert len(got) == len({r["tag"] for r in got}) == len(readings)


def test_every_point_is_reported_by_exactly_one_gateway() -> None:
    rng = np.random.default_rng(0)
    plant = Plant(DEMO_PLANT, rng)
    reported = [(e, r["tag"]) for (e, _), rs in plant.step(1.0, rng).items() for r in rs]
    assert sorted(reported) == sorted(plant.points)


# --- the runner, without a broker or a server --------------------------------------------------


class FakeLink:
    """Stands in for a GatewayLink: keeps what would have been published."""

    def __init__(self, enterprise: str, accept: bool = True) -> None:
        self.enterprise, self.accept = enterprise, accept
        self.payloads: list[bytes] = []
        self.connected = threading.Event()
        self.connected.set()

    def publish(self, payload: bytes) -> bool:
        self.payloads.append(payload)
        return self.accept


def test_stream_paces_messages_and_stops_after_the_duration() -> None:
    rng = np.random.default_rng(2)
    plant = Plant(DEMO_PLANT, rng)
    links = {key: FakeLink(key[0]) for key in plant.gateways}
    counters = sim.Counters()
    sim.stream(plant, rng, links, counters, 0.05, 0.5, threading.Event())  # type: ignore[arg-type]
    for link in links.values():
        assert 8 <= len(link.payloads) <= 11
        stamps = [json.loads(p)["ts"] for p in link.payloads]
        assert stamps == sorted(stamps) and stamps[-1] - stamps[0] >= 350
        for p in link.payloads:
            check_message(link.enterprise, p, json.loads(p)["ts"])
    assert counters.messages == sum(len(link.payloads) for link in links.values())
    assert counters.dropped == 0 and counters.readings > counters.messages
    assert 0.4 < plant.t < 0.8  # the model follows wall time


def test_stream_counts_dropped_messages_and_honours_stop() -> None:
    rng = np.random.default_rng(2)
    plant = Plant(DEMO_PLANT, rng)
    links = {key: FakeLink(key[0], accept=False) for key in plant.gateways}
    stop = threading.Event()
    timer = threading.Timer(0.3, stop.set)
    timer.start()
    counters = sim.Counters()
    sim.stream(plant, rng, links, counters, 0.05, 0, stop)  # type: ignore[arg-type]
    assert counters.messages == 0 and counters.dropped >= 3 * 5


# --- configuration -----------------------------------------------------------------------------


@pytest.mark.parametrize(("env", "runtime", "expected"), [
    ({}, None, "http://127.0.0.1:8000"),  # nothing set
    ({"HAZMON_HTTP_HOST": "10.0.0.5", "HAZMON_HTTP_PORT": "9000"}, None, "http://10.0.0.5:9000"),
    ({"HAZMON_HTTP_HOST": "0.0.0.0"}, None, "http://127.0.0.1:8000"),  # a listen address
    ({"HAZMON_HTTP_PORT": "9000"}, {"api_url": "http://127.0.0.1:8123"}, "http://127.0.0.1:8123"),
    ({}, {"api_url": "http://0.0.0.0:8123"}, "http://127.0.0.1:8123"),
])
def test_default_api_url(tmp_path: Path, env: dict[str, str], runtime: dict[str, str] | None,
                         expected: str) -> None:
    if runtime is not None:
        (tmp_path / "runtime.json").write_text(json.dumps(runtime))
    assert sim.default_api_url({**env, "HAZMON_DATA_DIR": str(tmp_path)}) == expected


def test_default_mqtt_url_and_token(tmp_path: Path) -> None:
    env = {"HAZMON_DATA_DIR": str(tmp_path)}
    assert sim.default_mqtt_url(env) == "mqtt://127.0.0.1:1883"
    assert sim.default_token(env) is None
    (tmp_path / "runtime.json").write_text('{"mqtt_url": "mqtt://127.0.0.1:41883"}')
    (tmp_path / "admin_token").write_text("from-file\n")
    assert sim.default_mqtt_url(env) == "mqtt://127.0.0.1:41883"
    assert sim.default_token(env) == "from-file"
    env |= {"HAZMON_MQTT_URL": "mqtt://broker:1884", "HAZMON_ADMIN_TOKEN": "from-env"}
    assert sim.default_mqtt_url(env) == "mqtt://broker:1884"
    assert sim.default_token(env) == "from-env"
    (tmp_path / "runtime.json").write_text("not json")
    assert sim.runtime_info(env) == {}


@pytest.mark.parametrize(("url", "expected"), [
    ("mqtt://127.0.0.1:1883", sim.BrokerTarget("127.0.0.1", 1883)),
    ("mqtt://broker", sim.BrokerTarget("broker", 1883)),  # default port
    ("mqtt://u%40x:p%3Aw@broker:1884", sim.BrokerTarget("broker", 1884, "u@x", "p:w")),
    ("mqtts://broker", sim.BrokerTarget("broker", 8883, tls=True)),
])
def test_broker_url(url: str, expected: sim.BrokerTarget) -> None:
    assert sim.BrokerTarget.parse(url) == expected


@pytest.mark.parametrize("url", ["http://broker:1883", "broker:1883", "mqtt://:1883",
                                 "mqtt://broker:notaport"])
def test_bad_broker_url(url: str) -> None:
    with pytest.raises(ConfigError):
        sim.BrokerTarget.parse(url)


def test_arguments() -> None:
    parser = argparse.ArgumentParser()
    sim.add_arguments(parser)
    args = parser.parse_args([])
    assert (args.api, args.token, args.mqtt, args.no_setup) == (None, None, None, False)
    assert (args.interval, args.duration, args.seed) == (1.0, 0.0, None)
    args = parser.parse_args(["--interval", "0.2", "--duration", "30", "--seed", "4", "--no-setup"])
    assert (args.interval, args.duration, args.seed, args.no_setup) == (0.2, 30.0, 4, True)
    for bad in (["--interval", "0"], ["--duration", "-1"], ["--interval", "nan"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)


# --- setup through the API, against a hand-written fake server ----------------------------------


class FakeApi:
    """Answers like the hazmon API; ``existing`` codes answer 409, ``status`` overrides all."""

    def __init__(self, existing: frozenset[str] = frozenset(), status: int | None = None) -> None:
        self.existing, self.status = existing, status
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path in ("/readyz", "/healthz"):
            return httpx.Response(200, json={"status": "ok"})
        if self.status is not None:
            return httpx.Response(self.status, json={"detail": "nope"})
        if request.method == "PUT":
            return httpx.Response(200, json={"created": 3, "updated": 0})
        code = json.loads(request.content)["code"]
        if f"{path}:{code}" in self.existing:
            return httpx.Response(409, json={"detail": "exists"})
        return httpx.Response(201, json={"code": code, "s": 2.0, "r": 20.0, "level": 3})


def fake_client(api: FakeApi) -> httpx.Client:
    return httpx.Client(base_url="http://hazmon.test", transport=httpx.MockTransport(api),
                        headers={"Authorization": "Bearer t0ken"})


def test_setup_creates_everything_in_order() -> None:
    api = FakeApi()
    sim.setup_plant(fake_client(api), DEMO_PLANT, 30.0, 5.0)
    calls = [(r.method, r.url.path) for r in api.requests if r.url.path.startswith("/api/")]
    assert calls[:5] == [
        ("POST", "/api/v1/enterprises"),
        ("POST", "/api/v1/enterprises/DEMO-CHEM/hazard-sources"),
        ("POST", "/api/v1/enterprises/DEMO-CHEM/hazard-sources"),
        ("POST", "/api/v1/enterprises/DEMO-CHEM/hazard-sources"),
        ("PUT", "/api/v1/enterprises/DEMO-CHEM/points"),
    ]
    assert len(calls) == 2 * 2 + len(DEMO_CHEM.hazard_sources) + len(DEMO_GAS.hazard_sources)
    puts = [r for r in api.requests if r.method == "PUT"]
    assert all(r.headers["content-type"].startswith("text/csv") for r in puts)
    assert puts[0].content.decode().startswith("位号,")  # Chinese headers
    assert puts[1].content.decode().startswith("tag,")  # English headers
    assert all(r.headers["authorization"] == "Bearer t0ken" for r in api.requests)


def test_setup_is_idempotent_on_conflict() -> None:
    existing = frozenset({"/api/v1/enterprises:DEMO-CHEM",
                          "/api/v1/enterprises/DEMO-CHEM/hazard-sources:HS01"})
    api = FakeApi(existing)
    sim.setup_plant(fake_client(api), DEMO_PLANT, 30.0, 5.0)
    assert sum(r.method == "PUT" for r in api.requests) == 2  # point tables still uploaded


@pytest.mark.parametrize(("status", "error"), [
    (401, ConfigError),  # token refused
    (403, ConfigError),  # token without the admin role
    (422, ServiceError),  # the server rejects what we send: a bug to see, not to skip
    (500, ServiceError),
])
def test_setup_fails_clearly(status: int, error: type[Exception]) -> None:
    with pytest.raises(error):
        sim.setup_plant(fake_client(FakeApi(status=status)), DEMO_PLANT, 30.0, 5.0)


def test_setup_waits_for_the_api_then_gives_up() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client = httpx.Client(base_url="http://hazmon.test", transport=httpx.MockTransport(down))
    with pytest.raises(ServiceError, match="not ready"):
        sim.setup_plant(client, DEMO_PLANT, 30.0, 0.0)


def test_missing_token_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="token"):
        sim.api_client("http://hazmon.test", None)

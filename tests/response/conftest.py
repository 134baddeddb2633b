"""Fixtures of the response tests: a clock the tests turn, the API in process on the module's
real database, and a helper that builds enterprises, hazard sources, points and alarms."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from alerting import repository as alarms_repo
from api.app import create_app
from api.deps import Services
from devices import repository as devices_repo
from hazmon import accounts
from hazmon.db import StorageInfo, make_pool

ADMIN = "admin-" + uuid.uuid4().hex
GAS_POINTS = ("tag,kind,hazard_source,unit,range_low,range_high,hi,hihi\n"
              "GT-1,gas,{hs},%LEL,0,100,25,50\nGT-2,gas,{hs},%LEL,0,100,25,50\n"
              "AT-1,toxic_gas,{hs},ppm,0,100,10,20\nPT-1,pressure,{hs},MPa,0,10,8,9\n"
              "O2-1,oxygen,{hs},%VOL,0,30,23.5,25\nXT-9,pressure,,kPa,0,100,80,90\n")


class FakeClock:
    """Now, as the test says; ``advance`` moves it."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> datetime:
        self.now += delta
        return self.now


@pytest.fixture(scope="module")
def clock() -> FakeClock:
    return FakeClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture(scope="module")
def services(db_url: str, clock: FakeClock) -> Iterator[Services]:
    pool = make_pool(db_url, min_size=1, max_size=4, name="response-tests")
    pool.wait(timeout=30)
    yield Services(pool=pool, admin_token=ADMIN, metrics_registry=CollectorRegistry(),
                   storage=StorageInfo(False, None), extra={"response_clock": clock})
    pool.close()


@pytest.fixture(scope="module")
def api(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services), headers={"Authorization": f"Bearer {ADMIN}"}) as client:
        yield client


class World:
    """Builds the plant the tests talk about, through the API and (alarms) the repository."""

    def __init__(self, api: TestClient, db_url: str) -> None:
        self.api, self.db_url = api, db_url

    def enterprise(self, code: str, lat: float = 30.0, lon: float = 120.0) -> None:
        r = self.api.post("/api/v1/enterprises", json={"code": code, "name": f"{code} 化工",
                                                       "lat": lat, "lon": lon})
        assert r.status_code == 201, r.text

    def hazard_source(self, ent: str, code: str, chemicals: list[dict[str, Any]],
                      residents: int | None = 120, unit_type: str = "storage") -> dict[str, Any]:
        r = self.api.post(f"/api/v1/enterprises/{ent}/hazard-sources", json={
            "code": code, "name": f"{code} 罐区", "unit_type": unit_type,
            "residents_500m": residents, "chemicals": chemicals})
        assert r.status_code == 201, r.text
        return r.json()

    def points(self, ent: str, csv: str) -> None:
        r = self.api.put(f"/api/v1/enterprises/{ent}/points", content=csv,
                         headers={"Content-Type": "text/csv"})
        assert r.status_code == 200, r.text

    def plant(self, ent: str, hs: str, level: int) -> None:
        """An enterprise with one hazard source of the given level and the gas point table."""
        chemicals = {1: [{"name": "氯", "quantity_t": 200}],          # R = 2·4·40 = 320
                     2: [{"name": "氯", "quantity_t": 40}],           # R = 2·4·8 = 64
                     3: [{"name": "氯", "quantity_t": 10}],           # R = 16
                     4: [{"name": "氨", "quantity_t": 12}]}[level]    # R = 2·2·1.2 = 4.8
        self.enterprise(ent)
        assert self.hazard_source(ent, hs, chemicals)["level"] == level
        self.points(ent, GAS_POINTS.format(hs=hs))

    def alarm(self, ent: str, tag: str, condition: str = "HI", *, active: bool = True,
              priority: str = "high", at: datetime | None = None, value: float = 30.0) -> int:
        """Raise (or return) an alarm as the engine does: row, event and pg_notify, committed."""
        with psycopg.connect(self.db_url) as conn:
            ent_id = devices_repo.enterprise_id(conn, ent)
            pid = devices_repo.point_id(conn, ent_id, tag)
            alarm_id = alarms_repo.record_condition(
                conn, enterprise_id=ent_id, point_id=pid, gateway=None, condition=condition,
                priority=priority, active=active, value=value, limit=25.0,
                at=at or datetime.now(UTC))
            conn.commit()
        assert alarm_id is not None
        return alarm_id

    def token(self, name: str, role: str, enterprises: list[str] | None = None) -> dict[str, str]:
        """Authorization headers of a new user with this role and scope."""
        with psycopg.connect(self.db_url) as conn:
            accounts.create_user(conn, name, role, "test", enterprises=enterprises or [])
            token = accounts.issue_token(conn, name, None, None)["token"]
            conn.commit()
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def world(api: TestClient, db_url: str) -> World:
    return World(api, db_url)

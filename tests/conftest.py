"""Real services for the tests: a PostgreSQL and an MQTT broker started here, and hazmon itself.

PostgreSQL: ``HAZMON_TEST_DATABASE_URL`` when set (for example a TimescaleDB built by hand),
else a TimescaleDB container when a Docker daemon answers (testcontainers), else the embedded
PostgreSQL that ``hazmon serve`` uses. The broker: the machine's mosquitto, else amqtt.
Every test module gets a database of its own, created from a migrated template.
"""

from __future__ import annotations

import os
import uuid
from typing import Iterator

import psycopg
import pytest

from hazmon.db import migrate
from hazmon.embedded import EmbeddedBroker, EmbeddedPostgres
from tests.support import Hazmon

TEMPLATE = "hazmon_template"


def _docker_timescale(stack: list) -> str | None:  # type: ignore[type-arg]
    """A TimescaleDB container when Docker answers; None otherwise."""
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env(timeout=3).ping()
    except Exception:  # noqa: BLE001 - no daemon: not an error, just no container
        return None
    from testcontainers.postgres import PostgresContainer

    container = PostgresContainer("timescale/timescaledb:latest-pg16", driver=None)
    container.start()
    stack.append(container.stop)
    return container.get_connection_url()


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of the maintenance database of a running PostgreSQL server."""
    url = os.environ.get("HAZMON_TEST_DATABASE_URL")
    stops: list = []  # type: ignore[type-arg]
    if not url:
        url = _docker_timescale(stops)
    if not url:
        pg = EmbeddedPostgres(tmp_path_factory.mktemp("pg"))
        url = pg.start()
        stops.append(pg.stop)
    with psycopg.connect(url, autocommit=True) as conn:
        for (name,) in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 't\\_%'").fetchall():
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # left by a killed run
        conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {TEMPLATE}")
    migrate(_with_db(url, TEMPLATE))
    with psycopg.connect(url, autocommit=True) as conn:
        # TimescaleDB's scheduler connects to every database: keep it off the template, or
        # cloning it fails with "being accessed by other users".
        conn.execute(f"ALTER DATABASE {TEMPLATE} WITH ALLOW_CONNECTIONS false")
        conn.execute("SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                     "WHERE datname = %s AND pid <> pg_backend_pid()", (TEMPLATE,))
    yield url
    for stop in reversed(stops):
        stop()


def _with_db(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


def new_database(server_url: str) -> str:
    """A fresh, migrated database cloned from the template."""
    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    return _with_db(server_url, name)


def drop_database(server_url: str, db_url: str) -> None:
    """Drop a test database (its TimescaleDB jobs would otherwise hold background workers)."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {db_url.rpartition('/')[2]} WITH (FORCE)")


@pytest.fixture(scope="module")
def db_url(pg_server: str) -> Iterator[str]:
    """A database of this test module's own, dropped afterwards."""
    url = new_database(pg_server)
    yield url
    drop_database(pg_server, url)


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(db_url) as c:
        yield c


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """A running MQTT broker on loopback."""
    b = EmbeddedBroker(tmp_path_factory.mktemp("broker"))
    b.start()
    yield b
    b.stop()


@pytest.fixture(scope="session")
def mqtt_url(broker: EmbeddedBroker) -> str:
    return broker.url


@pytest.fixture(scope="module")
def hazmon(db_url: str, mqtt_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hazmon]:
    """A real ``hazmon serve`` process on its own database, port and MQTT client id."""
    server = Hazmon(data_dir=tmp_path_factory.mktemp("hazmon"), db_url=db_url, mqtt_url=mqtt_url)
    server.start()
    yield server
    server.stop()

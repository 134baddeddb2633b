"""Wiring: start the parts of a hazmon process in order and stop them in reverse.

    embedded PostgreSQL? ─▶ migrations ─▶ embedded broker? ─▶ ingest (worker, subscriber)
                                                                   └─▶ API (uvicorn)
"""

from __future__ import annotations

import json
import logging
import secrets
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry

from hazmon.db import StorageInfo, apply_retention, connect, make_pool, migrate, Partitions
from hazmon.embedded import EmbeddedBroker, EmbeddedPostgres
from hazmon.settings import Settings

log = logging.getLogger(__name__)


def admin_token(settings: Settings) -> tuple[str, bool]:
    """The admin token: from the environment, else generated once and kept in the data dir.

    Returns (token, newly_generated) so the caller prints a new token exactly once.
    """
    if settings.admin_token:
        return settings.admin_token, False
    path = settings.data_dir / "admin_token"
    if path.exists():
        return path.read_text().strip(), False
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    path.write_text(token + "\n")
    path.chmod(0o600)
    return token, True


@dataclass
class Runtime:
    """The started parts of a process; ``stack`` stops them in reverse order."""

    settings: Settings
    db_url: str
    mqtt_url: str
    storage: StorageInfo
    stack: ExitStack = field(default_factory=ExitStack)

    def close(self) -> None:
        self.stack.close()


def start_storage(settings: Settings, stack: ExitStack) -> tuple[str, StorageInfo]:
    """Start the embedded database if no URL is set, then migrate and prepare partitions."""
    url = settings.database_url
    if not url:
        pg = EmbeddedPostgres(settings.data_dir)
        url = pg.start()
        stack.callback(pg.stop)
        log.info("embedded PostgreSQL at 127.0.0.1:%s (data in %s)", pg.port, pg.pgdata)
    info = migrate(url)
    with connect(url) as conn:
        if not info.timescale:
            from datetime import UTC, datetime

            Partitions().ensure_ahead(conn, datetime.now(UTC), settings.partitions_ahead_days)
        apply_retention(conn, info, settings.retention_days)
        conn.commit()
    return url, info


def start_broker(settings: Settings, stack: ExitStack,
                 db_url: str | None = None) -> tuple[str, str, EmbeddedBroker | None]:
    """Start the embedded broker if no URL is set; return (public url, kind, broker)."""
    if settings.mqtt_url:
        return settings.mqtt_url, "external", None
    broker = EmbeddedBroker.from_settings(settings, db_url)
    url = broker.start()  # the gateways' address: never carries a password
    stack.callback(broker.stop)
    log.info("embedded %s broker at %s", broker.kind, url)
    return url, broker.kind, broker


def write_runtime(settings: Settings, api_url: str, mqtt_url: str) -> Path:
    """Tell local tools (the simulator) where this server and its broker are."""
    path = settings.data_dir / "runtime.json"
    path.write_text(json.dumps({"api_url": api_url, "mqtt_url": redact_url(mqtt_url)}) + "\n")
    return path


def redact_url(url: str) -> str:
    """A URL fit for logs and files: the password (if any) replaced by ***."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def new_metrics_registry() -> CollectorRegistry:
    """A registry for one process, with the default process collectors."""
    from prometheus_client import GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR  # noqa: F401
    from prometheus_client.gc_collector import GCCollector
    from prometheus_client.process_collector import ProcessCollector

    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def pool_for_api(url: str, stack: ExitStack):  # type: ignore[no-untyped-def]
    pool = make_pool(url, min_size=1, max_size=8, name="hazmon-api")
    stack.callback(pool.close)
    return pool


def database_for_cli(settings: Settings, stack: ExitStack) -> str:
    """The database a CLI command should use: the configured one, the running embedded one
    (never restarted under a live server), or the embedded one started for this command."""
    if settings.database_url:
        return settings.database_url
    pg = EmbeddedPostgres(settings.data_dir)
    port_file, password_file = pg.port_file, pg.password_file
    if port_file.exists() and password_file.exists():
        from hazmon.embedded import wait_port

        pg.port = int(port_file.read_text().strip())
        if wait_port("127.0.0.1", pg.port, 0.5):
            return pg.url()
        pg.port = None
    url, _ = start_storage(settings, stack)
    return url

"""Settings of a hazmon process, read from the environment (CONTRACT.md names)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Infrastructure settings; domain data (points, rules) lives in the database."""

    model_config = SettingsConfigDict(env_prefix="HAZMON_", extra="ignore")

    database_url: str | None = None
    mqtt_url: str | None = None
    data_dir: Path = Path(".hazmon")
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    admin_token: str | None = Field(default=None, repr=False)

    # Ingest tuning (not in the contract; safe defaults).
    ingest_batch_max_messages: int = 2000
    ingest_flush_ms: int = 20
    ingest_queue_max: int = 20000
    # Large batches are stored over two connections at once (two PostgreSQL backends, two cores):
    # the odd points' readings on a second connection that commits first. 1 turns that off.
    ingest_write_connections: int = Field(default=2, ge=1, le=2)
    ingest_split_min_readings: int = Field(default=20000, ge=1)
    # How often the newest reading per point (a point's "latest") is written from committed
    # batches: it trails the stored readings by about this much.
    latest_interval_s: float = Field(default=2.0, gt=0, le=60)
    # Niceness of the PostgreSQL backends doing background work (rollup refresh, point_latest)
    # when the database runs on this machine and may be reniced by this user; 0 leaves them be.
    background_nice: int = Field(default=10, ge=0, le=19)
    max_payload_bytes: int = 256 * 1024
    max_readings_per_message: int = 10000
    future_tolerance_s: int = 3600
    mqtt_client_id: str = "hazmon-ingest"
    mqtt_protocol: int = 5
    # MQTT identity: "auto" lets anonymous clients publish only for enterprises without
    # registered gateways (the demo and black-box tests), "on" requires credentials, "off" none.
    mqtt_auth: Literal["auto", "on", "off"] = "auto"
    mqtt_tls: bool = False
    mqtt_broker_secret: str | None = Field(default=None, repr=False)
    mqtt_ingest_password: str | None = Field(default=None, repr=False)
    checkpoint_interval_s: float = 10.0

    # Alarm lifecycle.
    shelve_max_s_high: int = Field(default=3600, gt=0)
    shelve_max_s_medium: int = Field(default=8 * 3600, gt=0)
    shelve_max_s_low: int = Field(default=24 * 3600, gt=0)
    # Default priorities are raised one step at hazard sources of these levels ("" = never).
    priority_raise_levels: str = "1,2"

    def shelve_max_s(self) -> dict[str, int]:
        """Longest shelve per priority."""
        return {"high": self.shelve_max_s_high, "medium": self.shelve_max_s_medium,
                "low": self.shelve_max_s_low}

    def raise_levels(self) -> tuple[int, ...]:
        """Hazard source levels whose default priorities are raised."""
        return tuple(int(x) for x in self.priority_raise_levels.replace(" ", "").split(",") if x)

    # API requests per second per token, and the burst allowed above it.
    rate_limit_per_s: float = Field(default=50.0, gt=0)
    rate_limit_burst: int = Field(default=200, ge=1)

    # Background services of the API-serving process (off: another process runs them).
    notifier: bool = True
    response: bool = True

    # Storage policy.
    retention_days: int = Field(default=400, ge=30)  # regulation: at least 30 days
    # Rejected messages are kept this long (for fixing gateways); delivery records as readings.
    rejections_retention_days: int = Field(default=30, ge=1)
    partitions_ahead_days: int = 3
    # How often ingest folds new readings into the 1-minute rollup (plain PostgreSQL).
    rollup_refresh_s: float = Field(default=60.0, gt=0)


def load_settings(**overrides: object) -> Settings:
    """Build the settings from the environment, with explicit overrides for tests."""
    return Settings(**overrides)  # type: ignore[arg-type]

"""Database access shared by every stage: pools, versioned migrations and the readings storage.

Migrations are numbered steps applied once, in order, under an advisory lock so that several
processes starting together (shards, the API) never race. SQL steps live in
``hazmon/migrations/NNN_name.sql``; the readings table is a Python step because its shape
depends on whether the TimescaleDB extension can be created.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from typing import Callable

import psycopg
from psycopg import pq
from psycopg_pool import ConnectionPool

from hazmon.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

MIGRATION_LOCK = 0x68617A6D  # "hazm"
DAY_MS = 86_400_000
ROLLUP_TABLE = "readings_rollup_1m"  # plain PostgreSQL's 1-minute summaries (ingest.rollup)


@dataclass(frozen=True)
class StorageInfo:
    """How readings are stored in this database."""

    timescale: bool
    timescale_version: str | None


def connect(url: str, **kw: object) -> psycopg.Connection:
    """Open one connection, converting failures to DatabaseUnavailable."""
    try:
        return psycopg.connect(url, **kw)  # type: ignore[arg-type]
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(f"cannot connect to PostgreSQL: {exc}") from exc


@contextmanager
def savepoint(cur: psycopg.Cursor, name: str) -> Iterator[None]:
    """Undo the block's statements if it raises, keeping the caller's transaction.

    Unlike ``conn.transaction()`` this never commits: on a connection with no transaction open
    yet, ``transaction()`` opens one of its own and commits it at the end of the block, while a
    SAVEPOINT opens the caller's transaction. Nothing is done on an autocommit connection.
    """
    if cur.connection.autocommit:
        yield
        return
    cur.execute(f"SAVEPOINT {name}")
    try:
        yield
    except BaseException:
        if cur.connection.info.transaction_status == pq.TransactionStatus.INERROR:
            cur.execute(f"ROLLBACK TO SAVEPOINT {name}")
            cur.execute(f"RELEASE SAVEPOINT {name}")
        raise
    cur.execute(f"RELEASE SAVEPOINT {name}")


def make_pool(url: str, *, min_size: int = 1, max_size: int = 8, name: str = "hazmon") -> ConnectionPool:
    """A connection pool that checks connections before handing them out."""
    pool = ConnectionPool(
        url, min_size=min_size, max_size=max_size, name=name, open=False,
        kwargs={"autocommit": False}, check=ConnectionPool.check_connection,
    )
    pool.open(wait=False)
    return pool


def _timescale_step(conn: psycopg.Connection) -> None:
    """Create the extension when this server can load it; its absence must not abort the migration.

    A timescaledb that is installed but missing from ``shared_preload_libraries`` makes
    ``CREATE EXTENSION`` FATAL: the server closes the connection, which no savepoint survives.
    The loader defines ``timescaledb.*`` settings only when preloaded (pg_settings hides the
    placeholders of a postgresql.conf that merely mentions them), so that case is seen first.
    """
    if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone():
        return
    if not conn.execute(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone():
        log.info("TimescaleDB not installed in this PostgreSQL; using native partitioning")
        return
    if not conn.execute(
        "SELECT 1 FROM pg_settings WHERE name = 'timescaledb.max_background_workers'"
    ).fetchone():
        log.warning("TimescaleDB is installed but not in shared_preload_libraries; using native "
                    "partitioning (preload it and restart PostgreSQL before hazmon's first start "
                    "to store readings in TimescaleDB)")
        return
    try:
        with conn.transaction():
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except psycopg.Error as exc:
        log.info("TimescaleDB not available (%s); using native partitioning", str(exc).strip())


def _readings_step(conn: psycopg.Connection) -> None:
    ts = storage_info(conn).timescale
    if ts:
        conn.execute(
            """CREATE TABLE readings (
                   point_id integer NOT NULL,
                   ts       timestamptz NOT NULL,
                   value    double precision NOT NULL,
                   quality  smallint NOT NULL DEFAULT 0,
                   UNIQUE (point_id, ts))"""
        )
        conn.execute(
            "SELECT create_hypertable('readings', 'ts', chunk_time_interval => interval '1 day')"
        )
        # Compression (and continuous aggregates, retention policies) are community-licensed:
        # an Apache-only TimescaleDB, as some managed services offer, refuses them.
        license_ = conn.execute("SELECT current_setting('timescaledb.license', true)").fetchone()
        if license_ != ("timescale",):
            log.info("TimescaleDB license %s: readings is a hypertable without compression",
                     license_[0] if license_ else None)
            return
        conn.execute(
            """ALTER TABLE readings SET (timescaledb.compress,
                   timescaledb.compress_segmentby = 'point_id', timescaledb.compress_orderby = 'ts')"""
        )
        conn.execute("SELECT add_compression_policy('readings', interval '2 days')")
    else:
        conn.execute(
            """CREATE TABLE readings (
                   point_id integer NOT NULL,
                   ts       timestamptz NOT NULL,
                   value    double precision NOT NULL,
                   quality  smallint NOT NULL DEFAULT 0,
                   UNIQUE (point_id, ts)
               ) PARTITION BY RANGE (ts)"""
        )


def _aggregates_step(conn: psycopg.Connection) -> None:
    """TimescaleDB only: 1-minute and 1-hour continuous aggregates for trends and dashboards."""
    if not storage_info(conn).timescale:
        return
    license_ = conn.execute("SELECT current_setting('timescaledb.license', true)").fetchone()
    if license_ != ("timescale",):
        return  # Apache-only TimescaleDB: continuous aggregates are not available
    for name, width, offset, every in (("readings_1m", "1 minute", "1 minute", "1 minute"),
                                       ("readings_1h", "1 hour", "1 hour", "30 minutes")):
        conn.execute(
            f"""CREATE MATERIALIZED VIEW {name} WITH (timescaledb.continuous) AS
                SELECT point_id, time_bucket('{width}', ts) AS bucket,
                       min(value) AS min, max(value) AS max, avg(value) AS avg, count(*) AS count
                FROM readings GROUP BY point_id, bucket WITH NO DATA"""
        )
        conn.execute(
            f"""SELECT add_continuous_aggregate_policy('{name}',
                    start_offset => interval '3 days', end_offset => interval '{offset}',
                    schedule_interval => interval '{every}')"""
        )


def _rollup_step(conn: psycopg.Connection) -> None:
    """Trend queries read 1-minute summaries instead of every raw reading (``ingest.rollup``).

    TimescaleDB: ``readings_1m`` answers in real time (materialized minutes plus raw readings
    past its watermark), so a trend includes the last minutes. Plain PostgreSQL: a rollup
    table, partitioned by day like ``readings`` so that retention drops it the same way,
    refreshed from ``rollup_pending`` markers that ingest commits with the readings; a BRIN
    index on ``readings.ts`` lets the refresher read the last minute of every point without
    scanning the whole day (the unique index leads with the point). Readings stored before
    this step get partitions and markers: the refresher summarises them in the background
    while queries keep reading them raw. Apache-only TimescaleDB has neither: raw path.
    """
    if storage_info(conn).timescale:
        if conn.execute("SELECT to_regclass('readings_1m')").fetchone() != (None,):
            conn.execute(
                "ALTER MATERIALIZED VIEW readings_1m SET (timescaledb.materialized_only = false)")
        return
    conn.execute(
        f"""CREATE TABLE {ROLLUP_TABLE} (
               point_id integer NOT NULL,
               bucket   timestamptz NOT NULL,
               n        bigint NOT NULL,
               sum      double precision NOT NULL,
               min      double precision NOT NULL,
               max      double precision NOT NULL,
               PRIMARY KEY (point_id, bucket)
           ) PARTITION BY RANGE (bucket)"""
    )
    conn.execute(
        """CREATE TABLE rollup_pending (
               id       bigserial PRIMARY KEY,
               point_id integer,            -- NULL: every point
               lo       timestamptz NOT NULL,  -- readings in [lo, hi] may be missing from the rollup
               hi       timestamptz NOT NULL)"""
    )
    conn.execute("CREATE INDEX readings_ts_brin ON readings USING brin (ts) "
                 "WITH (pages_per_range = 512, autosummarize = on)")
    parts = Partitions()
    parts.load(conn)
    Partitions(ROLLUP_TABLE).ensure_days(conn, sorted(parts.known))
    for day in sorted(parts.known):
        start = date(1970, 1, 1) + timedelta(days=day)
        if conn.execute(f"SELECT 1 FROM {partition_name(start)} LIMIT 1").fetchone():
            conn.execute(
                "INSERT INTO rollup_pending (point_id, lo, hi) "
                "VALUES (NULL, %s, %s::timestamptz + interval '1 day' - interval '1 microsecond')",
                (datetime(start.year, start.month, start.day, tzinfo=UTC),) * 2)


def _sql_step(name: str) -> Callable[[psycopg.Connection], None]:
    def run(conn: psycopg.Connection) -> None:
        sql = resources.files("hazmon.migrations").joinpath(name).read_text(encoding="utf-8")
        conn.execute(sql)  # type: ignore[arg-type]

    return run


# Python steps; every hazmon/migrations/NNN_name.sql is a step too (found by its number).
_PYTHON_STEPS: list[tuple[int, str, Callable[[psycopg.Connection], None]]] = [
    (2, "timescaledb extension when available", _timescale_step),
    (3, "readings table", _readings_step),
    (5, "continuous aggregates (TimescaleDB)", _aggregates_step),
    (13, "1-minute readings rollup", _rollup_step),
]


def _all_steps() -> list[tuple[int, str, Callable[[psycopg.Connection], None]]]:
    steps = list(_PYTHON_STEPS)
    for entry in resources.files("hazmon.migrations").iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:3].isdigit():
            steps.append((int(name[:3]), name[4:-4].replace("_", " "), _sql_step(name)))
    versions = [v for v, _, _ in steps]
    if len(versions) != len(set(versions)):
        raise RuntimeError(f"two migrations share a number: {sorted(versions)}")
    return sorted(steps, key=lambda s: s[0])


MIGRATIONS = _all_steps()


def migrate(url: str) -> StorageInfo:
    """Apply every migration not yet applied; return how readings are stored."""
    with connect(url, autocommit=False) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        try:
            conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       version integer PRIMARY KEY, name text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
            conn.commit()
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            for version, name, step in MIGRATIONS:
                if version in done:
                    continue
                log.info("applying migration %03d %s", version, name)
                step(conn)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (version, name)
                )
                conn.commit()
            info = storage_info(conn)
            conn.commit()
        finally:
            conn.rollback()  # a failed step leaves the transaction aborted: unlock must still run
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
            conn.commit()
    return info


def storage_info(conn: psycopg.Connection) -> StorageInfo:
    """Whether the timescaledb extension is installed in this database."""
    row = conn.execute(
        "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
    ).fetchone()
    return StorageInfo(timescale=row is not None, timescale_version=row[0] if row else None)


def partition_name(day: date, table: str = "readings") -> str:
    """Name of the daily partition of ``table`` that holds ``day`` (UTC)."""
    return f"{table}_p{day:%Y%m%d}"


class Partitions:
    """Daily range partitions of ``readings`` (or the rollup) on plain PostgreSQL, created ahead
    and on demand.

    A partition of ``readings`` brings the rollup's partition of the same day along, in the same
    transaction: the rollup refresher then never needs to create one (which would lock the
    rollup against trend queries) and retention drops both alike.
    """

    def __init__(self, table: str = "readings") -> None:
        self.table = table
        self.known: set[int] = set()  # day numbers since the epoch
        self._mirror: bool | None = None  # readings only: does the rollup table exist?

    def load(self, conn: psycopg.Connection) -> None:
        """Learn which partitions exist."""
        rows = conn.execute(
            """SELECT c.relname FROM pg_inherits i
               JOIN pg_class c ON c.oid = i.inhrelid
               JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s""", (self.table,)
        ).fetchall()
        prefix = f"{self.table}_p"
        for (name,) in rows:
            if name.startswith(prefix) and name[len(prefix):].isdigit():
                d = datetime.strptime(name[len(prefix):], "%Y%m%d").date()
                self.known.add((d - date(1970, 1, 1)).days)

    def ensure_days(self, conn: psycopg.Connection, days: list[int]) -> None:
        """Create the partitions of these day numbers if missing (idempotent, race-safe)."""
        for day in days:
            if day in self.known:
                continue
            start = date(1970, 1, 1) + timedelta(days=day)
            with conn.transaction():
                _create_partition(conn, self.table, start)
                if self._mirrors(conn):
                    _create_partition(conn, ROLLUP_TABLE, start)
            self.known.add(day)

    def _mirrors(self, conn: psycopg.Connection) -> bool:
        if self.table != "readings":
            return False
        if self._mirror is None:
            row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (ROLLUP_TABLE,)).fetchone()
            self._mirror = bool(row and row[0])
        return self._mirror

    def ensure_ahead(self, conn: psycopg.Connection, now: datetime, ahead_days: int) -> None:
        """Create today's partition and ``ahead_days`` more."""
        today = (now.astimezone(UTC).date() - date(1970, 1, 1)).days
        self.ensure_days(conn, list(range(today, today + ahead_days + 1)))

    def drop_older_than(self, conn: psycopg.Connection, now: datetime, keep_days: int) -> list[str]:
        """Drop whole partitions older than the retention period; return their names."""
        self.load(conn)
        cutoff = (now.astimezone(UTC).date() - date(1970, 1, 1)).days - keep_days
        dropped = []
        for day in sorted(d for d in self.known if d < cutoff):
            name = partition_name(date(1970, 1, 1) + timedelta(days=day), self.table)
            with conn.transaction():
                conn.execute(f"DROP TABLE IF EXISTS {name}")
            self.known.discard(day)
            dropped.append(name)
        if self._mirrors(conn):  # the rollup's days go with the raw readings'
            dropped += Partitions(ROLLUP_TABLE).drop_older_than(conn, now, keep_days)
        return dropped


def _create_partition(conn: psycopg.Connection, table: str, start: date) -> None:
    end = start + timedelta(days=1)
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {partition_name(start, table)} PARTITION OF {table} "
        f"FOR VALUES FROM ('{start.isoformat()} 00:00:00+00') TO ('{end.isoformat()} 00:00:00+00')"
    )


def apply_retention(conn: psycopg.Connection, info: StorageInfo, keep_days: int) -> None:
    """Install or update (TimescaleDB) or apply (plain, Apache-only TimescaleDB) raw-data retention.

    A changed ``keep_days`` replaces the policy: ``add_retention_policy(if_not_exists)`` alone
    would keep the first one with only a warning. Processes starting together serialise on the
    migration lock so that they never install two policies.
    """
    if not info.timescale:
        Partitions().drop_older_than(conn, datetime.now(UTC), keep_days)
        return
    keep = f"{keep_days} days"
    license_ = conn.execute("SELECT current_setting('timescaledb.license', true)").fetchone()
    if license_ != ("timescale",):
        # No policies without the community license: drop the expired chunks now (each start).
        conn.execute("SELECT drop_chunks('readings', older_than => %s::interval)", (keep,))
        return
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
    jobs = conn.execute(
        """SELECT job_id, (config->>'drop_after')::interval = %s::interval
           FROM timescaledb_information.jobs
           WHERE proc_name = 'policy_retention' AND hypertable_name = 'readings'""",
        (keep,),
    ).fetchall()
    if len(jobs) == 1 and jobs[0][1]:
        return
    for job_id, _ in jobs:
        conn.execute("SELECT delete_job(%s)", (job_id,))
    conn.execute("SELECT add_retention_policy('readings', %s::interval)", (keep,))
    # Trends outlive raw data: minutes as long as the raw readings, hours five times longer.
    for view, days in (("readings_1m", keep_days), ("readings_1h", 5 * keep_days)):
        if conn.execute("SELECT 1 FROM timescaledb_information.continuous_aggregates "
                        "WHERE view_name = %s", (view,)).fetchone():
            conn.execute("SELECT remove_retention_policy(%s, if_exists => true)", (view,))
            conn.execute("SELECT add_retention_policy(%s, %s::interval)", (view, f"{days} days"))


def housekeeping(conn: psycopg.Connection, timescale: bool, settings: object) -> None:
    """Hourly on a long-running server: partitions ahead, and old ones dropped (plain PostgreSQL;
    TimescaleDB's own jobs do both there, except on the Apache-only build)."""
    now = datetime.now(UTC)
    if not timescale:
        parts = Partitions()
        parts.load(conn)
        parts.ensure_ahead(conn, now, int(getattr(settings, "partitions_ahead_days", 3)))
    keep_days = int(getattr(settings, "retention_days", 400))
    apply_retention(conn, storage_info(conn), keep_days)
    conn.commit()
    prune_logs(conn, now, rejections_days=int(getattr(settings, "rejections_retention_days", 30)),
               deliveries_days=keep_days)


PRUNE_BATCH = 50_000  # rows per delete transaction: no long locks, no huge WAL bursts


def prune_logs(conn: psycopg.Connection, now: datetime, *, rejections_days: int,
               deliveries_days: int) -> dict[str, int]:
    """Delete rejections and notification delivery records past their keeping time.

    Rejections are for fixing gateways (a misconfigured one can send thousands a minute), kept
    ``rejections_days``; delivery records are evidence of who was told what and when, kept as
    long as the readings. Deleted in batches, each committed; returns rows deleted per table.
    """
    deleted = {}
    for table, days in (("rejections", rejections_days), ("notify_deliveries", deliveries_days)):
        cutoff = now - timedelta(days=days)
        total = 0
        while True:
            n = conn.execute(
                f"""DELETE FROM {table} WHERE id IN (
                        SELECT id FROM {table} WHERE at < %s ORDER BY at LIMIT %s)""",
                (cutoff, PRUNE_BATCH)).rowcount
            conn.commit()
            total += max(n, 0)
            if n < PRUNE_BATCH:
                break
        deleted[table] = total
    return deleted

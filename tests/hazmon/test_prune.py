"""Housekeeping prunes rejections and notification delivery records past their keeping time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from hazmon import db
from hazmon.settings import load_settings

NOW = datetime.now(UTC)


def _fill(conn: psycopg.Connection, rejections_days: list[float], deliveries_days: list[float]) -> None:
    conn.execute("TRUNCATE rejections, notify_deliveries")
    for d in rejections_days:
        conn.execute("INSERT INTO rejections (at, topic, code, reason) VALUES (%s, 't', 'bad_json', 'r')",
                     (NOW - timedelta(days=d),))
    for d in deliveries_days:
        conn.execute(
            """INSERT INTO notify_deliveries (at, delivery, attempt, channel, channel_kind, reason,
                                              status) VALUES (%s, 'd', 1, 'c', 'webhook', 'r', 'ok')""",
            (NOW - timedelta(days=d),))
    conn.commit()


def _ages(conn: psycopg.Connection, table: str) -> list[int]:
    conn.commit()
    return sorted(round((NOW - at).total_seconds() / 86400) for (at,) in
                  conn.execute(f"SELECT at FROM {table}"))  # noqa: S608 - test tables


def test_old_rows_go_in_batches_and_those_inside_the_limit_stay(
        conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db, "PRUNE_BATCH", 2)  # several delete transactions
    _fill(conn, [1, 29.9, 30.1, 31, 45, 100, 300], [1, 399.9, 400.1, 500])
    deleted = db.prune_logs(conn, NOW, rejections_days=30, deliveries_days=400)
    assert deleted == {"rejections": 5, "notify_deliveries": 2}
    assert _ages(conn, "rejections") == [1, 30]  # 29.9 days rounds to 30
    assert _ages(conn, "notify_deliveries") == [1, 400]


def test_housekeeping_prunes_with_the_configured_times(conn: psycopg.Connection) -> None:
    _fill(conn, [5, 8], [20, 40])
    db.housekeeping(conn, db.storage_info(conn).timescale,
                    load_settings(rejections_retention_days=7, retention_days=30))
    assert _ages(conn, "rejections") == [5]
    assert _ages(conn, "notify_deliveries") == [20]

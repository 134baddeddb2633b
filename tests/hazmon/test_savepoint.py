"""hazmon.db.savepoint: undo a block on error without ever committing the caller's transaction."""

from __future__ import annotations

import psycopg
import pytest

from hazmon.db import savepoint


@pytest.fixture
def table(conn: psycopg.Connection) -> psycopg.Connection:
    conn.execute("CREATE TABLE IF NOT EXISTS sp_t (x integer PRIMARY KEY)")
    conn.execute("TRUNCATE sp_t")
    conn.commit()
    return conn


def _rows(db_url: str) -> list[int]:
    with psycopg.connect(db_url) as other:
        return [x for (x,) in other.execute("SELECT x FROM sp_t ORDER BY x")]


def test_on_an_idle_connection_it_opens_the_callers_transaction(db_url: str, table: psycopg.Connection) -> None:
    with table.cursor() as cur, savepoint(cur, "sp"):
        cur.execute("INSERT INTO sp_t VALUES (1)")
    assert table.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
    assert _rows(db_url) == []  # conn.transaction() would have committed it here
    table.commit()
    assert _rows(db_url) == [1]


def test_an_error_undoes_only_the_block(db_url: str, table: psycopg.Connection) -> None:
    with table.cursor() as cur:
        cur.execute("INSERT INTO sp_t VALUES (1)")
        with pytest.raises(psycopg.errors.UniqueViolation), savepoint(cur, "sp"):
            cur.execute("INSERT INTO sp_t VALUES (2)")
            cur.execute("INSERT INTO sp_t VALUES (1)")
        cur.execute("INSERT INTO sp_t VALUES (3)")  # the transaction goes on
    table.commit()
    assert _rows(db_url) == [1, 3]


def test_on_an_autocommit_connection_it_does_nothing(db_url: str, table: psycopg.Connection) -> None:
    with psycopg.connect(db_url, autocommit=True) as auto, auto.cursor() as cur:
        with savepoint(cur, "sp"):  # a SAVEPOINT outside a transaction block would fail
            cur.execute("INSERT INTO sp_t VALUES (7)")
    assert _rows(db_url) == [7]

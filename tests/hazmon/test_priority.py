"""Background backends renice only when they are provably this connection's local backend."""

from __future__ import annotations

import os
from types import SimpleNamespace

import psycopg

from hazmon.priority import lower_backend_priority


def _nice(pid: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, pid)


def test_a_local_backend_is_reniced_and_only_upwards(pg_server: str) -> None:
    with psycopg.connect(pg_server) as a, psycopg.connect(pg_server) as b:
        before = _nice(b.info.backend_pid)
        assert lower_backend_priority(a, 7)
        assert _nice(a.info.backend_pid) == 7
        assert _nice(b.info.backend_pid) == before  # the other backend keeps its priority
        assert lower_backend_priority(a, 3)  # never back towards the alarm path's priority
        assert _nice(a.info.backend_pid) == 7


def test_zero_leaves_the_backend_alone(pg_server: str) -> None:
    with psycopg.connect(pg_server) as c:
        before = _nice(c.info.backend_pid)
        assert not lower_backend_priority(c, 0)
        assert _nice(c.info.backend_pid) == before


def test_a_process_that_is_not_this_connections_backend_is_never_touched(pg_server: str) -> None:
    """Same pid number, another machine's backend: here our own process, or another backend."""
    with psycopg.connect(pg_server) as c, psycopg.connect(pg_server) as other:
        me = SimpleNamespace(info=SimpleNamespace(backend_pid=os.getpid()), pgconn=c.pgconn)
        mine = _nice(os.getpid())
        assert not lower_backend_priority(me, 9)  # type: ignore[arg-type]
        assert _nice(os.getpid()) == mine
        theirs = SimpleNamespace(info=SimpleNamespace(backend_pid=other.info.backend_pid),
                                 pgconn=c.pgconn)  # that backend serves another client port
        before = _nice(other.info.backend_pid)
        assert not lower_backend_priority(theirs, 9)  # type: ignore[arg-type]
        assert _nice(other.info.backend_pid) == before

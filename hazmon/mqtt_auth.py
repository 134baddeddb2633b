"""MQTT identity: gateway credentials, who may publish what, and the broker files made from them.

One set of rules, applied two ways: rendered as a mosquitto ``password_file`` + ``acl_file`` for
the embedded (or any) mosquitto, and evaluated per request for EMQX's HTTP authentication and
authorization (``api/routes/gateways.py``). The rules, by who connects::

    hazmon-ingest        read  hazmon/v1/#                  hazmon's own subscriber
    {ent}/{gw}           write hazmon/v1/{ent}/{gw}/#       a registered gateway, only as itself
    anonymous   auto     write hazmon/v1/#, but deny hazmon/v1/{ent}/# for every closed enterprise
                on       may not connect
    anyone      off      no checks (mosquitto: allow_anonymous, no password or ACL file)

``HAZMON_MQTT_AUTH`` picks the mode. ``auto`` (the default) keeps the zero-setup demo and
anonymous test publishers working while every enterprise that has registered a gateway is locked
down: an enterprise is *closed* when its first gateway is registered and stays closed when its
gateways are deleted (deleting revokes; it never reopens the enterprise to anonymous clients).
``on`` is for production: no anonymous clients, and mosquitto replaces every client id by the
username (``use_username_as_clientid``) so that no client can take over another's session.

Usernames are ``{enterprise}/{gateway}``: both codes match ``[A-Za-z0-9_.-]{1,64}``, so the one
``/`` splits them unambiguously, and hazmon's own users (no ``/``) never collide with a gateway.
Passwords are 192-bit random, shown once, and stored only as the hash mosquitto 2.0's
``mosquitto_passwd`` writes: ``$7$101$<base64 12-byte salt>$<base64 64-byte PBKDF2-HMAC-SHA512>``.
(101 iterations, mosquitto's default: key stretching adds nothing to a 192-bit random secret.)

mosquitto 2.0 accepts *any* password when it cannot read its password file on a reload, so
every reload is verified: a check user with a fresh password must get in, and a wrong password
must not. A broker that fails the second check is stopped (fail closed).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import logging
import os
import re
import secrets
import socket
import ssl
import struct
import tempfile
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger(__name__)

MODES = ("auto", "on", "off")
INGEST_USER = "hazmon-ingest"
CHECK_USER = "hazmon-reload-check"  # in the password file, no ACL entry: may do nothing
PBKDF2_ITERATIONS = 101
SALT_BYTES = 12
CODE_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
PREFIX = "hazmon/v1"

Access = Literal["read", "write", "deny"]


# --- passwords ---------------------------------------------------------------------------------


def new_password() -> str:
    """A fresh gateway (or service) password: 192 random bits, URL-safe."""
    return secrets.token_urlsafe(24)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, *, iterations: int = PBKDF2_ITERATIONS,
                  salt: bytes | None = None) -> str:
    """The mosquitto 2.0 ``$7$`` (PBKDF2-HMAC-SHA512) hash of a password."""
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations, 64)
    return f"$7${iterations}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    """True when ``password`` matches a ``$7$`` hash (constant time in the password)."""
    parts = encoded.split("$")
    if len(parts) != 5 or parts[0] or parts[1] != "7" or not parts[2].isdigit():
        return False
    iterations = int(parts[2])
    try:
        salt = base64.b64decode(parts[3], validate=True)
        expected = base64.b64decode(parts[4], validate=True)
    except ValueError:
        return False
    if not 1 <= iterations <= 1_000_000 or not salt or len(expected) != 64:
        return False
    got = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations, 64)
    return hmac.compare_digest(got, expected)


_DUMMY_HASH = hash_password(secrets.token_urlsafe(24))


def burn_verify(password: str) -> None:
    """Spend the time of a verification, so an unknown username answers no faster."""
    verify_password(password, _DUMMY_HASH)


# --- usernames ---------------------------------------------------------------------------------


def gateway_username(enterprise: str, gateway: str) -> str:
    """The broker username of a gateway."""
    return f"{enterprise}/{gateway}"


def split_username(username: str) -> tuple[str, str] | None:
    """(enterprise, gateway) of a gateway username, else None."""
    enterprise, sep, gateway = username.partition("/")
    if not sep or not CODE_RE.fullmatch(enterprise) or not CODE_RE.fullmatch(gateway):
        return None
    return enterprise, gateway


# --- rules -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One ACL entry: ``access`` on the topics that ``filter`` matches."""

    access: Access
    filter: str


@dataclass(frozen=True)
class Identity:
    """Who a broker client is: ``anonymous``, ``ingest``, ``gateway`` (registered) or ``unknown``."""

    kind: Literal["anonymous", "ingest", "gateway", "unknown"]
    enterprise: str | None = None
    gateway: str | None = None


def rules_for(identity: Identity, mode: str, closed: Iterable[str] = ()) -> tuple[Rule, ...]:
    """The ACL of one client in one mode (``closed``: enterprises closed to anonymous clients;
    only those that can match the topic in question need to be given)."""
    if mode == "off":
        return (Rule("read", "#"), Rule("write", "#"))
    if identity.kind == "ingest":
        return (Rule("read", f"{PREFIX}/#"),)
    if identity.kind == "gateway":
        return (Rule("write", f"{PREFIX}/{identity.enterprise}/{identity.gateway}/#"),)
    if identity.kind == "anonymous" and mode == "auto":
        denies = tuple(Rule("deny", f"{PREFIX}/{e}/#") for e in sorted(closed) if CODE_RE.fullmatch(e))
        return (*denies, Rule("write", f"{PREFIX}/#"))
    return ()


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT matching as mosquitto does it: ``+`` one level, ``#`` the rest (and the parent);
    a wildcard in the first level never matches a ``$`` topic."""
    if not topic or "+" in topic or "#" in topic:
        return False
    if topic.startswith("$") and not topic_filter.startswith("$"):
        return False
    f_levels, t_levels = topic_filter.split("/"), topic.split("/")
    for i, f in enumerate(f_levels):
        if f == "#":
            return i == len(f_levels) - 1
        if i >= len(t_levels):
            return False
        if f != "+" and f != t_levels[i]:
            return False
    return len(f_levels) == len(t_levels)


def _level_ok(filter_: str) -> bool:
    levels = filter_.split("/")
    return all(("#" not in x and "+" not in x) or x in ("#", "+") for x in levels) and \
        "#" not in levels[:-1]


def filter_within(inner: str, outer: str) -> bool:
    """True when every topic that ``inner`` matches is matched by ``outer``."""
    if not inner or not _level_ok(inner):
        return False
    if inner.startswith("$") and not outer.startswith("$"):
        return False  # wildcards never match $ topics at the first level
    i_levels, o_levels = inner.split("/"), outer.split("/")
    for k, o in enumerate(o_levels):
        if o == "#":
            return True
        if k >= len(i_levels):
            return False
        i = i_levels[k]
        if i == "#":
            return False
        if o == "+":
            continue
        if i != o:
            return False
    return len(i_levels) == len(o_levels)


def filters_overlap(a: str, b: str) -> bool:
    """True when some topic matches both filters."""
    a_levels, b_levels = a.split("/"), b.split("/")
    for k in range(max(len(a_levels), len(b_levels))):
        x = a_levels[k] if k < len(a_levels) else None
        y = b_levels[k] if k < len(b_levels) else None
        if x == "#" or y == "#":
            return True
        if x is None or y is None:
            return False
        if x != y and "+" not in (x, y):
            return False
    return True


def allowed(rules: Iterable[Rule], action: str, topic: str) -> bool:
    """The decision of an ACL for ``publish`` (a topic) or ``subscribe`` (a filter).

    Publish follows mosquitto 2.0: a matching ``deny`` wins, then a matching ``write`` allows,
    else denied. Subscribe (which mosquitto's ACL file leaves to read checks on delivery) is
    allowed only for a filter wholly inside a ``read`` rule and clear of every ``deny``.
    """
    rules = tuple(rules)
    if action == "publish":
        if any(r.access == "deny" and topic_matches(r.filter, topic) for r in rules):
            return False
        return any(r.access == "write" and topic_matches(r.filter, topic) for r in rules)
    if action == "subscribe":
        if not topic or not _level_ok(topic):
            return False
        if any(r.access == "deny" and filters_overlap(r.filter, topic) for r in rules):
            return False
        return any(r.access == "read" and filter_within(topic, r.filter) for r in rules)
    return False


def ingest_refusal(mode: str, closed: Collection[str], registered: Collection[tuple[str, str]],
                   enterprise: str, gateway: str) -> str | None:
    """Why ingest must drop a message from ``hazmon/v1/{enterprise}/{gateway}/…``, or None.

    The same rule the broker enforces, checked again behind it (a broker may be misconfigured,
    or be an external one hazmon does not configure): in ``on`` every topic must belong to a
    registered gateway; in ``auto`` so must every topic of a closed enterprise.
    """
    if mode == "off" or (enterprise, gateway) in registered:
        return None
    if mode == "on":
        return f"gateway {enterprise}/{gateway} is not registered (HAZMON_MQTT_AUTH=on)"
    if enterprise in closed:
        return (f"gateway {enterprise}/{gateway} is not registered, and enterprise {enterprise} "
                "accepts only its registered gateways")
    return None


# --- mosquitto files ---------------------------------------------------------------------------


def render_password_file(gateways: Iterable[tuple[str, str, str, str]],
                         service_users: Iterable[tuple[str, str]]) -> str:
    """``username:hash`` lines: hazmon's service users, then every registered gateway."""
    lines = [f"{user}:{hashed}" for user, hashed in service_users]
    for enterprise, gateway, username, hashed in gateways:
        if not (CODE_RE.fullmatch(enterprise) and CODE_RE.fullmatch(gateway)
                and username == gateway_username(enterprise, gateway) and "\n" not in hashed):
            log.warning("skipping gateway %r/%r: not a valid code or username", enterprise, gateway)
            continue
        lines.append(f"{username}:{hashed}")
    return "\n".join(lines) + "\n"


def render_acl_file(mode: str, gateways: Iterable[tuple[str, str, str, str]],
                    closed: Iterable[str]) -> str:
    """The mosquitto 2.0 ``acl_file`` of the rules above."""
    out = ["# Generated by hazmon from its database; changes here are overwritten.",
           f"# HAZMON_MQTT_AUTH={mode}. Deny entries are checked first (mosquitto 2.0)."]
    if mode == "auto":
        out.append("# Anonymous clients: any enterprise that has not registered a gateway.")
        out += [f"topic {r.access} {r.filter}"
                for r in rules_for(Identity("anonymous"), mode, closed)]
    out += ["", f"user {INGEST_USER}"]
    out += [f"topic {r.access} {r.filter}" for r in rules_for(Identity("ingest"), mode)]
    for enterprise, gateway, username, _ in gateways:
        if not (CODE_RE.fullmatch(enterprise) and CODE_RE.fullmatch(gateway)):
            continue
        out += ["", f"user {username}"]
        out += [f"topic {r.access} {r.filter}"
                for r in rules_for(Identity("gateway", enterprise, gateway), mode)]
    return "\n".join(out) + "\n"


def mosquitto_user() -> tuple[int, int] | None:
    """(uid, gid) mosquitto drops root privileges to, when hazmon runs as root."""
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        entry = pwd.getpwnam("mosquitto")
    except KeyError:
        return None
    return entry.pw_uid, entry.pw_gid


def write_atomic(path: Path, text: str | bytes, *, mode: int = 0o600,
                 owner: tuple[int, int] | None = None) -> None:
    """Replace a file in one rename, so a reader sees the old or the new file, never half."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        if owner is not None:
            os.chown(tmp, *owner)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_or_create_secret(path: Path) -> str:
    """A generated secret kept in a 0600 file (created on first use)."""
    if path.exists():
        value = path.read_text().strip()
        if value:
            return value
    value = new_password()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, value + "\n", mode=0o600)
    return value


@dataclass
class MosquittoAuth:
    """The password and ACL files of a mosquitto, regenerated from the database.

    ``directory`` holds ``passwd`` and ``acl``; the ingest password comes from
    ``ingest_password`` or is generated once into ``ingest_password_file``.
    """

    directory: Path
    mode: str
    db_url: str | None = None
    ingest_password_file: Path | None = None
    ingest_password: str | None = None
    check_password: str = field(default_factory=new_password, repr=False)
    _digest: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            from hazmon.errors import ConfigError

            raise ConfigError(f"HAZMON_MQTT_AUTH must be one of {', '.join(MODES)}, "
                              f"not {self.mode!r}")
        if self.mode != "off" and not self.ingest_password:
            if self.ingest_password_file is None:
                self.ingest_password_file = self.directory / "ingest.password"
            self.ingest_password = read_or_create_secret(self.ingest_password_file)

    @property
    def password_file(self) -> Path:
        return self.directory / "passwd"

    @property
    def acl_file(self) -> Path:
        return self.directory / "acl"

    def conf(self) -> str:
        """The global mosquitto.conf lines of this mode."""
        if self.mode == "off":
            return "allow_anonymous true\n"
        return (f"allow_anonymous {'true' if self.mode == 'auto' else 'false'}\n"
                f"password_file {self.password_file}\nacl_file {self.acl_file}\n")

    def listener_conf(self) -> str:
        """The lines to put after every ``listener`` line (mosquitto 2.0 keeps them per
        listener): in ``on`` mode the client id is the username, so that no client can take
        over another's session (hazmon-ingest's included)."""
        return "use_username_as_clientid true\n" if self.mode == "on" else ""

    def _load(self, conn: Any) -> tuple[list[tuple[str, str, str, str]], frozenset[str]]:
        from devices import gateways_repository as gw_repo

        if conn is not None:
            return gw_repo.credentials(conn), gw_repo.closed_enterprises(conn)
        if not self.db_url:
            return [], frozenset()
        from hazmon.db import connect

        with connect(self.db_url) as own:
            return gw_repo.credentials(own), gw_repo.closed_enterprises(own)

    def write(self, conn: Any = None) -> bool:
        """Regenerate the files from the database; True when the rules changed (then the check
        user has a new password and the broker must reload)."""
        if self.mode == "off":
            return False
        gateways, closed = self._load(conn)
        acl = render_acl_file(self.mode, gateways, closed)
        entries = render_password_file(gateways, ())
        digest = hashlib.sha256(
            f"{acl}\0{entries}\0{self.ingest_password}".encode()).hexdigest()
        if digest == self._digest and self.password_file.exists() and self.acl_file.exists():
            return False
        self.check_password = new_password()
        assert self.ingest_password is not None
        service = ((INGEST_USER, hash_password(self.ingest_password)),
                   (CHECK_USER, hash_password(self.check_password)))
        owner = mosquitto_user()
        self.directory.mkdir(parents=True, exist_ok=True)
        write_atomic(self.acl_file, acl, owner=owner)
        write_atomic(self.password_file, render_password_file(gateways, service), owner=owner)
        self._digest = digest
        return True


# --- verifying a running broker ----------------------------------------------------------------


def _utf8(value: str) -> bytes:
    data = value.encode("utf-8")
    return struct.pack("!H", len(data)) + data


def connack_code(host: str, port: int, username: str | None, password: str | None, *,
                 timeout: float = 3.0, tls: ssl.SSLContext | None = None) -> int | None:
    """Try an MQTT 3.1.1 CONNECT; the CONNACK return code (0 accepted, 4 bad username or
    password, 5 not authorised), or None when the broker did not answer."""
    flags = 0x02  # clean session
    payload = _utf8("hazmon-check-" + secrets.token_hex(6))
    if username is not None:
        flags |= 0x80
        payload += _utf8(username)
        if password is not None:
            flags |= 0x40
            payload += _utf8(password)
    body = _utf8("MQTT") + bytes([4, flags]) + struct.pack("!H", 10) + payload
    length, encoded = len(body), b""
    while True:
        byte, length = length % 128, length // 128
        encoded += bytes([byte | (0x80 if length else 0)])
        if not length:
            break
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            sock = tls.wrap_socket(raw, server_hostname=host) if tls else raw
            sock.sendall(b"\x10" + encoded + body)
            answer = b""
            while len(answer) < 4:
                chunk = sock.recv(4 - len(answer))
                if not chunk:
                    return None
                answer += chunk
            if answer[0] != 0x20:
                return None
            if answer[3] == 0:
                sock.sendall(b"\xe0\x00")  # DISCONNECT
            return answer[3]
    except (OSError, ssl.SSLError):
        return None


# --- TLS: a local CA and a server certificate for loopback --------------------------------------


LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path


def _san(names: Iterable[str]) -> list[Any]:
    from cryptography import x509

    out: list[Any] = []
    for name in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            out.append(x509.DNSName(name))
    return out


def _server_cert_ok(cert_path: Path, ca: Any, names: Iterable[str]) -> bool:
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        cert.verify_directly_issued_by(ca)
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except Exception:  # noqa: BLE001 - missing, unreadable, not ours or incomplete: make another
        return False
    return (cert.not_valid_after_utc - datetime.now(UTC) > timedelta(days=30)
            and set(_san(names)) <= set(sans))


def ensure_tls(directory: Path, names: Iterable[str] = LOOPBACK_NAMES) -> TlsFiles:
    """A local CA (made once, ten years) and a server certificate it signs for ``names``
    (made again when missing, for other names, or within 30 days of expiry). ``ca.crt`` is what
    gateways trust; ``ca.key`` never leaves this directory."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    names = tuple(names)
    files = TlsFiles(directory / "ca.crt", directory / "ca.key", directory / "server.crt",
                     directory / "server.key")
    directory.mkdir(parents=True, exist_ok=True)
    pem = serialization.Encoding.PEM
    now = datetime.now(UTC)

    def key_bytes(key: Any) -> bytes:
        return key.private_bytes(pem, serialization.PrivateFormat.PKCS8,  # type: ignore[no-any-return]
                                 serialization.NoEncryption())

    if files.ca_cert.exists() and files.ca_key.exists():
        ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
        ca_key = serialization.load_pem_private_key(files.ca_key.read_bytes(), None)
    else:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "hazmon"),
            x509.NameAttribute(NameOID.COMMON_NAME,
                               f"hazmon local MQTT CA {socket.gethostname()[:40]}")])
        ca = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
              .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - timedelta(minutes=5))
              .not_valid_after(now + timedelta(days=3650))
              .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
              .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                           key_encipherment=False, data_encipherment=False,
                                           key_agreement=False, key_cert_sign=True, crl_sign=True,
                                           encipher_only=False, decipher_only=False), critical=True)
              .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                             critical=False)
              .sign(ca_key, hashes.SHA256()))
        write_atomic(files.ca_key, key_bytes(ca_key), mode=0o600)
        write_atomic(files.ca_cert, ca.public_bytes(pem), mode=0o644)
        files.server_cert.unlink(missing_ok=True)
    if not _server_cert_ok(files.server_cert, ca, names) or not files.server_key.exists():
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
                .issuer_name(ca.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(minutes=5))
                .not_valid_after(now + timedelta(days=397))
                .add_extension(x509.SubjectAlternativeName(_san(names)), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                             key_encipherment=False, data_encipherment=False,
                                             key_agreement=False, key_cert_sign=False,
                                             crl_sign=False, encipher_only=False,
                                             decipher_only=False), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                               critical=False)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                               critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    ca_key.public_key()), critical=False)  # type: ignore[arg-type]
                .sign(ca_key, hashes.SHA256()))  # type: ignore[arg-type]
        write_atomic(files.server_key, key_bytes(key), mode=0o600, owner=mosquitto_user())
        write_atomic(files.server_cert, cert.public_bytes(pem), mode=0o644)
    return files


# --- what the API needs ------------------------------------------------------------------------


@dataclass
class MqttIdentity:
    """The API's view of MQTT identity (``services.extra["mqtt"]``).

    ``broker_secret``: what EMQX sends in ``X-Hazmon-Broker-Secret`` (None: the broker
    endpoints refuse every request). ``ingest_password``: the password of ``hazmon-ingest`` for
    those endpoints. ``refresh``: regenerate and reload the embedded broker's files after a
    change (None when hazmon runs no broker).
    """

    mode: str = "auto"
    broker_secret: str | None = field(default=None, repr=False)
    ingest_password: str | None = field(default=None, repr=False)
    refresh: Callable[[Any], object] | None = None

    @classmethod
    def from_settings(cls, settings: Any, broker: Any = None) -> MqttIdentity:
        """From ``HAZMON_MQTT_AUTH``, ``HAZMON_MQTT_BROKER_SECRET``,
        ``HAZMON_MQTT_INGEST_PASSWORD`` and the embedded broker, if any."""
        auth = getattr(broker, "auth", None)
        return cls(mode=settings.mqtt_auth, broker_secret=settings.mqtt_broker_secret,
                   ingest_password=(auth.ingest_password if auth is not None
                                    else settings.mqtt_ingest_password),
                   refresh=broker.refresh_auth if auth is not None else None)

    def gateways_changed(self, conn: Any) -> None:
        """After a committed change: bring the embedded broker up to date (it reloads)."""
        if self.refresh is not None:
            self.refresh(conn)


# --- generating the files for an external mosquitto ---------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """``python -m hazmon.mqtt_auth DIR``: write ``passwd`` and ``acl`` for a mosquitto that
    hazmon does not run (from ``HAZMON_DATABASE_URL``); then point its ``password_file`` and
    ``acl_file`` at them and send it SIGHUP."""
    import argparse

    from hazmon.settings import load_settings

    parser = argparse.ArgumentParser(prog="python -m hazmon.mqtt_auth", description=main.__doc__)
    parser.add_argument("directory", type=Path)
    parser.add_argument("--mode", choices=("auto", "on"), default=None,
                        help="default: HAZMON_MQTT_AUTH, else auto")
    args = parser.parse_args(argv)
    settings = load_settings()
    env = os.environ  # the same variables, also before they are fields of Settings
    mode = (args.mode or getattr(settings, "mqtt_auth", None) or env.get("HAZMON_MQTT_AUTH")
            or "auto")
    if mode == "off":
        parser.error("HAZMON_MQTT_AUTH=off: there is nothing to generate")
    if not settings.database_url:
        parser.error("set HAZMON_DATABASE_URL")
    auth = MosquittoAuth(args.directory, mode, settings.database_url,
                         ingest_password=(getattr(settings, "mqtt_ingest_password", None)
                                          or env.get("HAZMON_MQTT_INGEST_PASSWORD")))
    auth.write()
    print(f"wrote {auth.password_file} and {auth.acl_file}; mosquitto.conf needs:\n{auth.conf()}"
          f"and after every listener line:\n{auth.listener_conf() or '(nothing)'}\n"
          f"hazmon-ingest's password is in "
          f"{auth.ingest_password_file or 'HAZMON_MQTT_INGEST_PASSWORD'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Local stand-ins for what notifications reach: an HTTP receiver and an SMTP server.

The HTTP receiver records every request and answers from a script (status, body, delay), then
with 200 and the robots' success body. The SMTP server is aiosmtpd, optionally with STARTTLS
(a self-signed certificate made here) and a login.
"""

from __future__ import annotations

import datetime as dt
import json
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from hazmon.embedded import free_port

OK_BODY = b'{"errcode":0,"errmsg":"ok"}'


@dataclass
class Received:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """An HTTP server on 127.0.0.1 in a thread, recording POSTs."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.scripts: dict[str | None, deque[tuple[int, bytes, float]]] = {}
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                parts = urlsplit(self.path)
                with receiver._lock:
                    receiver.requests.append(Received(
                        parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()},
                        {k.lower(): v for k, v in self.headers.items()}, body))
                    script = receiver.scripts.get(parts.path) or receiver.scripts.get(None)
                    status, reply, delay = script.popleft() if script else (200, OK_BODY, 0.0)
                time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                except OSError:
                    pass  # the client gave up (timeout tests)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str = "/hook", query: str = "") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}" + (f"?{query}" if query else "")

    def answer(self, *responses: int | tuple[int, bytes] | tuple[int, bytes, float],
               path: str | None = None) -> None:
        """Queue answers (to requests for ``path``, else to any): a status, (status, body) or
        (status, body, delay_s)."""
        script = self.scripts.setdefault(path, deque())
        for r in responses:
            status, body, delay = (r, b"{}", 0.0) if isinstance(r, int) else (*r, 0.0)[:3]  # type: ignore[misc]
            script.append((status, body, delay))

    def reset(self) -> None:
        self.requests.clear()
        self.scripts.clear()

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Inbox:
    """aiosmtpd handler: keeps envelopes; answers DATA from a script first."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.replies: deque[str] = deque()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.replies:
            return self.replies.popleft()
        self.messages.append(envelope)
        return "250 OK"


def self_signed(tmp: Path) -> ssl.SSLContext:
    """A server TLS context with a fresh self-signed certificate for 127.0.0.1."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    (tmp / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp / "cert.pem", tmp / "key.pem")
    return context


class SmtpServer:
    """An aiosmtpd server on 127.0.0.1 (STARTTLS and login when a TLS context is given)."""

    def __init__(self, tls: ssl.SSLContext | None = None, user: str = "", password: str = "") -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        self.inbox = Inbox()
        self.port = free_port()

        def login(server: Any, session: Any, envelope: Any, mechanism: str, auth: Any) -> AuthResult:
            ok = auth.login.decode() == user and auth.password.decode() == password
            return AuthResult(success=ok, handled=False)  # unhandled: the server answers 535

        kw: dict[str, Any] = {}
        if tls is not None:
            kw = {"tls_context": tls, "require_starttls": True, "authenticator": login,
                  "auth_require_tls": True}
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port, **kw)
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()

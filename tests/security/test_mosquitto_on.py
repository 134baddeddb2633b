"""HAZMON_MQTT_AUTH=on (no anonymous clients, client id = username) and the TLS listener with
hazmon's local CA, on a real mosquitto, loopback only."""

from __future__ import annotations

import ssl
import subprocess
import time
from pathlib import Path

import pytest

from hazmon.mqtt_auth import INGEST_USER, connack_code
from tests.security.conftest import NOT_AUTHORIZED, Client, Stack


@pytest.fixture(scope="module")
def gateways(on: Stack) -> dict[str, tuple[str, str]]:
    for code in ("A2", "B2"):
        on.enterprise(code)
    return {"A2/g1": on.register("A2", "g1"), "B2/g1": on.register("B2", "g1")}


def tls_client(on: Stack, username: str | None, password: str | None, *,
               ca: Path | None, host: str = "127.0.0.1", client_id: str | None = None) -> Client:
    """A client of the TLS listener that trusts ``ca`` (None: the system's CAs)."""
    return Client(on.tls_port, username, password, host=host, client_id=client_id,
                  tls={"ca_certs": str(ca) if ca else None, "cert_reqs": ssl.CERT_REQUIRED})


def test_anonymous_clients_may_not_connect(on: Stack, gateways: dict) -> None:
    anon = on.client()
    assert not anon.accepted and anon.connack.is_failure
    anon.close()


def test_gateways_publish_only_as_themselves(on: Stack, gateways: dict) -> None:
    watcher = on.ingest()
    gw = on.client(*gateways["A2/g1"])
    assert gw.accepted
    for topic in ("hazmon/v1/B2/g1/readings", "hazmon/v1/A2/g2/readings", "hazmon/v1/NEW/g/readings"):
        assert gw.publish(topic) == NOT_AUTHORIZED, topic
    assert gw.publish("hazmon/v1/A2/g1/readings") != NOT_AUTHORIZED
    assert watcher.received_until("hazmon/v1/A2/g1/readings") == []
    gw.close()
    watcher.close()


def test_no_client_can_take_over_another_session(on: Stack, gateways: dict) -> None:
    """The client id is the username: a gateway claiming hazmon's id does not kick ingest."""
    watcher = on.ingest(client_id=INGEST_USER)
    intruder = on.client(*gateways["A2/g1"], client_id=INGEST_USER)
    assert intruder.accepted
    time.sleep(0.3)
    assert watcher.accepted and not watcher.disconnected.is_set()
    intruder.close()
    watcher.close()


def test_tls_with_the_local_ca(on: Stack, gateways: dict) -> None:
    ca = on.broker.ca_file
    assert ca is not None and ca == on.broker.dir / "ca.crt" and ca.exists()
    assert on.broker.tls_url == f"mqtts://127.0.0.1:{on.tls_port}"
    assert int((on.broker.dir / "tls_port").read_text()) == on.tls_port
    watcher = on.ingest()
    for host in ("127.0.0.1", "localhost"):  # the certificate names both
        gw = tls_client(on, *gateways["A2/g1"], ca=ca, host=host)
        assert gw.error is None and gw.accepted, (host, gw.error, gw.connack)
        assert gw.publish("hazmon/v1/A2/g1/readings") != NOT_AUTHORIZED
        assert watcher.received_until("hazmon/v1/A2/g1/readings") == []
        assert gw.publish("hazmon/v1/B2/g1/readings") == NOT_AUTHORIZED  # the ACL holds on TLS
        gw.close()
    watcher.close()


def test_tls_without_the_ca_fails(on: Stack, gateways: dict) -> None:
    gw = tls_client(on, *gateways["A2/g1"], ca=None)  # the system's CAs do not know ours
    assert not gw.accepted and isinstance(gw.error, ssl.SSLCertVerificationError), gw.error
    assert connack_code("127.0.0.1", on.tls_port, *gateways["A2/g1"],
                        tls=ssl.create_default_context()) is None


def test_tls_checks_credentials_and_client_ids_too(on: Stack, gateways: dict) -> None:
    ca = on.broker.ca_file
    context = ssl.create_default_context(cafile=str(ca))
    user, password = gateways["A2/g1"]
    assert connack_code("127.0.0.1", on.tls_port, user, password, tls=context) == 0
    assert connack_code("127.0.0.1", on.tls_port, user, password + "x", tls=context) != 0
    assert connack_code("127.0.0.1", on.tls_port, None, None, tls=context) != 0
    watcher = on.ingest(client_id=INGEST_USER)
    intruder = tls_client(on, user, password, ca=ca, client_id=INGEST_USER)
    assert intruder.accepted
    time.sleep(0.3)
    assert not watcher.disconnected.is_set()
    intruder.close()
    watcher.close()


def test_the_certificates(on: Stack) -> None:
    d = on.broker.dir
    out = subprocess.run(["openssl", "verify", "-CAfile", str(d / "ca.crt"), str(d / "server.crt")],
                         check=False, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    from cryptography import x509

    cert = x509.load_pem_x509_certificate((d / "server.crt").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(n.value) for n in names} == {"localhost", "127.0.0.1", "::1"}
    assert (d / "ca.key").stat().st_mode & 0o077 == 0 and (d / "server.key").stat().st_mode & 0o077 == 0


def test_certificates_are_kept_across_restarts(on: Stack, tmp_path: Path) -> None:
    from hazmon.mqtt_auth import ensure_tls

    first = ensure_tls(tmp_path)
    ca, server = first.ca_cert.read_bytes(), first.server_cert.read_bytes()
    again = ensure_tls(tmp_path)
    assert again.ca_cert.read_bytes() == ca and again.server_cert.read_bytes() == server
    ensure_tls(tmp_path, ("localhost", "127.0.0.1", "10.0.0.7"))  # other names: new server cert
    assert first.ca_cert.read_bytes() == ca and first.server_cert.read_bytes() != server

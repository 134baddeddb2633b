"""The other modes and the broker's life: ``off``, files regenerated at start, the reload that
is verified, and the broker stopped (fail closed) when it would let anyone in."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hazmon import mqtt_auth
from hazmon.embedded import EmbeddedBroker
from hazmon.errors import ConfigError
from hazmon.mqtt_auth import CHECK_USER, INGEST_USER, connack_code
from tests.security.conftest import NOT_AUTHORIZED, stack


def test_off_mode_checks_nothing(tmp_path: Path, db_url: str) -> None:
    with stack(tmp_path, db_url, "off") as off:
        off.enterprise("F1")
        off.register("F1", "g1")  # registering still works; the broker just does not check
        assert off.broker.auth is None and off.broker.ingest_url == off.broker.url
        conf = (off.broker.dir / "mosquitto.conf").read_text()
        assert "allow_anonymous true" in conf and "password_file" not in conf
        watcher = off.ingest()
        anon = off.client()
        assert anon.publish("hazmon/v1/F1/g1/readings") != NOT_AUTHORIZED
        assert watcher.received_until("hazmon/v1/F1/g1/readings") == []
        assert off.client("F1/g1", "any password").accepted
        watcher.close()
        anon.close()


def test_files_come_from_the_database_at_start(tmp_path: Path, db_url: str) -> None:
    with stack(tmp_path / "a", db_url, "auto") as s:
        s.enterprise("S1")
        user, password = s.register("S1", "g1")
    # a new broker (a restart of hazmon) starts with the gateways already registered
    broker = EmbeddedBroker(tmp_path / "b", auth="on", db_url=db_url)
    broker.start()
    assert broker.port is not None
    try:
        assert connack_code("127.0.0.1", broker.port, user, password) == 0
        assert connack_code("127.0.0.1", broker.port, user, "nope") != 0
        assert connack_code("127.0.0.1", broker.port, None, None) != 0
        assert broker.ingest_url.startswith(f"mqtt://{INGEST_USER}:")
        assert f"{user}:$7$101$" in (broker.dir / "passwd").read_text()
        assert password not in (broker.dir / "passwd").read_text()
        secret = (tmp_path / "b" / "mqtt_ingest_password")
        assert secret.stat().st_mode & 0o077 == 0
        assert secret.read_text().strip() == broker.auth.ingest_password  # type: ignore[union-attr]
        assert "use_username_as_clientid true" in (broker.dir / "mosquitto.conf").read_text()
    finally:
        broker.stop()


def test_given_ingest_password_and_hidden_client_id(tmp_path: Path, db_url: str) -> None:
    broker = EmbeddedBroker(tmp_path, auth="auto", db_url=db_url, ingest_password="p@ss:w/rd")
    broker.start()
    assert broker.port is not None
    try:
        assert broker.ingest_url == f"mqtt://{INGEST_USER}:p%40ss%3Aw%2Frd@127.0.0.1:{broker.port}"
        from ingest.mqtt import BrokerAddress

        assert BrokerAddress.parse(broker.ingest_url).password == "p@ss:w/rd"
        assert connack_code("127.0.0.1", broker.port, INGEST_USER, "p@ss:w/rd") == 0
        assert not (tmp_path / "mqtt_ingest_password").exists()
        ident = broker.ingest_client_id
        assert ident and ident.startswith(INGEST_USER + "-") and "p@ss" not in ident
        assert ident == EmbeddedBroker(tmp_path, auth="auto", ingest_password="p@ss:w/rd").ingest_client_id
    finally:
        broker.stop()


@pytest.mark.skipif(os.geteuid() != 0 or mqtt_auth.mosquitto_user() is None,
                    reason="needs root: mosquitto must drop to a user that cannot read the file")
def test_a_broker_that_cannot_read_its_password_file_is_stopped(
        tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """mosquitto 2.0 lets anyone in when a reload cannot read the password file: hazmon sees it
    (a wrong password gets in) and stops the broker rather than run it open."""
    with stack(tmp_path, db_url, "auto") as s:
        s.enterprise("X1")
        port = s.port
        assert s.broker.proc is not None
        monkeypatch.setattr(mqtt_auth, "mosquitto_user", lambda: None)  # files stay root's, 0600
        s.register("X1", "g1")  # the API answers; the database is right, the broker is not
        assert s.broker.proc is None
        assert connack_code("127.0.0.1", port, CHECK_USER, "anything") is None  # not running


def test_amqtt_fallback_cannot_enforce(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    real = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name: None if name == "mosquitto" else real(name))
    with pytest.raises(ConfigError, match="need mosquitto"):
        EmbeddedBroker(tmp_path, auth="on")
    with pytest.raises(ConfigError, match="need mosquitto"):
        EmbeddedBroker(tmp_path, auth="off", tls=True)
    assert EmbeddedBroker(tmp_path, auth="auto").auth is None  # warned, not enforced
    with pytest.raises(ConfigError, match="HAZMON_MQTT_AUTH"):
        EmbeddedBroker(tmp_path, auth="yes")


def test_files_for_an_external_mosquitto(tmp_path: Path, db_url: str,
                                         monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    with stack(tmp_path / "s", db_url, "auto") as s:
        s.enterprise("EX")
        user, password = s.register("EX", "g1")
    monkeypatch.setenv("HAZMON_DATABASE_URL", db_url)
    monkeypatch.setenv("HAZMON_MQTT_INGEST_PASSWORD", "ingest-secret")
    assert mqtt_auth.main([str(tmp_path / "ext"), "--mode", "on"]) == 0
    out = capsys.readouterr().out
    assert "password_file" in out and "use_username_as_clientid true" in out
    assert "ingest-secret" not in out
    entries = dict(line.split(":", 1) for line in (tmp_path / "ext" / "passwd").read_text().split())
    assert mqtt_auth.verify_password(password, entries[user])
    assert mqtt_auth.verify_password("ingest-secret", entries[INGEST_USER])
    assert f"user {user}\ntopic write hazmon/v1/EX/g1/#" in (tmp_path / "ext" / "acl").read_text()

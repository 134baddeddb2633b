"""HAZMON_MQTT_AUTH=auto on a real mosquitto with hazmon's files: registered gateways publish
only as themselves, anonymous clients only for enterprises without registered gateways, and
changes through the API reach the running broker (reload) before the API answers."""

from __future__ import annotations

import time

import pytest

from hazmon.mqtt_auth import CHECK_USER, INGEST_USER
from tests.security.conftest import NOT_AUTHORIZED, Stack


@pytest.fixture(scope="module")
def world(auto: Stack) -> dict[str, tuple[str, str]]:
    for code in ("A1", "B1", "OPEN1"):
        auto.enterprise(code)
    return {"A1/g1": auto.register("A1", "g1"), "A1/g2": auto.register("A1", "g2"),
            "B1/g1": auto.register("B1", "g1")}


def test_gateway_publishes_only_under_its_own_prefix(auto: Stack, world: dict) -> None:
    watcher = auto.ingest()
    gw = auto.client(*world["A1/g1"])
    assert gw.accepted, gw.connack
    assert gw.publish("hazmon/v1/A1/g1/readings", b'{"readings": []}') != NOT_AUTHORIZED
    foreign = ["hazmon/v1/A1/g2/readings",      # a sibling gateway
               "hazmon/v1/B1/g1/readings",      # another enterprise's gateway of the same code
               "hazmon/v1/OPEN1/g1/readings",   # an enterprise open to anonymous clients
               "hazmon/v1/A1/g1x/readings",     # a longer code with the same start
               "hazmon/v1/A1/readings", "hazmon/v2/A1/g1/readings", "elsewhere/x"]
    for topic in foreign:
        assert gw.publish(topic) == NOT_AUTHORIZED, topic
    marker = "hazmon/v1/A1/g1/status"
    assert gw.publish(marker, b"online") != NOT_AUTHORIZED
    assert watcher.received_until(marker) == ["hazmon/v1/A1/g1/readings"]
    gw.close()
    watcher.close()


def test_wrong_or_missing_credentials_are_refused(auto: Stack, world: dict) -> None:
    user, password = world["A1/g1"]
    for username, pw in ((user, password + "x"), (user, ""), (user, None), ("A1/nobody", password),
                         (INGEST_USER, password), (CHECK_USER, password), ("B1/g1", password)):
        c = auto.client(username, pw)
        assert not c.accepted and c.connack is not None and c.connack.is_failure, (username, c.connack)
        c.close()


def test_anonymous_clients_publish_only_for_open_enterprises(auto: Stack, world: dict) -> None:
    watcher = auto.ingest()
    anon = auto.client()
    assert anon.accepted, anon.connack
    assert anon.publish("hazmon/v1/A1/g1/readings") == NOT_AUTHORIZED   # closed: has gateways
    assert anon.publish("hazmon/v1/A1/unregistered/readings") == NOT_AUTHORIZED
    assert anon.publish("elsewhere/x") == NOT_AUTHORIZED
    marker = "hazmon/v1/OPEN1/any-gw/readings"
    assert anon.publish(marker) != NOT_AUTHORIZED                        # open: no gateway yet
    assert watcher.received_until(marker) == []
    anon.close()
    watcher.close()


def test_neither_gateways_nor_anonymous_clients_read(auto: Stack, world: dict) -> None:
    watcher = auto.ingest()
    gw = auto.client(*world["A1/g1"])
    anon = auto.client()
    gw.subscribe("hazmon/v1/#")
    anon.subscribe("hazmon/v1/#")
    other = auto.client(*world["B1/g1"])
    other.publish("hazmon/v1/B1/g1/readings", b"secret of B1")
    assert watcher.received_until("hazmon/v1/B1/g1/readings") == []
    time.sleep(0.3)  # the broker delivers to every subscriber in the same pass
    assert gw.messages.empty() and anon.messages.empty()
    assert watcher.publish("hazmon/v1/A1/g1/readings") == NOT_AUTHORIZED  # ingest only reads
    for c in (gw, anon, other, watcher):
        c.close()


def test_registering_the_first_gateway_closes_the_enterprise_for_good(auto: Stack) -> None:
    auto.enterprise("C1")
    anon = auto.client()
    assert anon.publish("hazmon/v1/C1/x/readings") != NOT_AUTHORIZED
    user, password = auto.register("C1", "g1")
    # the anonymous client is still connected: the reloaded ACL applies to it at once
    assert anon.publish("hazmon/v1/C1/x/readings") == NOT_AUTHORIZED
    assert anon.publish("hazmon/v1/C1/g1/readings") == NOT_AUTHORIZED
    gw = auto.client(user, password)
    assert gw.publish("hazmon/v1/C1/g1/readings") != NOT_AUTHORIZED
    auto.delete("C1", "g1")
    assert gw.disconnected.wait(5)
    assert anon.publish("hazmon/v1/C1/x/readings") == NOT_AUTHORIZED  # still closed
    anon.close()
    gw.close()


def test_rotation_invalidates_the_old_password_and_disconnects_its_session(auto: Stack) -> None:
    auto.enterprise("R1")
    user, old = auto.register("R1", "g1")
    connected = auto.client(user, old)
    assert connected.accepted
    new = auto.rotate("R1", "g1")
    assert new != old
    assert connected.disconnected.wait(5)  # mosquitto drops a session whose password is gone
    refused = auto.client(user, old)
    assert not refused.accepted and refused.connack.is_failure
    fresh = auto.client(user, new)
    assert fresh.accepted and fresh.publish("hazmon/v1/R1/g1/readings") != NOT_AUTHORIZED
    for c in (connected, refused, fresh):
        c.close()


def test_deleted_gateway_is_disconnected_and_refused(auto: Stack) -> None:
    auto.enterprise("D1")
    user, password = auto.register("D1", "g1")
    gw = auto.client(user, password)
    assert gw.accepted
    auto.delete("D1", "g1")
    assert gw.disconnected.wait(5)
    again = auto.client(user, password)
    assert not again.accepted and again.connack.is_failure
    gw.close()
    again.close()


def test_unchanged_rules_do_not_reload(auto: Stack, world: dict) -> None:
    assert auto.broker.refresh_auth() is False  # the files already hold the database's rules

"""The pure parts of MQTT identity: the password hash mosquitto reads, usernames, topic
matching, the rules and the files rendered from them."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from hazmon import mqtt_auth as ma
from hazmon.mqtt_auth import Identity, Rule

HASH_RE = re.compile(r"^\$7\$101\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==$")


def test_hash_has_the_format_mosquitto_passwd_writes() -> None:
    encoded = ma.hash_password("s3cret")
    assert HASH_RE.match(encoded), encoded  # 12-byte salt, 64-byte PBKDF2-SHA512, base64
    assert ma.verify_password("s3cret", encoded)
    assert not ma.verify_password("s3cret ", encoded)
    assert ma.hash_password("s3cret") != encoded  # salted


@pytest.mark.skipif(shutil.which("mosquitto_passwd") is None, reason="no mosquitto_passwd")
def test_we_verify_what_mosquitto_passwd_writes(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(path), "E/g", "pa:ss/wörd"], check=True)
    user, _, encoded = path.read_text().strip().partition(":")
    assert user == "E/g" and HASH_RE.match(encoded)
    assert ma.verify_password("pa:ss/wörd", encoded)
    assert not ma.verify_password("pa:ss/word", encoded)


@pytest.mark.parametrize("bad", ["", "$6$abc$def", "$7$x$AAAA$BBBB", "$7$101$!!$BBBB",
                                 "$7$0$AAAAAAAAAAAAAAAA$" + "A" * 86 + "==", "$7$101$AAAA",
                                 "$7$99999999$AAAAAAAAAAAAAAAA$" + "A" * 86 + "=="])
def test_malformed_hashes_never_verify(bad: str) -> None:
    assert ma.verify_password("x", bad) is False


def test_passwords_are_long_and_random() -> None:
    passwords = {ma.new_password() for _ in range(100)}
    assert len(passwords) == 100 and all(len(p) == 32 for p in passwords)


@pytest.mark.parametrize(("username", "split"), [
    ("E1/gw-1", ("E1", "gw-1")), ("a.b_c/D.9", ("a.b_c", "D.9")),
    ("E1", None), ("E1/", None), ("/gw", None), ("E1/gw/x", None), ("E 1/gw", None),
    (ma.INGEST_USER, None), (ma.CHECK_USER, None), ("E1/+", None), ("E1/#", None)])
def test_usernames_split_unambiguously(username: str, split: tuple[str, str] | None) -> None:
    assert ma.split_username(username) == split
    if split:
        assert ma.gateway_username(*split) == username


@pytest.mark.parametrize(("f", "topic", "match"), [
    ("hazmon/v1/#", "hazmon/v1/E/g/readings", True),
    ("hazmon/v1/#", "hazmon/v1", True),  # '#' also matches the parent level
    ("hazmon/v1/#", "hazmon/v2/E", False),
    ("hazmon/v1/E/g/#", "hazmon/v1/E/g", True),
    ("hazmon/v1/E/g/#", "hazmon/v1/E/gg/readings", False),
    ("hazmon/v1/+/+/readings", "hazmon/v1/E/g/readings", True),
    ("hazmon/v1/+/+/readings", "hazmon/v1/E/readings", False),
    ("#", "$SYS/broker", False), ("+/x", "$SYS/x", False), ("$SYS/#", "$SYS/x", True),
    ("a/b", "a/b", True), ("a/b", "a/b/c", False), ("a/+", "a/b/c", False),
    ("a/#", "a/+", False),  # a topic never holds wildcards
])
def test_topic_matching_follows_mosquitto(f: str, topic: str, match: bool) -> None:
    assert ma.topic_matches(f, topic) is match


@pytest.mark.parametrize(("inner", "outer", "within"), [
    ("hazmon/v1/#", "hazmon/v1/#", True), ("hazmon/v1/+/+/readings", "hazmon/v1/#", True),
    ("hazmon/v1/E/+/readings", "hazmon/v1/#", True), ("hazmon/#", "hazmon/v1/#", False),
    ("#", "hazmon/v1/#", False), ("+/v1/x", "hazmon/v1/#", False),
    ("hazmon/v1", "hazmon/v1/#", True),  # as topic_matches: '#' covers the parent level
    ("$SYS/#", "#", False), ("a/b", "a/+", True), ("a/+", "a/b", False), ("a/#/b", "#", False),
])
def test_filter_within(inner: str, outer: str, within: bool) -> None:
    assert ma.filter_within(inner, outer) is within


def test_rules_per_identity_and_mode() -> None:
    gw = Identity("gateway", "E1", "g1")
    assert ma.rules_for(gw, "on") == (Rule("write", "hazmon/v1/E1/g1/#"),)
    assert ma.rules_for(gw, "auto") == (Rule("write", "hazmon/v1/E1/g1/#"),)
    assert ma.rules_for(Identity("ingest"), "on") == (Rule("read", "hazmon/v1/#"),)
    assert ma.rules_for(Identity("anonymous"), "on") == ()
    assert ma.rules_for(Identity("unknown"), "auto") == ()
    assert ma.rules_for(Identity("anonymous"), "auto", {"E2", "E1"}) == (
        Rule("deny", "hazmon/v1/E1/#"), Rule("deny", "hazmon/v1/E2/#"), Rule("write", "hazmon/v1/#"))
    assert ma.rules_for(Identity("anonymous"), "auto", {"bad code\nuser x"}) == (
        Rule("write", "hazmon/v1/#"),)  # never rendered into a file


@pytest.mark.parametrize(("who", "action", "topic", "ok"), [
    (Identity("gateway", "E1", "g1"), "publish", "hazmon/v1/E1/g1/readings", True),
    (Identity("gateway", "E1", "g1"), "publish", "hazmon/v1/E1/g2/readings", False),
    (Identity("gateway", "E1", "g1"), "publish", "hazmon/v1/E2/g1/readings", False),
    (Identity("gateway", "E1", "g1"), "subscribe", "hazmon/v1/E1/g1/readings", False),
    (Identity("ingest"), "subscribe", "hazmon/v1/+/+/readings", True),
    (Identity("ingest"), "subscribe", "hazmon/v1/E1/+/status", True),
    (Identity("ingest"), "subscribe", "#", False),
    (Identity("ingest"), "publish", "hazmon/v1/E1/g1/readings", False),
    (Identity("anonymous"), "publish", "hazmon/v1/OPEN/g/readings", True),
    (Identity("anonymous"), "publish", "hazmon/v1/E1/g/readings", False),
    (Identity("anonymous"), "subscribe", "hazmon/v1/OPEN/g/readings", False),
    (Identity("anonymous"), "publish", "elsewhere/x", False),
    (Identity("gateway", "E1", "g1"), "all", "hazmon/v1/E1/g1/readings", False),
])
def test_decisions_in_auto_mode(who: Identity, action: str, topic: str, ok: bool) -> None:
    assert ma.allowed(ma.rules_for(who, "auto", {"E1"}), action, topic) is ok


def test_off_allows_everything_but_dollar_topics_by_wildcard() -> None:
    rules = ma.rules_for(Identity("unknown"), "off")
    assert ma.allowed(rules, "publish", "any/thing") and ma.allowed(rules, "subscribe", "#")


@pytest.mark.parametrize(("mode", "enterprise", "gateway", "refused"), [
    ("off", "E1", "zz", False), ("auto", "OPEN", "zz", False), ("auto", "E1", "g1", False),
    ("auto", "E1", "zz", True), ("on", "E1", "g1", False), ("on", "OPEN", "zz", True)])
def test_ingest_refusal(mode: str, enterprise: str, gateway: str, refused: bool) -> None:
    reason = ma.ingest_refusal(mode, {"E1"}, {("E1", "g1")}, enterprise, gateway)
    assert (reason is not None) is refused


def test_rendered_files() -> None:
    gws = [("E1", "g1", "E1/g1", "$7$h1"), ("E2", "g", "E2/g", "$7$h2"),
           ("E3", "g\nuser evil", "E3/g\nuser evil", "$7$h3")]
    passwd = ma.render_password_file(gws, [(ma.INGEST_USER, "$7$i")])
    assert passwd == "hazmon-ingest:$7$i\nE1/g1:$7$h1\nE2/g:$7$h2\n"
    acl = ma.render_acl_file("auto", gws, ["E1", "E2"])
    body = [line for line in acl.splitlines() if line and not line.startswith("#")]
    assert body == ["topic deny hazmon/v1/E1/#", "topic deny hazmon/v1/E2/#", "topic write hazmon/v1/#",
                    "user hazmon-ingest", "topic read hazmon/v1/#",
                    "user E1/g1", "topic write hazmon/v1/E1/g1/#",
                    "user E2/g", "topic write hazmon/v1/E2/g/#"]
    on = [line for line in ma.render_acl_file("on", gws, ["E1"]).splitlines()
          if line and not line.startswith("#")]
    assert on[:2] == ["user hazmon-ingest", "topic read hazmon/v1/#"]  # no anonymous section


def test_write_atomic_replaces_whole_files(tmp_path: Path) -> None:
    path = tmp_path / "f"
    ma.write_atomic(path, "one\n")
    ma.write_atomic(path, "two\n", mode=0o640)
    assert path.read_text() == "two\n" and path.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["f"]  # no temporary left behind

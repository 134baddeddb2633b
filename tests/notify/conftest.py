"""Fixtures of the notification tests: a local HTTP receiver and a local SMTP server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.notify.receivers import Receiver, SmtpServer


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(autouse=True)
def _fresh_receiver(request: pytest.FixtureRequest) -> None:
    """Each test starts with an empty record and no scripted answers."""
    if "receiver" in request.fixturenames:
        request.getfixturevalue("receiver").reset()


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    s = SmtpServer()
    yield s
    s.stop()

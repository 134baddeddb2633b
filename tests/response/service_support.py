"""Helpers for tests that run the response service: start it, wait for it, hear its news."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from alerting.response_service import ResponseService
from tests.support import wait_for


@contextmanager
def running(db_url: str, clock: Any) -> Iterator[ResponseService]:
    """A response service on a fast tick, active before the body runs."""
    service = ResponseService(db_url, clock=clock, tick_s=0.05, full_every_s=3600)
    service.start()
    try:
        wait_for(lambda: service.active and service.ticks > 0, timeout=20, what="service active")
        yield service
    finally:
        service.stop()


def settle(service: ResponseService, ticks: int = 2) -> None:
    """Wait until the service has done ``ticks`` more work loops (events read, deadlines checked)."""
    target = service.ticks + ticks
    wait_for(lambda: service.ticks >= target, timeout=20, what=f"{ticks} service ticks")


class Listener:
    """LISTENs on a channel; ``take`` returns the JSON payloads heard so far."""

    def __init__(self, db_url: str, channel: str) -> None:
        self.conn = psycopg.connect(db_url, autocommit=True)
        self.conn.execute(f"LISTEN {channel}")
        self.heard: list[dict[str, Any]] = []

    def take(self, timeout: float = 0.2) -> list[dict[str, Any]]:
        for note in self.conn.notifies(timeout=timeout):
            self.heard.append(json.loads(note.payload))
        return self.heard

    def wait(self, kind: str, timeout: float = 20) -> dict[str, Any]:
        return wait_for(lambda: next((p for p in self.take() if p["kind"] == kind), None),
                        timeout=timeout, what=f"a {kind} notification")

    def close(self) -> None:
        self.conn.close()

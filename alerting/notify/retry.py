"""The one retry loop (after Alertmanager's ``notify/retry_stage.go``).

A notifier attempts a delivery once and says whether a failure is worth retrying; this loop
decides when to try again: exponential backoff from the end of the failed attempt, up to a
number of attempts. Waiting is a schedule, not a sleep, so no worker is held while a receiver
is down and a test's clock drives it exactly.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta

from alerting.notify.model import Delivery


@dataclass(frozen=True)
class Backoff:
    """Waits of initial_s, initial_s·factor, … (at most max_s) between attempts."""

    initial_s: float = 1.0
    factor: float = 2.0
    max_s: float = 60.0
    max_attempts: int = 6

    def delay(self, attempt: int) -> float | None:
        """Seconds to wait after failed attempt number ``attempt`` (from 1); None = give up."""
        if attempt >= self.max_attempts:
            return None
        return min(self.max_s, self.initial_s * self.factor ** (attempt - 1))


@dataclass(frozen=True)
class Outcome:
    """The result of one attempt."""

    at: datetime
    finished_at: datetime
    ok: bool
    retryable: bool = False
    http_status: int | None = None
    error: str | None = None

    @property
    def duration_ms(self) -> int:
        return int((self.finished_at - self.at).total_seconds() * 1000)


class RetryLoop:
    """Deliveries waiting for their next attempt, ordered by when it is due."""

    def __init__(self, backoff: Backoff | None = None) -> None:
        self.backoff = backoff or Backoff()
        self._heap: list[tuple[datetime, int, Delivery]] = []
        self._seq = itertools.count()

    def submit(self, delivery: Delivery, at: datetime) -> None:
        """Attempt a delivery at ``at`` (now, for a new one)."""
        heapq.heappush(self._heap, (at, next(self._seq), delivery))

    def due(self, now: datetime) -> list[Delivery]:
        """Deliveries whose attempt is due, each with its attempt number counted up."""
        out = []
        while self._heap and self._heap[0][0] <= now:
            delivery = heapq.heappop(self._heap)[2]
            delivery.attempt += 1
            out.append(delivery)
        return out

    def settle(self, delivery: Delivery, outcome: Outcome) -> str:
        """After an attempt: "ok", "retry" (scheduled again) or "failed" (given up)."""
        if outcome.ok:
            return "ok"
        wait = self.backoff.delay(delivery.attempt) if outcome.retryable else None
        if wait is None:
            return "failed"
        self.submit(delivery, outcome.finished_at + timedelta(seconds=wait))
        return "retry"

    def __len__(self) -> int:
        return len(self._heap)

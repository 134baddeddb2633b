"""The retry loop: exponential backoff from the end of a failed attempt, retryable failures only."""

from __future__ import annotations

import pytest

from alerting.notify.model import Delivery, Message
from alerting.notify.retry import Backoff, Outcome, RetryLoop
from tests.notify.factories import MS, at


@pytest.mark.parametrize("attempt, delay", [
    (1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 16.0),   # doubling
    (6, None),                                            # the sixth failure ends it
])
def test_default_backoff(attempt: int, delay: float | None) -> None:
    assert Backoff().delay(attempt) == delay


def test_backoff_is_capped() -> None:
    assert Backoff(initial_s=10, max_s=25, max_attempts=10).delay(3) == 25


def fail(t: float, retryable: bool = True) -> Outcome:
    return Outcome(at(t), at(t), ok=False, retryable=retryable, error="HTTP 500")


def delivery() -> Delivery:
    return Delivery(channel="ops", message=Message(reason="first", at=at(0)))


def test_retry_schedule_edges() -> None:
    loop, d = RetryLoop(), delivery()
    loop.submit(d, at(0))
    assert loop.due(at(0)) == [d] and d.attempt == 1
    assert loop.settle(d, fail(0)) == "retry"
    assert loop.due(at(1 - MS)) == []
    assert loop.due(at(1)) == [d] and d.attempt == 2
    assert loop.settle(d, fail(1.5)) == "retry"            # waits from the end of the attempt
    assert loop.due(at(3.5 - MS)) == [] and loop.due(at(3.5)) == [d]
    assert loop.settle(d, Outcome(at(3.5), at(3.5), ok=True)) == "ok"
    assert len(loop) == 0


def test_failures_not_worth_retrying_end_at_once() -> None:
    loop, d = RetryLoop(), delivery()
    loop.submit(d, at(0))
    loop.due(at(0))
    assert loop.settle(d, fail(0, retryable=False)) == "failed" and len(loop) == 0


def test_the_last_attempt_gives_up() -> None:
    loop, d = RetryLoop(Backoff(max_attempts=3)), delivery()
    loop.submit(d, at(0))
    results, t = [], 0.0
    while len(results) < 3:
        (got,) = loop.due(at(t))
        results.append(loop.settle(got, fail(t)))
        t += 100
    assert results == ["retry", "retry", "failed"]

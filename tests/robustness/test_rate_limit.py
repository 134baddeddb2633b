"""The rate limit is per token: a burst beyond it gets 429 with Retry-After and a JSON detail,
while other tokens (another user's, and another token of the same user) go on unaffected.

The server fixture runs the default limit, 50 requests/s with bursts of 200 (api.deps.Services).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from api import security
from api.security import RateLimiter
from tests.support import Hazmon

RATE, BURST = 50.0, 200


@pytest.fixture(scope="module")
def tokens(hazmon: Hazmon) -> Iterator[dict[str, str]]:
    admin = hazmon.api()
    issued = {}
    for user in ("burst-a", "burst-b"):
        assert admin.post("/api/v1/users", json={"name": user, "role": "viewer"}).status_code == 201
    for key, user in (("a", "burst-a"), ("a2", "burst-a"), ("b", "burst-b")):
        r = admin.post(f"/api/v1/users/{user}/tokens", json={"name": key})
        assert r.status_code == 201, r.text
        issued[key] = r.json()["token"]
    admin.close()
    yield issued


def burst(client: httpx.Client, limit: int = 3 * BURST) -> tuple[int, httpx.Response | None]:
    """Requests as fast as one connection goes until the first 429: (answered 200, the 429)."""
    ok = 0
    for _ in range(limit):
        r = client.get("/api/v1/me")
        if r.status_code == 429:
            return ok, r
        assert r.status_code == 200, r.text
        ok += 1
    return ok, None


def test_burst_beyond_the_limit_gets_429_with_retry_after(hazmon: Hazmon, tokens: dict[str, str]) -> None:
    started = time.monotonic()
    with hazmon.api(tokens["a"]) as a:
        ok, refused = burst(a)
    elapsed = time.monotonic() - started
    assert refused is not None, f"no 429 after {ok} requests in {elapsed:.1f}s"
    # The whole burst, plus what refilled meanwhile, and not much more.
    assert BURST <= ok <= BURST + RATE * elapsed + 5, (ok, elapsed)
    assert refused.json() == {"detail": "too many requests for this token; slow down"}
    assert int(refused.headers["Retry-After"]) >= 1

    # Other tokens have their own buckets: another user's, and the same user's second token.
    for key in ("b", "a2"):
        with hazmon.api(tokens[key]) as other:
            assert other.get("/api/v1/me").status_code == 200, key
    # Requests without a valid token are refused before the limit and do not use the bucket.
    assert httpx.get(hazmon.url + "/api/v1/me", headers={"Authorization": "Bearer nope"}).status_code == 401

    # The bucket refills at the rate: after Retry-After the token works again.
    time.sleep(int(refused.headers["Retry-After"]))
    with hazmon.api(tokens["a"]) as a:
        assert a.get("/api/v1/me").status_code == 200


def test_the_admin_token_is_limited_apart_from_a_user_named_admin(hazmon: Hazmon) -> None:
    """The bucket is the token's: a user may be called 'admin' like the bootstrap token."""
    admin = hazmon.api()
    assert admin.post("/api/v1/users", json={"name": "admin", "role": "viewer"}).status_code == 201
    named_admin = admin.post("/api/v1/users/admin/tokens", json={}).json()["token"]
    with hazmon.api(named_admin) as impostor:
        _, refused = burst(impostor)
    assert refused is not None
    assert admin.get("/api/v1/me").status_code == 200
    admin.close()


def test_token_bucket_arithmetic(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(security.time, "monotonic", lambda: now[0])
    limiter = RateLimiter(rate=RATE, burst=BURST)
    assert all(limiter.allow("t1") for _ in range(BURST))
    assert not limiter.allow("t1")
    assert limiter.allow("t2")                      # another key, a full bucket
    now[0] += 0.1                                   # 0.1 s at 50/s: five more
    assert sum(limiter.allow("t1") for _ in range(10)) == 5
    now[0] += 3600                                  # a long pause refills to the burst, no more
    assert sum(limiter.allow("t1") for _ in range(BURST + 50)) == BURST

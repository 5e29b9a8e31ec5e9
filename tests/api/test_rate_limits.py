"""Rate limits per token and per address, over real HTTP against a server with a small allowance."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import bearer, token_for
from tests.conftest import make_user
from tests.live_server import LiveApp, served
from web.ratelimit import RateLimiter

PER_MINUTE = 5


@pytest.fixture(scope="module")
def stingy_server(scratch_databases, tmp_path_factory, request):
    env = {"EXACT_API_RATE_PER_MINUTE": str(PER_MINUTE)}
    with served(scratch_databases, tmp_path_factory, request, env, prefix="exact_api_rate") as app:
        yield app


def test_a_token_gets_its_allowance_then_429_with_retry_after(stingy_server: LiveApp):
    alice, bob = make_user(stingy_server.db, "alice"), make_user(stingy_server.db, "bob")
    alices, bobs = bearer(token_for(stingy_server, alice)), bearer(token_for(stingy_server, bob))
    with httpx.Client(base_url=f"{stingy_server.url}/api/v1") as api:
        answers = [api.get("/me", headers=alices).status_code for _ in range(PER_MINUTE + 3)]
        assert answers == [200] * PER_MINUTE + [429] * 3
        refused = api.get("/me", headers=alices)
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert api.get("/me", headers=bobs).status_code == 200  # another token has its own allowance


def test_visitors_are_limited_per_address_and_bad_tokens_stop_reaching_the_database(stingy_server: LiveApp):
    with httpx.Client(base_url=f"{stingy_server.url}/api/v1") as api:
        # This module's first test spent nothing of the address's allowance (it sent tokens).
        answers = [api.get("/challenges").status_code for _ in range(PER_MINUTE + 1)]
        assert answers == [200] * PER_MINUTE + [429]
        guesses = [api.get("/me", headers=bearer("exact_" + "g" * 43)).status_code for _ in range(PER_MINUTE + 2)]
        assert guesses == [401] * PER_MINUTE + [429] * 2


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_bucket_refills_at_the_rate():
    clock = FakeClock()
    limiter = RateLimiter(60, clock=clock)  # one a second
    assert all(limiter.take("k") is None for _ in range(60))
    wait = limiter.take("k")
    assert wait == pytest.approx(1.0)
    clock.now += 0.5
    assert limiter.take("k") == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.take("k") is None and limiter.take("k") is not None
    clock.now += 3600
    assert sum(limiter.take("k") is None for _ in range(100)) == 60  # never more than a minute's worth saved up
    assert limiter.take("other") is None


def test_a_flood_of_bad_tokens_does_not_lock_out_a_valid_token_from_the_same_address(stingy_server: LiveApp):
    carol = make_user(stingy_server.db, "carol")
    good = bearer(token_for(stingy_server, carol))
    # Connections from their own loopback address: this test's buckets are its own.
    transport = httpx.HTTPTransport(local_address="127.0.0.7")
    with httpx.Client(base_url=f"{stingy_server.url}/api/v1", transport=transport) as api:
        guesses = [api.get("/me", headers=bearer("exact_" + "h" * 43)).status_code for _ in range(PER_MINUTE + 2)]
        assert guesses == [401] * PER_MINUTE + [429] * 2
        assert api.get("/me", headers=good).status_code == 200


def test_ipv6_clients_are_counted_per_64_network():
    from web.callers import address_key

    assert address_key("2001:db8:1:2::1") == address_key("2001:db8:1:2:ffff::9") == "address:2001:db8:1:2::/64"
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("192.0.2.1") == "address:192.0.2.1" != address_key("192.0.2.2")
    assert address_key(None) == "address:unknown"

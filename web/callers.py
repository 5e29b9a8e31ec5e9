"""Who an API request acts as: the bearer token's check and the rate limits, shared by the handlers' dependency
(web/api.py) and the upload gate (web/limits.py), so every path to a token check is throttled the same way."""

from __future__ import annotations

import ipaddress

from exact import api_tokens
from exact.api_tokens import TokenUser
from web.problems import ApiProblem
from web.ratelimit import RateLimiter, retry_after_header
from web.resources import database, settings

_limiter: RateLimiter | None = None


def rate_limiter() -> RateLimiter:
    global _limiter
    if _limiter is None:
        _limiter = RateLimiter(settings().api_rate_per_minute)
    return _limiter


def spend(key: str) -> None:
    """One request of ``key``'s allowance (a token, or an address without one), or 429 with Retry-After."""
    wait = rate_limiter().take(key)
    if wait is not None:
        raise ApiProblem(
            429,
            f"Too many requests: at most {settings().api_rate_per_minute} a minute. Retry after the Retry-After "
            "seconds.",
            headers=retry_after_header(wait),
        )


def address_key(host: str | None) -> str:
    """The rate-limit key of a client address: IPv4 as it is, IPv6 by its /64 (one host's usual allocation),
    so a client cannot take a fresh bucket per address of its own network."""
    if host and ":" in host:
        try:
            return f"address:{ipaddress.ip_network(f'{host}/64', strict=False)}"
        except ValueError:
            pass
    return f"address:{host or 'unknown'}"


def authenticate_bearer(address: str, token: str) -> TokenUser:
    """The token's user. Failed checks are counted per address; past the allowance an invalid token gets 429
    instead of 401. A valid token always works: a flood of bad guesses from a shared address (a NAT, a workshop
    room) must not lock out the people behind it. Each check is one indexed lookup, like a visitor's request."""
    limiter = rate_limiter()
    failures = f"bad-token:{address}"
    try:
        return api_tokens.authenticate(database(), token)
    except Exception:
        if (wait := limiter.take(failures)) is not None:
            raise ApiProblem(429, "Too many requests with invalid tokens.", headers=retry_after_header(wait)) from None
        raise

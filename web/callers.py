"""Who an API request acts as: the bearer token's check and the rate limits, shared by the handlers' dependency
(web/api.py) and the upload gate (web/limits.py), so every path to a token check is throttled the same way."""

from __future__ import annotations

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
    return f"address:{host or 'unknown'}"


def authenticate_bearer(address: str, token: str) -> TokenUser:
    """The token's user. Failed checks are counted per address, and past the allowance refused before the
    database is asked: guessing tokens costs the database nothing after that."""
    limiter = rate_limiter()
    failures = f"bad-token:{address}"
    if (wait := limiter.waiting(failures)) is not None:
        raise ApiProblem(429, "Too many requests with invalid tokens.", headers=retry_after_header(wait))
    try:
        return api_tokens.authenticate(database(), token)
    except Exception:
        limiter.take(failures)
        raise

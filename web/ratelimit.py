"""Requests per minute per API token (or per client address without one): a token bucket per key.

Kept in this process's memory: one server process is the deployment docs/deployment.md describes; several
processes each allow the rate (docs/api.md says so). A bucket holds ``per_minute`` requests and refills
continuously, so a script gets its whole minute's worth in a burst and then one request every 60/per_minute s.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

DEFAULT_PER_MINUTE = 120
_MAX_KEYS = 100_000  # beyond this the fullest buckets are forgotten (a full bucket is the same as none)


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(self, per_minute: int = DEFAULT_PER_MINUTE, *, clock=time.monotonic) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self.capacity = float(per_minute)
        self.refill_per_s = per_minute / 60.0
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float | None:
        """Spend one request of ``key``'s allowance: None when allowed, else the seconds until the next one."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= _MAX_KEYS:
                    self._forget_full(now)
                bucket = self._buckets[key] = _Bucket(self.capacity, now)
            bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.refill_per_s)
            bucket.updated = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return None
            return (1 - bucket.tokens) / self.refill_per_s

    def _forget_full(self, now: float) -> None:
        rate, capacity = self.refill_per_s, self.capacity
        full = [k for k, b in self._buckets.items() if b.tokens + (now - b.updated) * rate >= capacity]
        for key in full or list(self._buckets)[: len(self._buckets) // 2]:
            del self._buckets[key]


def retry_after_header(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds)))}

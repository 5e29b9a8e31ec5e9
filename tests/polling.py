"""Waiting for work that happens in another process (scoring workers, a live server's background jobs)."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(condition: Callable[[], bool], what: str, *, limit_seconds: float = 120, every: float = 0.1) -> None:
    """Poll until ``condition()``. The limit only keeps a broken run from hanging; it is no speed assertion
    (speed is measured in bench/)."""
    deadline = time.monotonic() + limit_seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(every)

"""Login throttling: repeated failures for one account, or from one client, slow down and then lock.

Per key (``account:<username>`` and ``client:<address>``): from the 3rd failure within the window each further
failure is answered after a growing delay (1, 2, 4 s, at most 4 s); at the threshold the key is locked for
LOCK_SECONDS. Attempts during a lock are refused without being counted, and only failures after the lock
ended count towards the next one, so an attacker cannot keep an account locked for longer than one lock
period per burst, and a legitimate user gets in once the lock ends.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from db import throttle as throttle_sql
from db.database import Database
from exact.errors import UserError

WINDOW_SECONDS = 15 * 60
LOCK_SECONDS = 15 * 60
ACCOUNT_THRESHOLD = 10
CLIENT_THRESHOLD = 50  # higher: many people may share one address (a workshop room, a proxy)
SLOWDOWN_AFTER = 3
MAX_DELAY_SECONDS = 4.0


class LoginLocked(UserError):
    pass


@dataclass(frozen=True)
class Throttle:
    db: Database
    sleep: object = time.sleep  # injectable so tests need not wait

    @staticmethod
    def keys(username: str, client: str | None) -> list[tuple[str, int]]:
        keys = [(f"account:{username.strip().lower()[:150].replace(chr(0), '')}", ACCOUNT_THRESHOLD)]
        if client:
            keys.append((f"client:{client[:100].replace(chr(0), '')}", CLIENT_THRESHOLD))
        return keys

    def check(self, username: str, client: str | None) -> None:
        """Refuse while any key is locked (before the password is even looked at)."""
        with self.db.connect() as conn:
            for key, _ in self.keys(username, client):
                until = throttle_sql.active_lock(conn, key)
                if until is not None:
                    minutes = max(1, math.ceil((until - datetime.now(UTC)).total_seconds() / 60))
                    what = "this account" if key.startswith("account:") else "your network address"
                    raise LoginLocked(
                        f"Too many failed logins for {what}. Try again in {minutes} minute{'s' * (minutes > 1)}."
                    )

    def failed(self, username: str, client: str | None) -> None:
        worst = 0
        with self.db.transaction() as conn:
            for key, threshold in self.keys(username, client):
                throttle_sql.record_failure(conn, key)
                failures = throttle_sql.recent_failures(conn, key, window_seconds=WINDOW_SECONDS)
                if failures >= threshold:
                    throttle_sql.lock(conn, key, seconds=LOCK_SECONDS)
                worst = max(worst, failures)
            throttle_sql.prune(conn, older_than_seconds=WINDOW_SECONDS * 4)
        if worst >= SLOWDOWN_AFTER:
            self.sleep(min(MAX_DELAY_SECONDS, 2.0 ** (worst - SLOWDOWN_AFTER)))

    def succeeded(self, username: str) -> None:
        with self.db.transaction() as conn:
            throttle_sql.clear_failures(conn, self.keys(username, None)[0][0])

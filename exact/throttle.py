"""Login throttling: repeated failures for one account, or from one client, slow down and then lock.

Per key (``account:<username>`` and ``client:<address>``): from the 3rd failure within the window each further
failure is answered after a growing delay (1, 2, 4 s, at most 4 s); at the threshold the key is locked for
LOCK_SECONDS. Attempts during a lock are refused without being counted, and only failures after the lock
ended count towards the next one, so an attacker cannot keep an account locked for longer than one lock
period per burst, and a legitimate user gets in once the lock ends.

The decision is atomic: an attempt first reserves a slot (an attempt row, counted under a per-key advisory lock)
and only then is the password checked, so N parallel guesses for one account get at most ACCOUNT_THRESHOLD
password checks; the rest are refused as locked. A failed attempt's row is its failure; a success deletes the
account's rows (and its own client row).
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
class Attempt:
    """A reserved login attempt: the throttle keys it counts against and the attempt row it holds in each."""

    account_key: str
    slots: tuple[tuple[str, int, int], ...]  # (key, threshold, exact_login_failure.id)


def _refusal(key: str, until: datetime | None) -> LoginLocked:
    seconds = (until - datetime.now(UTC)).total_seconds() if until is not None else LOCK_SECONDS
    minutes = max(1, math.ceil(seconds / 60))
    what = "this account" if key.startswith("account:") else "your network address"
    return LoginLocked(f"Too many failed logins for {what}. Try again in {minutes} minute{'s' * (minutes > 1)}.")


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

    def reserve(self, username: str, client: str | None) -> Attempt:
        """Refuse while a key is locked or full; otherwise take a slot in every key, before the password is read.

        The slot is an attempt row inserted under a per-key advisory lock in the same transaction as the count, so
        parallel guesses cannot all pass the check before any failure is recorded: at most ``threshold`` attempts
        per key are ever being checked or counted. The row stays as the failure, or a success deletes it.
        """
        keys = self.keys(username, client)
        with self.db.transaction() as conn:
            for key, threshold in keys:  # always account before client: a fixed lock order, no deadlock
                throttle_sql.lock_key(conn, key)
                until = throttle_sql.active_lock(conn, key)
                if until is not None:
                    raise _refusal(key, until)
                if throttle_sql.recent_failures(conn, key, window_seconds=WINDOW_SECONDS) >= threshold:
                    # Full with attempts still in flight: the one that fails last sets the lock.
                    raise _refusal(key, None)
            slots = tuple((key, threshold, throttle_sql.record_failure(conn, key)) for key, threshold in keys)
        return Attempt(account_key=keys[0][0], slots=slots)

    def failed(self, attempt: Attempt) -> None:
        """The reserved attempt failed: its rows are the failures; lock a key that reached its threshold."""
        worst = 0
        with self.db.transaction() as conn:
            for key, threshold, _ in attempt.slots:
                throttle_sql.lock_key(conn, key)
                failures = throttle_sql.recent_failures(conn, key, window_seconds=WINDOW_SECONDS)
                if failures >= threshold:
                    throttle_sql.lock(conn, key, seconds=LOCK_SECONDS)
                worst = max(worst, failures)
            throttle_sql.prune(conn, older_than_seconds=WINDOW_SECONDS * 4)
        if worst >= SLOWDOWN_AFTER:
            self.sleep(min(MAX_DELAY_SECONDS, 2.0 ** (worst - SLOWDOWN_AFTER)))

    def succeeded(self, attempt: Attempt) -> None:
        """A success clears the account's failures and gives back this attempt's slot for the client."""
        with self.db.transaction() as conn:
            throttle_sql.clear_failures(conn, attempt.account_key)
            throttle_sql.delete_attempts(conn, [row for key, _, row in attempt.slots if key != attempt.account_key])

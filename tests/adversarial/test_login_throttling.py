"""Password guessing: failures slow down, then lock the account (or the client address) for a bounded time.

The delays are observed through an injected ``sleep`` (``Throttle(db, sleep=fake)``), so nothing here waits. The
end of a lock is simulated by moving ``exact_login_lock.locked_until`` and the failures' ``created_at`` into the
past with SQL.
"""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from db.database import Database
from exact import accounts, passwords
from exact import throttle as throttle_module
from exact.errors import AuthenticationFailed
from exact.throttle import LoginLocked, Throttle
from tests.adversarial.conftest import PASSWORD
from tests.conftest import make_user
from tests.pages_helpers import scalar

ACCOUNT_LOCKED = re.compile(r"^Too many failed logins for this account\. Try again in 15 minutes\.$")
CLIENT_LOCKED = re.compile(r"^Too many failed logins for your network address\. Try again in 15 minutes\.$")


class FakeSleep:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def fake_sleep():
    return FakeSleep()


@pytest.fixture
def throttle(db, fake_sleep):
    return Throttle(db, sleep=fake_sleep)


@pytest.fixture
def alice(db):
    return make_user(db, "alice")


def _login(db, throttle, username, password, client="198.51.100.7"):
    return accounts.authenticate(db, username, password, client=client, throttle=throttle)


def _fail(db, throttle, username="alice", client="198.51.100.7", password="wrong guess!"):
    with pytest.raises(AuthenticationFailed):
        _login(db, throttle, username, password, client)


def _failures(db, key):
    return scalar(db, "SELECT count(*) FROM exact_login_failure WHERE throttle_key = :k", k=key)


def _end_lock(db, key):
    """As if the lock period (and the failure window) had passed."""
    with db.transaction() as conn:
        conn.execute(
            sa.text("UPDATE exact_login_lock SET locked_until = now() - interval '1 second' WHERE throttle_key = :k"),
            {"k": key},
        )
        conn.execute(
            sa.text(
                "UPDATE exact_login_failure SET created_at = created_at - interval '16 minutes' WHERE throttle_key = :k"
            ),
            {"k": key},
        )


def test_failures_slow_down_then_lock_the_account(db, throttle, fake_sleep, alice):
    threshold = throttle_module.ACCOUNT_THRESHOLD
    for _ in range(threshold):
        _fail(db, throttle)
    # Two free failures, then 1, 2, 4 s and at most 4 s for every further one, the locking one included.
    expected = [min(4.0, 2.0 ** (n - 3)) for n in range(3, threshold + 1)]
    assert fake_sleep.calls == expected
    assert fake_sleep.calls == sorted(fake_sleep.calls) and fake_sleep.calls[0] < fake_sleep.calls[-1]
    assert scalar(db, "SELECT count(*) FROM exact_login_lock WHERE throttle_key = 'account:alice'") == 1

    # Locked: even the right password is refused, before it is looked at, and the refusal costs no failure.
    failures = _failures(db, "account:alice")
    for password in (PASSWORD, "wrong guess!"):
        with pytest.raises(LoginLocked) as info:
            _login(db, throttle, "alice", password)
        assert ACCOUNT_LOCKED.match(str(info.value)), str(info.value)
    assert _failures(db, "account:alice") == failures
    assert len(fake_sleep.calls) == threshold - 2  # refusals during a lock are immediate
    assert scalar(db, "SELECT last_login FROM auth_user WHERE id = :i", i=alice.id) is None


def test_case_and_spaces_do_not_dodge_the_account_lock(db, throttle, alice):
    variants = ["alice", "ALICE", " Alice", "alice ", "aLiCe"]
    for n in range(throttle_module.ACCOUNT_THRESHOLD):
        _fail(db, throttle, username=variants[n % len(variants)])
    for variant in variants:
        with pytest.raises(LoginLocked, match="this account"):
            _login(db, throttle, variant, PASSWORD)


def test_the_legitimate_user_gets_in_after_the_lock_and_a_success_clears_failures(db, throttle, alice):
    for _ in range(throttle_module.ACCOUNT_THRESHOLD):
        _fail(db, throttle)
    with pytest.raises(LoginLocked):
        _login(db, throttle, "alice", PASSWORD)
    _end_lock(db, "account:alice")
    assert _login(db, throttle, "alice", PASSWORD).id == alice.id
    assert _failures(db, "account:alice") == 0
    assert scalar(db, "SELECT last_login IS NOT NULL FROM auth_user WHERE id = :i", i=alice.id)


def test_a_lock_is_served_once_failures_before_it_do_not_count_again(db, throttle, fake_sleep, alice):
    for _ in range(throttle_module.ACCOUNT_THRESHOLD):
        _fail(db, throttle)
    with db.transaction() as conn:  # the lock just ended; the burst that caused it is still inside the window
        conn.execute(sa.text("UPDATE exact_login_lock SET locked_until = now() - interval '1 second'"))
        conn.execute(sa.text("UPDATE exact_login_failure SET created_at = created_at - interval '2 seconds'"))
    fake_sleep.calls.clear()
    # One new failure (from a fresh address: the old one's ten failures rightly still slow it down) counts as the
    # first: neither locked again nor slowed down.
    _fail(db, throttle, client="192.0.2.50")
    assert fake_sleep.calls == []
    assert _login(db, throttle, "alice", PASSWORD, client="192.0.2.50").id == alice.id
    _fail(db, throttle)  # the old address is still slowed down by its own recent failures
    assert fake_sleep.calls == [4.0]


def test_failures_from_one_client_lock_that_client_only(db, throttle, alice):
    make_user(db, "bob")
    attacker = "203.0.113.9"
    for n in range(throttle_module.CLIENT_THRESHOLD):  # spraying many accounts, few guesses each
        _fail(db, throttle, username=f"victim{n % 25}", client=attacker)
    assert scalar(db, "SELECT count(*) FROM exact_login_lock WHERE throttle_key LIKE 'account:%'") == 0
    for username, password in (("bob", PASSWORD), ("alice", PASSWORD), ("victim1", "guess")):
        with pytest.raises(LoginLocked) as info:
            _login(db, throttle, username, password, client=attacker)
        assert CLIENT_LOCKED.match(str(info.value)), str(info.value)
    # Another address is not affected, and the attacker's address is free again after the lock.
    assert _login(db, throttle, "bob", PASSWORD, client="192.0.2.1").username == "bob"
    _end_lock(db, f"client:{attacker}")
    assert _login(db, throttle, "alice", PASSWORD, client=attacker).id == alice.id


def test_unknown_and_inactive_accounts_are_throttled_like_real_ones(db, throttle):
    make_user(db, "sleepy", active=False)
    for username in ("nobody", "sleepy"):
        for _ in range(throttle_module.ACCOUNT_THRESHOLD):
            _fail(db, throttle, username=username, password=PASSWORD)
        with pytest.raises(LoginLocked, match="this account"):
            _login(db, throttle, username, PASSWORD)


def test_hostile_usernames_fail_like_wrong_passwords(db, throttle, alice):
    """Oversized and odd usernames are a plain failure (the throttle key is bounded), never an unexpected error."""
    for username in (
        "a" * 10_000,
        "'; DROP TABLE auth_user; --",
        "alice%",
        "alic_",
        "alice\\",
        "ａｌｉｃｅ",
        "alice\x00",
    ):
        with pytest.raises(AuthenticationFailed):
            _login(db, throttle, username, PASSWORD, client="x" * 500)
    assert scalar(db, "SELECT count(*) FROM auth_user") == 1
    assert scalar(db, "SELECT max(length(throttle_key)) FROM exact_login_failure") <= 200


def test_parallel_guesses_for_one_account_get_at_most_threshold_password_checks(db, fake_sleep, alice, monkeypatch):
    """25 wrong guesses at the same instant (each from its own address) must not all be checked before the lock."""
    guesses = 25
    checked: list[str] = []
    real_check = passwords.check_password

    def counting_check(password, encoded):
        checked.append(password)  # list.append is atomic under the GIL
        return real_check(password, encoded)

    monkeypatch.setattr(passwords, "check_password", counting_check)
    pool = Database(db.url, pool_size=guesses, max_overflow=5)
    throttle = Throttle(pool, sleep=fake_sleep)
    barrier = threading.Barrier(guesses)

    def guess(n: int) -> Exception | None:
        barrier.wait(timeout=30)
        try:
            accounts.authenticate(pool, "alice", f"wrong guess {n}", client=f"203.0.113.{n}", throttle=throttle)
        except (AuthenticationFailed, LoginLocked) as exc:
            return exc
        return None

    try:
        with ThreadPoolExecutor(max_workers=guesses) as executor:
            results = list(executor.map(guess, range(guesses)))
    finally:
        pool.dispose()

    assert 0 < len(checked) <= throttle_module.ACCOUNT_THRESHOLD, len(checked)
    failed = [r for r in results if isinstance(r, AuthenticationFailed)]
    locked = [r for r in results if isinstance(r, LoginLocked)]
    assert len(failed) == len(checked) and len(failed) + len(locked) == guesses, results
    assert all(ACCOUNT_LOCKED.match(str(r)) for r in locked), locked
    assert _failures(db, "account:alice") == len(checked)
    # The burst ended in a lock: the right password is now refused too, without being checked.
    with pytest.raises(LoginLocked, match="this account"):
        _login(db, throttle, "alice", PASSWORD)
    assert len(checked) <= throttle_module.ACCOUNT_THRESHOLD

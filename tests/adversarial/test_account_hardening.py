"""Account probing and look-alike names.

- Timing: a login against an unusable (``!``), foreign, malformed or absurd hash must cost what a real check
  costs, or an attacker could tell such accounts apart. The cost is counted, not timed: every call of
  ``hashlib.pbkdf2_hmac`` is recorded with its iteration count.
- Mixed scripts: "аlice" with a Cyrillic "а" is not NFKC-equal to "alice", yet reads the same; registering it
  is refused, while names in one non-Latin script stay allowed and existing Django users keep logging in.
"""

from __future__ import annotations

import hashlib

import pytest

from db import users as users_sql
from exact import accounts, passwords
from exact.errors import AuthenticationFailed, ValidationError
from exact.throttle import Throttle
from tests.pages_helpers import scalar

PASSWORD = "a long enough password"
MIXED = "Username mixes letters from different scripts"

# Hashes that can never match; each must still cost one PBKDF2 at the default work factor.
NEVER_MATCHING = {
    "empty": "",
    "unusable": "!",
    "unusable, Django style": "!" + "x" * 40,
    "md5": "md5$salt$0123456789abcdef0123456789abcdef",
    "argon2": "argon2$argon2id$v=19$m=102400,t=2,p=8$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
    "bcrypt": "bcrypt_sha256$$2b$12$abcdefghijklmnopqrstuuP9c8nJpOw1C7xGk8pVu1hXHbGcdC5jW",
    "pbkdf2_sha1": "pbkdf2_sha1$260000$salt$aGFzaA==",
    "too few parts": "pbkdf2_sha256$1000$salt",
    "iterations not a number": "pbkdf2_sha256$many$salt$aGFzaA==",
    "iterations a superscript digit": "pbkdf2_sha256$²$salt$aGFzaA==",
    "zero iterations": "pbkdf2_sha256$0$salt$aGFzaA==",
    "absurd iterations": "pbkdf2_sha256$99999999999$salt$aGFzaA==",
    "garbage": "not a hash at all",
}


@pytest.fixture
def pbkdf2_calls(monkeypatch):
    """Every PBKDF2 computed from now on, as (digest, iterations)."""
    calls: list[tuple[str, int]] = []
    real = hashlib.pbkdf2_hmac

    def recording(name, password, salt, iterations, *args, **kwargs):
        calls.append((name, iterations))
        return real(name, password, salt, iterations, *args, **kwargs)

    monkeypatch.setattr(hashlib, "pbkdf2_hmac", recording)
    return calls


def _one_full_check() -> list[tuple[str, int]]:
    return [("sha256", passwords.DEFAULT_ITERATIONS)]  # read at call time: the tests lower the default


@pytest.mark.parametrize("kind", sorted(NEVER_MATCHING))
def test_never_matching_hashes_cost_one_full_pbkdf2(pbkdf2_calls, kind):
    assert passwords.check_password(PASSWORD, NEVER_MATCHING[kind]) is False
    assert pbkdf2_calls == _one_full_check(), kind


def test_a_real_check_and_an_unencodable_password_cost_the_same(pbkdf2_calls):
    real = passwords.make_password(PASSWORD)
    pbkdf2_calls.clear()
    assert passwords.check_password("wrong password", real) is False
    assert pbkdf2_calls == _one_full_check()
    pbkdf2_calls.clear()
    assert passwords.check_password("lone \ud800 surrogate", real) is False
    assert pbkdf2_calls == _one_full_check()


def test_logging_in_to_unusable_or_foreign_accounts_costs_what_a_wrong_password_costs(db, pbkdf2_calls):
    """Through the login itself: unknown name, wrong password and every odd hash spend one full PBKDF2 each."""
    throttle = Throttle(db, sleep=lambda _seconds: None)
    with db.transaction() as conn:
        users_sql.insert_user(conn, username="real", password_hash=passwords.make_password(PASSWORD))
        for n, encoded in enumerate(NEVER_MATCHING.values()):
            users_sql.insert_user(conn, username=f"odd{n}", password_hash=encoded)
    for username in ["nobody", "real", *(f"odd{n}" for n in range(len(NEVER_MATCHING)))]:
        pbkdf2_calls.clear()
        with pytest.raises(AuthenticationFailed):
            accounts.authenticate(db, username, "wrong password", client=None, throttle=throttle)
        assert pbkdf2_calls == _one_full_check(), username


def test_a_mixed_script_look_alike_of_an_existing_name_cannot_be_registered(db):
    accounts.register(db, username="alice", password=PASSWORD, password_again=PASSWORD)
    for look_alike in ("\u0430lice", "alic\u0435", "\u0440at", "\u03bflivia", "ali\u0441e42"):  # Cyrillic, Greek
        with pytest.raises(ValidationError, match=MIXED):
            accounts.register(db, username=look_alike, password=PASSWORD, password_again=PASSWORD)
        with pytest.raises(ValidationError, match=MIXED):
            accounts.create_user(db, username=look_alike, password=PASSWORD)
    assert scalar(db, "SELECT count(*) FROM auth_user") == 1
    with pytest.raises(ValidationError) as info:
        accounts.register(db, username="\u0430lice", password=PASSWORD, password_again=PASSWORD)
    assert str(info.value) == (
        "Username mixes letters from different scripts (Cyrillic and Latin), so it could imitate another name; "
        "use letters of one script only."
    )


@pytest.mark.parametrize("name", ["алиса", "Алиса_1990", "山田たろう", "タロウ", "김민수", "ελένη", "noël.dupont"])
def test_names_in_one_script_are_still_welcome(db, name):
    assert accounts.register(db, username=name, password=PASSWORD, password_again=PASSWORD).username == name


def test_an_existing_django_user_with_a_mixed_name_can_still_log_in(db):
    with db.transaction() as conn:  # created in Django, which does not check scripts
        user_id = users_sql.insert_user(conn, username="\u0430lice", password_hash=passwords.make_password(PASSWORD))
    throttle = Throttle(db, sleep=lambda _seconds: None)
    assert accounts.authenticate(db, "\u0430lice", PASSWORD, throttle=throttle).id == user_id

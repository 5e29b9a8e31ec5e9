"""Django password hashes: ours verify in Django, Django's verify here, any iteration count."""

import pytest
from django.conf import settings as django_settings
from hypothesis import given, settings
from hypothesis import strategies as st

from exact import passwords

if not django_settings.configured:
    django_settings.configure(PASSWORD_HASHERS=["django.contrib.auth.hashers.PBKDF2PasswordHasher"])

from django.contrib.auth.hashers import PBKDF2PasswordHasher  # noqa: E402


@pytest.mark.real_hashing
def test_new_hashes_use_one_million_iterations_and_verify_in_django():
    encoded = passwords.make_password("s3cret-Pa55word")
    algorithm, iterations, salt, _ = encoded.split("$")
    assert (algorithm, iterations) == ("pbkdf2_sha256", "1000000")
    assert len(salt) == 22
    assert PBKDF2PasswordHasher().verify("s3cret-Pa55word", encoded)
    assert not PBKDF2PasswordHasher().verify("s3cret-Pa55words", encoded)


@pytest.mark.parametrize("iterations", [1, 1000, 260000, 390000, 600000])
def test_django_hashes_verify_here_at_any_iteration_count(iterations):
    encoded = PBKDF2PasswordHasher().encode("hunter2-but-longer", PBKDF2PasswordHasher().salt(), iterations)
    assert passwords.check_password("hunter2-but-longer", encoded)
    assert not passwords.check_password("hunter2-but-longe", encoded)


def test_same_salt_gives_the_same_hash_as_django():
    ours = passwords.make_password("päss wörd ✓", iterations=1234, salt="abcdefghijklmnopqrstuv")
    theirs = PBKDF2PasswordHasher().encode("päss wörd ✓", "abcdefghijklmnopqrstuv", 1234)
    assert ours == theirs


@pytest.mark.parametrize(
    "encoded",
    [
        "",
        "!unusable",
        "md5$abc$def",
        "pbkdf2_sha256$x$salt$hash",
        "pbkdf2_sha256$0$salt$hash",
        "pbkdf2_sha256$999999999$salt$hash",
        "argon2$argon2id$v=19$m=102400,t=2,p=8$c2FsdA$aGFzaA",
    ],
)
def test_malformed_or_foreign_hashes_never_match(encoded):
    assert not passwords.check_password("anything", encoded)


def test_needs_rehash_for_old_work_factor():
    assert passwords.needs_rehash(PBKDF2PasswordHasher().encode("x", "saltsaltsalt", 600000))
    assert not passwords.needs_rehash(passwords.make_password("x", iterations=passwords.DEFAULT_ITERATIONS))


@settings(max_examples=25, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_round_trip_matches_django_for_any_text(password):
    encoded = passwords.make_password(password, iterations=10)
    assert passwords.check_password(password, encoded)
    assert PBKDF2PasswordHasher().verify(password, encoded)

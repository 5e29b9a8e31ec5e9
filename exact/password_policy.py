"""Password rules: at least 8 characters, not the username, not a well-known password, not all digits."""

from __future__ import annotations

from functools import cache

from exact import PROJECT_ROOT
from exact.errors import ValidationError

MIN_LENGTH = 8
MAX_LENGTH = 4096  # hashing a megabyte-long "password" would be a cheap way to burn our CPU
COMMON_PASSWORDS_FILE = PROJECT_ROOT / "exact" / "data" / "common-passwords.txt"


@cache
def _common_passwords() -> frozenset[str]:
    lines = COMMON_PASSWORDS_FILE.read_text().splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip() and not line.startswith("#"))


def check_password_policy(password: str | None, *, username: str) -> None:
    password = password or ""
    if len(password) < MIN_LENGTH:
        raise ValidationError(f"Password must be at least {MIN_LENGTH} characters long.")
    if len(password) > MAX_LENGTH:
        raise ValidationError(f"Password must be at most {MAX_LENGTH} characters long.")
    try:
        password.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError("Password contains characters that cannot be stored.") from None
    if username and password.strip().lower() == username.strip().lower():
        raise ValidationError("Password must not be the same as the username.")
    if password.strip().lower() in _common_passwords():
        raise ValidationError("This password is too common; choose one that is harder to guess.")
    if password.isdigit():
        raise ValidationError("Password must not be entirely numeric.")

"""Django-compatible password hashes (``pbkdf2_sha256$<iterations>$<salt>$<base64 hash>``).

The primitive is the standard library's PBKDF2 (OpenSSL underneath); only Django's encoding is written here,
so hashes move freely between this app and the Django admin. Verified against Django's own hasher in tests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import string

ALGORITHM = "pbkdf2_sha256"
# Django 5.x's default; new hashes always use it. Verification accepts any iteration count.
DEFAULT_ITERATIONS = 1_000_000
# Django's salts: 22 characters from [a-zA-Z0-9], about 131 bits.
_SALT_CHARS = string.ascii_letters + string.digits
_SALT_LENGTH = 22
# Refuse absurd work factors in stored hashes (a hostile row must not pin a CPU for minutes).
_MAX_ITERATIONS = 20_000_000

UNUSABLE_PREFIX = "!"


def _pbkdf2(password: str, salt: str, iterations: int) -> str:
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations)
    return base64.b64encode(digest).decode("ascii").strip()


def make_password(password: str, *, iterations: int | None = None, salt: str | None = None) -> str:
    iterations = DEFAULT_ITERATIONS if iterations is None else iterations
    salt = salt or "".join(secrets.choice(_SALT_CHARS) for _ in range(_SALT_LENGTH))
    if "$" in salt:
        raise ValueError("salt must not contain '$'")
    return f"{ALGORITHM}${iterations}${salt}${_pbkdf2(password, salt, iterations)}"


def check_password(password: str, encoded: str) -> bool:
    """True when ``password`` matches ``encoded``. Unknown algorithms and unusable hashes never match.

    Every refusal without a real comparison (unusable ``!`` hash, foreign algorithm, malformed or absurd hash,
    unencodable password) still spends one full PBKDF2, so timing does not tell such accounts apart.
    """
    parsed = _parse(encoded)
    if parsed is None:
        burn_time_like_check(password)
        return False
    iterations, salt, expected = parsed
    try:
        computed = _pbkdf2(password, salt, iterations)
    except UnicodeEncodeError:  # lone surrogates: no stored password can contain them
        burn_time_like_check(password)
        return False
    return hmac.compare_digest(computed.encode(), expected.encode())


def _parse(encoded: str) -> tuple[int, str, str] | None:
    """(iterations, salt, hash) of a usable hash of ours, or None."""
    if not encoded or not isinstance(encoded, str) or encoded.startswith(UNUSABLE_PREFIX):
        return None
    parts = encoded.split("$", 3)
    if len(parts) != 4 or parts[0] != ALGORITHM:
        return None
    _, iterations_text, salt, expected = parts
    if not (iterations_text.isascii() and iterations_text.isdigit()):
        return None
    iterations = int(iterations_text)
    if not 0 < iterations <= _MAX_ITERATIONS:
        return None
    return iterations, salt, expected


def burn_time_like_check(password: str) -> None:
    """Spend the time a real check would, so an unknown username answers as slowly as a wrong password."""
    _pbkdf2(password.encode("utf-8", "replace").decode(), "x" * _SALT_LENGTH, DEFAULT_ITERATIONS)


def needs_rehash(encoded: str) -> bool:
    parts = encoded.split("$", 3)
    return len(parts) != 4 or parts[0] != ALGORITHM or parts[1] != str(DEFAULT_ITERATIONS)

"""Validators for text fields and numbers; each returns the cleaned value or raises ValidationError."""

from __future__ import annotations

import math
import re
import unicodedata
from urllib.parse import urlsplit

from exact.errors import ValidationError

# Django's UnicodeUsernameValidator: letters, digits and @/./+/-/_ only.
USERNAME_RE = re.compile(r"^[\w.@+-]+\Z")
# Deliberately simple: one @, something on each side, a dot in the domain, no spaces.
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+\Z")
CHALLENGE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*\Z")
# A plain decimal number; Python's float() would also take "1_0", "infinity" and friends.
# Scores beyond this make differences and charts overflow; no real metric comes near it.
MAX_SCORE_MAGNITUDE = 1e300
NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\Z")


def _has_control_chars(value: str) -> bool:
    return any(unicodedata.category(ch) == "Cc" and ch not in "\n\r\t" for ch in value)


def clean_text(
    value: str | None, *, field: str, max_length: int, required: bool = True, multiline: bool = False
) -> str:
    text = (value or "").strip()
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: PostgreSQL cannot store them
        raise ValidationError(f"{field} contains characters that cannot be stored.") from None
    if required and not text:
        raise ValidationError(f"{field} is required.")
    if len(text) > max_length:
        raise ValidationError(f"{field} must be at most {max_length} characters (it has {len(text)}).")
    if _has_control_chars(text) or (not multiline and ("\n" in text or "\r" in text)):
        raise ValidationError(f"{field} contains characters that are not allowed (control characters).")
    return text


# Japanese, Korean and Chinese are written with Han plus kana, hangul or bopomofo: one writing system each.
_HAN_SCRIPTS = frozenset({"CJK", "IDEOGRAPHIC"})
_SCRIPTS_WRITTEN_WITH_HAN = (
    frozenset({"HIRAGANA", "KATAKANA", "KATAKANA-HIRAGANA"}),
    frozenset({"HANGUL"}),
    frozenset({"BOPOMOFO"}),
)


def _letter_scripts(text: str) -> set[str]:
    """The scripts of the letters in ``text``, from the first word of each letter's Unicode name.

    "LATIN SMALL LETTER A" is LATIN, "CYRILLIC SMALL LETTER A" is CYRILLIC. Digits and @ . + - _ are not letters
    and so neutral. A letter whose name starts otherwise (e.g. "MODIFIER LETTER ...") counts as a script of its
    own, which errs towards refusing.
    """
    return {unicodedata.name(ch, "UNNAMED").split(" ", 1)[0] for ch in text if ch.isalpha()}


def _mixes_scripts(scripts: set[str]) -> bool:
    if len(scripts) <= 1:
        return False
    # Han alone, or Han with the kana, hangul or bopomofo of one language, is one writing system.
    others = scripts - _HAN_SCRIPTS
    return not any(others <= group for group in _SCRIPTS_WRITTEN_WITH_HAN)


def _script_label(script: str) -> str:
    return {"CJK": "Han", "IDEOGRAPHIC": "Han", "KATAKANA-HIRAGANA": "Kana"}.get(script, script.title())


def clean_username(value: str | None) -> str:
    # NFKC, as Django's normalize_username: "ｐａｔ" (fullwidth) is "pat", so nobody can register a look-alike.
    username = clean_text(unicodedata.normalize("NFKC", value or ""), field="Username", max_length=150)
    if not USERNAME_RE.match(username):
        raise ValidationError("Username may contain only letters, digits and @ . + - _ (no spaces).")
    # NFKC keeps Cyrillic "а" in "аlice": a name mixing scripts can pass for another user's, so one script only.
    scripts = _letter_scripts(username)
    if _mixes_scripts(scripts):
        names = " and ".join(sorted({_script_label(script) for script in scripts}))
        raise ValidationError(
            f"Username mixes letters from different scripts ({names}), so it could imitate another name; "
            "use letters of one script only."
        )
    return username


def clean_email(value: str | None, *, required: bool = False) -> str:
    email = clean_text(value, field="Email", max_length=254, required=required)
    if email and not EMAIL_RE.match(email):
        raise ValidationError("Email does not look like an email address.")
    return email


def clean_challenge_id(value: str | None, *, max_length: int) -> str:
    challenge_id = clean_text(value, field="Challenge id", max_length=max_length)
    if not CHALLENGE_ID_RE.match(challenge_id):
        raise ValidationError(
            "Challenge id may contain only letters, digits, '-' and '_', and must start with a letter or digit."
        )
    return challenge_id


REQUEST_KEY_MAX_LENGTH = 100
# Printable ASCII, no spaces: what the forms and the API send.
_REQUEST_KEY_RE = re.compile(rf"^[\x21-\x7e]{{1,{REQUEST_KEY_MAX_LENGTH}}}\Z")


def clean_request_key(key: str | None) -> str | None:
    """The idempotency key of a submit (None: none), refused unless 1-100 printable ASCII characters."""
    if key is None:
        return None
    if not isinstance(key, str) or not _REQUEST_KEY_RE.match(key):
        raise ValidationError("Invalid submission key.")
    return key


def clean_score(value: object) -> float:
    """A finite float from a number or its text. Higher is better; any finite double is accepted."""
    if isinstance(value, bool):
        raise ValidationError("Score must be a number.")
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:  # an int beyond the double range
            raise ValidationError("Score must be finite; this number is too large.") from None
    elif isinstance(value, str) or value is None:
        text = (value or "").strip()
        if not text:
            raise ValidationError("Score is required: enter a number such as 0.87.")
        if text.lower() in {"nan", "+nan", "-nan"}:
            raise ValidationError("Score must be a number; NaN is not allowed.")
        if text.lower().lstrip("+-") in {"inf", "infinity"}:
            raise ValidationError("Score must be finite; infinity is not allowed.")
        if not NUMBER_RE.match(text):
            raise ValidationError(f"Score must be a number such as 0.87, not {text[:40]!r}.")
        number = float(text)
    else:
        raise ValidationError("Score must be a number.")
    if math.isnan(number):
        raise ValidationError("Score must be a number; NaN is not allowed.")
    if math.isinf(number):
        raise ValidationError("Score must be finite; infinity is not allowed.")
    if abs(number) > MAX_SCORE_MAGNITUDE:
        raise ValidationError(f"Score must be between -{MAX_SCORE_MAGNITUDE:g} and {MAX_SCORE_MAGNITUDE:g}.")
    return number


NEXT_PATH_MAX_LENGTH = 2048


def safe_next(value: str | None) -> str:
    """``value`` when it is a path on this site ("/challenge?challenge=x"), else "/".

    Refused: anything not starting with a single "/" ("//evil.example" and "/\\evil" are other hosts to a
    browser), any backslash, control character or whitespace (browsers drop tabs and newlines, turning
    "/\\t/evil" into "//evil"), anything with a scheme or host, and overlong values.
    """
    if not value or len(value) > NEXT_PATH_MAX_LENGTH or not value.startswith("/") or value.startswith("//"):
        return "/"
    if "\\" in value or any(ch.isspace() or ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value

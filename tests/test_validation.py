"""Validators: every varchar limit at and one past its length, scores, usernames, passwords."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exact.errors import ValidationError
from exact.password_policy import check_password_policy
from exact.validation import clean_challenge_id, clean_email, clean_score, clean_text, clean_username


@pytest.mark.parametrize(("limit"), [100, 150, 254])
def test_text_at_limit_passes_and_one_past_fails(limit):
    assert clean_text("a" * limit, field="F", max_length=limit) == "a" * limit
    with pytest.raises(ValidationError, match=f"at most {limit}"):
        clean_text("a" * (limit + 1), field="F", max_length=limit)


def test_required_text_rejects_blank():
    with pytest.raises(ValidationError, match="required"):
        clean_text("   ", field="Title", max_length=10)


def test_single_line_text_rejects_newlines_and_control_characters():
    with pytest.raises(ValidationError):
        clean_text("a\nb", field="Title", max_length=10)
    with pytest.raises(ValidationError):
        clean_text("a\x00b", field="Title", max_length=10)
    assert clean_text("a\nb", field="Description", max_length=10, multiline=True) == "a\nb"


def test_sql_and_markup_are_just_text():
    hostile = "'; DROP TABLE api_score; -- <script>alert(1)</script>"
    assert clean_text(hostile, field="Title", max_length=100) == hostile


@pytest.mark.parametrize("name", ["alice", "a.b@c+d-e_f", "ü" * 150])
def test_usernames_django_accepts(name):
    assert clean_username(name) == name


@pytest.mark.parametrize("name", ["", "with space", "semi;colon", "a" * 151, "slash/name"])
def test_usernames_django_rejects(name):
    with pytest.raises(ValidationError):
        clean_username(name)


# Letters of one script each (NFKC-stable), and the characters that belong to no script.
SCRIPTS = {
    "latin": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZéüßøçñ",
    "cyrillic": "абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ",
    "greek": "αβγδεζηθικλμνξοπρστυφχψωΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡΣΤΥΦΧΨΩ",
    "japanese": "あいうえおかきくけこさしすせそアイウエオカキクケコー山田太郎東京花子",
    "korean": "김민수한국어서울박이",
    "arabic": "ابتثجحخدذرزسشصضطظعغفقكلمنهوي",
}
NEUTRAL = "0123456789_.@+-"
HAN = "山田太郎東京花子"  # shared by Japanese, Korean (hanja) and Chinese, so not an intruder among them


def _name_in(script: str, *, beyond_han: bool = False):
    letters = SCRIPTS[script]
    # beyond_han: at least one letter that is not Han, so the name's writing system is settled (kana, hangul...).
    needed = [ch for ch in letters if not (beyond_han and ch in HAN)]
    return st.text(alphabet=letters + NEUTRAL, min_size=1, max_size=40).filter(
        lambda name: any(ch in needed for ch in name)
    )


@given(st.sampled_from(sorted(SCRIPTS)).flatmap(_name_in))
def test_usernames_in_one_script_are_accepted_unchanged(name):
    assert clean_username(name) == name


@given(
    st.sampled_from([(a, b) for a in sorted(SCRIPTS) for b in sorted(SCRIPTS) if a != b]).flatmap(
        lambda pair: st.tuples(
            _name_in(pair[0], beyond_han=True),
            st.sampled_from([c for c in SCRIPTS[pair[1]] if c not in HAN]),
            st.integers(0, 40),
        )
    )
)
def test_one_letter_of_another_script_is_refused(case):
    name, intruder, position = case
    position = min(position, len(name))
    with pytest.raises(ValidationError, match="^Username mixes letters from different scripts"):
        clean_username(name[:position] + intruder + name[position:])


@given(st.text(max_size=60))
def test_any_accepted_username_is_clean_and_stable(value):
    try:
        name = clean_username(value)
    except ValidationError:
        return
    assert clean_username(name) == name and 0 < len(name) <= 150


@pytest.mark.parametrize(("name", "scripts"), [("\u0430lice", "Cyrillic and Latin"), ("pαss", "Greek and Latin")])
def test_mixed_script_look_alikes_are_refused_naming_the_scripts(name, scripts):
    with pytest.raises(ValidationError, match=rf"^Username mixes letters from different scripts \({scripts}\)"):
        clean_username(name)


def test_email_is_optional_but_checked():
    assert clean_email("") == ""
    assert clean_email("a@b.org") == "a@b.org"
    with pytest.raises(ValidationError):
        clean_email("not-an-email")
    with pytest.raises(ValidationError, match="at most 254"):
        clean_email("a" * 250 + "@b.org")


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-Infinity", "1e999", "abc", "", "1_000", "0x10", "1,5"])
def test_bad_scores_rejected(value):
    with pytest.raises(ValidationError):
        clean_score(value)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), True, None, [1]])
def test_bad_score_objects_rejected(value):
    with pytest.raises(ValidationError):
        clean_score(value)


@pytest.mark.parametrize(("text", "expected"), [("0.87", 0.87), ("-3", -3.0), ("+1e-3", 0.001), (" 42 ", 42.0)])
def test_good_scores(text, expected):
    assert clean_score(text) == expected


@given(st.floats(min_value=-1e300, max_value=1e300))
def test_any_finite_float_round_trips_through_its_text(value):
    assert clean_score(repr(value)) == value


@given(st.text(max_size=30))
def test_score_text_is_either_a_finite_number_or_refused(text):
    try:
        value = clean_score(text)
    except ValidationError:
        return
    assert math.isfinite(value)


@given(st.text(max_size=120))
def test_challenge_id_accepts_only_safe_ids(text):
    try:
        cleaned = clean_challenge_id(text, max_length=50)
    except ValidationError:
        return
    assert 1 <= len(cleaned) <= 50
    assert all(ch.isascii() and (ch.isalnum() or ch in "-_") for ch in cleaned)


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short", "at least 8"),
        ("alice-wonder", "same as the username"),
        ("password123", "too common"),
        ("12345678901", "too common|entirely numeric"),
        ("9081726354", "entirely numeric"),
    ],
)
def test_password_policy(password, message):
    with pytest.raises(ValidationError, match=message):
        check_password_policy(password, username="alice-wonder")


def test_password_policy_accepts_a_decent_password():
    check_password_policy("violet-otter-42-lamp", username="alice")


@pytest.mark.parametrize("value", ["1e301", "-1e308", 1e301, 10**400])
def test_scores_beyond_the_accepted_magnitude_are_refused(value):
    with pytest.raises(ValidationError, match="Score must be"):
        clean_score(value)

"""Hostile text: every text field at and one past its limit, Markdown/HTML/script, SQL metacharacters, characters a
database cannot store, and how all of it is shown (as text or safe Markdown, never as HTML) and exported (CSV).
"""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
import sqlalchemy as sa

from exact import accounts, intake, scoring
from exact.challenges import ChallengeForm, create_challenge, get_challenge, list_challenges, update_challenge
from exact.errors import AuthenticationFailed, ValidationError
from exact.scores import leaderboard, leaderboard_csv, submit_score
from exact.storage import UploadedFile
from tests.adversarial.conftest import H, N, W, npy
from tests.conftest import make_user
from tests.pages_helpers import log_in_state, run, scalar

GOOD_PASSWORD = "a long enough password"
XSS_TITLE = "<script>alert('t')</script> **bold** <img src=x onerror=alert(1)>"
XSS_DESCRIPTION = (
    "# Heading\n\n<script>alert('owned')</script>\n\n<iframe src=https://evil.example></iframe>\n\n"
    '<a href="javascript:alert(1)">click</a> [link](javascript:alert(2)) <b onmouseover=alert(3)>b</b>'
)
XSS_METHOD = '<img src=x onerror=alert("m")> **m**'
SQL_TEXTS = ["'; DROP TABLE api_score; --", "100% sure", "under_score", "back\\slash", 'double "quotes"', "$1 ::text"]


def _refused(call, message):
    with pytest.raises(ValidationError) as info:
        call()
    assert message in str(info.value), str(info.value)


# --- limits --------------------------------------------------------------------------------------------------------


def test_challenge_fields_at_and_past_their_limits(db, storage, cast):
    owner = cast.owner.id

    def create(title="T", description="d", challenge_id=""):
        return create_challenge(db, storage, owner, ChallengeForm(title, description, challenge_id), {})

    at_limit = create(title="T" * 100, description="D" * 50_000, challenge_id="c" * 50)
    assert (at_limit.title, at_limit.description, at_limit.challenge_id) == ("T" * 100, "D" * 50_000, "c" * 50)
    _refused(lambda: create(title="T" * 101), "Title must be at most 100 characters (it has 101).")
    _refused(lambda: create(description="D" * 50_001), "Description must be at most 50000 characters (it has 50001).")
    _refused(lambda: create(challenge_id="c" * 51), "Challenge id must be at most 50 characters (it has 51).")
    # Characters, not bytes: four-byte emoji and combining accents fill the columns exactly.
    create(title="😀" * 100, challenge_id="wide")
    assert get_challenge(db, "wide").title == "😀" * 100
    create(title="e\u0301" * 50, challenge_id="combined")
    assert get_challenge(db, "combined").title == "e\u0301" * 50
    # Surrounding spaces do not count (they are trimmed before the check).
    assert create(title=f"  {'S' * 100}  ", challenge_id="spaces").title == "S" * 100
    # Edits obey the same limits.
    _refused(
        lambda: update_challenge(db, storage, owner, "wide", ChallengeForm("T" * 101, "d"), {}),
        "Title must be at most 100 characters",
    )
    assert scalar(db, "SELECT count(*) FROM api_challenge") == 4


def test_a_django_challenge_id_of_100_characters_still_works(db, storage, cast):
    """The column allows 100 characters; ids that long come from Django and leave no room for file paths."""
    long_id = "d" * 100
    with db.transaction() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO api_challenge (challenge_id, title, description, created_at, mlmodel, dataset, xaimethod) "
                "VALUES (:c, 'Long', '', now(), '', '', '')"
            ),
            {"c": long_id},
        )
    assert submit_score(db, cast.participant.id, long_id, "0.5").challenge_id == long_id
    assert len(leaderboard(db, long_id).table) == 1
    _refused(
        lambda: update_challenge(
            db, storage, cast.owner.id, long_id, ChallengeForm("Long", "ok"), {"dataset": UploadedFile("d.csv", b"a\n")}
        ),
        "This challenge id is too long to store files under it",
    )
    assert not any(storage.root.rglob("*.csv"))
    assert update_challenge(db, storage, cast.owner.id, long_id, ChallengeForm("Longer", "ok"), {}).title == "Longer"


def test_account_fields_at_and_past_their_limits(db, cast):
    def register(**fields):
        values = {"username": "newbie", "password": GOOD_PASSWORD, "password_again": GOOD_PASSWORD, **fields}
        return accounts.register(db, **values)

    email = "e" * 242 + "@example.org"
    assert len(email) == 254
    user = register(username="u" * 150, first_name="F" * 150, last_name="L" * 150, email=email)
    assert (user.username, user.first_name, user.last_name, user.email) == ("u" * 150, "F" * 150, "L" * 150, email)
    _refused(lambda: register(username="u" * 151), "Username must be at most 150 characters (it has 151).")
    _refused(lambda: register(first_name="F" * 151), "First name must be at most 150 characters (it has 151).")
    _refused(lambda: register(last_name="L" * 151), "Last name must be at most 150 characters (it has 151).")
    _refused(lambda: register(email="e" + email), "Email must be at most 254 characters (it has 255).")
    _refused(lambda: register(password="p" * 4097, password_again="p" * 4097), "at most 4096 characters")
    pat = cast.participant.id
    assert accounts.update_profile(db, pat, first_name="F" * 150, last_name="L" * 150, email=email).email == email
    _refused(lambda: accounts.update_profile(db, pat, first_name="F" * 151, last_name="", email=""), "First name")
    _refused(lambda: accounts.update_profile(db, pat, first_name="", last_name="", email="x" + email), "Email")
    assert scalar(db, "SELECT count(*) FROM auth_user WHERE username = 'newbie'") == 0


def test_attribution_fields_at_and_past_their_limits(db, storage, world):
    data = npy(np.ones((N, H, W)))
    user = world.cast.other.id

    def submit(method="m", description="", url="", key=None):
        return intake.submit_attributions(
            db,
            storage,
            user,
            "gt",
            UploadedFile("a.npy", data),
            method_name=method,
            description=description,
            url=url,
            request_key=key,
        )

    url = "https://example.org/" + "p" * 480
    assert len(url) == 500
    stored = submit(method="M" * 100, description="D" * 5000, url=url, key="limits")
    assert (stored.method_name, stored.description, stored.url) == ("M" * 100, "D" * 5000, url)
    _refused(lambda: submit(method="M" * 101), "Method name must be at most 100 characters (it has 101).")
    _refused(lambda: submit(description="D" * 5001), "Description must be at most 5000 characters (it has 5001).")
    _refused(lambda: submit(url=url + "p"), "Paper/code URL must be at most 500 characters (it has 501).")
    _refused(lambda: submit(method="   "), "Method name is required.")
    _refused(lambda: submit(key="k" * 101), "Invalid submission key.")
    for bad_url in (
        "javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "ftp://example.org/x",
        "//evil.example/x",
        "https://",
        "file:///etc/passwd",
        "vbscript:msgbox(1)",
        "https://example.org/) [Log in again](https://evil.example",  # one address only: no whitespace
        "https://example.org/\thttps://evil.example",
    ):
        _refused(
            lambda u=bad_url: submit(url=u), "Paper/code URL must be one web address starting with http:// or https://."
        )
    assert scalar(db, "SELECT count(*) FROM exact_submission WHERE kind = 'participant'") == 2  # world's + limits


def _text_field_calls(db, storage, world, bad):
    owner, user = world.cast.owner.id, world.cast.other.id
    data = npy(np.ones((N, H, W)))
    return {
        "title": lambda: create_challenge(db, storage, owner, ChallengeForm(bad, "d", "bad"), {}),
        "description": lambda: create_challenge(db, storage, owner, ChallengeForm("t", bad, "bad"), {}),
        "first name": lambda: accounts.update_profile(db, user, first_name=bad, last_name="", email=""),
        "method name": lambda: intake.submit_attributions(
            db, storage, user, "gt", UploadedFile("a.npy", data), method_name=bad
        ),
        "url": lambda: intake.submit_attributions(
            db, storage, user, "gt", UploadedFile("a.npy", data), method_name="m", url=f"https://e.org/{bad}"
        ),
    }


def test_control_characters_are_refused(db, storage, snapshot, world):
    """NUL cannot be stored by PostgreSQL; other control characters have no business in text fields."""
    before = snapshot()
    for bad in ("a\x00b", "a\x07b", "a\x1bb", "a\x7fb"):
        for call in _text_field_calls(db, storage, world, bad).values():
            with pytest.raises(ValidationError, match="control characters"):
                call()
    before.assert_unchanged("control characters")


def test_text_that_cannot_be_encoded_is_refused_cleanly(db, storage, snapshot, world):
    """A lone surrogate cannot be encoded as UTF-8: a clear refusal, not an encoding error from the driver."""
    before = snapshot()
    for bad in ("x\ud800y", "x\udfffy"):
        for field, call in _text_field_calls(db, storage, world, bad).items():
            try:
                call()
            except ValidationError:
                continue
            except Exception as exc:  # noqa: BLE001 - the point is which exception
                pytest.fail(f"{field}: {type(exc).__name__}: {exc}")
            pytest.fail(f"{field}: stored {bad!r}")
    before.assert_unchanged("surrogates")


# --- stored verbatim, searched literally --------------------------------------------------------------------------


def test_markup_and_sql_metacharacters_are_stored_verbatim(db, storage, world):
    owner = world.cast.owner.id
    for index, text in enumerate([XSS_TITLE, *SQL_TEXTS]):
        created = create_challenge(db, storage, owner, ChallengeForm(text, f"about {text}", f"meta{index}"), {})
        assert (created.title, created.description) == (text, f"about {text}")
        assert get_challenge(db, f"meta{index}").title == text
    submission = intake.submit_attributions(
        db,
        storage,
        world.cast.other.id,
        "gt",
        UploadedFile("a.npy", npy(np.ones((N, H, W)))),
        method_name=XSS_METHOD,
        description=XSS_DESCRIPTION,
        url="https://example.org/?q=<script>'--",
    )
    row = intake.get_submission_row(db, submission.id)
    assert (row.method_name, row.description, row.url) == (
        XSS_METHOD,
        XSS_DESCRIPTION,
        "https://example.org/?q=<script>'--",
    )
    assert scalar(db, "SELECT count(*) FROM api_score") >= 1  # the table is still there
    _refused(
        lambda: accounts.register(db, username="o'brien", password=GOOD_PASSWORD, password_again=GOOD_PASSWORD),
        "Username may contain only letters, digits and @ . + - _",
    )
    for username in ("' OR '1'='1", "pat' --", "pat\\", "%", "_at"):
        with pytest.raises(AuthenticationFailed):
            accounts.authenticate(db, username, "correct horse battery")


def test_search_treats_wildcards_and_quotes_literally(db, storage, cast):
    owner = cast.owner.id
    for index, text in enumerate(SQL_TEXTS):
        create_challenge(db, storage, owner, ChallengeForm(text, "plain", f"s{index}"), {})
    create_challenge(db, storage, owner, ChallengeForm("Ordinary", "nothing special", "ordinary"), {})

    def found(search):
        return sorted(c.title for c in list_challenges(db, search=search))

    assert found("%") == ["100% sure"]
    assert found("_") == ["'; DROP TABLE api_score; --", "under_score"]
    assert found("\\") == ["back\\slash"]
    assert found("'; DROP") == ["'; DROP TABLE api_score; --"]
    assert found('"') == ['double "quotes"']
    assert found("$1") == ["$1 ::text"]
    assert found("%_%") == []
    assert len(found("")) == len(SQL_TEXTS) + 1
    assert found("x" * 10_000) == []  # long searches are cut, not an error
    assert scalar(db, "SELECT count(*) FROM api_score") == 0


def test_a_search_with_a_nul_character_finds_nothing_instead_of_failing(db, storage, cast):
    create_challenge(db, storage, cast.owner.id, ChallengeForm("Ordinary", "d", "ordinary"), {})
    assert list_challenges(db, search="ord\x00inary").items == []


# --- CSV export ---------------------------------------------------------------------------------------------------


def test_csv_export_neutralises_formulas_in_every_text_column(db, storage, private, world):
    """Usernames may start with + - @ and method names with anything: no text cell may start a formula."""
    for index, (username, method) in enumerate(
        [
            ("+cmd", '=HYPERLINK("https://evil.example","open")'),
            ("-2+3", "+1+1"),
            ("@SUM", "@A1"),
            ("plain", "\t=1+1"),
            ("alsoplain", "-cmd|' /C calc'!A0"),
        ]
    ):
        user = make_user(db, username)
        data = npy(np.random.default_rng(index).normal(size=(N, H, W)))
        submission = intake.submit_attributions(
            db, storage, user.id, "gt", UploadedFile("a.npy", data), method_name=method
        )
        assert scoring.process_submission(db, storage, private, submission.id).status == "done"
    for show_all in (False, True):
        text = leaderboard_csv(db, leaderboard(db, "gt", show_all=show_all)).decode()
        table = list(csv.DictReader(io.StringIO(text)))
        assert len(table) >= 5
        for row in table:
            for column, cell in row.items():
                try:
                    float(cell)
                    continue  # numbers, negative ones included, are data
                except ValueError:
                    pass
                assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (column, cell)


# --- rendering (AppTest) ------------------------------------------------------------------------------------------


def _raw_html_nodes(at):
    """Nodes that could render raw HTML: st.html, components, Markdown with HTML allowed."""
    found = []
    for node in at._tree:
        kind = getattr(node, "type", "")
        if kind in {"html", "iframe", "component_instance"}:
            found.append(kind)
        proto = getattr(node, "proto", None)
        if proto is not None and getattr(proto, "allow_html", False):
            found.append(f"{kind} with allow_html: {getattr(proto, 'body', '')[:60]}")
    return found


def _texts(at):
    return [str(getattr(node, "value", "")) for node in at._tree if hasattr(node, "proto")]


def test_hostile_text_is_rendered_as_text_on_every_page(app, db, storage, private, world):
    cast = world.cast
    create_challenge(db, storage, cast.owner.id, ChallengeForm(XSS_TITLE, XSS_DESCRIPTION, "xss"), {})
    submit_score(db, cast.participant.id, "xss", "0.5")
    submit_score(db, cast.other.id, "xss", "0.75")
    submission = intake.submit_attributions(
        db,
        storage,
        cast.participant.id,
        "gt",
        UploadedFile("a.npy", npy(np.ones((N, H, W)) + np.eye(H, W))),
        method_name=XSS_METHOD,
        description=XSS_DESCRIPTION,
        url="https://example.org/)[Log-in-again](https://evil.example",  # Markdown link syntax in one address
    )
    assert scoring.process_submission(db, storage, private, submission.id).status == "done"

    at = app()
    log_in_state(at, db, cast.owner.id)  # the owner sees every page, the result page included
    run(at)
    visits = [
        ("app_pages/home.py", {}),
        ("app_pages/challenges.py", {}),
        ("app_pages/challenge.py", {"challenge": "xss"}),
        ("app_pages/leaderboard.py", {"challenge": "xss"}),
        ("app_pages/leaderboard.py", {"challenge": "gt"}),
        ("app_pages/result.py", {"submission": str(submission.id)}),
        ("app_pages/manage_challenge.py", {"challenge": "xss"}),
    ]
    for page, params in visits:
        at.query_params.clear()
        for name, value in params.items():
            at.query_params[name] = value
        run(at.switch_page(page))
        assert not at.error, (page, [e.value for e in at.error])
        assert _raw_html_nodes(at) == [], page
        if page == "app_pages/challenge.py":
            assert at.title[0].value == XSS_TITLE
            assert XSS_DESCRIPTION in _texts(at)
        if page == "app_pages/result.py":
            assert at.title[0].value == XSS_METHOD
            assert XSS_DESCRIPTION in _texts(at)

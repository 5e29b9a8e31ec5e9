"""First-run set-up: on a database without a superuser, the first visitor must not become administrator.

The server prints a one-time set-up token on its console and in its log; the set-up page creates the administrator
only with it. The attacker here is a visitor who reaches a fresh server before its operator does and can use
the page and the address bar, but not read the server's console.
"""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from exact import accounts
from exact.accounts import SetupTokenRefused
from exact.errors import PermissionDenied
from tests.pages_helpers import SUPERUSER_PAGES, click, offered_pages, one, run, scalar, title, values

PASSWORD = "a long enough password"
CONSOLE_LINE = re.compile(
    r"^Exact set-up token: (\S+) \(open http://127\.0\.0\.1:8501/\?setup_token=(\S+)\)$", re.MULTILINE
)
NO_TOKEN = re.compile(r"^Enter the set-up token\. The server printed it on its console and in its log")
WRONG_TOKEN = re.compile(r"^That set-up token is not valid\. Copy the latest one from the server's console or log")


def _console_token(capsys) -> str:
    """The token as the operator reads it on the server's console."""
    found = CONSOLE_LINE.findall(capsys.readouterr().out)
    assert len(found) == 1, found  # printed once, not on every run
    token, in_link = found[0]
    assert token == in_link
    return token


def _fill(at, token: str | None, username: str = "boss") -> None:
    if token is not None:
        one(at.text_input, "Set-up token").input(token)
    one(at.text_input, "Administrator username").input(username)
    one(at.text_input, "Password").input(PASSWORD)
    one(at.text_input, "Password again").input(PASSWORD)


def test_setup_without_or_with_a_wrong_token_creates_no_administrator(app, db, capsys):
    at = run(app())
    assert title(at) == "Welcome to Exact"
    token = _console_token(capsys)
    # The page explains where the token is and the command-line alternative, and never shows the token itself.
    [explanation] = values(at.info)
    assert "console" in explanation and "log" in explanation
    assert "python -m exact create-user --superuser" in explanation
    assert one(at.text_input, "Set-up token").value == ""
    page_text = " ".join(values(at.markdown) + values(at.info) + values(at.title))
    assert token not in page_text

    _fill(at, None)
    click(at, "Create administrator")
    assert len(at.error) == 1 and NO_TOKEN.match(at.error[0].value), values(at.error)
    assert scalar(db, "SELECT count(*) FROM auth_user") == 0

    for guess in ("   ", "wrong", token[:-1], token + "x", token.upper(), token.swapcase(), "é" * len(token)):
        one(at.text_input, "Set-up token").input(guess)
        click(at, "Create administrator")
        expected = NO_TOKEN if not guess.strip() else WRONG_TOKEN
        assert len(at.error) == 1 and expected.match(at.error[0].value), (guess, values(at.error))
        assert scalar(db, "SELECT count(*) FROM auth_user") == 0, guess
        assert offered_pages(at) == {"app_pages/setup.py"}

    # A guess in the address bar is only ever compared, never trusted.
    forged = app()
    forged.query_params["setup_token"] = "guessed"
    run(forged)
    _fill(forged, None)
    click(forged, "Create administrator")
    assert WRONG_TOKEN.match(forged.error[0].value) and scalar(db, "SELECT count(*) FROM auth_user") == 0

    # The operator, with the token from the console, gets in.
    one(at.text_input, "Set-up token").input(token)
    click(at, "Create administrator")
    assert not at.error, values(at.error)
    assert scalar(db, "SELECT count(*) FROM auth_user WHERE is_superuser AND username = 'boss'") == 1
    assert offered_pages(at) == SUPERUSER_PAGES


def test_the_console_link_fills_in_the_token(app, db, capsys):
    at = app()
    at.query_params["setup_token"] = accounts.setup_token()  # the link printed on the console
    run(at)
    token = _console_token(capsys)
    assert one(at.text_input, "Set-up token").value == token
    assert not at.info  # nothing to explain: the link carried the token
    _fill(at, None, username="ada")
    click(at, "Create administrator")
    assert not at.error, values(at.error)
    assert scalar(db, "SELECT count(*) FROM auth_user WHERE is_superuser AND username = 'ada'") == 1
    assert "setup_token" not in at.query_params  # spent, and kept out of the address bar


def test_the_service_requires_the_token_and_spends_it(db):
    def create(token, username="boss"):
        return accounts.create_first_admin(
            db, username=username, password=PASSWORD, password_again=PASSWORD, setup_token=token
        )

    for token in (None, "", "not the token"):
        with pytest.raises(SetupTokenRefused):
            create(token)
    assert isinstance(SetupTokenRefused("x"), PermissionDenied)
    assert scalar(db, "SELECT count(*) FROM auth_user") == 0

    spent = accounts.setup_token()
    assert accounts.setup_token() == spent  # one per process until used
    assert create(spent).is_superuser
    # Set-up reopens (the superuser is deleted in Django): the old token is spent, a new one is issued.
    with db.transaction() as conn:
        conn.execute(sa.text("DELETE FROM auth_user"))
    assert accounts.needs_first_admin(db)
    with pytest.raises(SetupTokenRefused, match="not valid"):
        create(spent, username="late")
    fresh = accounts.setup_token()
    assert fresh != spent and len(fresh) >= 40  # token_urlsafe(32): 256 random bits
    assert create(fresh, username="late").username == "late"

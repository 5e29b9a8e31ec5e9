"""The profile page's API tokens section, through Streamlit's AppTest running app.py against a real scratch database.

A token is shown once (in the run that created it), stored only as its SHA-256, listed with its last use and
revocable; bad input is refused with the service's message; nobody sees another user's tokens. The rules are
exact/api_tokens.py's (tests/test_api_tokens.py); these tests check what the page shows and sends.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from exact import api_tokens
from exact.errors import InvalidToken
from tests.conftest import make_user
from tests.pages_helpers import REPO, click, log_in_state, messages, offered_pages, one, rows, run, scalar, values

READ_LABEL = "read: your submissions, your remaining submissions and your results"
SUBMIT_LABEL = "submit: scores and attribution uploads"
TOKEN_RE = re.compile(r"exact_[A-Za-z0-9_-]{43}")


@pytest.fixture
def people(db):
    """The superuser closes first-run set-up; pat and bob are participants."""
    return {
        "superuser": make_user(db, "root", superuser=True),
        "pat": make_user(db, "pat"),
        "bob": make_user(db, "bob"),
    }


def _profile(app, db, user):
    at = app()
    log_in_state(at, db, user.id)
    run(at)
    return run(at.switch_page("app_pages/profile.py"))


def _create(at, name: str, *, days: int | None = None, read: bool = True, submit: bool = True):
    one(at.text_input, "Token name").input(name)
    if days is not None:
        one(at.selectbox, "Expires after").set_value(days)
    one(at.checkbox, READ_LABEL).set_value(read)
    one(at.checkbox, SUBMIT_LABEL).set_value(submit)
    return click(at, "Create token")


def _secrets_shown(at) -> list[str]:
    """Every whole token anywhere on the page (code blocks, messages, Markdown, captions, tables)."""
    texts = values(at.code) + values(at.markdown) + values(at.caption)
    texts += [m for kind in messages(at).values() for m in kind]
    texts += [at.dataframe[0].value.to_csv()] if at.dataframe else []
    return [found for text in texts for found in TOKEN_RE.findall(text)]


def _table(at) -> list[dict]:
    assert len(at.dataframe) == 1, "one table of tokens"
    return at.dataframe[0].value.to_dict("records")


def _today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


def test_a_new_token_is_shown_once_and_only_its_hash_is_stored(app, db, people):
    pat = people["pat"]
    at = _profile(app, db, pat)
    assert "API tokens" in values(at.subheader)
    assert "You have no API tokens yet." in values(at.caption) and not at.dataframe
    # The defaults: 90 days, both scopes.
    assert one(at.selectbox, "Expires after").value == 90
    assert one(at.selectbox, "Expires after").options == [f"{d} days" for d in api_tokens.EXPIRY_DAYS]
    assert one(at.checkbox, READ_LABEL).value is True and one(at.checkbox, SUBMIT_LABEL).value is True

    _create(at, "laptop")
    assert not at.error, values(at.error)
    codes = [c.value for c in at.code]
    assert len(codes) == 1 and TOKEN_RE.fullmatch(codes[0]), codes
    secret = codes[0]
    assert _secrets_shown(at) == [secret]  # in its code block and nowhere else
    (success,) = values(at.success)
    assert success.startswith("Created token **laptop** (read, submit), valid until ")
    (warning,) = values(at.warning)
    assert "will not be shown again" in warning
    assert "export EXACT_TOKEN=" in warning and "~/.config/exact/token" in warning
    assert secret not in repr(at.session_state.to_dict())

    # It works, as pat, with both scopes; the database holds its SHA-256 and its first characters only.
    who = api_tokens.authenticate(db, secret)
    assert who.user.id == pat.id and who.scopes == {"read", "submit"}
    stored = rows(
        db,
        "SELECT user_id, name, token_hash, prefix, scopes, expires_at - created_at AS lifetime FROM exact_api_token",
    )
    assert stored == [
        {
            "user_id": pat.id,
            "name": "laptop",
            "token_hash": hashlib.sha256(secret.encode()).hexdigest(),
            "prefix": secret[:12],
            "scopes": ["read", "submit"],
            "lifetime": pytest.approx(timedelta(days=90), abs=timedelta(seconds=5)),
        }
    ]
    assert secret not in scalar(db, "SELECT string_agg(row_to_json(t)::text, '') FROM exact_api_token t")

    # Listed in the same run, before its first use.
    (row,) = _table(at)
    assert row == {
        "name": "laptop",
        "prefix": f"{secret[:12]}…",
        "scopes": "read, submit",
        "created": row["created"],
        "expires": row["expires"],
        "last used": "never",
        "status": "active",
    }
    assert row["created"].startswith(_today())
    assert row["expires"].startswith((datetime.now(UTC) + timedelta(days=90)).strftime("%Y-%m-%d"))

    # The next run (any click, a rerun) no longer shows it; the table now has its last use (the authenticate above).
    run(at)
    assert not at.code and _secrets_shown(at) == []
    assert not at.success and not at.warning
    (row,) = _table(at)
    assert row["last used"].startswith(_today()) and row["last used"] != "never"
    # Nor does a reload (a fresh session of pat's).
    again = _profile(app, db, pat)
    assert not again.code and _secrets_shown(again) == []
    assert [r["name"] for r in _table(again)] == ["laptop"]


def test_expiry_and_scopes_are_what_was_chosen(app, db, people):
    at = _profile(app, db, people["pat"])
    _create(at, "read only", days=7, submit=False)
    assert not at.error, values(at.error)
    who = api_tokens.authenticate(db, at.code[0].value)
    assert who.scopes == {"read"}
    assert rows(db, "SELECT scopes, expires_at - created_at AS lifetime FROM exact_api_token") == [
        {"scopes": ["read"], "lifetime": pytest.approx(timedelta(days=7), abs=timedelta(seconds=5))}
    ]
    assert _table(at)[0]["scopes"] == "read"


def test_revoking_a_token_ends_it(app, db, people):
    at = _profile(app, db, people["pat"])
    _create(at, "laptop")
    secret = at.code[0].value
    _create(at, "cluster")
    other = at.code[0].value
    assert other != secret
    assert [r["name"] for r in _table(at)] == ["cluster", "laptop"]  # newest first

    click(at, f"Revoke laptop ({secret[:12]}…)")
    assert values(at.success) == ["Revoked token **laptop**: it no longer works."]
    with pytest.raises(InvalidToken):
        api_tokens.authenticate(db, secret)
    assert api_tokens.authenticate(db, other).user.id == people["pat"].id  # the other one still works
    statuses = {r["name"]: r["status"] for r in _table(at)}
    assert statuses == {"cluster": "active", "laptop": "revoked"}
    revoke_buttons = [b.label for b in at.button if b.label.startswith("Revoke ")]
    assert revoke_buttons == [f"Revoke cluster ({other[:12]}…)"]  # none for a revoked token
    assert scalar(db, "SELECT revoked_at IS NOT NULL FROM exact_api_token WHERE name = 'laptop'")

    run(at)  # the confirmation is shown once
    assert not at.success
    assert {r["name"]: r["status"] for r in _table(at)} == statuses


def test_a_token_revoked_elsewhere_shows_as_revoked_without_a_button(app, db, people):
    pat = people["pat"]
    new = api_tokens.create_token(db, pat.id, name="laptop", scopes=["read"], days=30)
    at = _profile(app, db, pat)
    api_tokens.revoke_token(db, pat.id, new.token.id)  # e.g. in another tab, before this tab's click
    click(at, f"Revoke laptop ({new.token.prefix}…)")
    assert not at.error and not at.success  # the click's run lists it as revoked: nothing left to do
    assert {r["name"]: r["status"] for r in _table(at)} == {"laptop": "revoked"}
    assert not [b for b in at.button if b.label.startswith("Revoke ")]


@pytest.mark.parametrize(
    ("name", "read", "submit", "message"),
    [
        ("laptop", False, False, "Choose at least one scope (read, submit)."),
        ("", True, True, "Token name is required."),
        ("   ", True, False, "Token name is required."),
        ("line\nbreak", True, True, "Token name contains characters that are not allowed (control characters)."),
    ],
)
def test_bad_input_shows_the_message_and_creates_nothing(app, db, people, name, read, submit, message):
    at = _profile(app, db, people["pat"])
    _create(at, name, read=read, submit=submit)
    assert values(at.error) == [message]
    assert not at.code and not at.success and _secrets_shown(at) == []
    assert scalar(db, "SELECT count(*) FROM exact_api_token") == 0
    assert "You have no API tokens yet." in values(at.caption)


def test_the_live_token_limit_is_the_services(app, db, people):
    pat = people["pat"]
    for n in range(api_tokens.MAX_LIVE_TOKENS):
        api_tokens.create_token(db, pat.id, name=f"t{n}", scopes=["read"], days=7)
    at = _profile(app, db, pat)
    _create(at, "one too many")
    assert values(at.error) == [f"You already have {api_tokens.MAX_LIVE_TOKENS} active tokens: revoke one first."]
    assert not at.code
    assert scalar(db, "SELECT count(*) FROM exact_api_token") == api_tokens.MAX_LIVE_TOKENS


def test_nobody_sees_another_users_tokens(app, db, people):
    pat, bob = people["pat"], people["bob"]
    bobs = api_tokens.create_token(db, bob.id, name="bobs-box", scopes=["read", "submit"], days=30)
    at = _profile(app, db, pat)
    assert not at.dataframe and "You have no API tokens yet." in values(at.caption)
    _create(at, "laptop")
    assert [r["name"] for r in _table(at)] == ["laptop"]
    page = " ".join(values(at.markdown) + values(at.caption) + [b.label for b in at.button])
    assert "bobs-box" not in page and bobs.token.prefix not in page + _table(at)[0]["prefix"]
    assert api_tokens.authenticate(db, bobs.secret).user.id == bob.id  # untouched

    bobs_page = _profile(app, db, bob)
    assert [r["name"] for r in _table(bobs_page)] == ["bobs-box"]
    assert [b.label for b in bobs_page.button if b.label.startswith("Revoke ")] == [
        f"Revoke bobs-box ({bobs.token.prefix}…)"
    ]


def test_a_visitor_gets_the_login_prompt_not_the_tokens(app, db, people, monkeypatch):
    api_tokens.create_token(db, people["pat"].id, name="laptop", scopes=["read"], days=30)
    # Through the app: the profile page is not offered to visitors; a deep link to it shows the login form there.
    at = app()
    at.switch_page("app_pages/profile.py")
    run(at)
    assert "app_pages/profile.py" not in offered_pages(at) and "app_pages/login.py" in offered_pages(at)
    assert "API tokens" not in values(at.subheader) and not at.dataframe and not at.code
    assert len(at.get("form")) == 1 and [b.label for b in at.button] == ["Log in"]  # the login form, nothing else
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("app_pages/profile.py")
    # The page itself, run with nobody logged in (as if reached without the gate): the login prompt, then it stops.
    # (Run alone there is no navigation for its "Log in" link to point into, so the link is recorded instead.)
    links = []
    monkeypatch.setattr(st, "page_link", lambda page, **kw: links.append((page, kw.get("label"))))
    page = AppTest.from_file(str(REPO / "app_pages" / "profile.py"), default_timeout=30)
    page.session_state["current_user"] = None
    page.run()
    assert not page.exception, [e.value for e in page.exception]
    assert values(page.info) == ["Please log in to see your profile."]
    assert links == [("app_pages/login.py", "Log in")]
    assert "API tokens" not in values(page.subheader) and not page.get("form") and not page.dataframe

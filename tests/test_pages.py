"""Every page for every role, through Streamlit's AppTest running app.py against a real scratch database.

The app reads DATABASE_URL / EXACT_MEDIA_ROOT / EXACT_SECRET_KEY from the environment; the ``app_env`` fixture points
them at this test's scratch database (created by conftest before the monkeypatch, so conftest's own server choice is
untouched) and empties Streamlit's resource caches so no test sees another's database.

The pages live in app_pages/, not pages/: Streamlit treats a folder literally named pages/ beside the main script
as its legacy automatic navigation and would run a deep-linked page file without app.py's auth gate.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
import streamlit as st

from db.database import Database
from exact import accounts, passwords
from exact.challenges import ChallengeForm, create_challenge
from exact.errors import AuthenticationFailed
from exact.scores import submit_score
from exact.storage import MediaStorage, UploadedFile
from tests.conftest import make_user
from tests.pages_helpers import (
    ALL_PAGES,
    ORGANISER_PAGES,
    PAGE_TITLES,
    PARTICIPANT_PAGES,
    SUPERUSER_PAGES,
    VISITOR_PAGES,
    click,
    goto,
    log_in_state,
    offered_pages,
    one,
    rows,
    run,
    scalar,
    title,
    values,
)

PASSWORD = "correct horse battery"
SCRIPT_DESCRIPTION = "Intro with **bold** text.\n\n<script>alert('owned')</script>\n\n<b>not bold</b>"


# --- fixtures ----------------------------------------------------------------------------------------------------


@pytest.fixture
def people(db):
    """One user of each role, plus an organiser by permission only; the superuser also closes first-run set-up."""
    admin = make_user(db, "root", superuser=True)
    organiser = make_user(db, "olivia", staff=True)
    participant = make_user(db, "pat")
    permitted = make_user(db, "perry")
    with db.transaction() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO auth_user_user_permissions (user_id, permission_id) SELECT :u, p.id "
                "FROM auth_permission p JOIN django_content_type ct ON ct.id = p.content_type_id "
                "WHERE ct.app_label = 'api' AND p.codename = 'add_challenge'"
            ),
            {"u": permitted.id},
        )
    return {"superuser": admin, "organiser": organiser, "participant": participant, "permitted": permitted}


@pytest.fixture
def world(db, media_root, people):
    """Two challenges (one with files and a <script> in its description) and a few scores."""
    storage = MediaStorage(media_root, max_bytes=1024 * 1024)
    organiser = people["organiser"].id
    files = {
        "dataset": UploadedFile("data.csv", b"a,b\n1,2\n"),
        "model": UploadedFile("model.json", b"{}"),
        "xai": UploadedFile("template.py", b"def explain(model, x):\n    pass\n"),
    }
    tris = create_challenge(
        db, storage, organiser, ChallengeForm("XAI-TRIS linear", SCRIPT_DESCRIPTION, "tris-linear"), files
    )
    credit = create_challenge(
        db, storage, organiser, ChallengeForm("Credit attribution", "Tabular *credit* data.", "credit"), {}
    )
    alice = make_user(db, "alice")
    bob = make_user(db, "bob")
    carol = make_user(db, "carol")
    for user, score in ((alice, 0.9), (alice, 0.5), (bob, 0.7), (carol, 0.95)):
        submit_score(db, user.id, tris.challenge_id, score)
    return {"tris": tris, "credit": credit}


def _login(at, db, user) -> str:
    return log_in_state(at, db, user.id)


# --- navigation per role ------------------------------------------------------------------------------------------

ROLE_PAGES = {
    "visitor": VISITOR_PAGES,
    "participant": PARTICIPANT_PAGES,
    "organiser": ORGANISER_PAGES,
    "permitted": ORGANISER_PAGES,
    "superuser": SUPERUSER_PAGES,
}
ROLE_CAPTION = {
    "visitor": "Browsing as a visitor. Log in to submit.",
    "participant": "Logged in as **pat** (participant)",
    "organiser": "Logged in as **olivia** (organiser)",
    "permitted": "Logged in as **perry** (organiser)",
    "superuser": "Logged in as **root** (administrator)",
}


@pytest.mark.parametrize("role", list(ROLE_PAGES))
def test_every_offered_page_renders_for_every_role(app, db, world, people, role):
    at = app()
    if role != "visitor":
        _login(at, db, people[role])
    run(at)
    assert offered_pages(at) == ROLE_PAGES[role]
    assert values(at.sidebar.caption) == [ROLE_CAPTION[role]]
    assert title(at) == "Exact"  # home is the default page

    for page in sorted(ROLE_PAGES[role] - {"app_pages/logout.py"}):
        goto(at, page)
        expected = PAGE_TITLES.get(page, world["credit"].title)  # challenge.py: the newest challenge
        assert title(at) == expected, page
        assert not at.error, (page, values(at.error))
        assert offered_pages(at) == ROLE_PAGES[role]  # browsing does not change what is offered

    for page in sorted(ALL_PAGES - ROLE_PAGES[role]):
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page(page)  # not in this role's navigation: there is no way to open it


def test_setup_page_is_offered_only_while_no_superuser_exists(app, db):
    make_user(db, "pat")  # ordinary users do not close set-up
    at = run(app())
    assert offered_pages(at) == {"app_pages/setup.py"}
    assert title(at) == "Welcome to Exact"
    # A stale login in the session is forgotten while set-up is open.
    at.session_state["auth_user_id"] = 1
    at.session_state["auth_session_id"] = "whatever"
    run(at)
    assert "auth_user_id" not in at.session_state


@pytest.mark.parametrize("how", ["session revoked", "deactivated elsewhere"])
def test_revoked_session_or_deactivated_user_falls_back_to_visitor(app, db, world, people, how):
    pat = people["participant"]
    at = app()
    session_id = _login(at, db, pat)
    run(at.switch_page("app_pages/submit.py"))
    assert title(at) == "Submit a score"

    if how == "session revoked":  # e.g. logged out in another tab, or a password change elsewhere
        with db.transaction() as conn:
            conn.execute(sa.text("UPDATE exact_session SET revoked_at = now() WHERE id = :s"), {"s": session_id})
    else:  # e.g. in Django's admin: the session row stays live, the user does not
        with db.transaction() as conn:
            conn.execute(sa.text("UPDATE auth_user SET is_active = false WHERE id = :u"), {"u": pat.id})
    run(at)  # same tab, next interaction
    assert offered_pages(at) == VISITOR_PAGES
    # The submit page is gone: its address shows the login form instead, which comes back here afterwards.
    assert title(at) == "Log in"
    assert [t.label for t in at.text_input] == ["Username", "Password"], "no submit form any more"
    assert [b.label for b in at.button] == ["Log in"]
    assert values(at.info) == ["Please log in to open **Submit score**; you will be taken there afterwards."]
    assert "auth_user_id" not in at.session_state and "auth_session_id" not in at.session_state
    assert at.session_state["current_user"] is None
    assert values(at.sidebar.caption) == ["Browsing as a visitor. Log in to submit."]


# --- deep links to pages a role is not offered ------------------------------------------------------------------
def test_the_database_page_shows_administrators_the_schema_version(app, db, people):
    at = app()
    log_in_state(at, db, people["superuser"].id)
    run(at)
    goto(at, "app_pages/database.py")
    assert title(at) == "Database" and not at.error
    assert {m.label: m.value for m in at.metric} == {"Schema of the Exact tables": "the spec (2025-05)"}
    assert "None: the tables are exactly the spec's." in [m.value for m in at.markdown]


# app.py always runs first (the page folder is app_pages/, not pages/, so Streamlit's legacy automatic pages/
# navigation never runs a page file by itself); a page missing from the role's navigation is never run.


@pytest.mark.parametrize(
    ("page", "role"),
    [
        ("app_pages/submit.py", "visitor"),
        ("app_pages/profile.py", "visitor"),
        ("app_pages/users.py", "visitor"),
        ("app_pages/manage_challenge.py", "visitor"),
        ("app_pages/users.py", "participant"),
        ("app_pages/users.py", "organiser"),
        ("app_pages/database.py", "participant"),
        ("app_pages/database.py", "organiser"),
        ("app_pages/manage_challenge.py", "participant"),
        ("app_pages/setup.py", "superuser"),
    ],
)
def test_deep_link_to_a_page_not_offered_never_runs_it(app, db, people, page, role):
    at = app()
    if role != "visitor":
        log_in_state(at, db, people[role].id)
    at.switch_page(page)
    run(at)
    assert page not in offered_pages(at)
    assert title(at) != PAGE_TITLES[page]
    assert not any(
        label in {"Create administrator", "Submit score", "Save", "Create challenge"}
        for label in [b.label for b in at.button]
    )


# --- first-run set-up ---------------------------------------------------------------------------------------------


def test_setup_creates_the_first_admin_with_demo_and_then_disappears(app, db):
    at = run(app())
    assert offered_pages(at) == {"app_pages/setup.py"}
    one(at.text_input, "Set-up token").input(accounts.setup_token())  # as printed on the server's console
    one(at.text_input, "Administrator username").input("boss")
    one(at.text_input, "Password").input("a long enough password")
    one(at.text_input, "Password again").input("another long password")
    click(at, "Create administrator")
    assert values(at.error) == ["The two passwords do not match."]
    assert scalar(db, "SELECT count(*) FROM auth_user") == 0

    one(at.text_input, "Password again").input("a long enough password")
    one(at.checkbox, "Also load the demo: a few challenges with files, users and scores").check()
    click(at, "Create administrator")

    admin = rows(db, "SELECT id, is_superuser, is_staff FROM auth_user WHERE username = 'boss'")
    assert admin and admin[0]["is_superuser"] and admin[0]["is_staff"]
    assert at.session_state["auth_user_id"] == admin[0]["id"]
    assert (
        scalar(
            db,
            "SELECT user_id FROM exact_session WHERE id = :s AND revoked_at IS NULL",
            s=at.session_state["auth_session_id"],
        )
        == admin[0]["id"]
    )
    # The demo accounts' password is shown this once, before the browser is handed its cookie (which reloads).
    assert title(at) == "Welcome to Exact" and not at.get("html")
    assert values(at.success) == ["Created the administrator **boss** and loaded the demo."]
    [shown] = [c.value for c in at.code]
    accounts.authenticate(db, "alice", shown)  # it really is the demo accounts' password
    accounts.authenticate(db, "olivia.organiser", shown)
    assert not at.text_input, "the set-up form is gone"
    assert shown not in repr(at.session_state.to_dict()), "kept in this run only"
    click(at, "Continue to Exact")
    assert not at.code, "not shown again"
    assert offered_pages(at) == SUPERUSER_PAGES  # set-up is gone for good
    assert title(at) == "Exact"
    assert values(at.sidebar.caption) == ["Logged in as **boss** (administrator)"]
    handover = _handover(at)  # the form handing the browser its login ticket is rendered once
    assert handover["next"] == "/"
    assert _ticket_session(db, handover["ticket"]) == at.session_state["auth_session_id"]
    # The demo: 3 score-only challenges, 2 scored on the server and 1 in the XAI-TRIS paper protocol, whose two
    # models are left to the background trainer (a page does not train); its model-free baselines are scored.
    assert scalar(db, "SELECT count(*) FROM api_challenge") == 6
    assert scalar(db, "SELECT count(*) FROM exact_submission WHERE status = 'done'") == 16 + 5 + 2
    assert scalar(db, "SELECT count(*) FROM exact_model WHERE status = 'queued'") == 2
    assert scalar(db, "SELECT count(*) FROM api_score") > 0

    run(at)
    assert not at.get("html"), "the hand-over form is not re-sent on every run"
    with pytest.raises(ValueError):
        at.switch_page("app_pages/setup.py")
    # A fresh browser session (no cookie) sees the normal visitor site, not the set-up page.
    fresh = run(app())
    assert offered_pages(fresh) == VISITOR_PAGES


def _handover(at) -> dict[str, str]:
    """The hidden fields of the one form that hands the browser its login ticket (or logout) for /auth/session.

    The cookie itself is set by the server (HttpOnly): nothing on the page names it or touches document.cookie.
    """
    from html.parser import HTMLParser

    [body] = values(at.get("html"))
    assert "cookie" not in body.lower() and "exact_session" not in body  # no document.cookie, no cookie value
    forms: list[str] = []
    hidden: dict[str, str] = {}

    class Fields(HTMLParser):
        def handle_starttag(self, tag, attrs):
            attributes = dict(attrs)
            if tag == "form":
                forms.append(f"{attributes.get('method')} {attributes.get('action')}")
            elif tag == "input" and attributes.get("type") == "hidden":
                hidden[attributes["name"]] = attributes["value"]

    Fields().feed(body)
    assert forms == ["post /auth/session"]
    return hidden


def _ticket_session(db, ticket: str) -> str | None:
    """The session an unused, unexpired ticket belongs to (only the ticket's SHA-256 is stored)."""
    import hashlib

    return scalar(
        db,
        "SELECT session_id FROM exact_login_ticket WHERE ticket_hash = :h AND used_at IS NULL AND expires_at > now()",
        h=hashlib.sha256(ticket.encode()).hexdigest(),
    )


# --- register -----------------------------------------------------------------------------------------------------


def _fill_register(at, username, password, again, email=""):
    one(at.text_input, "Username").input(username)
    one(at.text_input, "Email (optional)").input(email)
    one(at.text_input, "Password").input(password)
    one(at.text_input, "Password again").input(again)
    return click(at, "Create account")


def test_register_rejects_bad_input(app, db, people):
    at = run(app())
    run(at.switch_page("app_pages/register.py"))
    users_before = scalar(db, "SELECT count(*) FROM auth_user")
    good = "a long enough password"
    for username, password, again, email, message in [
        ("Pat", good, good, "", "The username 'Pat' is already taken."),  # case-insensitive duplicate
        ("pat", good, good, "", "The username 'pat' is already taken."),
        ("newbie", "short", "short", "", "Password must be at least 8 characters long."),
        ("newbie", good, "a different password", "", "The two passwords do not match."),
        ("new bie", good, good, "", "Username may contain only letters"),
        ("newbie", good, good, "not-an-email", "Email does not look like"),
        ("newbie", "password", "password", "", "This password is too common"),
        ("", good, good, "", "Username is required."),
    ]:
        _fill_register(at, username, password, again, email)
        assert len(at.error) == 1 and at.error[0].value.startswith(message), (username, values(at.error))
        assert title(at) == "Register"
    assert scalar(db, "SELECT count(*) FROM auth_user") == users_before
    assert "auth_user_id" not in at.session_state


def test_register_creates_a_participant_and_logs_in(app, db, people):
    at = run(app())
    run(at.switch_page("app_pages/register.py"))
    _fill_register(at, "newbie", "a long enough password", "a long enough password", "newbie@example.org")
    assert not at.error, values(at.error)
    row = rows(db, "SELECT id, email, is_staff, is_superuser, is_active FROM auth_user WHERE username = 'newbie'")
    assert row == [
        {"id": row[0]["id"], "email": "newbie@example.org", "is_staff": False, "is_superuser": False, "is_active": True}
    ]
    assert at.session_state["auth_user_id"] == row[0]["id"]
    assert title(at) == "Exact"
    assert offered_pages(at) == PARTICIPANT_PAGES
    accounts.authenticate(db, "newbie", "a long enough password")  # the password really works


# --- login --------------------------------------------------------------------------------------------------------


def _fill_login(at, username, password):
    one(at.text_input, "Username").input(username)
    one(at.text_input, "Password").input(password)
    return click(at, "Log in")


def test_login_refuses_wrong_credentials_and_inactive_users(app, db, people):
    make_user(db, "sleepy", active=False)
    at = run(app())
    run(at.switch_page("app_pages/login.py"))
    for username, password in [("pat", "wrong password!"), ("nobody", PASSWORD), ("", ""), ("sleepy", PASSWORD)]:
        _fill_login(at, username, password)
        assert values(at.error) == ["Unknown username or wrong password."], username
        assert "auth_user_id" not in at.session_state
        assert offered_pages(at) == VISITOR_PAGES
    assert scalar(db, "SELECT count(*) FROM exact_session") == 0


def test_login_success_sets_session_state_and_a_live_session(app, db, people):
    pat = people["participant"]
    at = run(app())
    run(at.switch_page("app_pages/login.py"))
    _fill_login(at, "pat", PASSWORD)
    assert not at.error, values(at.error)
    assert at.session_state["auth_user_id"] == pat.id
    session = rows(
        db, "SELECT user_id, revoked_at FROM exact_session WHERE id = :s", s=at.session_state["auth_session_id"]
    )
    assert session == [{"user_id": pat.id, "revoked_at": None}]
    assert scalar(db, "SELECT last_login IS NOT NULL FROM auth_user WHERE id = :u", u=pat.id)
    assert title(at) == "Exact"
    assert offered_pages(at) == PARTICIPANT_PAGES
    assert values(at.sidebar.caption) == ["Logged in as **pat** (participant)"]
    handover = _handover(at)
    assert handover["next"] == "/"
    assert _ticket_session(db, handover["ticket"]) == at.session_state["auth_session_id"]
    run(at)
    assert not at.get("html"), "the hand-over form is rendered once"


# --- submit a score -----------------------------------------------------------------------------------------------


def _submit_page(app, db, user, challenge_id=None):
    at = app()
    _login(at, db, user)
    run(at)
    if challenge_id:
        at.query_params["challenge"] = challenge_id
    return run(at.switch_page("app_pages/submit.py"))


def _fill_score(at, text, confirm=True):
    at.text_input(key="submit_score").input(text)
    at.checkbox(key="submit_confirm").set_value(confirm)
    return click(at, "Submit score")


def _scores(db, challenge_id):
    return rows(db, "SELECT username, score FROM api_score WHERE challenge_id = :c ORDER BY id", c=challenge_id)


def test_submit_rejects_non_numbers(app, db, world, people):
    at = _submit_page(app, db, people["participant"], "credit")
    for text, message in [
        ("nan", "Score must be a number; NaN is not allowed."),
        ("abc", "Score must be a number such as 0.87, not 'abc'."),
        ("inf", "Score must be finite; infinity is not allowed."),
        ("-Infinity", "Score must be finite; infinity is not allowed."),
        ("", "Score is required: enter a number such as 0.87."),
        ("1e999", "Score must be finite"),
        ("0x10", "Score must be a number such as 0.87"),
    ]:
        _fill_score(at, text)
        assert len(at.error) == 1 and at.error[0].value.startswith(message), (text, values(at.error))
        assert not at.success and not at.toast
    assert _scores(db, "credit") == []
    _fill_score(at, "1e3")  # the same form still works once the input is a number
    assert _scores(db, "credit") == [{"username": "pat", "score": 1000.0}]


def test_submit_needs_the_confirmation_box(app, db, world, people):
    at = _submit_page(app, db, people["participant"], "credit")
    _fill_score(at, "0.5", confirm=False)
    assert values(at.warning) == ["Please tick the confirmation box first."]
    assert _scores(db, "credit") == []


def test_submit_stores_once_per_form_and_reports_rank(app, db, world, people):
    at = _submit_page(app, db, people["participant"], "tris-linear")
    assert at.selectbox(key="submit_pick").value == "tris-linear"  # ?challenge= preselects
    assert "Submitting as **pat**" in " ".join(values(at.caption))
    _fill_score(at, " 0.8 ")
    assert not at.error, values(at.error)
    assert _scores(db, "tris-linear")[-1] == {"username": "pat", "score": 0.8}
    # carol 0.95, alice 0.9, pat 0.8, bob 0.7
    assert len(at.success) == 1
    assert "Stored score **0.8** for **XAI-TRIS linear**" in at.success[0].value
    assert "rank **#3** of 4" in at.success[0].value
    assert [toast.value for toast in at.toast] == ["Score 0.8 submitted: you are #3."]

    click(at, "Submit score")  # a double click / retry of the same form
    # (the first info is the challenge's phase, shown above every score form)
    assert values(at.info) == ["Open · no closing date", "This score was already submitted; it was stored once."]
    assert [r for r in _scores(db, "tris-linear") if r["username"] == "pat"] == [{"username": "pat", "score": 0.8}]

    click(at, "Submit another score")
    assert at.text_input(key="submit_score").value == ""
    assert at.checkbox(key="submit_confirm").value is False
    _fill_score(at, "0.99")
    assert "rank **#1** of 4" in at.success[0].value
    assert [r["score"] for r in _scores(db, "tris-linear") if r["username"] == "pat"] == [0.8, 0.99]


def test_submit_same_value_after_submit_another_is_a_new_row(app, db, world, people):
    at = _submit_page(app, db, people["organiser"], "credit")
    _fill_score(at, "0.5")
    click(at, "Submit another score")
    _fill_score(at, "0.5")
    assert values(at.info) == ["Open · no closing date"], "only the phase line, no 'already submitted' notice"
    assert _scores(db, "credit") == [{"username": "olivia", "score": 0.5}] * 2


def test_submit_with_no_challenges(app, db, people):
    at = _submit_page(app, db, people["participant"])
    assert values(at.info) == ["There are no challenges yet."]
    assert not at.text_input


# --- leaderboard --------------------------------------------------------------------------------------------------


def test_leaderboard_ranks_best_scores_and_shows_all_on_toggle(app, db, world):
    at = app()
    at.query_params["challenge"] = "tris-linear"
    run(at)
    run(at.switch_page("app_pages/leaderboard.py"))
    assert at.selectbox(key="leaderboard_pick").value == "tris-linear"
    table = at.dataframe[0].value
    assert list(table["username"]) == ["carol", "alice", "bob"]
    assert list(table["rank"]) == [1, 2, 3]
    assert list(table["score"]) == [0.95, 0.9, 0.7]
    assert list(table["submissions"]) == [1, 2, 1]
    assert "score_id" not in table.columns
    assert len(at.get("plotly_chart")) == 3
    assert len(at.tabs) == 3
    assert [b.proto.label for b in at.get("download_button")] == ["Download CSV"]

    at.toggle(key="leaderboard_show_all").set_value(True)
    run(at)
    table = at.dataframe[0].value
    assert list(table["username"]) == ["carol", "alice", "bob", "alice"]
    assert list(table["score"]) == [0.95, 0.9, 0.7, 0.5]
    assert "submissions" not in table.columns
    assert len(at.get("plotly_chart")) == 3


def test_leaderboard_switching_challenge_and_empty_board(app, db, world):
    at = run(app())
    run(at.switch_page("app_pages/leaderboard.py"))
    assert at.selectbox(key="leaderboard_pick").value == "credit"  # newest first, no ?challenge=
    assert values(at.info) == ["No submissions yet for this challenge."]
    assert not at.dataframe and not at.get("plotly_chart")
    at.selectbox(key="leaderboard_pick").set_value("tris-linear")
    run(at)
    assert at.query_params["challenge"] == "tris-linear"  # the choice is kept in the URL for sharing
    assert len(at.dataframe[0].value) == 3


def test_leaderboard_without_challenges(app, db, people):
    at = run(app())
    run(at.switch_page("app_pages/leaderboard.py"))
    assert values(at.info) == ["There are no challenges yet."]


# --- challenge page -----------------------------------------------------------------------------------------------


def test_challenge_page_renders_markdown_but_never_html(app, db, world):
    at = app()
    run(at)
    at.query_params["challenge"] = "tris-linear"
    run(at.switch_page("app_pages/challenge.py"))
    assert title(at) == "XAI-TRIS linear"
    description = [m for m in at.markdown if "Intro with" in m.value]
    assert len(description) == 1
    assert description[0].value == SCRIPT_DESCRIPTION  # passed on verbatim, as Markdown
    assert description[0].proto.allow_html is False  # so <script> and <b> are shown as text, never run
    assert not at.get("html"), "no raw HTML element on the page"
    assert all(not m.proto.allow_html for m in at.markdown)

    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {"Participants": "3", "Submissions": "4", "Best score": "0.95"}
    assert list(at.dataframe[0].value["username"]) == ["carol", "alice", "bob"]
    downloads = sorted(b.proto.label for b in at.get("download_button"))
    assert downloads == ["Download XAI method template", "Download dataset", "Download model"]
    links = [link.label for link in at.main.get("page_link")]
    assert "Log in to submit" in links and "Submit a score" not in links


def test_challenge_page_without_files_and_links_per_role(app, db, world, people):
    # home.py forwards a root deep link (?challenge=) to the challenge page
    at = app()
    _login(at, db, people["participant"])
    at.query_params["challenge"] = "credit"
    run(at)
    assert title(at) == "Credit attribution"
    assert [b.label for b in at.button if b.disabled] == [
        "Dataset: not provided",
        "Model: not provided",
        "XAI method template: not provided",
    ]
    assert "No submissions yet: be the first." in values(at.caption)
    links = [link.label for link in at.main.get("page_link")]
    assert "Submit a score" in links and "Edit this challenge" not in links and "Log in to submit" not in links

    org = app()
    _login(org, db, people["organiser"])
    org.query_params["challenge"] = "credit"
    run(org)
    assert "Edit this challenge" in [link.label for link in org.main.get("page_link")]


def test_challenge_page_unknown_id_says_so(app, db, world):
    at = app()
    run(at)
    at.query_params["challenge"] = "no-such-challenge"
    run(at.switch_page("app_pages/challenge.py"))
    assert not at.title  # no other challenge shown in its place
    assert values(at.error) == [
        "There is no challenge 'no-such-challenge'. It may have been deleted, or the link is mistyped."
    ]
    assert [link.label for link in at.main.get("page_link")] == ["See all challenges"]
    assert at.selectbox(key="challenge_page_pick").value is None  # nothing chosen in its place


# --- challenges list and home -------------------------------------------------------------------------------------


def _challenge_rows(at) -> list[tuple[str, str, str]]:
    """The challenge list's rows: each a real link (label, its address) and the line of facts under it."""
    links = [link for link in at.main.get("page_link") if link.proto.query_string.startswith("challenge=")]
    facts = [c for c in values(at.main.caption) if c.startswith("`")]
    assert len(links) == len(facts)
    return [
        (link.label, f"{link.proto.page}?{link.proto.query_string}", fact)
        for link, fact in zip(links, facts, strict=True)
    ]


def test_challenges_list_search_and_sort(app, db, world, people):
    from exact.competition import Rules, update_rules

    closing = datetime.now(UTC) + timedelta(days=3, hours=12)
    update_rules(db, people["organiser"].id, "tris-linear", Rules(ends_at=closing))
    at = run(app())
    run(at.switch_page("app_pages/challenges.py"))
    assert not at.dataframe, "no grid with a checkbox: every challenge is a link"
    rows = _challenge_rows(at)
    assert [(label, address) for label, address, _ in rows] == [  # newest first
        ("Credit attribution", "challenge?challenge=credit"),
        ("XAI-TRIS linear", "challenge?challenge=tris-linear"),
    ]
    assert rows[0][2].startswith("`credit` · Score-only · Open · 0 participants · 0 submissions · created ")
    assert rows[1][2].startswith("`tris-linear` · Score-only · Open, closes in 3 days ")
    assert " · 3 participants · 4 submissions · best 0.95 · created " in rows[1][2]
    assert "2 challenges; 1–2 shown." in values(at.main.caption)

    at.text_input(key="challenges_search").input("TRIS")
    run(at)
    assert [label for label, _, _ in _challenge_rows(at)] == ["XAI-TRIS linear"]
    assert "1 challenge found; 1–1 shown." in values(at.main.caption)

    at.text_input(key="challenges_search").input("tabular")  # matches the description
    run(at)
    assert [label for label, _, _ in _challenge_rows(at)] == ["Credit attribution"]

    at.text_input(key="challenges_search").input("100%_match")
    run(at)
    assert values(at.info) == ["No challenge matches your search."]
    assert not _challenge_rows(at)

    at.text_input(key="challenges_search").input("")
    at.selectbox(key="challenges_sort").set_value("best_score")
    run(at)
    assert [label for label, _, _ in _challenge_rows(at)] == ["XAI-TRIS linear", "Credit attribution"]
    at.selectbox(key="challenges_sort").set_value("title")
    run(at)
    assert [label for label, _, _ in _challenge_rows(at)] == ["Credit attribution", "XAI-TRIS linear"]

    update_rules(db, people["organiser"].id, "tris-linear", Rules(ends_at=datetime.now(UTC) - timedelta(minutes=1)))
    run(at)
    assert "· Score-only · Closed · 3 participants ·" in _challenge_rows(at)[1][2]


def test_empty_site_home_and_challenges(app, db, people):
    at = run(app())
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {"Challenges": "0", "Submissions": "0", "Participants": "0", "Registered users": "4"}
    assert "No challenges yet." in values(at.caption) and "No submissions yet." in values(at.caption)
    run(at.switch_page("app_pages/challenges.py"))
    assert values(at.info) == ["There are no challenges yet."]


def test_home_shows_counts_latest_challenges_and_recent_submissions(app, db, world):
    at = run(app())
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {"Challenges": "2", "Submissions": "4", "Participants": "3", "Registered users": "7"}
    links = [link.label for link in at.main.get("page_link")]
    assert links[:2] == ["Credit attribution · 0 participants", "XAI-TRIS linear · 3 participants"]
    recent = at.dataframe[0].value
    assert sorted(recent["username"]) == ["alice", "alice", "bob", "carol"]
    assert set(recent["title"]) == {"XAI-TRIS linear"}


# --- create / edit challenge ----------------------------------------------------------------------------------------


def _manage_page(app, db, user, challenge_id=None):
    at = app()
    _login(at, db, user)
    run(at)
    if challenge_id:
        at.query_params["challenge"] = challenge_id
    return run(at.switch_page("app_pages/manage_challenge.py"))


@pytest.mark.parametrize("role", ["organiser", "permitted", "superuser"])
def test_organisers_create_a_challenge_without_files(app, db, people, role):
    at = _manage_page(app, db, people[role])
    assert at.selectbox(key="manage_pick").value == ""  # "New challenge"
    one(at.text_input, "Title").input("Saliency on MNIST")
    one(at.text_area, "Description (Markdown)").input("# Hello\n\nSome *markdown*.")
    click(at, "Create challenge")
    assert values(at.success) == ["Created challenge **Saliency on MNIST** (`saliency-on-mnist`)."]
    row = rows(
        db,
        "SELECT title, description, dataset, mlmodel, xaimethod FROM api_challenge "
        "WHERE challenge_id = 'saliency-on-mnist'",
    )
    assert row == [
        {
            "title": "Saliency on MNIST",
            "description": "# Hello\n\nSome *markdown*.",
            "dataset": "",
            "mlmodel": "",
            "xaimethod": "",
        }
    ]
    assert [link.label for link in at.main.get("page_link")] == [
        "Open the challenge page →",
        "Open this challenge's dashboard",
    ]
    assert "# Hello\n\nSome *markdown*." in values(at.expander[0].markdown)  # the preview


def test_create_challenge_errors(app, db, world, people):
    at = _manage_page(app, db, people["organiser"])
    one(at.text_input, "Title").input("Another")
    one(at.text_input, "Challenge id").input("credit")
    one(at.text_area, "Description (Markdown)").input("text")
    click(at, "Create challenge")
    assert values(at.error) == ["The challenge id 'credit' is already taken; choose another."]

    one(at.text_input, "Challenge id").input("bad id!")
    click(at, "Create challenge")
    assert at.error[0].value.startswith("Challenge id may contain only letters")

    one(at.text_input, "Challenge id").input("")
    one(at.text_input, "Title").input("   ")
    click(at, "Create challenge")
    assert values(at.error) == ["Title is required."]
    assert scalar(db, "SELECT count(*) FROM api_challenge") == 2
    assert scalar(db, "SELECT title FROM api_challenge WHERE challenge_id = 'credit'") == "Credit attribution"


def test_edit_a_challenge(app, db, world, people):
    at = _manage_page(app, db, people["organiser"], "credit")
    assert at.selectbox(key="manage_pick").value == "credit"
    assert one(at.text_input, "Title").value == "Credit attribution"
    assert one(at.text_input, "Challenge id").disabled
    assert one(at.text_area, "Description (Markdown)").value == "Tabular *credit* data."
    one(at.text_input, "Title").input("Credit attribution v2")
    one(at.text_area, "Description (Markdown)").input("New **text**.")
    click(at, "Save changes")
    assert values(at.success) == ["Saved **Credit attribution v2**."]
    assert rows(db, "SELECT title, description FROM api_challenge WHERE challenge_id = 'credit'") == [
        {"title": "Credit attribution v2", "description": "New **text**."}
    ]

    # Switch to the challenge with files: its remove-file boxes are offered; removing one clears the column.
    at.selectbox(key="manage_pick").set_value("tris-linear")
    run(at)
    assert one(at.text_input, "Title").value == "XAI-TRIS linear"
    remove = one(at.checkbox, "Remove the current model (model.json)")
    remove.check()
    click(at, "Save changes")
    assert values(at.success) == ["Saved **XAI-TRIS linear**."]
    assert rows(
        db, "SELECT mlmodel, dataset <> '' AS has_dataset FROM api_challenge WHERE challenge_id = :c", c="tris-linear"
    ) == [{"mlmodel": "", "has_dataset": True}]


def test_edit_is_refused_once_organiser_rights_are_withdrawn(app, db, world, people):
    olivia = people["organiser"]
    at = _manage_page(app, db, olivia, "credit")
    accounts.set_user_flags(db, people["superuser"].id, olivia.id, is_active=True, is_staff=False, is_superuser=False)
    one(at.text_input, "Title").input("Hijacked")
    click(at, "Save changes")  # app.py re-reads the user: the page is no longer offered
    assert offered_pages(at) == PARTICIPANT_PAGES
    assert title(at) == "Not available"  # its address explains instead of running the page
    assert values(at.warning) == [
        "**Create / edit challenge** is for organisers. You are logged in as **olivia** (participant)."
    ]
    assert not at.get("form")
    assert scalar(db, "SELECT title FROM api_challenge WHERE challenge_id = 'credit'") == "Credit attribution"


# --- profile ------------------------------------------------------------------------------------------------------


def _profile_page(app, db, user):
    at = app()
    session_id = _login(at, db, user)
    run(at)
    return run(at.switch_page("app_pages/profile.py")), session_id


def test_profile_update(app, db, people):
    pat = people["participant"]
    at, _ = _profile_page(app, db, pat)
    assert "Username **pat** · role participant" in values(at.caption)[0]
    one(at.text_input, "First name").input("Patricia")
    one(at.text_input, "Last name").input("Smith")
    one(at.text_input, "Email").input("pat@example.org")
    click(at, "Save details")
    assert values(at.success) == ["Your details were saved."]
    assert rows(db, "SELECT first_name, last_name, email FROM auth_user WHERE id = :u", u=pat.id) == [
        {"first_name": "Patricia", "last_name": "Smith", "email": "pat@example.org"}
    ]
    run(at)
    assert one(at.text_input, "First name").value == "Patricia"  # the form shows what is stored

    one(at.text_input, "Email").input("nope")
    click(at, "Save details")
    assert values(at.error) == ["Email does not look like an email address."]
    assert scalar(db, "SELECT email FROM auth_user WHERE id = :u", u=pat.id) == "pat@example.org"


def test_password_change(app, db, people):
    pat = people["participant"]
    at, old_session = _profile_page(app, db, pat)
    other_browser = log_in_state(app(), db, pat.id)
    old_hash = scalar(db, "SELECT password FROM auth_user WHERE id = :u", u=pat.id)

    for current, new, again, message in [
        ("wrong password", "brand new secret", "brand new secret", "Your current password is not correct."),
        (PASSWORD, "brand new secret", "other new secret", "The two new passwords do not match."),
        (PASSWORD, "short", "short", "Password must be at least 8 characters long."),
    ]:
        one(at.text_input, "Current password").input(current)
        one(at.text_input, "New password").input(new)
        one(at.text_input, "New password again").input(again)
        click(at, "Change password")
        assert values(at.error) == [message]
        assert scalar(db, "SELECT password FROM auth_user WHERE id = :u", u=pat.id) == old_hash

    one(at.text_input, "Current password").input(PASSWORD)
    one(at.text_input, "New password").input("brand new secret")
    one(at.text_input, "New password again").input("brand new secret")
    click(at, "Change password")
    assert values(at.success) == [
        "Your password was changed. Other browsers where you were logged in have been logged out."
    ]
    new_hash = scalar(db, "SELECT password FROM auth_user WHERE id = :u", u=pat.id)
    assert new_hash != old_hash and passwords.check_password("brand new secret", new_hash)
    with pytest.raises(AuthenticationFailed):
        accounts.authenticate(db, "pat", PASSWORD)
    revoked = {r["id"]: r["revoked_at"] is not None for r in rows(db, "SELECT id, revoked_at FROM exact_session")}
    assert revoked[old_session] and revoked[other_browser]
    new_session = at.session_state["auth_session_id"]
    assert new_session != old_session and revoked[new_session] is False
    run(at)  # still logged in on the fresh session
    assert offered_pages(at) == PARTICIPANT_PAGES
    assert title(at) == "Profile"


# --- users (administration) ---------------------------------------------------------------------------------------


def _users_page(app, db, admin):
    at = app()
    _login(at, db, admin)
    run(at)
    return run(at.switch_page("app_pages/users.py"))


def test_admin_grants_staff_and_it_takes_effect(app, db, people):
    pat = people["participant"]
    at = _users_page(app, db, people["superuser"])
    table = at.dataframe[0].value
    assert sorted(table["username"]) == ["olivia", "pat", "perry", "root"]
    at.selectbox(key="users_pick").set_value(pat.id)
    run(at)
    staff = one(at.checkbox, "Staff: organiser, may create and edit challenges")
    assert staff.value is False
    staff.check()
    click(at, "Save")
    assert values(at.success) == ["Saved pat: organiser, active."]
    assert rows(db, "SELECT is_staff, is_superuser, is_active FROM auth_user WHERE id = :u", u=pat.id) == [
        {"is_staff": True, "is_superuser": False, "is_active": True}
    ]
    # pat's own browser gets the organiser pages on the next run
    pats = app()
    _login(pats, db, pat)
    run(pats)
    assert offered_pages(pats) == ORGANISER_PAGES


def test_admin_deactivates_a_user_and_cannot_demote_themself(app, db, people):
    pat, root = people["participant"], people["superuser"]
    pats_session = log_in_state(app(), db, pat.id)
    at = _users_page(app, db, root)
    at.selectbox(key="users_pick").set_value(pat.id)
    run(at)
    one(at.checkbox, "Active (may log in)").uncheck()
    click(at, "Save")
    assert values(at.success) == ["Saved pat: participant, inactive."]
    assert scalar(db, "SELECT is_active FROM auth_user WHERE id = :u", u=pat.id) is False
    assert scalar(db, "SELECT revoked_at IS NOT NULL FROM exact_session WHERE id = :s", s=pats_session)

    at.selectbox(key="users_pick").set_value(root.id)
    run(at)
    one(at.checkbox, "Superuser: administrator").uncheck()
    click(at, "Save")
    assert values(at.error) == ["You cannot deactivate yourself or remove your own administrator rights."]
    assert scalar(db, "SELECT is_superuser FROM auth_user WHERE id = :u", u=root.id) is True


# --- logout -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["participant", "superuser"])
def test_logout_revokes_the_session_and_clears_state(app, db, people, role):
    at = app()
    session_id = _login(at, db, people[role])
    run(at)
    run(at.switch_page("app_pages/logout.py"))
    assert scalar(db, "SELECT revoked_at IS NOT NULL FROM exact_session WHERE id = :s", s=session_id)
    assert "auth_user_id" not in at.session_state and "auth_session_id" not in at.session_state
    assert at.session_state["auth_logged_out"] is True
    assert title(at) == "Exact"
    assert offered_pages(at) == VISITOR_PAGES
    assert _handover(at) == {"logout": "1"}  # the browser posts it to /auth/session, which clears the cookie
    # Putting the old ids back (a replayed state) does not log anybody in: the row is revoked.
    at.session_state["auth_user_id"] = people[role].id
    at.session_state["auth_session_id"] = session_id
    run(at)
    assert offered_pages(at) == VISITOR_PAGES
    assert scalar(db, "SELECT count(*) FROM exact_session WHERE revoked_at IS NULL") == 0


def test_database_fixture_is_what_the_app_uses(app, db, people):
    """Guards the harness itself: the app under test talks to this test's scratch database."""
    from ui.runtime import get_db

    at = run(app())
    assert at.metric[3].value == "4"
    assert isinstance(get_db(), Database) and get_db().url == db.url


# --- configuration and database problems --------------------------------------------------------------------------


def test_unreachable_database_shows_help_not_a_traceback(app, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://nobody:secret-pw@127.0.0.1:1/nowhere")
    st.cache_resource.clear()
    at = run(app())
    assert title(at) == "Exact cannot reach its database"
    assert len(at.error) == 1 and at.error[0].value.startswith("The database is unavailable right now.")
    assert "127.0.0.1:1/nowhere" in at.error[0].value and "secret-pw" not in at.error[0].value
    assert [b.label for b in at.button] == ["Try again"]
    assert not offered_pages(at) & ALL_PAGES


def test_malformed_setting_shows_help_not_a_traceback(app, monkeypatch):
    monkeypatch.setenv("EXACT_MAX_UPLOAD_MB", "lots")
    st.cache_resource.clear()
    at = run(app())
    assert not offered_pages(at) & ALL_PAGES
    assert len(at.error) == 1 and "EXACT_MAX_UPLOAD_MB must be a whole number, not 'lots'" in at.error[0].value


def test_create_form_switches_to_edit_so_a_second_press_cannot_create_again(app, db, people):
    at = _manage_page(app, db, people["organiser"])
    one(at.text_input, "Title").input("Saliency on MNIST")
    one(at.text_area, "Description (Markdown)").input("text")
    click(at, "Create challenge")
    assert scalar(db, "SELECT count(*) FROM api_challenge") == 1
    labels = [b.label for b in at.button]
    assert "Create challenge" not in labels and "Save changes" in labels
    assert any("Created challenge" in v for v in values(at.success))
    click(at, "Save changes")  # pressing the button again now saves the same challenge
    assert scalar(db, "SELECT count(*) FROM api_challenge") == 1

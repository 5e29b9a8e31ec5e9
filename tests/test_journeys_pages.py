"""Journeys that used to lose people, through AppTest on app.py (docs/journeys.md): deep links that need a login,
unknown ids, the current challenge across pages, tab titles, messages that belong to their action, the set-up and
password-reset passwords shown once, and the forced password change after a reset."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
import streamlit as st

from exact import accounts
from exact.challenges import ChallengeForm, create_challenge, delete_challenge
from exact.scores import submit_score
from exact.storage import MediaStorage
from tests.conftest import make_user
from tests.pages_helpers import (
    PAGE_TITLES,
    PARTICIPANT_PAGES,
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
from tests.test_pages import _handover

PASSWORD = "correct horse battery"


@pytest.fixture
def people(db):
    return {
        "admin": make_user(db, "root", superuser=True),
        "organiser": make_user(db, "olivia", staff=True),
        "other_organiser": make_user(db, "oscar", staff=True),
        "participant": make_user(db, "pat"),
    }


@pytest.fixture
def world(db, media_root, people):
    storage = MediaStorage(media_root, max_bytes=1024 * 1024)
    organiser = people["organiser"].id
    older = create_challenge(db, storage, organiser, ChallengeForm("Older challenge", "Old.", "older"), {})
    newer = create_challenge(db, storage, organiser, ChallengeForm("Newer challenge", "New.", "newer"), {})
    submit_score(db, make_user(db, "alice").id, "older", 0.5)
    return {"older": older, "newer": newer, "storage": storage}


def _fresh(app, db=None, user=None):
    at = app()
    if user is not None:
        log_in_state(at, db, user.id)
    return at


def _deep_link(app, page: str, db=None, user=None, **query: str):
    """A browser's first request for ``page``'s address with this query string (as a pasted or shared link)."""
    at = _fresh(app, db, user)
    for name, value in query.items():
        at.query_params[name] = value
    return run(at.switch_page(page))  # before the first run AppTest names the page by its address, like a URL


def _log_in(at, username: str, password: str = PASSWORD):
    one(at.text_input, "Username").input(username)
    one(at.text_input, "Password").input(password)
    return click(at, "Log in")


def _links(at) -> dict[str, str]:
    return {link.label: f"{link.proto.page}?{link.proto.query_string}".rstrip("?") for link in at.main.get("page_link")}


# --- a logged-out deep link to a page that needs a login -------------------------------------------------------


def test_a_logged_out_deep_link_logs_in_and_lands_on_the_page_asked_for(app, db, world, people):
    at = _deep_link(app, "app_pages/submit.py", challenge="older")
    assert title(at) == "Log in"  # at the submit page's own address: no "Page not found", nothing of the page
    assert values(at.info) == ["Please log in to open **Submit score**; you will be taken there afterwards."]
    assert not [t for t in at.text_input if t.label not in ("Username", "Password")]
    assert at.query_params["challenge"] == "older"  # the address is kept as it was

    _log_in(at, "pat", "wrong password!")
    assert values(at.error) == ["Unknown username or wrong password."]
    assert title(at) == "Log in" and "auth_user_id" not in at.session_state

    _log_in(at, "pat")
    assert title(at) == "Submit a score"
    assert at.selectbox(key="submit_pick").value == "older"
    assert _handover(at)["next"] == "/submit?challenge=older"  # where the browser goes once it has its cookie
    assert offered_pages(at) == PARTICIPANT_PAGES


@pytest.mark.parametrize(
    ("page", "shown"),
    [
        ("app_pages/profile.py", "Profile"),
        ("app_pages/manage_challenge.py", "Create / edit challenge"),
        ("app_pages/dashboard.py", "Challenge dashboard"),
        ("app_pages/users.py", "Users"),
        ("app_pages/database.py", "Database"),
    ],
)
def test_every_page_that_needs_a_login_asks_for_one_at_its_own_address(app, db, world, people, page, shown):
    at = _deep_link(app, page)
    assert title(at) == "Log in"
    assert values(at.info) == [f"Please log in to open **{shown}**; you will be taken there afterwards."]
    assert not at.error


def test_after_logging_in_a_page_not_for_this_role_says_so(app, db, world, people):
    at = _deep_link(app, "app_pages/users.py", search="x")
    _log_in(at, "pat")
    assert title(at) == "Not available"
    assert values(at.warning) == ["**Users** is for administrators. You are logged in as **pat** (participant)."]
    assert _handover(at)["next"] == "/users?search=x"
    assert not at.dataframe and not at.button


def test_the_challenge_pages_login_link_goes_on_to_the_submit_form(app, db, world, people):
    at = _deep_link(app, "app_pages/challenge.py", challenge="older")
    assert _links(at)["Log in to submit"] == "login?next=%2Fsubmit%3Fchallenge%3Dolder"
    at = _deep_link(app, "app_pages/login.py", next="/submit?challenge=older")
    assert values(at.info) == ["Please log in to open **Submit score**; you will be taken there afterwards."]
    assert _links(at)["No account yet? Register"] == "register?next=%2Fsubmit%3Fchallenge%3Dolder"
    _log_in(at, "pat")
    assert title(at) == "Submit a score"
    assert at.selectbox(key="submit_pick").value == "older"
    assert dict(at.query_params) == {"challenge": "older"}  # next= is gone from the address
    assert _handover(at)["next"] == "/submit?challenge=older"


def test_registering_from_a_deep_link_also_lands_on_the_page(app, db, world, people):
    at = _deep_link(app, "app_pages/register.py", next="/submit?challenge=newer")
    assert values(at.info) == ["Once registered you will be taken to **Submit score**."]
    one(at.text_input, "Username").input("newbie")
    one(at.text_input, "Password").input("a long enough password")
    one(at.text_input, "Password again").input("a long enough password")
    click(at, "Create account")
    assert title(at) == "Submit a score" and at.selectbox(key="submit_pick").value == "newer"
    assert _handover(at)["next"] == "/submit?challenge=newer"


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/phish",
        "//evil.example/x",
        "/\\evil.example",
        "/\t/evil.example",
        "javascript:alert(1)",
        "/auth/session",  # on this site, but not a page
        "/logout",
        "",
    ],
)
def test_a_next_that_is_not_a_page_of_this_site_is_ignored(app, db, world, people, target):
    at = _deep_link(app, "app_pages/login.py", next=target)
    assert not at.info, values(at.info)
    _log_in(at, "pat")
    assert title(at) == "Exact"  # home
    assert _handover(at)["next"] == "/"


def test_a_logged_in_user_opening_the_login_page_or_a_stale_set_up_link(app, db, world, people):
    at = _deep_link(app, "app_pages/login.py", db, people["participant"])
    assert title(at) == "Logged in" and values(at.info) == ["You are logged in as **pat**."]
    assert not at.text_input
    visitor = _deep_link(app, "app_pages/setup.py", setup_token="stale")
    assert title(visitor) == "Exact is set up" and not visitor.text_input


# --- unknown ids -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("page", "picker"),
    [
        ("app_pages/challenge.py", "challenge_page_pick"),
        ("app_pages/leaderboard.py", "leaderboard_pick"),
        ("app_pages/submit.py", "submit_pick"),
        ("app_pages/dashboard.py", "dashboard_pick"),
    ],
)
def test_a_mistyped_challenge_id_says_so_with_a_link_to_the_list(app, db, world, people, page, picker):
    at = _deep_link(app, page, db, people["organiser"], challenge="nope")
    assert values(at.error) == ["There is no challenge 'nope'. It may have been deleted, or the link is mistyped."]
    assert _links(at)["See all challenges"] == "challenges"
    assert at.selectbox(key=picker).value is None  # not the newest challenge in its place
    assert not at.metric and not at.dataframe
    at.selectbox(key=picker).set_value("older")  # choosing one puts it in the address, and the message goes
    run(at)
    assert not at.error and at.query_params["challenge"] == "older"


def test_a_mistyped_challenge_id_on_the_edit_page(app, db, world, people):
    at = _deep_link(app, "app_pages/manage_challenge.py", db, people["organiser"], challenge="nope")
    assert values(at.error) == ["There is no challenge 'nope'. It may have been deleted, or the link is mistyped."]
    assert _links(at)["See all challenges"] == "challenges"
    assert at.selectbox(key="manage_pick").value == ""  # a new challenge, not someone else's


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("abc", "There is no submission 'abc'. Check the link, or open a result from a leaderboard."),
        ("9" * 30, f"There is no submission '{'9' * 30}'. Check the link, or open a result from a leaderboard."),
        ("424242", "No such submission."),
    ],
)
def test_a_mistyped_submission_id_says_so_with_a_link_to_the_list(app, db, world, raw, message):
    at = _deep_link(app, "app_pages/result.py", submission=raw)
    assert title(at) == "Submission result"
    assert values(at.error) == [message]
    assert _links(at)["See all challenges"] == "challenges"


# --- the current challenge across pages ------------------------------------------------------------------------


def test_the_sidebar_keeps_the_challenge_you_were_on(app, db, world, people):
    at = _deep_link(app, "app_pages/challenge.py", db, people["participant"], challenge="older")
    assert title(at) == "Older challenge"
    sidebar = {link.label: link.proto.query_string for link in at.sidebar.get("page_link")}
    assert sidebar == {
        "Home": "", "Challenges": "", "Challenge": "challenge=older", "Leaderboard": "challenge=older",
        "Compare methods": "challenge=older", "Submit score": "challenge=older", "Profile": "", "Log out": "",
    }  # fmt: skip
    goto(at, "app_pages/leaderboard.py")  # even a link without the query string keeps the challenge
    assert at.selectbox(key="leaderboard_pick").value == "older"
    assert at.query_params["challenge"] == "older"  # and it is written into the address for Back and sharing
    goto(at, "app_pages/submit.py")
    assert at.selectbox(key="submit_pick").value == "older"
    at.selectbox(key="submit_pick").set_value("newer")
    run(at)
    goto(at, "app_pages/challenge.py")
    assert title(at) == "Newer challenge"


def test_a_link_to_another_challenge_wins_over_the_remembered_one(app, db, world):
    at = _deep_link(app, "app_pages/leaderboard.py", challenge="older")
    assert at.selectbox(key="leaderboard_pick").value == "older"
    at.query_params["challenge"] = "newer"  # e.g. Back/Forward to this page with another challenge
    run(at)
    assert at.selectbox(key="leaderboard_pick").value == "newer"


def test_a_remembered_challenge_that_was_deleted_falls_back_to_the_newest(app, db, world, people, private_root):
    at = _deep_link(app, "app_pages/challenge.py", challenge="older")
    delete_challenge(
        db,
        world["storage"],
        MediaStorage(private_root, max_bytes=1024),
        people["organiser"].id,
        "older",
        confirmation="older",
    )
    goto(at, "app_pages/leaderboard.py")
    assert not at.error
    assert at.selectbox(key="leaderboard_pick").value == "newer"


def test_a_result_remembers_its_challenge_for_the_leaderboard(app, db, world, people):
    # (server-scored results are covered in tests/test_pages_scoring.py; here only the memory)
    at = _fresh(app)
    at.session_state["current_challenge"] = "older"
    run(at)
    goto(at, "app_pages/leaderboard.py")
    assert at.selectbox(key="leaderboard_pick").value == "older"


# --- tab titles ------------------------------------------------------------------------------------------------


@pytest.fixture
def tab_titles(monkeypatch):
    """The browser tab title each run ends with (st.set_page_config is additive: the last title counts)."""
    seen: list[str] = []
    original = st.set_page_config

    def record(*args, **kwargs):
        if kwargs.get("page_title"):
            seen.append(kwargs["page_title"])
        return original(*args, **kwargs)

    monkeypatch.setattr(st, "set_page_config", record)
    return seen


def test_every_page_has_its_own_tab_title(app, db, world, people, tab_titles):
    at = run(_fresh(app, db, people["admin"]))
    assert tab_titles[-1] == "Exact"
    expected = {
        "app_pages/challenges.py": "Challenges · Exact",
        "app_pages/leaderboard.py": "Leaderboard · Exact",
        "app_pages/submit.py": "Submit score · Exact",
        "app_pages/profile.py": "Profile · Exact",
        "app_pages/users.py": "Users · Exact",
        "app_pages/manage_challenge.py": "Create / edit challenge · Exact",
        "app_pages/dashboard.py": "Dashboard: Newer challenge · Exact",
        "app_pages/challenge.py": "Newer challenge · Exact",
        "app_pages/database.py": "Database · Exact",
    }
    for page, tab in expected.items():
        at.query_params.clear()
        at.session_state["current_challenge"] = "newer"
        run(at.switch_page(page))
        assert title(at) in (PAGE_TITLES.get(page), "Newer challenge"), page
        assert tab_titles[-1] == tab, page
    visitor = _deep_link(app, "app_pages/submit.py")
    assert tab_titles[-1] == "Log in · Exact" and title(visitor) == "Log in"


# --- messages, plurals, labels ---------------------------------------------------------------------------------


def test_an_earlier_success_does_not_stay_under_a_later_error(app, db, world, people):
    at = _deep_link(app, "app_pages/submit.py", db, people["participant"], challenge="newer")
    at.text_input(key="submit_score").input("0.5")
    at.checkbox(key="submit_confirm").set_value(True)
    click(at, "Submit score")
    assert len(at.success) == 1
    click(at, "Submit another score")
    at.text_input(key="submit_score").input("nan")
    at.checkbox(key="submit_confirm").set_value(True)
    click(at, "Submit score")
    assert values(at.error) == ["Score must be a number; NaN is not allowed."]
    assert not at.success, "the success belonged to the first submission"


def test_counts_use_the_right_plural(app, db, world):
    at = run(_fresh(app))
    labels = [link.label for link in at.main.get("page_link")]
    assert "Older challenge · 1 participant" in labels and "Newer challenge · 0 participants" in labels
    goto(at, "app_pages/challenges.py")
    facts = [c for c in values(at.main.caption) if c.startswith("`older`")]
    assert facts and " · 1 participant · 1 submission · " in facts[0]


def test_no_label_is_only_an_emoji_and_empty_cells_stay_empty(app, db, world, people):
    at = _deep_link(app, "app_pages/manage_challenge.py", db, people["organiser"])
    picker = at.selectbox(key="manage_pick")
    assert picker.format_func("") == "New challenge"
    admin = _deep_link(app, "app_pages/users.py", db, people["admin"])
    table = admin.dataframe[0]
    assert table.proto.placeholder == ""  # "last login" of someone who never logged in: empty, not "None"
    assert table.value["last login"].isna().any()


# --- passwords shown once ----------------------------------------------------------------------------------------


def test_an_administrator_resets_a_password_and_the_user_must_change_it(app, db, world, people):
    pat = people["participant"]
    pats_session = log_in_state(app(), db, pat.id)
    at = _deep_link(app, "app_pages/users.py", db, people["admin"])
    at.selectbox(key="users_pick").set_value(pat.id)
    run(at)
    click(at, "Reset password")
    assert values(at.success) == ["The password of **pat** was reset. Their temporary password (shown once):"]
    [temporary] = [c.value for c in at.code]
    assert temporary not in repr(at.session_state.to_dict())
    assert scalar(db, "SELECT revoked_at IS NOT NULL FROM exact_session WHERE id = :s", s=pats_session)
    run(at)
    assert not at.code, "shown once"
    assert list(at.dataframe[0].value.loc[at.dataframe[0].value["username"] == "pat", "must change password"]) == [True]

    # pat logs in with it from a deep link: whatever page, only the profile's password change is open.
    pats = _deep_link(app, "app_pages/submit.py", challenge="older")
    _log_in(pats, "pat", temporary)
    assert title(pats) == "Profile"
    assert values(pats.warning)[0].startswith("An administrator has reset your password.")
    assert [link.label for link in pats.sidebar.get("page_link")] == ["Profile", "Log out"]
    for page in ("app_pages/leaderboard.py", "app_pages/submit.py", "app_pages/home.py"):
        goto(pats, page)
        assert title(pats) == "Profile", page
    # (AppTest keeps running the page it last switched to itself; a browser follows the router's switch. So:)
    goto(pats, "app_pages/profile.py")
    one(pats.text_input, "Current password").input(temporary)
    one(pats.text_input, "New password").input("brand new secret")
    one(pats.text_input, "New password again").input("brand new secret")
    click(pats, "Change password")
    assert not pats.error, values(pats.error)
    assert not pats.warning, values(pats.warning)
    goto(pats, "app_pages/submit.py")
    assert title(pats) == "Submit a score"
    assert "Submit score" in [link.label for link in pats.sidebar.get("page_link")]
    assert rows(db, "SELECT * FROM exact_password_reset") == []


def test_the_reset_is_not_offered_for_yourself(app, db, people):
    admin = people["admin"]
    before = scalar(db, "SELECT password FROM auth_user WHERE id = :u", u=admin.id)
    at = _deep_link(app, "app_pages/users.py", db, admin)
    at.selectbox(key="users_pick").set_value(admin.id)
    run(at)
    assert "Reset password" not in [b.label for b in at.button]  # the service refuses it too (test_accounts.py)
    assert "To change your own password, use your profile page (with your current password)." in values(at.caption)
    at.selectbox(key="users_pick").set_value(people["participant"].id)
    run(at)
    assert "Reset password" in [b.label for b in at.button]
    assert not at.code
    assert scalar(db, "SELECT password FROM auth_user WHERE id = :u", u=admin.id) == before


def test_a_reset_while_logged_in_elsewhere_ends_that_session(app, db, world, people):
    pat = people["participant"]
    at = _deep_link(app, "app_pages/submit.py", db, pat, challenge="older")
    assert title(at) == "Submit a score"
    accounts.reset_password(db, people["admin"].id, pat.id)
    run(at)
    assert title(at) == "Log in" and at.session_state["current_user"] is None


def test_the_reset_row_is_ours_alone(db, people):
    """Django's auth_user keeps exactly Django's columns: the requirement lives in exact_password_reset."""
    accounts.reset_password(db, people["admin"].id, people["participant"].id)
    with db.connect() as conn:
        columns = conn.execute(
            sa.text("SELECT column_name FROM information_schema.columns WHERE table_name = 'auth_user'")
        ).scalars()
        assert "must_change_password" not in set(columns)
        assert conn.execute(sa.text("SELECT count(*) FROM exact_password_reset")).scalar_one() == 1


# --- the challenge list's type and status, batch-loaded ----------------------------------------------------------


def test_the_challenge_list_reads_types_and_statuses_in_a_fixed_number_of_statements(db, world, people):
    from datetime import UTC, datetime, timedelta

    from exact.challenges import list_challenge_summaries
    from exact.competition import Rules, update_rules

    now = datetime.now(UTC)
    update_rules(db, people["organiser"].id, "older", Rules(ends_at=now - timedelta(days=1)))
    update_rules(db, people["organiser"].id, "newer", Rules(starts_at=now + timedelta(days=2, hours=3)))
    with db.transaction() as conn:  # "newer" is scored on the server (an evaluation row is all the list looks at)
        conn.execute(
            sa.text(
                "INSERT INTO exact_evaluation (challenge_id, inputs_path, masks_path, n_samples, height, width, "
                "primary_metric) VALUES ('newer', 'i.npz', 'm.npz', 4, 8, 8, 'emd')"
            )
        )
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        page = list_challenge_summaries(db, now=now)
        few = len(statements)
        for n in range(60):
            create_challenge(db, world["storage"], people["organiser"].id, ChallengeForm(f"Bulk {n}", "x"), {})
        statements.clear()
        crowded = list_challenge_summaries(db, now=now)
        many = len(statements)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
    assert [(s.challenge.challenge_id, s.kind, s.status) for s in page.items] == [
        ("newer", "Server-scored", "Opens in 2 days 3 hours"),
        ("older", "Score-only", "Closed"),
    ]
    assert few == many == 4  # the page, the count, its rules, its evaluation flags: never one per row
    assert len(crowded.items) == 50 and crowded.total == 62

"""Exact: router and auth gate. Builds the page list for the visitor's role and runs the chosen page."""

from __future__ import annotations

import logging

import streamlit as st

from db.database import Database
from exact.accounts import needs_first_admin
from exact.errors import DatabaseUnavailable, QueryTooSlow, UserError
from ui import auth
from ui.feedback import show_too_slow, show_unexpected
from ui.runtime import announce_setup_token, ensure_worker, get_db, get_settings
from ui.setup_help import render_database_help

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
log = logging.getLogger("exact")


def _pages(user) -> dict[str, list[st.Page]]:
    browse = [
        st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("app_pages/challenges.py", title="Challenges", icon=":material/emoji_events:"),
        st.Page("app_pages/challenge.py", title="Challenge", icon=":material/description:", url_path="challenge"),
        st.Page("app_pages/leaderboard.py", title="Leaderboard", icon=":material/leaderboard:"),
        st.Page("app_pages/result.py", title="Result", url_path="result", visibility="hidden"),
    ]
    if user is None:
        account = [
            st.Page("app_pages/login.py", title="Log in", icon=":material/login:"),
            st.Page("app_pages/register.py", title="Register", icon=":material/person_add:"),
        ]
        return {"Exact": browse, "Account": account}
    participate = [st.Page("app_pages/submit.py", title="Submit score", icon=":material/upload:")]
    if user.is_organiser:
        participate.append(
            st.Page("app_pages/manage_challenge.py", title="Create / edit challenge", icon=":material/edit:")
        )
    account = [st.Page("app_pages/profile.py", title="Profile", icon=":material/person:")]
    if user.is_admin:
        account.append(st.Page("app_pages/users.py", title="Users", icon=":material/group:"))
        account.append(st.Page("app_pages/database.py", title="Database", icon=":material/database:"))
    account.append(st.Page("app_pages/logout.py", title="Log out", icon=":material/logout:"))
    return {"Exact": browse, "Participate": participate, "Account": account}


def _show_database_help(exc: BaseException) -> None:
    # Always go through st.navigation: without it Streamlit would list every file in pages/ in the sidebar.
    def database_unavailable() -> None:
        render_database_help(exc)

    st.navigation([st.Page(database_unavailable, title="Database unavailable")], position="hidden").run()


def main() -> None:
    st.set_page_config(page_title="Exact", page_icon=":material/insights:", layout="wide")
    try:
        get_settings()
        db = get_db()
    except Exception as exc:  # any start-up failure: explain what to set, no traceback
        log.warning("database not available at start: %s", exc)
        _show_database_help(exc)
        return
    with db.shared_reads():  # one read connection for the whole run, not one per service call
        _run(db)


def _run(db: Database) -> None:
    try:
        first_run = needs_first_admin(db)
        ensure_worker()
    except Exception as exc:  # any start-up failure: explain what to set, no traceback
        log.warning("database not available at start: %s", exc)
        _show_database_help(exc)
        return

    if first_run:
        auth.forget_user()
        announce_setup_token()  # decided and printed by the server; the page only asks for it
        st.navigation([st.Page("app_pages/setup.py", title="Set up Exact", icon=":material/rocket_launch:")]).run()
        return

    try:
        user = auth.resolve_user(db)
    except DatabaseUnavailable as exc:
        _show_database_help(exc)
        return
    st.session_state["current_user"] = user

    page = st.navigation(_pages(user))
    with st.sidebar:
        if user is not None:
            st.caption(f"Logged in as **{user.username}** ({user.role})")
        else:
            st.caption("Browsing as a visitor. Log in to submit.")
    auth.hand_over_to_browser()
    try:
        page.run()
    except UserError as exc:  # e.g. a deep link to something missing or not yours
        st.error(str(exc))
    except QueryTooSlow as exc:  # the server is there; this request asked too much of it
        show_too_slow(exc, where=f"page {page.title}")
    except DatabaseUnavailable as exc:
        render_database_help(exc)
    except Exception as exc:
        show_unexpected(exc, where=f"page {page.title}")


# A scoring process is spawned from inside a page run, where Streamlit has made this script the __main__ module;
# the new interpreter imports it again as __mp_main__, and must not run the app (and start scorers) itself.
if __name__ != "__mp_main__":
    main()

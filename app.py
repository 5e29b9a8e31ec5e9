"""Exact: router and auth gate. Builds the page list for the visitor's role and runs the chosen page.

Every address of a page that needs a login is known to the router whoever asks (docs/journeys.md): a visitor gets
the login form at that address (and lands on the page after logging in), a logged-in user without the role a
short explanation, never Streamlit's "Page not found" dialog. A user whose password an administrator reset sees
only the profile page until they choose a new one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

import streamlit as st

from db.database import Database
from exact import dashboard
from exact.accounts import User, needs_first_admin
from exact.challenges import get_challenge
from exact.errors import DatabaseUnavailable, NotFound, QueryTooSlow, UserError
from ui import auth
from ui.feedback import show_too_slow, show_unexpected
from ui.runtime import announce_setup_token, ensure_worker, get_db, get_settings
from ui.setup_help import render_database_help
from ui.widgets import CURRENT_CHALLENGE

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
log = logging.getLogger("exact")

SITE_NAME = "Exact"


@dataclass(frozen=True)
class _MemberPage:
    """A page that needs a login, and who among the logged-in users may open it."""

    script: str
    title: str
    icon: str
    url_path: str
    section: str
    who: str  # "participant" (anyone logged in), "organiser" or "admin"


MEMBER_PAGES = (
    _MemberPage("app_pages/submit.py", "Submit score", ":material/upload:", "submit", "Participate", "participant"),
    _MemberPage(
        "app_pages/manage_challenge.py", "Create / edit challenge", ":material/edit:", "manage_challenge",
        "Participate", "organiser",
    ),
    _MemberPage(
        "app_pages/dashboard.py", "Challenge dashboard", ":material/monitoring:", "dashboard", "Participate",
        "organiser",
    ),
    _MemberPage("app_pages/profile.py", "Profile", ":material/person:", "profile", "Account", "participant"),
    _MemberPage("app_pages/users.py", "Users", ":material/group:", "users", "Account", "admin"),
    _MemberPage("app_pages/database.py", "Database", ":material/database:", "database", "Account", "admin"),
)  # fmt: skip
_WHO = {"organiser": "organisers", "admin": "administrators"}
_OPEN_WHILE_LOCKED = {"profile", "logout"}  # all a user with a reset password may open


def _may_open(user: User, page: _MemberPage) -> bool:
    if page.who == "admin":
        return user.is_admin
    return page.who == "participant" or user.is_organiser


def _not_for_you(page: _MemberPage, user: User):
    def not_available() -> None:
        st.title("Not available")
        st.warning(f"**{page.title}** is for {_WHO[page.who]}. You are logged in as **{user.username}** ({user.role}).")
        st.page_link("app_pages/home.py", label="Go to the home page", icon=":material/home:")

    return not_available


def _already_logged_in(user: User):
    def logged_in() -> None:
        st.title("Logged in")
        st.info(f"You are logged in as **{user.username}**.")
        st.page_link("app_pages/home.py", label="Go to the home page", icon=":material/home:")

    return logged_in


def _set_up_already() -> None:
    st.title("Exact is set up")
    st.info("This site already has an administrator, so the set-up page is closed for good.")
    st.page_link("app_pages/home.py", label="Go to the home page", icon=":material/home:")


def _pages(user: User | None) -> dict[str, list[st.Page]]:
    locked = user is not None and user.must_change_password

    def page(script, title: str, *, hidden: bool = False, url_path: str | None = None, **options) -> st.Page:
        shown = not hidden and (not locked or (url_path or "") in _OPEN_WHILE_LOCKED)
        return st.Page(script, title=title, url_path=url_path, visibility="visible" if shown else "hidden", **options)

    browse = [
        page("app_pages/home.py", "Home", icon=":material/home:", default=True),
        page("app_pages/challenges.py", "Challenges", icon=":material/emoji_events:", url_path="challenges"),
        page("app_pages/challenge.py", "Challenge", icon=":material/description:", url_path="challenge"),
        page("app_pages/leaderboard.py", "Leaderboard", icon=":material/leaderboard:", url_path="leaderboard"),
        page("app_pages/result.py", "Result", url_path="result", hidden=True),
        page("app_pages/compare.py", "Compare methods", icon=":material/compare_arrows:", url_path="compare"),
        page("app_pages/present.py", "Presentation", url_path="present", hidden=True),
        # A stale set-up link (or the run right after set-up) explains instead of "Page not found".
        page(_set_up_already, "Set up Exact", url_path="setup", hidden=True),
    ]
    if user is None:
        account = [
            page("app_pages/login.py", "Log in", icon=":material/login:", url_path="login"),
            page("app_pages/register.py", "Register", icon=":material/person_add:", url_path="register"),
        ]
        # The login form at the address of every page that needs a login; login.py goes there afterwards.
        asked_for = [page("app_pages/login.py", "Log in", url_path=p.url_path, hidden=True) for p in MEMBER_PAGES]
        return {SITE_NAME: browse, "Account": account + asked_for}
    sections: dict[str, list[st.Page]] = {SITE_NAME: browse, "Participate": [], "Account": []}
    for member in MEMBER_PAGES:
        if _may_open(user, member):
            entry = page(member.script, member.title, icon=member.icon, url_path=member.url_path)
        else:
            entry = page(_not_for_you(member, user), member.title, url_path=member.url_path, hidden=True)
        sections[member.section].append(entry)
    sections["Account"] += [
        page("app_pages/logout.py", "Log out", icon=":material/logout:", url_path="logout"),
        page(_already_logged_in(user), "Log in", url_path="login", hidden=True),
        page(_already_logged_in(user), "Register", url_path="register", hidden=True),
    ]
    return {name: entries for name, entries in sections.items() if entries}


def _show_database_help(exc: BaseException) -> None:
    # Always go through st.navigation: without it Streamlit would list every file in pages/ in the sidebar.
    def database_unavailable() -> None:
        render_database_help(exc)

    st.navigation([st.Page(database_unavailable, title="Database unavailable")], position="hidden").run()


def tab_title(page_title: str) -> str:
    """The browser tab's title: "Leaderboard · Exact" (the home page: just "Exact")."""
    return SITE_NAME if page_title in ("", "Home", SITE_NAME) else f"{page_title} · {SITE_NAME}"


def main() -> None:
    st.set_page_config(page_title=SITE_NAME, page_icon=":material/insights:", layout="wide")
    try:
        get_settings()
        db = get_db()
    except Exception as exc:  # any start-up failure: explain what to set, no traceback
        log.warning("database not available at start: %s", exc)
        _show_database_help(exc)
        return
    with db.shared_reads():  # one read connection for the whole run, not one per service call
        _run(db)


def _login_target(page: st.Page, known: dict[str, st.Page]) -> auth.LoginTarget | None:
    """For a visitor: the page to open after logging in. The login form at a member page's own address goes
    there (with the query string); /login and /register take ``?next=``, if it names a page of this site."""
    member = {p.url_path: p.title for p in MEMBER_PAGES}
    if page.url_path in member:
        query = urlencode(st.query_params.to_dict())
        return auth.LoginTarget(path=f"/{page.url_path}" + (f"?{query}" if query else ""), title=member[page.url_path])
    if page.url_path in ("login", "register") and st.query_params.get("next"):
        path = auth.clean_next(st.query_params.get("next"))
        name = urlsplit(path).path.lstrip("/")
        if name in member:
            return auth.LoginTarget(path=path, title=member[name])
        if name in known and name not in ("", "login", "register", "logout", "setup"):  # "": home, the default
            return auth.LoginTarget(path=path, title=known[name].title)
    return None


def _go_where_asked(page: st.Page, known: dict[str, st.Page], user: User | None) -> None:
    """Right after a login: open the page it was for (once). A reset password: the profile page, always."""
    target, query = page, None
    destination = auth.take_destination() if user is not None else None
    if destination is not None:
        path, query = destination
        target = known.get(path, known[""])
    if user is not None and user.must_change_password and target.url_path not in _OPEN_WHILE_LOCKED:
        target, query = known["profile"], {}
    if target.url_path != page.url_path:
        st.switch_page(target, query_params=query or {})


# Pages that show one challenge (?challenge=): the sidebar's links to them carry the challenge you are on.
CHALLENGE_PAGES = frozenset({"challenge", "leaderboard", "compare", "submit", "dashboard"})


def _current_challenge(db: Database, page: st.Page) -> str | None:
    """The challenge this run is about: a challenge page's ``?challenge=`` if it names one, else the one this tab
    was on last (ui.widgets.remember_challenge)."""
    remembered = st.session_state.get(CURRENT_CHALLENGE)
    linked = st.query_params.get("challenge") if page.url_path in CHALLENGE_PAGES else None
    if not linked or linked == remembered:
        return remembered
    try:
        return get_challenge(db, linked).challenge_id
    except NotFound:  # a mistyped id: the page says so; the links keep the last good one
        return remembered


def _organises(db: Database, user: User | None, challenge_id: str) -> bool:
    """Whether the dashboard link may carry this challenge (the dashboard checks again); asked once per
    challenge and tab, not on every run."""
    if user is None or not user.is_organiser:
        return False
    cache = st.session_state.setdefault("nav_organises", {})
    if (user.id, challenge_id) not in cache:
        cache[(user.id, challenge_id)] = dashboard.may_see(db, user.id, challenge_id)
    return cache[(user.id, challenge_id)]


def _sidebar_links(db: Database, pages: dict[str, list[st.Page]], challenge_id: str | None, user: User | None) -> None:
    """The navigation, as Streamlit's own would draw it, except that links to challenge pages carry
    ``?challenge=``: one history entry per click, so Back returns to the page before with its challenge (the
    picker writing the challenge into the address after a plain link would add a second entry)."""
    for section, entries in pages.items():
        shown = [p for p in entries if p.visibility == "visible"]
        if not shown:
            continue
        st.markdown(f"**{section}**")
        for entry in shown:
            scoped = challenge_id and entry.url_path in CHALLENGE_PAGES
            if scoped and entry.url_path == "dashboard":
                scoped = _organises(db, user, challenge_id)
            query = {"challenge": challenge_id} if scoped else None
            st.page_link(entry, label=entry.title, icon=entry.icon or None, query_params=query)


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
        st.set_page_config(page_title=tab_title("Set up"))
        st.navigation([st.Page("app_pages/setup.py", title="Set up Exact", icon=":material/rocket_launch:")]).run()
        return

    try:
        user = auth.resolve_user(db)
    except DatabaseUnavailable as exc:
        _show_database_help(exc)
        return
    st.session_state["current_user"] = user

    pages = _pages(user)
    page = st.navigation(pages, position="hidden")  # the sidebar's links are drawn below, with the challenge
    known = {p.url_path: p for entries in pages.values() for p in entries}
    _go_where_asked(page, known, user)
    auth.set_login_target(_login_target(page, known) if user is None else None)
    st.set_page_config(page_title=tab_title(page.title))  # a page may name itself more precisely
    with st.sidebar:
        _sidebar_links(db, pages, _current_challenge(db, page), user)
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

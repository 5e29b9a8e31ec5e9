"""The logged-in user of this browser session, kept across refreshes by a signed cookie (see exact.sessions)."""

from __future__ import annotations

import json
import re

import streamlit as st

from db.database import Database
from exact import sessions
from exact.accounts import User
from ui.runtime import get_secret_key, get_settings

_USER_ID = "auth_user_id"
_SESSION_ID = "auth_session_id"
_COOKIE_TO_WRITE = "auth_cookie_to_write"
_FINGERPRINT = "auth_password_fingerprint"  # server-side only; a password changed elsewhere ends the tab's login
_COOKIE_SAFE = re.compile(r"^[A-Za-z0-9._-]*$")


def _browser_cookie() -> str | None:
    try:
        return st.context.cookies.get(sessions.COOKIE_NAME)
    except Exception:  # no browser behind this run (AppTest, bare mode)
        return None


def client_address() -> str | None:
    """The browser's network address as Streamlit sees it (behind a proxy: the proxy's, see docs/security.md)."""
    try:
        return st.context.ip_address
    except Exception:
        return None


def resolve_user(db: Database) -> User | None:
    """Who is logged in, re-checked against the database on every run (revocation and deactivation apply at once)."""
    settings = get_settings()
    user_id = st.session_state.get(_USER_ID)
    session_id = st.session_state.get(_SESSION_ID)
    if user_id is not None and session_id is not None:
        live = sessions.check_live(
            db, session_id, user_id, secret_key=get_secret_key(), fingerprint=st.session_state.get(_FINGERPRINT)
        )
        if live is not None:
            user, st.session_state[_FINGERPRINT] = live
            return user
        forget_user()
        return None
    if st.session_state.get("auth_logged_out"):
        return None  # the cookie may still be in this tab's handshake; it was revoked, but don't even look
    resolved = sessions.resolve_session(db, _browser_cookie(), secret_key=get_secret_key(), days=settings.session_days)
    if resolved is None:
        return None
    session_id, user = resolved
    st.session_state[_USER_ID] = user.id
    st.session_state[_SESSION_ID] = session_id
    return user


def log_in(db: Database, user: User) -> None:
    settings = get_settings()
    session_id, cookie = sessions.start_session(db, user.id, secret_key=get_secret_key(), days=settings.session_days)
    st.session_state[_USER_ID] = user.id
    st.session_state[_SESSION_ID] = session_id
    st.session_state.pop(_FINGERPRINT, None)  # taken from the database on the next run
    st.session_state[_COOKIE_TO_WRITE] = (cookie, settings.session_days * 86400)
    st.session_state.pop("auth_logged_out", None)


def log_out(db: Database) -> None:
    sessions.end_session(db, st.session_state.get(_SESSION_ID))
    forget_user()
    st.session_state["auth_logged_out"] = True
    st.session_state[_COOKIE_TO_WRITE] = ("", 0)


def forget_user() -> None:
    st.session_state.pop(_USER_ID, None)
    st.session_state.pop(_SESSION_ID, None)
    st.session_state.pop(_FINGERPRINT, None)


def current_session_id() -> str | None:
    return st.session_state.get(_SESSION_ID)


def write_pending_cookie() -> None:
    """Set (or clear) the session cookie in the browser. Streamlit has no server-side Set-Cookie, so a line of JS does.

    The value is a signed token of URL-safe characters only; it is checked before it goes into the script.
    """
    pending = st.session_state.pop(_COOKIE_TO_WRITE, None)
    if pending is None:
        return
    value, max_age = pending
    if not _COOKIE_SAFE.match(value):
        return
    cookie = json.dumps(f"{sessions.COOKIE_NAME}={value}; Path=/; Max-Age={int(max_age)}; SameSite=Strict")
    script = f"<script>document.cookie = {cookie} + (location.protocol === 'https:' ? '; Secure' : '');</script>"
    st.html(script, unsafe_allow_javascript=True)


def current_user() -> User | None:
    """The user app.py resolved for this run (None for visitors)."""
    return st.session_state.get("current_user")


def require_login(action: str) -> User:
    """For pages that need a logged-in user: explain and stop the page otherwise."""
    user = current_user()
    if user is None:
        st.info(f"Please log in to {action}.")
        st.page_link("app_pages/login.py", label="Log in", icon=":material/login:")
        st.stop()
    return user

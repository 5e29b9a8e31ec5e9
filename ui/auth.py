"""The logged-in user of this browser session, kept across refreshes by a signed cookie (see exact.sessions).

The cookie is HttpOnly and set by the server: logging in puts the user into this tab's session state at once and
hands the browser a one-time ticket in a small form that posts itself to /auth/session (web/auth_routes.py),
which sets the cookie and redirects back. Logging out posts ``logout=1`` the same way to clear it. No script
here ever touches a cookie.

That redirect reloads the page, so a message shown right before it would be lost. A page that wants to say
something after a login (e.g. "your password was changed") passes ``notice=``: the message is shown in this tab
at once (``take_notice``) and again on the page the browser lands on, whose address carries
``?notice=<kind>-<tag>``, the tag binding it to the new session so a link from elsewhere cannot show it.

Where a login leads (docs/journeys.md): a visitor who asks for a page that needs a login (``/submit?challenge=x``)
gets the login form at that address, and app.py remembers the address as this run's ``login_target``; a login
link elsewhere carries it as ``?next=``. ``log_in(next_path=...)`` then sends both the tab (app.py switches to
it once, ``take_destination``) and the browser's redirect after /auth/session to that page, query string and
all. Only paths on this site pass (``clean_next``, the same rule /auth/session applies); anything else is "/".
"""

from __future__ import annotations

import hashlib
import hmac
import html
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit

import streamlit as st

from db.database import Database
from exact import sessions
from exact.accounts import User
from exact.validation import safe_next
from ui.runtime import get_secret_key, get_settings

_USER_ID = "auth_user_id"
_SESSION_ID = "auth_session_id"
_HANDOVER = "auth_pending_handover"  # what the next run hands to the browser: a login ticket or a logout
_NOTICES = "auth_notices"  # notices this tab shows once (take_notice)
_FINGERPRINT = "auth_password_fingerprint"  # server-side only; a password changed elsewhere ends the tab's login
_DESTINATION = "auth_destination"  # where this tab goes right after logging in (app.py switches there once)
_LOGIN_TARGET = "auth_login_target"  # set by app.py on every run: the page a visitor asked for, if any
SESSION_ROUTE = "/auth/session"


@dataclass(frozen=True)
class LoginTarget:
    """A page a visitor asked for that needs a login: its same-site path with the query, and its title."""

    path: str
    title: str


def clean_next(value: str | None) -> str:
    """``value`` if it is a path on this site (``/submit?challenge=x``), else "/": exact.validation.safe_next, the
    rule /auth/session itself applies to ``next``, so the tab and the browser's redirect always agree."""
    return safe_next(value)


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


def log_in(db: Database, user: User, *, next_path: str | None = None, notice: str | None = None) -> None:
    """Log this tab in now and have the next run hand the browser a ticket for its HttpOnly cookie.

    The tab and then the browser go to ``next_path`` (a same-site path with its query, e.g. the page a visitor
    asked for before logging in; anything else, or none, is the home page). With ``notice`` (a fixed kind such as
    "password_changed") both stay on the current page instead, where ``take_notice(notice)`` is true once.
    """
    settings = get_settings()
    # The cookie value start_session signs is not used here: /auth/session makes it afresh from the ticket, so it
    # never passes through the page, let alone a script.
    session_id, _ = sessions.start_session(db, user.id, secret_key=get_secret_key(), days=settings.session_days)
    ticket = sessions.issue_ticket(db, session_id)
    st.session_state[_USER_ID] = user.id
    st.session_state[_SESSION_ID] = session_id
    st.session_state.pop(_FINGERPRINT, None)  # taken from the database on the next run
    st.session_state.pop("auth_logged_out", None)
    if notice is not None:
        st.session_state.setdefault(_NOTICES, set()).add(notice)
        next_path = _current_path() + "?" + urlencode({"notice": f"{notice}-{_notice_tag(notice, session_id)}"})
        st.session_state.pop(_DESTINATION, None)
    else:
        next_path = clean_next(next_path)
        st.session_state[_DESTINATION] = next_path
    st.session_state[_HANDOVER] = {"ticket": ticket, "next": next_path}


def take_destination() -> tuple[str, dict[str, str]] | None:
    """Once after ``log_in``: the page to open (its url_path, "" for home) and its query parameters."""
    destination = st.session_state.pop(_DESTINATION, None)
    if destination is None:
        return None
    parts = urlsplit(clean_next(destination))
    return parts.path.lstrip("/"), dict(parse_qsl(parts.query, keep_blank_values=True))


def set_login_target(target: LoginTarget | None) -> None:
    """app.py, on every run: the page this visitor asked for (None: nothing to go back to after logging in)."""
    st.session_state[_LOGIN_TARGET] = target


def login_target() -> LoginTarget | None:
    return st.session_state.get(_LOGIN_TARGET)


def current_address() -> str:
    """This run's page as a same-site path with its query string (e.g. to come back here after logging in)."""
    query = urlencode(st.query_params.to_dict())
    return clean_next(_current_path() + (f"?{query}" if query else ""))


def log_out(db: Database) -> None:
    sessions.end_session(db, st.session_state.get(_SESSION_ID))
    forget_user()
    st.session_state["auth_logged_out"] = True
    st.session_state[_HANDOVER] = {"logout": "1"}


def forget_user() -> None:
    st.session_state.pop(_USER_ID, None)
    st.session_state.pop(_SESSION_ID, None)
    st.session_state.pop(_FINGERPRINT, None)


def current_session_id() -> str | None:
    return st.session_state.get(_SESSION_ID)


def hand_over_to_browser() -> None:
    """Render, once, the form that posts a pending login ticket (or logout) to /auth/session, where the server
    sets (or clears) the HttpOnly cookie and redirects the browser back. Its only script submits the form."""
    pending = st.session_state.pop(_HANDOVER, None)
    if pending is None:
        return
    form_id = f"exact-handover-{secrets.token_hex(8)}"
    fields = "".join(
        f'<input type="hidden" name="{html.escape(name, quote=True)}" value="{html.escape(value, quote=True)}">'
        for name, value in pending.items()
    )
    st.html(
        f'<form id="{form_id}" method="post" action="{SESSION_ROUTE}">{fields}</form>'
        # Submitted once even if the element is drawn twice (not window[id]: that is the form itself, by its id).
        f'<script>(function(){{var id="{form_id}";if(window.exactHandedOver===id)return;window.exactHandedOver=id;'
        "document.getElementById(id).submit();})();</script>",
        unsafe_allow_javascript=True,
    )


def take_notice(kind: str) -> bool:
    """True once for a notice that ``log_in(..., notice=kind)`` left: in the tab that logged in, and on the page
    the browser lands on after the cookie was set (its ``?notice=`` tag must match this session)."""
    shown_here = st.session_state.get(_NOTICES)
    if shown_here and kind in shown_here:
        shown_here.discard(kind)
        return True
    flag = st.query_params.get("notice")
    session_id = st.session_state.get(_SESSION_ID)
    if not flag or not session_id or not flag.startswith(f"{kind}-"):
        return False
    del st.query_params["notice"]  # once; a refresh does not repeat it
    return hmac.compare_digest(flag, f"{kind}-{_notice_tag(kind, session_id)}")


def _notice_tag(kind: str, session_id: str) -> str:
    key = get_secret_key().encode()
    return hmac.new(key, f"exact.notice:{kind}:{session_id}".encode(), hashlib.sha256).hexdigest()[:16]


def _current_path() -> str:
    """The path of the page this run belongs to, as the browser shows it (without its query), else "/"."""
    try:
        url = st.context.url
    except Exception:  # no browser behind this run (AppTest, bare mode)
        url = None
    path = urlsplit(url).path if url else ""
    return path if path.startswith("/") and not path.startswith("//") else "/"


def current_user() -> User | None:
    """The user app.py resolved for this run (None for visitors)."""
    return st.session_state.get("current_user")


def login_link(label: str = "Log in", *, next_path: str | None = None) -> None:
    """A link to the login page that comes back to ``next_path`` (a same-site path) after logging in."""
    query = {"next": clean_next(next_path)} if next_path else None
    st.page_link("app_pages/login.py", label=label, icon=":material/login:", query_params=query)


def require_login(action: str) -> User:
    """For pages that need a logged-in user: explain and stop the page otherwise (with a login link back here)."""
    user = current_user()
    if user is None:
        st.info(f"Please log in to {action}.")
        login_link(next_path=current_address())
        st.stop()
    return user

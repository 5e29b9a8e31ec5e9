"""In Chromium: the session cookie is set by the server (HttpOnly, SameSite=Lax), scripts cannot read it, a
refresh keeps the login, and logging out removes it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_journey import (
    HANDOVER_FORM,
    PASSWORD,
    expect_logged_in,
    expect_visitor,
    go,
    log_in,
    log_out,
    main_area,
    open_nav,
    sidebar,
)
from tests.conftest import make_user
from tests.live_server import LiveApp

pytestmark = pytest.mark.browser


def _session_cookies(page: Page) -> list[dict]:
    return [c for c in page.context.cookies() if c["name"] == "exact_session"]


def test_the_login_cookie_is_httponly_and_survives_a_refresh(live_app: LiveApp, browser_page: Page) -> None:
    make_user(live_app.db, "root", superuser=True, password=PASSWORD)  # closes the first-run set-up
    make_user(live_app.db, "pat", password=PASSWORD)
    page = browser_page
    exchanges = []
    page.on("request", lambda r: exchanges.append(r.method) if r.url == live_app.url + "/auth/session" else None)

    log_in(page, live_app, "pat")
    assert exchanges == ["POST"], "the login went through one real HTTP exchange at /auth/session"
    [cookie] = _session_cookies(page)
    assert cookie["value"]
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] in ("Lax", "Strict")
    assert cookie["path"] == "/"
    assert cookie["secure"] is False  # plain http here; https gets Secure (tests/test_login_exchange.py)
    assert "exact_session" not in page.evaluate("document.cookie")  # no script can read (or steal) it

    # A refresh is a new Streamlit session: it finds the user through the cookie in the websocket handshake.
    page.reload()
    expect_logged_in(page, "pat")
    open_nav(page, "Profile")
    expect(main_area(page).get_by_role("heading", name="Profile")).to_be_visible()
    page.reload()
    expect_logged_in(page, "pat")
    expect(main_area(page).get_by_role("heading", name="Profile")).to_be_visible()
    assert exchanges == ["POST"], "browsing and refreshing do not touch /auth/session"

    # Logging out clears the cookie (again over HTTP) and revokes the session: a refresh shows a visitor.
    log_out(page)
    assert exchanges == ["POST", "POST"]
    assert _session_cookies(page) == []
    page.reload()
    expect_visitor(page)
    expect(sidebar(page).get_by_role("link", name="Profile", exact=True)).to_have_count(0)


def test_a_password_change_hands_over_a_new_cookie_and_keeps_its_message(live_app: LiveApp, browser_page: Page) -> None:
    make_user(live_app.db, "root", superuser=True, password=PASSWORD)
    make_user(live_app.db, "pat", password=PASSWORD)
    page = browser_page
    log_in(page, live_app, "pat")
    old_cookie = _session_cookies(page)[0]["value"]

    open_nav(page, "Profile")
    form = page.get_by_test_id("stForm").filter(has=page.get_by_label("Current password", exact=True))
    form.get_by_label("Current password", exact=True).fill(PASSWORD)
    form.get_by_label("New password", exact=True).fill("Another-Harbour-5173")
    form.get_by_label("New password again", exact=True).fill("Another-Harbour-5173")
    form.get_by_role("button", name="Change password").click()

    # The browser posts the new ticket, gets the new cookie and comes back to the profile, message and all.
    message = main_area(page).get_by_test_id("stAlert").filter(has_text="Your password was changed")
    for _ in range(400):
        cookies = _session_cookies(page)
        if cookies and cookies[0]["value"] != old_cookie:
            break
        page.wait_for_timeout(50)
    else:
        raise AssertionError("the browser never received the new session cookie")
    expect(page.locator(HANDOVER_FORM)).to_have_count(0)
    expect(page).to_have_url(re.compile(r"/profile(\?|$)"))
    expect_logged_in(page, "pat")
    expect(message).to_be_visible()
    expect(page).not_to_have_url(re.compile(r"notice="))  # shown once: a refresh does not repeat it
    assert _session_cookies(page)[0]["httpOnly"] is True
    page.reload()
    expect_logged_in(page, "pat")
    expect(main_area(page).get_by_role("heading", name="Profile")).to_be_visible()
    expect(message).to_have_count(0)


def test_a_login_link_from_elsewhere_cannot_show_the_password_message(live_app: LiveApp, browser_page: Page) -> None:
    """The ?notice= flag is bound to the session by a tag: a crafted link shows nothing."""
    make_user(live_app.db, "root", superuser=True, password=PASSWORD)
    make_user(live_app.db, "pat", password=PASSWORD)
    page = browser_page
    log_in(page, live_app, "pat")
    go(page, live_app, "/profile?notice=password_changed-0123456789abcdef")
    expect(main_area(page).get_by_role("heading", name="Profile")).to_be_visible()
    expect(main_area(page).get_by_role("button", name="Change password")).to_be_visible()
    expect(main_area(page).get_by_test_id("stAlert").filter(has_text="Your password was changed")).to_have_count(0)

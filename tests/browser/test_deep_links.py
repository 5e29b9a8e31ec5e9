"""In Chromium: deep links that used to lose people (docs/journeys.md). A logged-out link to a page that needs a
login goes on to that page after logging in; a mistyped id says so with a link to the list; the challenge you are
on stays in the address across pages, and Back returns to the page before with its challenge."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_journey import (
    PASSWORD,
    alert,
    expect_logged_in,
    expect_visitor,
    go,
    main_area,
    open_nav,
    seed_challenge,
    session_cookie,
    sidebar,
)
from tests.conftest import make_user
from tests.live_server import LiveApp

pytestmark = pytest.mark.browser


def _seed(live_app: LiveApp) -> None:
    admin = make_user(live_app.db, "root", superuser=True, password=PASSWORD)
    make_user(live_app.db, "pat", password=PASSWORD)
    seed_challenge(live_app, admin.id, "older-one", "Older challenge", days_ago=3)
    seed_challenge(live_app, admin.id, "newest-one", "Newest challenge")  # what a picker without memory would show


def _picker(page: Page):
    """The challenge picker's combobox (its value is the chosen option's label)."""
    return main_area(page).get_by_role("combobox", name="Challenge", exact=True)


def test_a_logged_out_link_to_the_submit_page_logs_in_and_lands_there(live_app: LiveApp, browser_page: Page) -> None:
    _seed(live_app)
    page = browser_page
    go(page, live_app, "/submit?challenge=older-one")  # the first request of this browser, as from an e-mail
    expect_visitor(page)
    expect(main_area(page).get_by_role("heading", name="Log in")).to_be_visible()
    expect(alert(page, "Please log in to open Submit score")).to_be_visible()
    expect(page.get_by_role("dialog")).to_have_count(0)  # no "Page not found"
    expect(page).to_have_url(re.compile(r"/submit\?challenge=older-one$"))
    expect(page).to_have_title("Log in · Exact")

    form = page.get_by_test_id("stForm")
    form.get_by_label("Username", exact=True).fill("pat")
    form.get_by_label("Password", exact=True).fill(PASSWORD)
    form.get_by_role("button", name="Log in").click()
    expect_logged_in(page, "pat")  # the cookie was set by /auth/session, which redirected to the page asked for
    assert session_cookie(page)
    expect(page).to_have_url(re.compile(r"/submit\?challenge=older-one$"))
    expect(main_area(page).get_by_role("heading", name="Submit a score")).to_be_visible()
    expect(_picker(page)).to_have_value("Older challenge (older-one)")
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(page).to_have_title("Submit score · Exact")

    # A refresh keeps both the login and the page.
    page.reload()
    expect_logged_in(page, "pat")
    expect(main_area(page).get_by_role("heading", name="Submit a score")).to_be_visible()
    expect(_picker(page)).to_have_value("Older challenge (older-one)")


def test_a_mistyped_challenge_id_says_so_and_links_to_the_list(live_app: LiveApp, browser_page: Page) -> None:
    _seed(live_app)
    page = browser_page
    go(page, live_app, "/challenge?challenge=nope")
    expect(alert(page, "There is no challenge 'nope'.")).to_be_visible()
    for title in ("Newest challenge", "Older challenge"):  # no other challenge shown in its place
        expect(main_area(page).get_by_role("heading", name=title)).to_have_count(0)
    main_area(page).get_by_role("link", name="See all challenges").click()
    expect(page).to_have_url(re.compile(r"/challenges$"))
    expect(main_area(page).get_by_role("heading", name="Challenges")).to_be_visible()
    expect(page).to_have_title("Challenges · Exact")

    # The list's entries are real links to each challenge's page (they can be opened in a new tab too).
    link = main_area(page).get_by_role("link", name="Older challenge")
    expect(link).to_have_attribute("href", re.compile(r"challenge\?challenge=older-one$"))
    expect(main_area(page)).to_contain_text("Score-only · Open · 0 participants · 0 submissions")
    link.click()
    expect(page).to_have_url(re.compile(r"/challenge\?challenge=older-one$"))
    expect(main_area(page).get_by_role("heading", name="Older challenge", exact=True).first).to_be_visible()
    expect(page).to_have_title("Older challenge · Exact")


def test_the_challenge_stays_across_pages_and_back_returns_to_it(live_app: LiveApp, browser_page: Page) -> None:
    _seed(live_app)
    page = browser_page

    def on_challenge_page(challenge_id: str, title: str) -> None:
        expect(page).to_have_url(re.compile(rf"/challenge\?challenge={challenge_id}$"))
        expect(main_area(page).get_by_role("heading", name=title, exact=True).first).to_be_visible()
        expect(main_area(page)).to_contain_text(f"Id {challenge_id}")

    def on_leaderboard(challenge_id: str, label: str) -> None:
        expect(page).to_have_url(re.compile(rf"/leaderboard\?challenge={challenge_id}$"))
        expect(main_area(page).get_by_role("heading", name="Leaderboard")).to_be_visible()
        expect(_picker(page)).to_have_value(label)

    go(page, live_app, "/challenge?challenge=older-one")  # not the newest: a picker without memory would differ
    on_challenge_page("older-one", "Older challenge")

    open_nav(page, "Leaderboard")  # the sidebar's link carries the challenge you are on
    on_leaderboard("older-one", "Older challenge (older-one)")
    expect(page).to_have_title("Leaderboard · Exact")
    page.go_back()  # one press: the page before, with its challenge
    on_challenge_page("older-one", "Older challenge")
    page.go_forward()
    on_leaderboard("older-one", "Older challenge (older-one)")

    # Choosing another challenge is a step of its own: Back undoes it, then returns to the challenge page.
    _picker(page).click()
    page.get_by_role("option", name="Newest challenge (newest-one)").click()
    on_leaderboard("newest-one", "Newest challenge (newest-one)")
    page.go_back()
    on_leaderboard("older-one", "Older challenge (older-one)")
    page.go_back()
    on_challenge_page("older-one", "Older challenge")

    # The sidebar follows the challenge chosen last.
    page.go_forward()
    page.go_forward()
    on_leaderboard("newest-one", "Newest challenge (newest-one)")
    open_nav(page, "Challenge")
    on_challenge_page("newest-one", "Newest challenge")
    expect(sidebar(page).get_by_text("Browsing as a visitor")).to_be_visible()

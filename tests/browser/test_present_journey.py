"""Real-browser journeys of the presentation view (/present): a projector's screen in Chromium.

The auto-refresh picks up a score submitted from another session without reloading the page (a marker set in the
page survives, the navigation entries stay one, the scroll position stays); the type is large and the chart above
the fold at 1280x720 and 1920x1080, with no sidebar. With EXACT_SCREENSHOTS=1 the demo's board is saved to
docs/images/present-1280.png and present-1920.png.
"""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import Page, expect

from exact.challenges import ChallengeForm, create_challenge
from exact.demo import load_demo
from exact.scores import submit_score
from exact.storage import MediaStorage
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, UI_TIMEOUT_MS
from tests.conftest import make_user
from tests.live_server import REPO_ROOT, LiveApp

pytestmark = pytest.mark.browser

SCREENSHOTS = REPO_ROOT / "docs" / "images"
MIN_READABLE_PX = 24  # table text from the back of a room (the issue measured 14 px on the leaderboard)
# The audience's address in the screenshots: the projector's browser reaches the app by a LAN name (resolved to
# the loopback server here), so the QR code and link show what a room would see.
ROOM_HOST = "exact.workshop.lan"


def board(page: Page):
    return page.locator("table.exact-board")


def expect_projector_layout(page: Page, *, height: int) -> None:
    """No sidebar or Streamlit header, big table type, the chart's top on the first screen, a drawn QR code."""
    expect(board(page)).to_be_visible()
    expect(page.get_by_test_id("stSidebar")).to_be_hidden()
    expect(page.get_by_test_id("stHeader")).to_be_hidden()
    size = page.evaluate("parseFloat(getComputedStyle(document.querySelector('table.exact-board td.name')).fontSize)")
    assert size >= MIN_READABLE_PX, f"table text is {size} px"
    chart = page.get_by_test_id("stPlotlyChart").first
    expect(chart.locator(".main-svg").first).to_be_visible()
    box = chart.bounding_box()
    assert box is not None and box["y"] < height, f"the chart starts at {box} on a {height} px high screen"
    table_box = board(page).bounding_box()
    assert box["x"] > table_box["x"] + table_box["width"] / 2, "the chart is beside the table"
    qr = page.locator("img.qr")
    expect(qr).to_be_visible()
    assert page.evaluate("document.querySelector('img.qr').naturalWidth") > 0, "the QR code image did not draw"


def test_the_board_picks_up_a_score_from_another_session_without_reloading(live_app: LiveApp, chromium) -> None:
    db = live_app.db
    organiser = make_user(db, "olivia", staff=True)
    make_user(db, "root", superuser=True)  # closes first-run set-up
    storage = MediaStorage(live_app.media_root, max_bytes=1024 * 1024)
    create_challenge(db, storage, organiser.id, ChallengeForm("Workshop task", "Explain it.", "workshop"), {})
    for i in range(24):  # enough rows (top=25) that the screen scrolls
        submit_score(db, make_user(db, f"team{i:02d}").id, "workshop", 0.40 + i / 100)

    context = chromium.new_context(viewport={"width": 1280, "height": 720})
    context.set_default_timeout(UI_TIMEOUT_MS)
    page = context.new_page()
    try:
        page.goto(f"{live_app.url}/present?challenge=workshop&top=25")
        expect(board(page).locator("tbody tr")).to_have_count(24)
        expect(board(page).locator("tbody tr").first).to_contain_text("team23")
        expect_projector_layout(page, height=720)

        page.evaluate("window.presentMarker = 'still the same page'")
        main = "document.querySelector('[data-testid=\"stMain\"]')"
        page.evaluate(f"{main}.scrollTop = 120")
        scrolled = page.evaluate(f"{main}.scrollTop")
        assert scrolled > 0, "the page does not scroll; the scroll check would prove nothing"

        # Another session (the service layer on the server's database) takes the lead.
        submit_score(db, make_user(db, "newcomer").id, "workshop", 0.99)
        leader = board(page).locator("tbody tr").first
        expect(leader).to_contain_text("newcomer")  # bounded by UI_TIMEOUT_MS; the view refreshes every 5 s
        expect(leader).to_contain_text("NEW")
        expect(leader).to_have_class("new")
        expect(board(page).locator("tbody tr").nth(1)).to_contain_text("▼1")
        expect(page.get_by_test_id("stPlotlyChart").first).to_contain_text("#1 newcomer")

        assert page.evaluate("window.presentMarker") == "still the same page", "the page was reloaded"
        assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
        assert page.url == f"{live_app.url}/present?challenge=workshop&top=25"
        assert page.evaluate(f"{main}.scrollTop") == scrolled, "the refresh lost the scroll position"
    finally:
        context.close()


def test_screenshots_of_the_demo_board(live_app: LiveApp, chromium) -> None:
    db = live_app.db
    make_user(db, "root", superuser=True)
    limit = 64 << 20
    load_demo(
        db,
        MediaStorage(live_app.media_root, max_bytes=limit),
        MediaStorage(live_app.private_root, max_bytes=limit),
        training_epochs=2,  # the paper-protocol challenge's models: present, not trained to the paper's 500 epochs
    )
    port = live_app.url.rsplit(":", 1)[1]
    browser = chromium.browser_type.launch(
        executable_path=str(CHROMIUM),
        headless=True,
        args=[*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {ROOM_HOST} 127.0.0.1"],
    )
    try:
        for width, height in ((1280, 720), (1920, 1080)):
            context = browser.new_context(viewport={"width": width, "height": height})
            context.set_default_timeout(UI_TIMEOUT_MS)
            page = context.new_page()
            page.goto(f"http://{ROOM_HOST}:{port}/present?challenge=xai-tris-linear-8x8")
            expect(board(page).locator("tbody tr").first).to_contain_text("alice")
            expect_projector_layout(page, height=height)
            expect(page.locator(".exact-join")).to_contain_text(
                f"{ROOM_HOST}:{port}/challenge?challenge=xai-tris-linear-8x8"
            )
            expect(page.locator(".exact-join")).not_to_contain_text("works on this computer only")
            if os.environ.get("EXACT_SCREENSHOTS") == "1":
                page.wait_for_timeout(1000)  # plotly's entry transition
                shot = SCREENSHOTS / f"present-{width}.png"
                shot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(shot))
                assert shot.stat().st_size > 10_000
            context.close()
    finally:
        browser.close()

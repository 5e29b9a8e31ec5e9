"""Fixtures for the browser journeys: a live server (tests/live_server.py) and a Chromium page.

Playwright cannot download its own browsers here, so Chromium is Debian's (``make test`` installs it). A missing
Chromium fails these tests with an explanation instead of skipping them silently.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.live_server import LiveApp, failed, live_app, start_live_app  # noqa: F401 - fixtures and their type

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
UI_TIMEOUT_MS = 20_000  # Streamlit reruns asynchronously: every wait in the journeys is bounded by this


@pytest.fixture(scope="session")
def chromium():
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium is missing at {CHROMIUM}: the browser journeys need it. Install it with `make browser` "
            "(apt-get install chromium); `make test` does this for you.",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def browser_page(chromium, request: pytest.FixtureRequest, tmp_path: Path):
    """A page in its own browser context (own cookies), with Streamlit-friendly timeouts."""
    from playwright.sync_api import expect

    expect.set_options(timeout=UI_TIMEOUT_MS)
    context = chromium.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    context.set_default_timeout(UI_TIMEOUT_MS)
    page = context.new_page()
    yield page
    if failed(request):
        shot = tmp_path / "failure.png"
        try:
            page.screenshot(path=str(shot), full_page=True)
            print(f"\nscreenshot of the failed journey: {shot} (at {page.url})", file=sys.stderr)
        except Exception as exc:  # the page may be gone; the assertion already tells the story
            print(f"\nno failure screenshot: {exc}", file=sys.stderr)
    context.close()

"""Real-browser journeys of the leaderboard's statistics and the comparison page, on the demo data
(exact.demo.load_demo) of a live server, and the screenshots in docs/images at 390, 1280 and 1920 px.

The running demo competition gets four more participants (the other demo users, with methods close to bob's) so
the board shows statistically tied ranks. ``EXACT_SCREENSHOTS=1`` writes the screenshots into docs/images; without
it they go to the test's temporary folder, so the layout checks run either way.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import Page, expect

from exact import intake, scoring, statistics
from exact.demo import load_demo
from exact.evaluation_sets import get_evaluation, load_masks
from exact.storage import MediaStorage, UploadedFile
from tests.browser.test_journey import PASSWORD, go, log_in, main_area
from tests.conftest import make_user
from tests.live_server import REPO_ROOT, LiveApp, served

pytestmark = pytest.mark.browser

RUNNING = "xai-tris-rigid-8x8-running"
IMAGES = REPO_ROOT / "docs" / "images"
WIDTHS = (390, 1280, 1920)
MAX_BYTES = 200 * 1024 * 1024
# The other demo participants, with how much of the true pattern their attributions recover (bob: 0.5).
EXTRA_METHODS = (
    ("dmitri", "SmoothGrad", 0.52, "Gradients averaged over noisy copies of the input.", "https://arxiv.org/abs/1706.03825"),
    ("eun-ji", "Integrated gradients", 0.49, "Path integral of the gradients from a black baseline.", ""),
    ("farah", "Occlusion 2×2", 0.7, "Score drop when 2×2 patches are blanked out.", ""),
    ("gustavo", "Random forest SHAP", 0.3, "", ""),
)  # fmt: skip


@pytest.fixture(scope="module")
def demo_app(scratch_databases, tmp_path_factory, request: pytest.FixtureRequest) -> Iterator[LiveApp]:
    with served(scratch_databases, tmp_path_factory, request, {"EXACT_WORKER": "off"}, prefix="exact_demo") as app:
        make_user(app.db, "root", superuser=True, password=PASSWORD)  # closes the first-run set-up
        media = MediaStorage(app.media_root, max_bytes=MAX_BYTES)
        private = MediaStorage(app.private_root, max_bytes=MAX_BYTES)
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("EXACT_DEMO_PASSWORD", PASSWORD)
            load_demo(app.db, media, private, training_epochs=2)  # its models need not be trained fully here
        _add_participants(app, media, private)
        yield app


def _add_participants(app: LiveApp, media: MediaStorage, private: MediaStorage) -> None:
    from db import users as users_sql

    masks = load_masks(get_evaluation(app.db, RUNNING), private)
    rng = np.random.default_rng(11)
    for username, method, quality, description, url in EXTRA_METHODS:
        with app.db.connect() as conn:
            user_id = users_sql.get_by_username(conn, username)["id"]
        attributions = quality * masks + (1 - quality) * np.abs(rng.standard_normal(masks.shape))
        buffer = io.BytesIO()
        np.save(buffer, attributions, allow_pickle=False)
        submission = intake.submit_attributions(
            app.db, media, user_id, RUNNING, UploadedFile(f"{username}.npy", buffer.getvalue()), method_name=method,
            description=description, url=url,
        )  # fmt: skip
        assert scoring.process_submission(app.db, media, private, submission.id).status == "done"


def choose(page: Page, label: str, option: str) -> None:
    """Pick an option of a select box (a click focuses it; the arrow key opens its list, as a user may)."""
    main_area(page).get_by_role("combobox", name=label).click()
    page.keyboard.press("ArrowDown")
    page.get_by_role("option", name=re.compile(option)).click()


def _board(page: Page):
    return main_area(page).get_by_test_id("stDataFrame").first


def _wait_for_board(page: Page) -> None:
    expect(main_area(page).get_by_role("heading", name="Leaderboard")).to_be_visible()
    expect(_board(page)).to_be_visible()
    expect(main_area(page).get_by_test_id("stPlotlyChart").first.locator(".main-svg").first).to_be_visible()


def _open_board(page: Page, demo_app: LiveApp) -> None:
    go(page, demo_app, f"/leaderboard?challenge={RUNNING}")
    _wait_for_board(page)


def test_comparing_two_methods_from_a_method_card(demo_app: LiveApp, browser_page: Page) -> None:
    page = browser_page
    _open_board(page, demo_app)
    main = main_area(page)
    # The board shows tied ranks: SmoothGrad, bob's gradient × input and integrated gradients are close.
    expect(_board(page)).to_contain_text("Tied")
    # Read SmoothGrad's card, then compare it from there.
    choose(page, "Method card", r"dmitri · SmoothGrad")
    expect(main.get_by_text("Gradients averaged over noisy copies of the input.")).to_be_visible()
    expect(main.get_by_role("link", name="Paper / code")).to_have_attribute("href", "https://arxiv.org/abs/1706.03825")
    expect(main.get_by_role("link", name="Full result")).to_have_count(0)  # a visitor cannot open it
    main.get_by_role("link", name="Compare with another method").click()

    expect(main.get_by_role("heading", name="Compare methods")).to_be_visible()
    expect(main.get_by_role("combobox", name="Method A")).to_have_value(re.compile("dmitri · SmoothGrad"))
    choose(page, "Method B", r"bob · Gradient × input")
    expect(main.get_by_role("combobox", name="Method B")).to_have_value(re.compile("bob · Gradient × input"))
    expect(main.get_by_role("heading", name="Paired differences (public samples)")).to_be_visible()
    table = main.get_by_test_id("stDataFrame").first
    expect(table).to_contain_text("EMD ↑")
    expect(main.get_by_role("heading", name="Per-sample scores (development samples)")).to_be_visible()
    expect(main.get_by_test_id("stPlotlyChart").nth(1).locator(".main-svg").first).to_be_visible()
    assert re.search(r"[?&]a=\d+", page.url) and re.search(r"[?&]b=\d+", page.url)  # shareable

    # What the page shows is what the service computes from the stored per-sample values.
    ids = {k: int(v) for k, v in re.findall(r"[?&]([ab])=(\d+)", page.url)}
    expected = statistics.compare(demo_app.db, None, RUNNING, ids["a"], ids["b"])
    emd = expected.metrics.set_index("metric").loc["emd"]
    expect(table).to_contain_text(f"{emd['ci_low']:+.4f}–{emd['ci_high']:+.4f}")


def test_the_leaderboard_fits_1400_px_and_the_chart_labels_never_collide(demo_app: LiveApp, browser_page: Page):
    page = browser_page
    page.set_viewport_size({"width": 1400, "height": 1000})
    log_in(page, demo_app, "bob")
    _open_board(page, demo_app)
    # Every column is on screen: the grid does not scroll sideways, and it shows all rows without scrolling.
    overflow = _board(page).evaluate(
        "el => { const s = el.querySelector('.dvn-scroller'); return [s.scrollWidth, s.clientWidth, "
        "s.scrollHeight, s.clientHeight]; }"
    )
    assert overflow[0] <= overflow[1] + 1, f"the table is wider than its box: {overflow}"
    assert overflow[2] <= overflow[3] + 1, f"the table scrolls: {overflow}"
    expect(_board(page)).to_contain_text("Result")  # bob's own row links to his result
    expect(main_area(page).get_by_text("Your row is highlighted.")).to_be_visible()
    for width in (1400, 390):
        page.set_viewport_size({"width": width, "height": 1000})
        page.wait_for_timeout(800)
        _check_ranking_labels(page)


def _check_ranking_labels(page: Page) -> None:
    """The ranking chart's text: score labels and baseline labels all inside the figure and pairwise apart."""
    chart = main_area(page).get_by_test_id("stPlotlyChart").first
    expect(chart.locator(".main-svg").first).to_be_visible()
    boxes = chart.evaluate(
        """el => {
            const svg = el.querySelector('.main-svg').getBoundingClientRect();
            const texts = [...el.querySelectorAll('.annotation-text')].map(t => {
                const r = t.getBoundingClientRect();
                return {text: t.textContent, left: r.left, right: r.right, top: r.top, bottom: r.bottom};
            });
            return {svg: {left: svg.left, right: svg.right, top: svg.top, bottom: svg.bottom}, texts};
        }"""
    )
    svg, texts = boxes["svg"], boxes["texts"]
    assert texts, "the chart has labels"
    for t in texts:
        assert svg["left"] - 1 <= t["left"] and t["right"] <= svg["right"] + 1, f"cut off: {t} in {svg}"
        assert svg["top"] - 1 <= t["top"] and t["bottom"] <= svg["bottom"] + 1, f"cut off: {t} in {svg}"
    for a, b in ((a, b) for i, a in enumerate(texts) for b in texts[i + 1 :]):
        apart = a["right"] <= b["left"] or b["right"] <= a["left"] or a["bottom"] <= b["top"] or b["bottom"] <= a["top"]
        assert apart, f"labels overlap: {a} and {b}"


def _screenshot(page: Page, path: Path, width: int) -> None:
    # The page scrolls inside Streamlit's main container, not the document: grow the viewport to the content.
    page.set_viewport_size({"width": width, "height": 1000})
    page.wait_for_timeout(800)
    height = page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": width, "height": min(max(int(height), 1000), 6000)})
    page.wait_for_timeout(1500)  # plotly redraws for the new size
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000


def test_screenshots_of_the_leaderboard_and_the_comparison(demo_app: LiveApp, browser_page: Page, tmp_path: Path):
    folder = IMAGES if os.environ.get("EXACT_SCREENSHOTS") == "1" else tmp_path
    page = browser_page
    log_in(page, demo_app, "bob")
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 1000})
        _open_board(page, demo_app)
        _screenshot(page, folder / f"leaderboard-{width}.png", width)
        _check_ranking_labels(page)
    go(page, demo_app, f"/compare?challenge={RUNNING}")
    expect(main_area(page).get_by_role("heading", name="Paired differences (public samples)")).to_be_visible()
    for width in WIDTHS:
        _screenshot(page, folder / f"compare-{width}.png", width)
        expect(main_area(page).get_by_test_id("stPlotlyChart").nth(1).locator(".main-svg").first).to_be_visible()

"""Real-browser journeys through the running app: set-up, challenge upload, registration, submission, leaderboard.

Every step waits for what the user would see (Streamlit reruns asynchronously) and, where the UI claims to have
stored something, checks the database or the media folder behind it.
"""

from __future__ import annotations

import os
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from db import scores as scores_sql
from exact.challenges import ChallengeForm, create_challenge
from exact.storage import MediaStorage, UploadedFile
from tests.browser.conftest import UI_TIMEOUT_MS
from tests.conftest import make_user
from tests.live_server import REPO_ROOT, LiveApp
from tests.polling import wait_until

pytestmark = pytest.mark.browser

PASSWORD = "Tulip-Harbour-9041"  # passes the password policy; test accounts only
SCREENSHOT = REPO_ROOT / "docs" / "images" / "leaderboard.png"


# --------------------------------------------------------------------------------------------------------------
# Helpers: what a user does, expressed with labels and roles (Streamlit puts widget labels into aria labels)
# --------------------------------------------------------------------------------------------------------------


def sidebar(page: Page):
    return page.get_by_test_id("stSidebar")


def main_area(page: Page):
    return page.get_by_test_id("stMain")


def go(page: Page, live_app: LiveApp, path: str) -> None:
    """Open a URL the way a user pastes it, and wait until app.py (the router and auth gate) has rendered."""
    page.goto(live_app.url + path)
    expect_routed_through_app(page)


def expect_routed_through_app(page: Page) -> None:
    try:
        expect(sidebar(page).get_by_text(re.compile(r"Logged in as|Browsing as a visitor"))).to_be_visible()
    except AssertionError:
        # Streamlit's multipage "v1" mode: while no session has called st.navigation yet, a folder named pages/
        # next to app.py makes Streamlit run pages/<name>.py itself, listing every file in the sidebar.
        if sidebar(page).get_by_role("link", name="setup", exact=True).count():
            raise AssertionError(
                f"{page.url} ran the page file directly, not through app.py: Streamlit's automatic pages/ folder "
                "navigation bypassed the router and auth gate (the sidebar lists every file in pages/)."
            ) from None
        raise


def open_nav(page: Page, title: str) -> None:
    """Click an entry of the sidebar navigation (same browser session, like a user would)."""
    sidebar(page).get_by_role("link", name=title, exact=True).click()


HANDOVER_FORM = "form[action='/auth/session']"  # ui.auth: posts the login ticket (or logout) to the server


def session_cookie(page: Page) -> str | None:
    return next((c["value"] for c in page.context.cookies() if c["name"] == "exact_session" and c["value"]), None)


def wait_for_cookie(page: Page, *, present: bool) -> None:
    """Until the browser holds (or no longer holds) the session cookie that /auth/session sets (or clears)."""
    wait_until(
        lambda: (session_cookie(page) is not None) == present,
        f"the session cookie to be {'set' if present else 'cleared'}",
        limit_seconds=UI_TIMEOUT_MS / 1000,
        every=0.05,
    )


def expect_logged_in(page: Page, username: str) -> None:
    """Logged in, on a page the browser has loaded with its session cookie.

    Logging in shows the user in this tab at once, then the page hands its ticket to /auth/session, which sets
    the cookie and redirects: wait for the cookie, for the old page (the one with the hand-over form) to be gone,
    and for the new one to show the user, so the next step does not race the redirect.
    """
    expect(sidebar(page)).to_contain_text(f"Logged in as {username}")
    wait_for_cookie(page, present=True)
    expect(page.locator(HANDOVER_FORM)).to_have_count(0)
    expect(sidebar(page)).to_contain_text(f"Logged in as {username}")


def expect_visitor(page: Page) -> None:
    expect(sidebar(page)).to_contain_text("Browsing as a visitor")
    expect(sidebar(page).get_by_role("link", name="Log in", exact=True)).to_be_visible()


def alert(page: Page, text: str | re.Pattern):
    return main_area(page).get_by_test_id("stAlert").filter(has_text=text)


def log_in(page: Page, live_app: LiveApp, username: str, password: str = PASSWORD) -> None:
    go(page, live_app, "/login")
    form = page.get_by_test_id("stForm")
    form.get_by_label("Username", exact=True).fill(username)
    form.get_by_label("Password", exact=True).fill(password)
    form.get_by_role("button", name="Log in").click()
    expect_logged_in(page, username)


def log_out(page: Page) -> None:
    open_nav(page, "Log out")
    expect_visitor(page)
    wait_for_cookie(page, present=False)  # /auth/session cleared it and redirected to the new page
    expect(page.locator(HANDOVER_FORM)).to_have_count(0)
    expect_visitor(page)


def submit_score(page: Page, challenge_title: str, challenge_id: str, score: str) -> None:
    """On the Submit score page: pick the challenge, type the score, tick the confirmation, submit."""
    expect(main_area(page).get_by_role("heading", name="Submit a score")).to_be_visible()
    main_area(page).get_by_role("combobox", name="Challenge").click()
    page.get_by_role("option", name=f"{challenge_title} ({challenge_id})").click()
    expect(page).to_have_url(re.compile(rf"[?&]challenge={re.escape(challenge_id)}\b"))
    form = page.get_by_test_id("stForm")
    form.get_by_label("Score", exact=True).fill(score)
    form.get_by_text("I confirm this score is the result of my own method").click()
    expect(form.get_by_role("checkbox")).to_be_checked()
    form.get_by_role("button", name="Submit score").click()


def score_rows(live_app: LiveApp, challenge_id: str) -> list[dict]:
    with live_app.db.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT username, score FROM api_score WHERE challenge_id = :c ORDER BY id"), {"c": challenge_id}
        )
        return [dict(r) for r in rows.mappings()]


def seed_challenge(live_app: LiveApp, owner_id: int, challenge_id: str, title: str, *, days_ago: float = 0) -> None:
    storage = MediaStorage(live_app.media_root, max_bytes=1024 * 1024)
    form = ChallengeForm(
        title=title,
        challenge_id=challenge_id,
        description=f"## {title}\n\nExplain the model's predictions; higher faithfulness is better.",
    )
    dataset = UploadedFile(name="data.csv", data=b"x1,x2,label\n0.1,0.2,0\n0.3,0.1,1\n")
    create_challenge(live_app.db, storage, owner_id, form, {"dataset": dataset, "model": None, "xai": None})
    if days_ago:
        with live_app.db.transaction() as conn:
            conn.execute(
                sa.text("UPDATE api_challenge SET created_at = :t WHERE challenge_id = :c"),
                {"t": datetime.now(UTC) - timedelta(days=days_ago), "c": challenge_id},
            )


# --------------------------------------------------------------------------------------------------------------
# Journeys
# --------------------------------------------------------------------------------------------------------------


def _console_setup_link(live_app: LiveApp) -> str:
    """The link in the server's "Exact set-up token: … (open …)" console line, once it has been printed."""
    pattern = re.compile(r"Exact set-up token: \S+ \(open (http://\S+/\?setup_token=\S+)\)")
    deadline = datetime.now(UTC) + timedelta(milliseconds=UI_TIMEOUT_MS)
    while not (found := pattern.search(live_app.log())) and datetime.now(UTC) < deadline:
        time.sleep(0.1)
    assert found, f"no set-up token on the server's console:\n{live_app.log()}"
    assert found.group(1).startswith(live_app.url + "/?setup_token=")
    return found.group(1)


def test_full_journey_from_an_empty_database(start_live_app, browser_page: Page, tmp_path: Path) -> None:
    live_app = start_live_app(with_schema=False)  # a brand-new empty database: the app creates the schema itself
    page = browser_page

    # 1. First run: only the set-up page exists. The operator opens the set-up link the server printed on its
    # console (it carries the one-time token) and creates the administrator, without the demo.
    page.goto(live_app.url + "/")
    expect(page.get_by_role("heading", name="Welcome to Exact")).to_be_visible()
    page.goto(_console_setup_link(live_app))
    expect(page.get_by_role("heading", name="Welcome to Exact")).to_be_visible()
    form = page.get_by_test_id("stForm")
    expect(form.get_by_label("Set-up token", exact=True)).not_to_have_value("")
    form.get_by_label("Administrator username", exact=True).fill("ada")
    form.get_by_label("Email (optional)", exact=True).fill("ada@example.org")
    form.get_by_label("Password", exact=True).fill(PASSWORD)
    form.get_by_label("Password again", exact=True).fill(PASSWORD)
    expect(form.get_by_role("checkbox")).not_to_be_checked()  # no demo
    form.get_by_role("button", name="Create administrator").click()
    expect_logged_in(page, "ada")
    expect(sidebar(page)).to_contain_text("(administrator)")
    with live_app.db.connect() as conn:
        admin = conn.execute(sa.text("SELECT is_superuser, is_staff FROM auth_user WHERE username = 'ada'")).one()
        assert tuple(admin) == (True, True)
        assert conn.execute(sa.text("SELECT count(*) FROM api_challenge")).scalar_one() == 0  # no demo loaded

    # 2. The administrator creates a challenge with a dataset upload.
    open_nav(page, "Create / edit challenge")
    expect(main_area(page).get_by_role("heading", name="Create / edit challenge")).to_be_visible()
    dataset = tmp_path / "iris-sample.csv"
    dataset.write_text("sepal_length,sepal_width,label\n5.1,3.5,setosa\n7.0,3.2,versicolor\n6.3,3.3,virginica\n")
    form = page.get_by_test_id("stForm")
    form.get_by_label("Title", exact=True).fill("Iris saliency")
    form.get_by_label("Challenge id", exact=True).fill("iris-saliency")
    form.get_by_label("Description (Markdown)", exact=True).fill("Explain the **iris** classifier.")
    uploader = form.get_by_role("region", name=re.compile(r"^Dataset \("))
    uploader.locator("input[type=file]").set_input_files(str(dataset))
    chip = uploader.get_by_test_id("stFileChip")
    expect(chip).to_have_attribute("aria-label", re.compile(r"^iris-sample\.csv, "))
    expect(chip.get_by_test_id("stFileChipIconSpinner")).to_have_count(0)  # the upload to the server finished
    form.get_by_role("button", name="Create challenge").click()
    expect(alert(page, "Created challenge")).to_contain_text("Iris saliency (iris-saliency)")

    relative = "challenges/iris-saliency/dataset/iris-sample.csv"
    stored = live_app.media_root / relative
    assert stored.is_file(), f"expected the upload at {stored}; media holds {sorted(live_app.media_root.rglob('*'))}"
    assert stored.read_bytes() == dataset.read_bytes()
    with live_app.db.connect() as conn:
        row = conn.execute(
            sa.text("SELECT title, dataset, mlmodel, xaimethod FROM api_challenge WHERE challenge_id = 'iris-saliency'")
        ).one()
    assert tuple(row) == ("Iris saliency", relative, "", "")

    # 3. Log out; then a new participant registers (and is logged in straight away).
    log_out(page)
    open_nav(page, "Register")
    form = page.get_by_test_id("stForm")
    form.get_by_label("Username", exact=True).fill("grace")
    form.get_by_label("Email (optional)", exact=True).fill("grace@example.org")
    form.get_by_label("Password", exact=True).fill(PASSWORD)
    form.get_by_label("Password again", exact=True).fill(PASSWORD)
    form.get_by_role("button", name="Create account").click()
    expect_logged_in(page, "grace")
    expect(sidebar(page)).to_contain_text("(participant)")
    expect(sidebar(page).get_by_role("link", name="Create / edit challenge")).to_have_count(0)

    # 4. The participant submits a score and is ranked #1.
    open_nav(page, "Submit score")
    submit_score(page, "Iris saliency", "iris-saliency", "0.8731")
    expect(alert(page, "Stored score")).to_contain_text("rank #1 of 1")
    assert score_rows(live_app, "iris-saliency") == [{"username": "grace", "score": 0.8731}]

    # 5. The leaderboard shows the participant and the score.
    main_area(page).get_by_role("link", name="See the leaderboard").click()
    expect(page).to_have_url(re.compile(r"/leaderboard\?challenge=iris-saliency$"))
    expect(main_area(page).get_by_role("heading", name="Leaderboard")).to_be_visible()
    table = main_area(page).get_by_test_id("stDataFrame")
    expect(table).to_contain_text("grace")
    expect(table).to_contain_text("0.8731")

    # 6. A refresh keeps the login (signed cookie), on the same deep link.
    page.reload()
    expect_logged_in(page, "grace")
    expect(main_area(page).get_by_test_id("stDataFrame")).to_contain_text("grace")
    assert "exact_session" in {c["name"] for c in page.context.cookies()}

    # 7. Logging out revokes the session: a refresh shows a visitor again.
    log_out(page)
    page.reload()
    expect_visitor(page)
    expect(sidebar(page).get_by_role("link", name="Submit score")).to_have_count(0)


def test_deep_links_open_the_right_challenge_for_a_visitor(live_app: LiveApp, browser_page: Page) -> None:
    admin = make_user(live_app.db, "root", superuser=True, password=PASSWORD)
    seed_challenge(live_app, admin.id, "older-one", "Older challenge", days_ago=3)
    seed_challenge(live_app, admin.id, "newest-one", "Newest challenge")  # the picker's default
    page = browser_page

    # The shared link is the first request this server sees (as after a restart): it must still go through app.py.
    go(page, live_app, "/challenge?challenge=older-one")
    expect_visitor(page)
    expect(main_area(page).get_by_role("heading", name="Older challenge", exact=True).first).to_be_visible()
    expect(main_area(page)).to_contain_text("Id older-one")
    expect(main_area(page).get_by_role("button", name=re.compile("Download dataset"))).to_be_visible()
    expect(main_area(page).get_by_role("link", name="Log in to submit")).to_be_visible()

    # The site root with ?challenge= (a link shared from anywhere) redirects to the challenge page.
    page.goto(live_app.url + "/?challenge=older-one")
    expect(page).to_have_url(re.compile(r"/challenge\?challenge=older-one$"))
    expect(main_area(page)).to_contain_text("Id older-one")
    expect(main_area(page).get_by_role("heading", name="Older challenge", exact=True).first).to_be_visible()


def test_nan_score_is_refused_and_nothing_is_stored(live_app: LiveApp, browser_page: Page) -> None:
    admin = make_user(live_app.db, "root", superuser=True, password=PASSWORD)
    make_user(live_app.db, "mallory", password=PASSWORD)
    seed_challenge(live_app, admin.id, "nan-check", "NaN check")
    page = browser_page

    go(page, live_app, "/")  # arrive at the home page (the deep-link-first case is the journey above)
    log_in(page, live_app, "mallory")
    open_nav(page, "Submit score")
    submit_score(page, "NaN check", "nan-check", "nan")
    expect(alert(page, "NaN is not allowed")).to_be_visible()
    expect(alert(page, "Stored score")).to_have_count(0)
    assert score_rows(live_app, "nan-check") == []

    # Infinity (a float overflow) and text are refused the same way; a real number then goes through.
    form = page.get_by_test_id("stForm")
    for bad, message in (("1e400", "infinity is not allowed"), ("0.9 points", "Score must be a number")):
        form.get_by_label("Score", exact=True).fill(bad)
        form.get_by_role("button", name="Submit score").click()
        expect(alert(page, message)).to_be_visible()
        assert score_rows(live_app, "nan-check") == []
    form.get_by_label("Score", exact=True).fill("0.5")
    form.get_by_role("button", name="Submit score").click()
    expect(alert(page, "Stored score")).to_contain_text("rank #1 of 1")
    expect(alert(page, "not allowed")).to_have_count(0)
    assert score_rows(live_app, "nan-check") == [{"username": "mallory", "score": 0.5}]


def test_leaderboard_charts(live_app: LiveApp, browser_page: Page) -> None:
    """The leaderboard of a busy challenge: table, CSV and the three charts. Saves the README screenshot on demand."""
    admin = make_user(live_app.db, "organiser", superuser=True, password=PASSWORD)
    seed_challenge(live_app, admin.id, "mnist-attribution", "MNIST pixel attribution", days_ago=21)
    start = datetime.now(UTC) - timedelta(days=20)
    history = {
        "alice": [0.61, 0.68, 0.74, 0.79, 0.83],
        "bob": [0.55, 0.63, 0.71, 0.77],
        "chen": [0.70, 0.72, 0.81],
        "dara": [0.58, 0.66],
        "eve": [0.49, 0.57, 0.62, 0.69],
        "farid": [0.75],
    }
    with live_app.db.transaction() as conn:
        step = 0
        for round_ in range(5):
            for username, scores in history.items():
                if round_ < len(scores):
                    step += 1
                    when = start + timedelta(hours=17 * step)
                    scores_sql.insert(
                        conn, username=username, challenge_id="mnist-attribution", score=scores[round_], created_at=when
                    )
    for username in history:
        make_user(live_app.db, username, password=PASSWORD)
    page = browser_page

    go(page, live_app, "/")  # arrive at the home page (the deep-link-first case is the journey above)
    go(page, live_app, "/leaderboard?challenge=mnist-attribution")
    main = main_area(page)
    expect(main.get_by_role("heading", name="Leaderboard")).to_be_visible()
    table = main.get_by_test_id("stDataFrame")
    expect(table).to_contain_text("alice")
    expect(table).to_contain_text("0.83")
    with page.expect_download() as download_info:
        main.get_by_role("button", name=re.compile("Download CSV")).click()
    download = download_info.value
    assert download.suggested_filename == "leaderboard-mnist-attribution.csv"
    csv_lines = Path(download.path()).read_text().splitlines()
    assert len(csv_lines) == 1 + len(history)  # header + best score per user
    assert csv_lines[1].split(",")[:3] == ["1", "alice", "0.83"], csv_lines[:2]
    for tab_name in ("Best score over time", "Score distribution", "Ranking"):
        main.get_by_role("tab", name=tab_name).click()
        panel = main.get_by_role("tabpanel", name=tab_name)
        expect(panel.get_by_test_id("stPlotlyChart").locator(".main-svg").first).to_be_visible()
    expect(main.get_by_role("tabpanel", name="Ranking")).to_contain_text("#1 alice")

    if os.environ.get("EXACT_SCREENSHOTS") == "1":
        # The page scrolls inside Streamlit's main container, not the document, so a "full page" screenshot would
        # stop at the viewport: grow the viewport to the content instead.
        height = page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
        page.set_viewport_size({"width": 1400, "height": min(max(int(height), 1000), 4000)})
        page.wait_for_timeout(1500)  # plotly redraws for the new size
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
        assert SCREENSHOT.stat().st_size > 10_000

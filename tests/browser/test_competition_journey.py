"""Real-browser journeys of a competition: a participant uses up the daily limit, picks final submissions and reads
the final (private) leaderboard once the challenge has ended.

Challenges, rules and scored submissions are set up through the service layer on the live server's scratch database
(fast); the participant logs in through the login form and does the rest in Chromium, as a person would.
"""

from __future__ import annotations

import io
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from playwright.sync_api import Page, expect

from exact import evaluation_sets, intake, scoring
from exact.challenges import ChallengeForm, EvaluationChoice, create_challenge
from exact.competition import Rules, final_choices, get_rules, update_rules
from exact.errors import ValidationError
from exact.scores import submit_score as submit_score_service
from exact.storage import MediaStorage, UploadedFile
from exact.xaitris import BenchmarkSpec
from tests.browser.test_journey import PASSWORD, alert, go, log_in, main_area, open_nav, score_rows, submit_score
from tests.conftest import make_user
from tests.live_server import LiveApp

pytestmark = pytest.mark.browser

MAX_BYTES = 200 * 1024 * 1024


def _stores(live_app: LiveApp) -> tuple[MediaStorage, MediaStorage]:
    return (
        MediaStorage(live_app.media_root, max_bytes=MAX_BYTES),
        MediaStorage(live_app.private_root, max_bytes=MAX_BYTES),
    )


def _people(live_app: LiveApp):
    make_user(live_app.db, "root", superuser=True, password=PASSWORD)  # also closes the first-run set-up
    organiser = make_user(live_app.db, "olivia", staff=True, password=PASSWORD)
    participant = make_user(live_app.db, "pat", password=PASSWORD)
    return organiser, participant


def _npy(array: np.ndarray) -> UploadedFile:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return UploadedFile("attributions.npy", buffer.getvalue())


def log_in_and_keep_the_cookie(page: Page, live_app: LiveApp, username: str) -> None:
    """Log in, then wait until the browser holds the session cookie: the next ``go`` opens a new session that
    must find it (the cookie is written by the page's script, a moment after the login's rerun)."""
    log_in(page, live_app, username)
    for _ in range(200):
        if any(cookie["name"] == "exact_session" and cookie["value"] for cookie in page.context.cookies()):
            return
        page.wait_for_timeout(50)
    raise AssertionError("the browser never received the session cookie")


def allowance(page: Page):
    return main_area(page).get_by_text(re.compile(r"^Submissions: "))


def test_participant_uses_up_the_daily_limit_and_an_out_of_range_score_is_refused(
    live_app: LiveApp, browser_page: Page
) -> None:
    organiser, pat = _people(live_app)
    media, _ = _stores(live_app)
    rules = Rules(daily_limit=2, min_value=0.0, max_value=1.0, ends_at=datetime.now(UTC) + timedelta(days=3))
    create_challenge(
        live_app.db, media, organiser.id, ChallengeForm("Two a day", "At most two a day.", "two-a-day"), {}, rules=rules
    )
    page = browser_page
    log_in_and_keep_the_cookie(page, live_app, "pat")

    # The challenge page tells when it closes and how many submissions are left today.
    go(page, live_app, "/challenge?challenge=two-a-day")
    main = main_area(page)
    expect(main.get_by_role("heading", name="Two a day")).to_be_visible()
    expect(alert(page, re.compile(r"^Open · closes \d{4}-\d\d-\d\d \d\d:\d\d UTC \(in (2|3) days"))).to_be_visible()
    expect(allowance(page)).to_contain_text("2 left today")

    # A score outside the valid range is refused with the range in the message, and is not counted.
    open_nav(page, "Submit score")
    expect(allowance(page)).to_contain_text("2 left today")
    submit_score(page, "Two a day", "two-a-day", "1.5")
    expect(alert(page, "Score must be between 0 and 1; 1.5 is outside that range.")).to_be_visible()
    expect(alert(page, "Stored score")).to_have_count(0)
    assert score_rows(live_app, "two-a-day") == []
    expect(allowance(page)).to_contain_text("2 left today")

    # Two good scores: the page counts down and switches the button off at zero.
    form = page.get_by_test_id("stForm")
    form.get_by_label("Score", exact=True).fill("0.4")
    form.get_by_role("button", name="Submit score").click()
    expect(alert(page, "Stored score")).to_contain_text("0.4")
    expect(allowance(page)).to_contain_text("1 left today")
    main_area(page).get_by_role("button", name="Submit another score").click()
    expect(form.get_by_label("Score", exact=True)).to_have_value("")
    form.get_by_label("Score", exact=True).fill("0.6")
    form.get_by_text("I confirm this score is the result of my own method").click()
    expect(form.get_by_role("checkbox")).to_be_checked()
    form.get_by_role("button", name="Submit score").click()
    expect(alert(page, "Stored score")).to_contain_text("0.6")
    expect(allowance(page)).to_contain_text("0 left today")
    expect(form.get_by_role("button", name="Submit score")).to_be_disabled()
    assert score_rows(live_app, "two-a-day") == [{"username": "pat", "score": 0.4}, {"username": "pat", "score": 0.6}]

    # A reload keeps it so, and the server refuses a third score however it is sent.
    page.reload()
    expect(allowance(page)).to_contain_text("0 left today")
    expect(page.get_by_test_id("stForm").get_by_role("button", name="Submit score")).to_be_disabled()
    with pytest.raises(ValidationError, match="You have used today's 2 submissions"):
        submit_score_service(live_app.db, pat.id, "two-a-day", 0.7)
    assert len(score_rows(live_app, "two-a-day")) == 2


def test_participant_picks_final_submissions_and_reads_the_final_board_after_the_end(
    live_app: LiveApp, browser_page: Page
) -> None:
    organiser, pat = _people(live_app)
    media, private = _stores(live_app)
    prepared = evaluation_sets.prepare_benchmark(BenchmarkSpec(scenario="linear", size=8, n_samples=100, seed=5))
    create_challenge(
        live_app.db,
        media,
        organiser.id,
        ChallengeForm("Final tetrominoes", "Find the tetromino.", "final-tetro"),
        {},
        evaluation=EvaluationChoice(prepared=prepared, private=private, primary_metric="emd", shown_metrics=("mass",)),
        rules=Rules(ends_at=datetime.now(UTC) + timedelta(days=2), final_count=2),
    )
    rng = np.random.default_rng(4)
    masks = prepared.masks
    ids = {}
    for method, level in (("Sharp", 0.1), ("Blurry", 0.8), ("Noisy", 3.0)):
        submission = intake.submit_attributions(
            live_app.db, media, pat.id, "final-tetro", _npy(masks + level * rng.random(masks.shape)), method_name=method
        )
        assert scoring.process_submission(live_app.db, media, private, submission.id).status == "done"
        ids[method] = submission.id

    page = browser_page
    log_in_and_keep_the_cookie(page, live_app, "pat")
    open_nav(page, "Submit score")
    main = main_area(page)
    expect(main.get_by_role("heading", name="Final submissions")).to_be_visible()
    expect(main.get_by_text("Up to 2 of your submissions count for the final (private) ranking.")).to_be_visible()

    # The multiselect (react-aria: while its list is open, everything outside it is aria-hidden).
    picker = main.get_by_test_id("stMultiSelect")
    expect(picker).to_have_count(1)
    tags = picker.get_by_test_id("stMultiSelectTagsContainer").last

    def open_list() -> None:
        picker.locator("input").click()
        page.keyboard.press("ArrowDown")

    for method in ("Noisy", "Blurry"):  # not the best public one (Sharp)
        open_list()
        page.get_by_role("option", name=re.compile(rf"^{method} · ")).click()
        page.keyboard.press("Escape")
        expect(tags).to_contain_text(f"{method} · ")
    # A third cannot be picked: the list says so instead of offering it.
    open_list()
    expect(page.get_by_text("You can only select up to 2 options. Remove an option first.")).to_be_visible()
    expect(page.get_by_role("option", name=re.compile(r"^Sharp · "))).to_have_count(0)
    page.keyboard.press("Escape")
    expect(tags).to_contain_text("Noisy · ")
    expect(tags).to_contain_text("Blurry · ")
    expect(tags).not_to_contain_text("Sharp")
    main.get_by_role("button", name="Save final submissions").click()
    expect(alert(page, "2 final submissions saved.")).to_be_visible()
    assert final_choices(live_app.db, pat.id, "final-tetro") == sorted([ids["Noisy"], ids["Blurry"]])

    # While the challenge runs, the leaderboard is the public one: pat's best public submission.
    open_nav(page, "Leaderboard")
    main = main_area(page)
    expect(main.get_by_text("Ranked on the public samples while the challenge runs")).to_be_visible()
    expect(main.get_by_test_id("stDataFrame").first).to_contain_text("Sharp")
    expect(main.get_by_role("radio", name="Final (private samples)")).to_have_count(0)

    # The organiser moves the end into the past: the final board shows, ranked on the chosen finals.
    rules = get_rules(live_app.db, "final-tetro")
    update_rules(
        live_app.db, organiser.id, "final-tetro", replace(rules, ends_at=datetime.now(UTC) - timedelta(minutes=1))
    )
    page.reload()
    main = main_area(page)
    expect(main.get_by_role("radio", name="Final (private samples)")).to_be_checked()
    expect(main.get_by_text("Final ranking on the private samples")).to_be_visible()
    expect(main.get_by_text(re.compile(r"^Closed .* · final leaderboard revealed$"))).to_be_visible()
    board = main.get_by_test_id("stDataFrame").first
    expect(board).to_contain_text("pat")
    expect(board).to_contain_text(re.compile(r"Blurry|Noisy"))
    expect(board).not_to_contain_text("Sharp")  # the best public one, but not a final: it does not count

    # The public board stays one click away.
    main.get_by_text("Public samples", exact=True).click()
    expect(main.get_by_text("Ranked on the public samples while the challenge runs")).to_be_visible()

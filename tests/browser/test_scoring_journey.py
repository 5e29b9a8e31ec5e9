"""Real-browser journeys of a ground-truth challenge: upload attributions, see them scored, read the result page.

The challenges are created through the service layer on the live server's scratch database (with its private root);
the participant registers, uploads ``.npy`` files and follows the scoring in Chromium, as a person would.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from exact import evaluation_sets, scoring
from exact.challenges import ChallengeForm, EvaluationChoice, create_challenge
from exact.metrics import METRICS
from exact.storage import MediaStorage
from exact.xaitris import BenchmarkSpec
from tests.browser.test_journey import PASSWORD, alert, expect_logged_in, go, main_area, open_nav
from tests.conftest import make_user
from tests.live_server import LiveApp
from tests.polling import wait_until

pytestmark = pytest.mark.browser

MAX_BYTES = 200 * 1024 * 1024
WORKER_TIMEOUT_MS = 60_000  # generous for a slow machine; the 64×64 scoring itself takes a few seconds


def create_gt_challenge(
    live_app: LiveApp, challenge_id: str, *, size: int, n_samples: int, score_baselines: bool
) -> evaluation_sets.PreparedEvaluation:
    """A generated XAI-TRIS challenge, created by an organiser through the service layer on the live database."""
    make_user(live_app.db, "root", superuser=True, password=PASSWORD)  # also closes the first-run set-up
    organiser = make_user(live_app.db, "olivia", staff=True, password=PASSWORD)
    media = MediaStorage(live_app.media_root, max_bytes=MAX_BYTES)
    private = MediaStorage(live_app.private_root, max_bytes=MAX_BYTES)
    prepared = evaluation_sets.prepare_benchmark(
        BenchmarkSpec(scenario="linear", size=size, n_samples=n_samples, seed=5)
    )
    create_challenge(
        live_app.db,
        media,
        organiser.id,
        ChallengeForm(f"Tetrominoes {size}", "Find the tetromino.", challenge_id),
        {},
        evaluation=EvaluationChoice(prepared=prepared, private=private, primary_metric="emd", shown_metrics=("mass",)),
    )
    if score_baselines:
        assert scoring.score_waiting_baselines(live_app.db, media, private, challenge_id) == len(
            evaluation_sets.BASELINES
        )
    return prepared


def write_npy(path: Path, array: np.ndarray) -> Path:
    buffer = io.BytesIO()
    np.save(buffer, array)
    path.write_bytes(buffer.getvalue())
    return path


def register(page: Page, live_app: LiveApp, username: str) -> None:
    go(page, live_app, "/")
    open_nav(page, "Register")
    form = page.get_by_test_id("stForm")
    form.get_by_label("Username", exact=True).fill(username)
    form.get_by_label("Password", exact=True).fill(PASSWORD)
    form.get_by_label("Password again", exact=True).fill(PASSWORD)
    form.get_by_role("button", name="Create account").click()
    expect_logged_in(page, username)


def upload_attributions(page: Page, path: Path, method: str) -> None:
    """On the Submit page of a ground-truth challenge: choose the file, name the method, confirm, upload."""
    expect(main_area(page).get_by_role("heading", name="Submit a score")).to_be_visible()
    form = page.get_by_test_id("stForm")
    expect(form.get_by_role("button", name="Upload and score")).to_be_visible()
    expect(form.get_by_label("Score", exact=True)).to_have_count(0)  # no typed-score field on this challenge
    uploader = form.get_by_role("region", name=re.compile(r"^Attribution file"))
    uploader.locator("input[type=file]").set_input_files(str(path))
    chip = uploader.get_by_test_id("stFileChip")
    expect(chip).to_have_attribute("aria-label", re.compile(rf"^{re.escape(path.name)}, "))
    expect(chip.get_by_test_id("stFileChipIconSpinner")).to_have_count(0)  # the upload to the server finished
    form.get_by_label("Method name", exact=True).fill(method)
    form.get_by_text("I confirm these attributions come from my own method.").click()
    expect(form.get_by_role("checkbox")).to_be_checked()
    form.get_by_role("button", name="Upload and score").click()


def participant_submissions(live_app: LiveApp) -> list[dict]:
    with live_app.db.connect() as conn:
        result = conn.execute(
            sa.text(
                "SELECT id, username, method_name, status, primary_value, score_id FROM exact_submission "
                "WHERE kind = 'participant' ORDER BY id"
            )
        )
        return [dict(row) for row in result.mappings()]


def development_samples(live_app: LiveApp, submission_id: int) -> list[int]:
    """The development samples' indices, from the split stored with the result on the server."""
    with live_app.db.connect() as conn:
        codes = conn.execute(
            sa.text("SELECT result -> 'split_codes' FROM exact_submission WHERE id = :i"), {"i": submission_id}
        ).scalar_one()
    return [index for index, code in enumerate(codes) if code == 0]


def submissions_table(page: Page):
    """The 'Your submissions to this challenge' table of the Submit page."""
    return main_area(page).get_by_test_id("stDataFrame").last


def test_upload_is_scored_at_once_and_a_wrong_shape_is_refused(
    live_app: LiveApp, browser_page: Page, tmp_path: Path
) -> None:
    prepared = create_gt_challenge(live_app, "tetro-8", size=8, n_samples=100, score_baselines=True)
    n = len(prepared.masks)
    page = browser_page
    register(page, live_app, "grace")

    # 1. A good upload (the masks plus a little noise) is scored while the participant waits.
    open_nav(page, "Submit score")
    noise = np.random.default_rng(0).random(prepared.masks.shape)
    upload_attributions(page, write_npy(tmp_path / "good.npy", prepared.masks + 0.1 * noise), "Mask and noise")
    success = alert(page, "Mask and noise scored")
    expect(success).to_be_visible()
    [stored] = participant_submissions(live_app)
    assert stored["username"] == "grace" and stored["status"] == "done" and stored["score_id"] is not None
    # The figure shown is the public samples' mean, rounded to 4 decimals.
    expect(success).to_contain_text(f"scored {round(stored['primary_value'], 4):.6g} ({METRICS['emd'].label})")
    expect(submissions_table(page)).to_contain_text("Mask and noise")

    # 2. The result page: metrics per split with their standard deviations (development and public samples while
    # the challenge runs), the violin and the gallery with the masks of the development samples only.
    main_area(page).get_by_role("link", name="Open the result page").click()
    expect(page).to_have_url(re.compile(rf"/result\?submission={stored['id']}$"))
    main = main_area(page)
    expect(main.get_by_role("heading", name="Mask and noise")).to_be_visible()
    metrics_table = main.get_by_test_id("stDataFrame")
    for text in (*(metric.label for metric in METRICS.values()), "Development", "Public leaderboard"):
        expect(metrics_table).to_contain_text(text)
    expect(metrics_table).not_to_contain_text("Private")
    expect(main.get_by_text("Figures are aggregates rounded to 4 decimals")).to_be_visible()
    charts = main.get_by_test_id("stPlotlyChart")
    expect(charts).to_have_count(2)
    expect(charts.first).to_contain_text("Per-sample scores")
    gallery = charts.last
    development = development_samples(live_app, stored["id"])
    assert development, "the evaluation set has development samples"
    for i in development[:4]:
        for label in (f"input #{i}", f"ground truth #{i}", f"attribution #{i}"):
            expect(gallery).to_contain_text(label)
    hidden = next(i for i in range(n) if i not in development)
    expect(gallery).not_to_contain_text(re.compile(rf"ground truth #{hidden}\b"))

    # 3. A file of the wrong shape is refused with the exact expectation, and nothing is stored.
    open_nav(page, "Submit score")
    short = write_npy(tmp_path / "short.npy", np.ones((n - 1, 8, 8)))
    upload_attributions(page, short, "Too short")
    expect(alert(page, f"expected {n} samples of 8×8")).to_contain_text(f"got ({n - 1}, 8, 8)")
    expect(alert(page, "Too short scored")).to_have_count(0)
    assert [s["id"] for s in participant_submissions(live_app)] == [stored["id"]]
    uploads = [p for p in (live_app.media_root / "submissions").rglob("*") if p.is_file()]
    assert len(uploads) == 1, f"only the good upload is kept, not the refused one: {uploads}"


def test_a_large_grid_is_queued_and_the_worker_scores_it_while_the_page_watches(
    start_live_app, browser_page: Page, tmp_path: Path
) -> None:
    live_app = start_live_app(env={"EXACT_WORKER": "on"})
    # 64×64, 6 evaluation samples: the baselines are left queued, for the app's worker to take first, so the
    # submission waits behind them for a few seconds before it is scored itself.
    prepared = create_gt_challenge(live_app, "tetro-64", size=64, n_samples=40, score_baselines=False)
    page = browser_page
    register(page, live_app, "hopper")

    open_nav(page, "Submit score")
    page.evaluate("window.__not_reloaded = true")
    upload_attributions(page, write_npy(tmp_path / "big.npy", prepared.masks + 0.05), "Big maps")
    expect(alert(page, "Your submission is queued for scoring")).to_be_visible()
    table = submissions_table(page)
    expect(table).to_contain_text("Big maps")
    expect(table).to_contain_text(re.compile(r"waiting to be scored|being scored"))

    # The table refreshes itself every 3 s: the status turns to "scored" with no reload and no click.
    expect(table).not_to_contain_text(re.compile(r"waiting to be scored|being scored"), timeout=WORKER_TIMEOUT_MS)
    expect(table).to_contain_text("scored")
    assert page.evaluate("window.__not_reloaded") is True
    [stored] = participant_submissions(live_app)
    assert stored["status"] == "done" and stored["score_id"] is not None and 0 < stored["primary_value"] <= 1

    # The fair queue may put baselines queued behind their own earlier ones after this job: wait for them too.
    def baseline_statuses() -> set[str]:
        with live_app.db.connect() as conn:
            statuses = conn.execute(sa.text("SELECT DISTINCT status FROM exact_submission WHERE kind = 'baseline'"))
            return {row[0] for row in statuses}

    wait_until(lambda: baseline_statuses() == {"done"}, "the worker to score the queued baselines too",
               limit_seconds=WORKER_TIMEOUT_MS / 1000, every=0.5)  # fmt: skip

    # The result page of the now scored submission.
    go(page, live_app, f"/result?submission={stored['id']}")
    expect(main_area(page).get_by_role("heading", name="Big maps")).to_be_visible()
    expect(main_area(page).get_by_test_id("stPlotlyChart")).to_have_count(2)

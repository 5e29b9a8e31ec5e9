"""Ground-truth challenges in the pages, through Streamlit's AppTest running app.py against a real scratch database.

Challenges and submissions are set up through the service layer (AppTest cannot upload files); the pages are then
checked for what each role sees: the upload form on the Submit page, the result page (metrics, per-sample violin,
gallery with or without masks), the leaderboard's baselines, the organisers-only statistics, and the benchmark option
of the create-challenge page. The background worker stays off (EXACT_WORKER=off); tests drive scoring themselves.
The service layer itself is covered by tests/test_evaluation.py.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest

from db.database import Database
from exact import evaluation_sets, intake, scoring, splits
from exact.challenges import ChallengeForm, EvaluationChoice, create_challenge
from exact.metrics import METRICS
from exact.results import SPLIT_LABELS
from exact.storage import MediaStorage, UploadedFile
from exact.worker import ScoringWorker
from exact.xaitris import BenchmarkSpec
from tests.conftest import make_user
from tests.pages_helpers import (
    click,
    offered_pages,
    one,
    open_page,
    rows,
    run,
    scalar,
    title,
    values,
)

MAX_BYTES = 200 * 1024 * 1024  # what the app uses by default (EXACT_MAX_UPLOAD_MB unset)
GT_ID = "gt8"
FORBIDDEN = "Only the submitter and the challenge's organisers can see this result."
STATS_EXPANDER = "Ground-truth statistics (organisers only)"


# --- fixtures ----------------------------------------------------------------------------------------------------


@pytest.fixture
def stores(media_root: Path, private_root: Path) -> tuple[MediaStorage, MediaStorage]:
    """The public media store and the private (masks) store, as the app builds them."""
    return MediaStorage(media_root, max_bytes=MAX_BYTES), MediaStorage(private_root, max_bytes=MAX_BYTES)


@pytest.fixture
def people(db):
    """The superuser also closes first-run set-up; oscar is an organiser, but not of the ground-truth challenge."""
    return {
        "superuser": make_user(db, "root", superuser=True),
        "organiser": make_user(db, "olivia", staff=True),
        "other_organiser": make_user(db, "oscar", staff=True),
        "participant": make_user(db, "pat"),
        "other_participant": make_user(db, "quinn"),
    }


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def make_gt_challenge(
    db: Database,
    stores,
    organiser_id: int,
    challenge_id: str,
    *,
    size: int = 8,
    n_samples: int = 100,
    primary: str = "emd",
    shown: tuple[str, ...] = ("mass", "auc"),
) -> evaluation_sets.PreparedEvaluation:
    media, private = stores
    prepared = evaluation_sets.prepare_benchmark(
        BenchmarkSpec(scenario="linear", size=size, n_samples=n_samples, seed=3)
    )
    create_challenge(
        db,
        media,
        organiser_id,
        ChallengeForm(f"Ground truth {challenge_id}", "Explain the *tetrominoes*.", challenge_id),
        {},
        evaluation=EvaluationChoice(prepared=prepared, private=private, primary_metric=primary, shown_metrics=shown),
    )
    assert scoring.score_waiting_baselines(db, media, private, challenge_id) == len(evaluation_sets.BASELINES)
    return prepared


def submit(db, stores, user, challenge_id: str, attributions: np.ndarray, method: str, *, score: bool = True):
    media, private = stores
    submission = intake.submit_attributions(
        db, media, user.id, challenge_id, UploadedFile("attributions.npy", _npy(attributions)), method_name=method
    )
    if score:
        submission = scoring.process_submission(db, media, private, submission.id)
    return submission


@pytest.fixture
def gt(db, stores, people):
    """An 8×8 benchmark challenge (14 evaluation samples) with scored baselines and pat's scored submission."""
    prepared = make_gt_challenge(db, stores, people["organiser"].id, GT_ID)
    noise = np.random.default_rng(1).random(prepared.masks.shape)
    good = submit(db, stores, people["participant"], GT_ID, prepared.masks + 0.2 * noise, "Mask plus noise")
    assert good.status == "done"
    baselines = {
        r["method_name"]: r["id"]
        for r in rows(db, "SELECT id, method_name FROM exact_submission WHERE kind = 'baseline'")
    }
    return {"prepared": prepared, "submission": good, "baselines": baselines}


_open = open_page


def _charts(at) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def _subplot_titles(figure: dict) -> list[str]:
    return [a["text"] for a in figure["layout"].get("annotations", [])]


def _decode(z) -> np.ndarray:
    """A heatmap's z as plotly sends it: nested lists, or a typed array {dtype, bdata (base64), shape}."""
    if isinstance(z, dict):
        array = np.frombuffer(base64.b64decode(z["bdata"]), dtype=np.dtype(z["dtype"]))
        shape = z.get("shape")
        if shape is not None:
            array = array.reshape([int(part) for part in str(shape).split(",")])
        return array.astype(np.float64)
    return np.asarray(z, dtype=np.float64)


def _heatmaps(figure: dict) -> list[np.ndarray]:
    return [_decode(trace["z"]) for trace in figure["data"] if trace["type"] == "heatmap"]


def _links(at) -> list[str]:
    return [link.label for link in at.main.get("page_link")]


# --- submit page ---------------------------------------------------------------------------------------------------


def test_submit_page_offers_an_upload_form_instead_of_the_typed_score(app, db, stores, gt, people):
    create_challenge(db, stores[0], people["organiser"].id, ChallengeForm("Typed", "Scores only.", "typed"), {})
    at = _open(app, db, people["participant"], "app_pages/submit.py", challenge=GT_ID)
    assert title(at) == "Submit a score"
    assert at.selectbox(key="submit_pick").value == GT_ID
    intro = " ".join(values(at.markdown))
    n = len(gt["prepared"].masks)
    assert "scored on the server" in intro and f"`({n}, 8, 8)`" in intro and f"`({n}, 64)`" in intro
    assert f"Ranked by **{METRICS['emd'].label}**" in intro
    uploaders = at.get("file_uploader")
    assert [u.proto.label for u in uploaders] == ["Attribution file"]
    assert sorted(uploaders[0].proto.type) == [".npy", ".npz"]
    assert "Upload and score" in [b.label for b in at.button]
    assert "Submit score" not in [b.label for b in at.button]
    form_inputs = [t.label for t in at.text_input if t.key != "submit_pick_search"]  # not the picker's search
    assert form_inputs == ["Method name", "Paper or code URL (optional)"]
    assert not [t for t in at.text_input if t.key == "submit_score"], "no typed-score field"
    # pat's earlier submission is listed with its status and a link to its result
    assert "Your submissions to this challenge" in values(at.subheader)
    mine = at.dataframe[0].value
    assert list(mine["method"]) == ["Mask plus noise"]
    assert list(mine["status"]) == ["scored"]
    assert list(mine["result"]) == [f"result?submission={gt['submission'].id}"]
    assert mine["score"][0] == pytest.approx(gt["submission"].primary_value)

    # Pressing the button without a file (AppTest cannot attach one) or without the confirmation stores nothing.
    one(at.text_input, "Method name").input("Saliency")
    click(at, "Upload and score")
    assert values(at.warning) == ["Please tick the confirmation box first."]
    one(at.checkbox, "I confirm these attributions come from my own method.").check()
    click(at, "Upload and score")
    assert values(at.warning) == ["Choose an attribution file first."]
    assert not at.success and not at.error
    assert scalar(db, "SELECT count(*) FROM exact_submission WHERE kind = 'participant'") == 1

    # The same page for a score-only challenge shows the typed-score form instead.
    at.selectbox(key="submit_pick").set_value("typed")
    run(at)
    assert [b.label for b in at.button if b.label in {"Submit score", "Upload and score"}] == ["Submit score"]
    assert not at.get("file_uploader")
    assert at.text_input(key="submit_score").value == ""


def test_a_participant_without_submissions_sees_no_submissions_table(app, db, gt, people):
    at = _open(app, db, people["other_participant"], "app_pages/submit.py", challenge=GT_ID)
    assert "Upload and score" in [b.label for b in at.button]
    assert "Your submissions to this challenge" not in values(at.subheader)
    assert not at.dataframe


def test_visitor_is_asked_to_log_in_to_submit(app, db, gt):
    at = _open(app, db, None, "app_pages/challenge.py", challenge=GT_ID)
    assert title(at) == f"Ground truth {GT_ID}"
    assert "Log in to submit" in _links(at) and "Submit a score" not in _links(at)
    assert "app_pages/submit.py" not in offered_pages(at)
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("app_pages/submit.py")  # there is no way for a visitor to reach the upload form


# --- result page ---------------------------------------------------------------------------------------------------


def _split_codes(db, submission_id: int) -> np.ndarray:
    """Each sample's split (0 development, 1 public, 2 private), as the scorer stored it with the result."""
    result = intake.get_submission_row(db, submission_id, with_result=True).result
    return np.asarray(result["split_codes"])


def _expected_summary(db, submission_id: int, split_names: tuple[str, ...]) -> list[tuple]:
    """(split label, metric label, mean, std, scored, not scorable) computed independently from the stored
    per-sample values, rounded to the 4 decimals that may be shown."""
    result = intake.get_submission_row(db, submission_id, with_result=True).result
    codes = np.asarray(result["split_codes"])
    expected = []
    for split in split_names:
        members = codes == splits.SPLIT_CODES[split]
        for name in METRICS:
            per_sample = np.array(
                [np.nan if v is None else v for v in result["metrics"][name]["per_sample"]], dtype=np.float64
            )[members]
            scored = per_sample[~np.isnan(per_sample)]
            expected.append(
                (
                    SPLIT_LABELS[split],
                    METRICS[name].label,
                    round(float(scored.mean()), 4),
                    round(float(scored.std()), 4),
                    int(scored.size),
                    int(members.sum()) - int(scored.size),
                )
            )
    return expected


def _check_summary(at, db, submission_id: int, split_names: tuple[str, ...]) -> None:
    summary = at.dataframe[0].value
    assert list(summary.columns) == ["split", "metric", "mean", "std", "scored", "not scorable"]
    shown = [tuple(row) for row in summary.itertuples(index=False)]
    expected = _expected_summary(db, submission_id, split_names)
    assert [row[:2] for row in shown] == [row[:2] for row in expected]  # split order, then registry order
    for got, want in zip(shown, expected, strict=True):
        assert got[2:4] == pytest.approx(want[2:4], abs=1e-12) and got[4:] == want[4:]


def _gallery_titles(indices) -> list[str]:
    return [
        *(f"input #{i}" for i in indices),
        *(f"ground truth #{i}" for i in indices),
        *(f"attribution #{i}" for i in indices),
    ]


@pytest.mark.parametrize("role", ["participant", "organiser", "superuser"])
def test_result_page_shows_metrics_violin_and_gallery_with_masks(app, db, gt, people, role):
    """The submitter (pat) sees per-sample detail and masks on the development samples only; the challenge's
    organiser and an administrator see every split, per sample, and the first samples' masks."""
    submission = gt["submission"]
    organiser_view = role != "participant"
    at = _open(app, db, people[role], "app_pages/result.py", submission=str(submission.id))
    assert not at.error, values(at.error)
    assert title(at) == "Mask plus noise"
    assert any(c.startswith("by **pat** · challenge `gt8` · scored") for c in values(at.caption))
    public_label = f"{METRICS['emd'].label} (public samples)"
    assert [(m.label, m.value) for m in at.metric] == [(public_label, f"{submission.primary_value:.6g}")]

    # Aggregates per split; the private split only for the organisers while the challenge runs.
    shown_splits = ("development", "public", "private") if organiser_view else ("development", "public")
    _check_summary(at, db, submission.id, shown_splits)
    assert any(c.startswith("stored array ") and "SHA-256" in c and "scored in" in c for c in values(at.caption))
    rounding_note = any(c.startswith("Figures are aggregates rounded to 4 decimals") for c in values(at.caption))
    assert rounding_note is not organiser_view

    codes = _split_codes(db, submission.id)
    development = [int(i) for i in np.flatnonzero(codes == splits.SPLIT_CODES["development"])]
    assert development, "the fixture's evaluation set has development samples"
    violin, grid = _charts(at)
    assert violin["layout"]["title"]["text"] == "Per-sample scores"
    assert [trace["type"] for trace in violin["data"]] == ["violin"] * len(METRICS)
    n_values = {len(_decode(trace["y"])) for trace in violin["data"]}
    assert n_values == {len(codes) if organiser_view else len(development)}
    indices = list(range(4)) if organiser_view else development[:4]
    assert _subplot_titles(grid) == _gallery_titles(indices)
    heatmaps = _heatmaps(grid)
    assert len(heatmaps) == 3 * len(indices)
    prepared = gt["prepared"]
    for k, i in enumerate(indices):
        np.testing.assert_allclose(heatmaps[k], prepared.inputs[i], rtol=1e-6)
        np.testing.assert_array_equal(heatmaps[len(indices) + k], prepared.masks[i])
    assert "Back to the leaderboard" in _links(at)


@pytest.mark.parametrize("role", ["other_participant", "other_organiser", "visitor"])
def test_result_page_of_someone_elses_submission_is_refused(app, db, gt, people, role):
    user = None if role == "visitor" else people[role]
    at = _open(app, db, user, "app_pages/result.py", submission=str(gt["submission"].id))
    assert values(at.error) == [FORBIDDEN]
    assert not at.get("plotly_chart") and not at.dataframe and not at.metric
    assert "Mask plus noise" not in values(at.title)


@pytest.mark.parametrize("role", ["visitor", "other_participant"])
def test_baseline_result_is_public_but_its_masks_only_on_development_samples(app, db, gt, people, role):
    user = None if role == "visitor" else people[role]
    baseline_id = gt["baselines"]["Sobel edges of the input"]
    at = _open(app, db, user, "app_pages/result.py", submission=str(baseline_id))
    assert not at.error, values(at.error)
    assert title(at) == "Sobel edges of the input"
    assert values(at.caption)[0].startswith("Baseline · challenge `gt8` · scored")
    assert len(at.metric) == 1
    _check_summary(at, db, baseline_id, ("development", "public"))  # no private figures while it runs
    codes = _split_codes(db, baseline_id)
    development = [int(i) for i in np.flatnonzero(codes == splits.SPLIT_CODES["development"])]
    violin, grid = _charts(at)
    assert {len(_decode(trace["y"])) for trace in violin["data"]} == {len(development)}
    titles = _subplot_titles(grid)
    assert titles == _gallery_titles(development[:4])
    heatmaps = _heatmaps(grid)
    n = len(development[:4])
    for k, i in enumerate(development[:4]):  # the development masks are published with the inputs anyway
        np.testing.assert_array_equal(heatmaps[n + k], gt["prepared"].masks[i])
    public_or_private = [int(i) for i in np.flatnonzero(codes != splits.SPLIT_CODES["development"])]
    assert not any(f"ground truth #{i}" in titles for i in public_or_private)


def test_baseline_result_shows_masks_to_the_organiser(app, db, gt, people):
    at = _open(app, db, people["organiser"], "app_pages/result.py", submission=str(gt["baselines"]["The input itself"]))
    grid = _charts(at)[1]
    assert _subplot_titles(grid) == _gallery_titles(range(4))  # the first samples, whatever their split
    heatmaps = _heatmaps(grid)
    for i in range(4):
        np.testing.assert_array_equal(heatmaps[4 + i], gt["prepared"].masks[i])
    _check_summary(at, db, gt["baselines"]["The input itself"], ("development", "public", "private"))


@pytest.mark.parametrize("raw", [None, "", " "])
def test_result_page_without_an_id_explains_where_results_are(app, db, gt, raw):
    query = {} if raw is None else {"submission": raw}
    at = _open(app, db, None, "app_pages/result.py", **query)
    assert title(at) == "Submission result"
    assert values(at.info) == ["Open a result from the leaderboard or from your submissions."]
    assert not at.error and not at.get("plotly_chart")


@pytest.mark.parametrize("raw", ["abc", "-1", "1.5", "%20", "²", "1" * 19])
def test_result_page_with_a_mistyped_id_says_so(app, db, gt, raw):
    """Not a submission id at all (also digits of other scripts, which str.isdigit() accepts): said so, with a link
    to the challenges, and nothing is looked up."""
    at = _open(app, db, None, "app_pages/result.py", submission=raw)
    assert title(at) == "Submission result"
    assert values(at.error) == [f"There is no submission {raw!r}. Check the link, or open a result from a leaderboard."]
    assert "See all challenges" in _links(at)
    assert not at.get("plotly_chart") and not at.metric


def test_result_page_of_a_missing_submission(app, db, gt, people):
    at = _open(app, db, people["participant"], "app_pages/result.py", submission="987654")
    assert values(at.error) == ["No such submission."]
    assert not at.get("plotly_chart")


def test_result_page_of_queued_and_failed_submissions(app, db, stores, gt, people):
    pat = people["participant"]
    shape = gt["prepared"].masks.shape
    queued = submit(db, stores, pat, GT_ID, np.ones(shape), "Still waiting", score=False)
    failed = submit(db, stores, pat, GT_ID, np.ones(shape), "Too slow", score=False)
    failed = scoring.process_submission(db, *stores, failed.id, time_budget=1e-9)  # stopped at once: over budget
    assert (queued.status, failed.status) == ("queued", "failed")

    at = _open(app, db, pat, "app_pages/result.py", submission=str(queued.id))
    assert title(at) == "Still waiting"
    assert values(at.info) == ["This submission is still being scored. This page updates when you reload it."]
    assert not at.get("plotly_chart") and not at.metric

    at = _open(app, db, pat, "app_pages/result.py", submission=str(failed.id))
    assert len(at.error) == 1 and at.error[0].value.startswith("Scoring failed: Scoring took longer than")
    assert "budget" in at.error[0].value
    assert not at.get("plotly_chart") and not at.metric

    # Both show up in pat's list on the submit page, with their statuses and the failure's reason.
    at = _open(app, db, pat, "app_pages/submit.py", challenge=GT_ID)
    mine = at.dataframe[0].value.set_index("method")
    assert mine.loc["Still waiting", "status"] == "waiting to be scored"
    n = shape[0]
    assert mine.loc["Still waiting", "progress"] == f"0 of {n:,} samples"  # refreshed by the list's fragment
    assert mine.loc["Too slow", "progress"] == "" and mine.loc["Mask plus noise", "progress"] == ""
    assert [p.proto.text for p in at.get("progress")] == [
        f"0 of {n:,} samples scored (submitted {queued.created_at:%Y-%m-%d %H:%M})"
    ]
    assert mine.loc["Too slow", "status"] == "failed" and "budget" in mine.loc["Too slow", "error"]
    assert mine.loc["Mask plus noise", "status"] == "scored"


# --- leaderboard -----------------------------------------------------------------------------------------------------


def test_leaderboard_shows_methods_metrics_vs_random_and_baselines(app, db, stores, gt, people):
    shape = gt["prepared"].masks.shape
    noisy = submit(db, stores, people["other_participant"], GT_ID, np.random.default_rng(2).random(shape), "Noise")
    assert noisy.status == "done" and noisy.primary_value < gt["submission"].primary_value
    # Everything on the board is the public part's figure, rounded to 4 decimals before it is compared or shown.
    baselines_sql = "SELECT method_name, primary_value FROM exact_submission WHERE kind = 'baseline'"
    scores = {r["method_name"]: round(r["primary_value"], 4) for r in rows(db, baselines_sql)}
    random_score = scores["Random attributions"]

    at = _open(app, db, None, "app_pages/leaderboard.py", challenge=GT_ID)
    assert not at.error, values(at.error)
    table, baselines = (frame.value for frame in at.dataframe)
    # The score next to the user (on a phone it is on screen first); "vs random" is in the method card and the
    # CSV; no "result" column: a visitor can open none of these result pages, so no link leads to a refusal.
    assert list(table.columns) == [
        "rank", "group", "username", "score", "ci", "method", "mass", "auc", "created_at", "submissions",
    ]  # fmt: skip
    assert list(table["username"]) == ["pat", "quinn"] and list(table["method"]) == ["Mask plus noise", "Noise"]
    assert list(table["rank"]) == [1, 2]
    for row, submission in zip(table.itertuples(index=False), (gt["submission"], noisy), strict=True):
        assert row.score == submission.primary_value
        means = scalar(
            db,
            f"SELECT metrics FROM exact_submission_summary WHERE submission_id = {submission.id} AND split = 'public'",
        )
        assert row.mass == round(means["mass"]["mean"], 4) and row.auc == round(means["auc"]["mean"], 4)
    assert "score_id" not in table.columns and "precision" not in table.columns  # not among the shown metrics
    # the column headers a person reads
    table_columns = json.loads(at.dataframe[0].proto.columns)
    assert table_columns["vs_random"]["label"] == "vs random"  # the baselines' column
    pat_vs_random = round(gt["submission"].primary_value - random_score, 4)
    assert any(f"vs random {pat_vs_random:+.4f}" in c for c in values(at.caption)), "in pat's method card"
    # short headers with the direction (the whole table fits the window), the full metric name as the help
    assert table_columns["score"]["label"] == "EMD ↑" and METRICS["emd"].label in table_columns["score"]["help"]
    assert table_columns["mass"]["label"] == "Mass ↑" and METRICS["mass"].label in table_columns["mass"]["help"]

    assert list(baselines.columns) == ["method", "score", "ci", "vs_random", "mass", "auc", "status", "result"]
    # baselines are public: each links to its own result page
    by_link = {m: link for m, link in zip(baselines["method"], baselines["result"], strict=True)}
    assert by_link == {m: f"result?submission={i}" for m, i in gt["baselines"].items()}
    assert sorted(baselines["method"]) == sorted(evaluation_sets.BASELINES.values())
    assert set(baselines["status"]) == {"done"}
    by_method = baselines.set_index("method")
    assert by_method.loc["Random attributions", "vs_random"] == pytest.approx(0.0)
    assert by_method.loc["Ground truth (ceiling)", "score"] == pytest.approx(1.0)
    for method, score in scores.items():
        assert by_method.loc[method, "score"] == score
        assert by_method.loc[method, "vs_random"] == pytest.approx(round(score - random_score, 4), abs=1e-12)
    assert "Baselines: reference methods computed by the server when the challenge was created." in values(at.caption)
    # the ranking chart marks where random attributions and the ground truth land
    ranking = _charts(at)[0]
    assert len(_charts(at)) == 4  # ranking, critical difference (EMD, mass and AUC), over time, distribution
    names = [a.get("name", "") for a in ranking["layout"]["annotations"]]
    labels = {name.removeprefix("baseline: ") for name in names if name.startswith("baseline: ")}
    assert labels == {"Random attributions", "Ground truth"}

    # A second, weaker method of pat's: the best per user still ranks pat by the better one; "all" lists both.
    submit(db, stores, people["participant"], GT_ID, np.random.default_rng(3).random(shape), "Noise too")
    run(at)
    table = at.dataframe[0].value
    assert list(table["method"]) == ["Mask plus noise", "Noise"] and list(table["submissions"]) == [2, 1]
    at.toggle(key="leaderboard_show_all").set_value(True)
    run(at)
    table = at.dataframe[0].value
    assert sorted(table["method"]) == ["Mask plus noise", "Noise", "Noise too"]
    at.get("button_group")[0].set_value("normalised")  # random = 0, ground truth = 1
    run(at)
    normalised = at.dataframe[0].value
    expected = [round((score - random_score) / (1.0 - random_score), 4) for score in table["score"]]
    assert normalised["score"].tolist() == pytest.approx(expected, abs=1e-12)
    assert len(at.dataframe) == 2 and len(at.dataframe[1].value) == len(evaluation_sets.BASELINES)


def test_leaderboard_with_a_single_score_renders_its_charts(app, db, gt):
    at = _open(app, db, None, "app_pages/leaderboard.py", challenge=GT_ID)
    assert list(at.dataframe[0].value["username"]) == ["pat"]
    assert not at.error, values(at.error)
    assert len(at.get("plotly_chart")) == 4  # with the critical difference over its three metrics


def test_leaderboard_of_a_ground_truth_challenge_without_participants_still_shows_baselines(
    app, db, stores, gt, people
):
    make_gt_challenge(db, stores, people["organiser"].id, "gt-empty", n_samples=20)
    at = _open(app, db, None, "app_pages/leaderboard.py", challenge="gt-empty")
    assert values(at.info) == ["No submissions yet for this challenge."]
    assert len(at.dataframe) == 1, "only the baselines table"
    baselines = at.dataframe[0].value
    assert "status" in baselines.columns and len(baselines) == len(evaluation_sets.BASELINES)
    assert not at.get("plotly_chart")


# --- challenge page --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "sees_statistics"),
    [
        ("organiser", True),  # attached the evaluation set
        ("superuser", True),
        ("other_organiser", False),  # organiser, but not of this challenge
        ("participant", False),
        ("visitor", False),
    ],
)
def test_challenge_page_ground_truth_statistics_only_for_its_organisers(app, db, gt, people, role, sees_statistics):
    user = None if role == "visitor" else people[role]
    at = _open(app, db, user, "app_pages/challenge.py", challenge=GT_ID)
    assert not at.error, values(at.error)
    assert "Scored on the server" in values(at.subheader)
    n = len(gt["prepared"].masks)
    assert any(f"**{n} evaluation inputs** (8×8)" in m for m in values(at.markdown))
    downloads = [b.proto.label for b in at.get("download_button")]
    assert "Download evaluation inputs" in downloads and "Download dataset" in downloads
    assert any(c.startswith("Generated XAI-TRIS benchmark: linear scenario, 8×8") for c in values(at.caption))
    expanders = [e.label for e in at.expander]
    if sees_statistics:
        assert expanders == [STATS_EXPANDER]
        statistics = at.expander[0].json[0].value
        statistics = json.loads(statistics) if isinstance(statistics, str) else statistics
        assert statistics["samples"] == n and statistics["grid"] == "8×8"
        assert statistics["empty masks"] == 0 and statistics["mask pixels (mean)"] == 4.0  # a tetromino: 4 cells
    else:
        assert STATS_EXPANDER not in expanders
        assert not at.json


# --- create a challenge with a generated benchmark --------------------------------------------------------------------


def _manage_new(app, db, user):
    at = _open(app, db, user, "app_pages/manage_challenge.py")
    assert at.selectbox(key="manage_pick").value == ""  # "New challenge"
    at.radio(key="manage_eval_mode").set_value("benchmark")
    return run(at)


def _create(at, title_text: str, challenge_id: str):
    one(at.text_input, "Title").input(title_text)
    one(at.text_input, "Challenge id").input(challenge_id)
    one(at.text_area, "Description (Markdown)").input("Find the **tetromino**.")
    return click(at, "Create challenge")


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_create_an_8x8_benchmark_challenge_scores_its_baselines_at_once(app, db, people, media_root, private_root):
    at = _manage_new(app, db, people["organiser"])
    assert [chart.proto for chart in at.get("plotly_chart")], "a preview of the benchmark"
    preview = _charts(at)[0]
    assert _subplot_titles(preview)[4:] == ["mask"] * 4
    assert at.radio(key="bench_protocol").value == "paper"  # the default; this test uses Exact's own settings
    at.radio(key="bench_protocol").set_value("exact")
    run(at)
    at.selectbox(key="bench_scenario").set_value("xor")
    at.radio(key="bench_background").set_value("correlated")
    at.slider(key="bench_alpha").set_value(0.7)
    at.number_input(key="bench_n_8").set_value(200)
    assert not [n for n in at.number_input if n.key == "bench_seed"], "the seed is secret: no field for it"
    at.selectbox(key="eval_primary").set_value("mass")
    run(at)
    at.multiselect(key="eval_shown").set_value(["emd", "auc"])
    run(at)
    _create(at, "XOR benchmark", "xor-bench")
    assert not at.error, values(at.error)
    assert values(at.success) == ["Created challenge **XOR benchmark** (`xor-bench`)."]
    assert at.selectbox(key="manage_pick").value == "xor-bench"  # now the edit form of the new challenge
    assert "Create challenge" not in [b.label for b in at.button]
    assert values(at.info) == [
        "Scored on the server from uploaded attributions (30 samples of 8×8). "
        "The evaluation set cannot be changed after creation."
    ]

    evaluation = rows(
        db,
        "SELECT n_samples, height, width, primary_metric, shown_metrics, benchmark, created_by "
        "FROM exact_evaluation WHERE challenge_id = 'xor-bench'",
    )
    assert len(evaluation) == 1
    row = evaluation[0]
    assert (row["n_samples"], row["height"], row["width"]) == (30, 8, 8)  # the 15 % test split of 200
    assert row["primary_metric"] == "mass" and list(row["shown_metrics"]) == ["emd", "auc"]
    assert row["created_by"] == people["organiser"].id
    assert {k: row["benchmark"][k] for k in ("scenario", "size", "background", "n_samples")} == {
        "scenario": "xor",
        "size": 8,
        "background": "correlated",
        "n_samples": 200,
    }
    seed = row["benchmark"]["seed"]  # drawn from a secure source on the server, not the preview's 0
    assert isinstance(seed, int) and seed != 0
    assert row["benchmark"]["alpha"] == pytest.approx(0.7)
    baselines = rows(
        db,
        "SELECT method_name, status, primary_metric, primary_value FROM exact_submission "
        "WHERE challenge_id = 'xor-bench' AND kind = 'baseline' ORDER BY id",
    )
    assert [b["method_name"] for b in baselines] == list(evaluation_sets.BASELINES.values())
    assert {(b["status"], b["primary_metric"]) for b in baselines} == {("done", "mass")}
    assert baselines[-1]["primary_value"] == pytest.approx(1.0)  # the ground truth holds all the mass

    dataset = scalar(db, "SELECT dataset FROM api_challenge WHERE challenge_id = 'xor-bench'")
    assert dataset == "challenges/xor-bench/dataset/xai-tris-xor-8x8.npz"
    with np.load(media_root / dataset, allow_pickle=False) as npz:
        assert {"x_train", "masks_train", "x_test"} <= set(npz.files)
        assert "y_test" not in npz.files  # on XOR a test label gives the test mask away
        assert not any(name.startswith("masks_test") for name in npz.files)
        assert npz["x_test"].shape == (30, 8, 8)
    assert not any("mask" in path for path in _files(media_root)), "no masks file under the public media root"
    private_files = _files(private_root)
    assert "evaluations/xor-bench/masks.npz" in private_files
    assert len([p for p in private_files if p.startswith("evaluations/xor-bench/baselines/")]) == len(
        evaluation_sets.BASELINES
    )


def test_create_a_64x64_benchmark_leaves_the_baselines_to_the_worker(app, db, people, stores, media_root, private_root):
    at = _manage_new(app, db, people["organiser"])
    at.radio(key="bench_protocol").set_value("exact")
    at.radio(key="bench_size").set_value(64)
    run(at)
    at.number_input(key="bench_n_64").set_value(20)  # 3 evaluation samples: a few seconds for the worker
    run(at)
    _create(at, "Big linear", "big-linear")
    assert not at.error, values(at.error)
    assert values(at.success) == ["Created challenge **Big linear** (`big-linear`)."]
    n_samples = scalar(db, "SELECT n_samples FROM exact_evaluation WHERE challenge_id = 'big-linear'")
    assert values(at.info) == [
        f"Scored on the server from uploaded attributions ({n_samples} samples of 64×64). "
        "The evaluation set cannot be changed after creation."
    ]
    status_sql = "SELECT status, count(*) AS n FROM exact_submission WHERE challenge_id = 'big-linear' GROUP BY status"
    assert rows(db, status_sql) == [{"status": "queued", "n": len(evaluation_sets.BASELINES)}]

    # The leaderboard lists them as queued meanwhile.
    board = _open(app, db, None, "app_pages/leaderboard.py", challenge="big-linear")
    assert set(board.dataframe[0].value["status"]) == {"queued"}

    worker = ScoringWorker(db, *stores)
    runs = 0
    while worker.run_once():
        runs += 1
        assert runs <= len(evaluation_sets.BASELINES), "the worker keeps finding work"
    assert runs == len(evaluation_sets.BASELINES)
    assert rows(db, status_sql) == [{"status": "done", "n": len(evaluation_sets.BASELINES)}]
    run(board)
    assert set(board.dataframe[0].value["status"]) == {"done"}
    assert scalar(db, "SELECT dataset FROM api_challenge WHERE challenge_id = 'big-linear'").endswith("64x64.npz")


def _published_fields(at) -> tuple[float, str]:
    alpha = one(at.number_input, "Signal weight α (published)")
    splits = one(at.text_input, "Train / validation / test % (published)")
    assert alpha.disabled and splits.disabled, "the published values are not editable"
    return alpha.value, splits.value


def test_the_paper_protocol_is_the_default_and_fixes_the_published_parameters(app, db, people, private_root):
    at = _manage_new(app, db, people["organiser"])
    protocol = at.radio(key="bench_protocol")
    assert protocol.value == "paper" and protocol.options[0].startswith("XAI-TRIS paper protocol")
    assert protocol.options[1] == "Exact's own settings"
    assert not [s for s in at.slider if s.key == "bench_alpha"], "no free alpha under the paper protocol"
    # Published values (Clark et al. 2024, data_config_8by8.json / data_config.json), typed from the paper.
    assert at.selectbox(key="bench_scenario").value == "rigid"
    assert _published_fields(at) == (0.65, "80/10/10")
    assert at.number_input(key="bench_paper_n_8").value == 10_000
    at.radio(key="bench_background").set_value("correlated")
    run(at)
    assert _published_fields(at) == (0.2, "80/10/10")
    at.radio(key="bench_size").set_value(64)
    run(at)
    assert _published_fields(at) == (0.375, "90/5/5")
    assert at.number_input(key="bench_paper_n_64").value == 40_000
    # 2,000 dense 64×64 test samples take about 33 minutes to score, over the default budget of 15 minutes.
    assert [w.value for w in at.warning if "EXACT_SCORING_SECONDS" in w.value] == [
        "Scoring one submission of 2,000 dense 64×64 samples takes about 33 minutes of CPU, more than this "
        "server's budget of 15 minutes per submission: submissions and baselines would stop unscored. Raise "
        "EXACT_SCORING_SECONDS (docs/deployment.md) or use fewer samples."
    ]
    at.radio(key="bench_size").set_value(8)
    run(at)
    assert not [w for w in at.warning if "EXACT_SCORING_SECONDS" in w.value]  # 1,000 8×8 samples: seconds
    at.number_input(key="bench_paper_n_8").set_value(200)  # a quick trial: fewer samples, same parameters
    run(at)
    # The paper trains its MLP and CNN on rigid benchmarks (LLR only on linear); the CNN is explained by default.
    model = at.selectbox(key="bench_model")
    assert model.value == "CNN8by8" and model.options == [
        "Multi-layer perceptron (8x8)", "Convolutional network (8x8)",
        "No model (participants explain whatever they like)",
    ]  # fmt: skip
    assert any("XAI-TRIS paper protocol" in c.value and "200 of the published 10,000" in c.value for c in at.caption)
    _create(at, "Paper rigid", "paper-rigid")
    assert not at.error, values(at.error)

    row = rows(db, "SELECT n_samples, benchmark FROM exact_evaluation WHERE challenge_id = 'paper-rigid'")[0]
    assert row["n_samples"] == 20  # the 10 % test split of 200
    benchmark = row["benchmark"]
    assert benchmark["protocol"] == "paper" and benchmark["n_samples"] == 200 and benchmark["seed"] != 0
    assert (benchmark["alpha"], benchmark["splits"], benchmark["smoothing_sigma"]) == (0.2, [0.8, 0.1, 0.1], 3.0)
    baselines = rows(
        db,
        "SELECT method_name, status FROM exact_submission WHERE challenge_id = 'paper-rigid' AND kind = 'baseline' "
        "ORDER BY id",
    )
    assert [b["method_name"] for b in baselines] == list(evaluation_sets.PAPER_BASELINES.values())
    assert "one axis" in baselines[1]["method_name"] and {b["status"] for b in baselines} == {"done"}
    with np.load(private_root / "evaluations/paper-rigid/masks.npz", allow_pickle=False) as npz:
        masks = npz["masks"]
    assert set(np.unique(masks)) == {0.0, 1.0} and (masks.sum(axis=(1, 2)) == 4).all()  # 8×8 rigid: 4 cells
    models = rows(db, "SELECT architecture, explained, status, epochs_total FROM exact_model ORDER BY id")
    assert [tuple(m.values()) for m in models] == [("MLP8by8", False, "queued", 500), ("CNN8by8", True, "queued", 500)]


def test_a_refused_benchmark_form_stores_nothing(app, db, people, media_root, private_root):
    at = _manage_new(app, db, people["organiser"])
    _create(at, "   ", "")
    assert values(at.error) == ["Title is required."]
    _create(at, "Bad id", "bad id!")
    assert at.error[0].value.startswith("Challenge id may contain only letters")
    assert scalar(db, "SELECT count(*) FROM api_challenge") == 0
    assert scalar(db, "SELECT count(*) FROM exact_evaluation") == 0
    assert scalar(db, "SELECT count(*) FROM exact_submission") == 0
    assert _files(media_root) == [] and _files(private_root) == []

"""Attacks on the secrecy of a ground-truth competition's masks (docs/competitions.md), each performed for real.

Every attack below worked against the old design (per-sample values and the gallery of every sample for anyone,
labels and a fixed seed 0 in the published files, a random baseline from seed 0, no limits, the uploaded file
stored as sent); each test performs it and shows that it fails now.
"""

from __future__ import annotations

import dataclasses
import io
import math
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from db import evaluations as evaluations_sql
from db.database import Database
from exact import evaluation_sets, intake, metrics, moderation, results, scoring
from exact.arrays import npy_bytes, npz_bytes
from exact.challenges import ChallengeForm, EvaluationChoice, create_challenge, get_challenge
from exact.competition import Rules
from exact.errors import PermissionDenied, ValidationError
from exact.evaluation_sets import BASELINES, load_split_codes
from exact.scores import leaderboard, submit_score
from exact.storage import MediaStorage, UploadedFile
from exact.xaitris import BenchmarkSpec, generate
from tests.adversarial.conftest import npy, npz
from tests.adversarial.test_concurrency import _all_at_once
from tests.pages_helpers import rows, scalar

N_SAMPLES = 400  # benchmark size: its test part (60 samples of 8×8) is the evaluation set
SHOWN = ("mass", "precision", "auc")


# --- helpers --------------------------------------------------------------------------------------------------


def rigid_prepared(n_samples: int = N_SAMPLES):
    return evaluation_sets.prepare_benchmark(
        BenchmarkSpec("rigid", n_samples=n_samples, seed=evaluation_sets.secret_seed())
    )


def new_challenge(db, storage, private, owner, cid, *, prepared=None, rules=None, score=True, primary="emd"):
    prepared = prepared if prepared is not None else rigid_prepared()
    create_challenge(
        db,
        storage,
        owner.id,
        ChallengeForm(f"Challenge {cid}", "Scored on the server.", cid),
        {},
        evaluation=EvaluationChoice(prepared=prepared, private=private, primary_metric=primary, shown_metrics=SHOWN),
        rules=rules or Rules(),
    )
    if score:
        scoring.score_waiting_baselines(db, storage, private, cid)
    return prepared


def evaluation_of(db, cid):
    return evaluation_sets.get_evaluation(db, cid)


def published_inputs(db, storage, cid) -> dict[str, np.ndarray]:
    """The evaluation-inputs.npz anyone downloads."""
    data = storage.resolve(evaluation_of(db, cid).inputs_path).read_bytes()
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def dataset_download(db, storage, cid) -> tuple[bytes, dict[str, np.ndarray]]:
    data = storage.resolve(get_challenge(db, cid).files["dataset"]).read_bytes()
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        return data, {key: archive[key] for key in archive.files}


def baseline_ids(db, cid) -> dict[str, int]:
    found = rows(
        db, "SELECT id, method_name FROM exact_submission WHERE challenge_id = :c AND kind = 'baseline'", c=cid
    )
    return {r["method_name"]: r["id"] for r in found}


def upload(db, storage, private, user, cid, attributions, name="Mine") -> intake.Submission:
    sub = intake.submit_attributions(
        db, storage, user.id, cid, UploadedFile("a.npy", npy(attributions)), method_name=name
    )
    done = scoring.process_submission(db, storage, private, sub.id)
    assert done.status == "done", done.error
    return done


def public_mean(db, sid, metric="emd") -> float:
    with db.connect() as conn:
        return evaluations_sql.summaries_of(conn, sid)["public"][metric]["mean"]


def numbers(obj: Any) -> Iterator[float]:
    """Every number inside ``obj`` (frames, mappings, sequences, dataclasses, arrays)."""
    if obj is None or isinstance(obj, str | bytes | datetime):
        return
    if isinstance(obj, bool):
        return
    if isinstance(obj, int | float | np.integer | np.floating):
        value = float(obj)
        if math.isfinite(value):
            yield value
        return
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind in "biuf":
            yield from (float(v) for v in obj.ravel() if math.isfinite(float(v)))
        elif obj.dtype == object:
            for v in obj.ravel():
                yield from numbers(v)
        return
    if isinstance(obj, pd.DataFrame):
        for column in obj.columns:
            yield from numbers(obj[column].to_numpy())
        return
    if dataclasses.is_dataclass(obj):
        for field in dataclasses.fields(obj):
            yield from numbers(getattr(obj, field.name))
        return
    if isinstance(obj, dict):
        for value in obj.values():
            yield from numbers(value)
        return
    if isinstance(obj, list | tuple | set | frozenset):
        for value in obj:
            yield from numbers(value)


def has_at_most_4_decimals(value: float) -> bool:
    return round(value, 4) == value


def visitor_reachable(db, storage, private, cid) -> dict[str, Any]:
    """Everything a visitor (actor None) can fetch about a challenge through the service layer and downloads."""
    boards = {"best": leaderboard(db, cid), "all": leaderboard(db, cid, show_all=True)}
    with pytest.raises(ValidationError):
        leaderboard(db, cid, board="private")  # not revealed while the challenge runs
    views = {}
    for method, sid in baseline_ids(db, cid).items():
        views[method] = (results.view_submission(db, None, sid), results.gallery(db, storage, private, None, sid))
    for sid in boards["all"].table["submission_id"]:
        with pytest.raises(PermissionDenied):
            results.view_submission(db, None, int(sid))  # a participant's result: submitter and organisers only
    _, dataset = dataset_download(db, storage, cid)
    return {"boards": boards, "views": views, "inputs": published_inputs(db, storage, cid), "dataset": dataset}


def shown_figures(reach: dict[str, Any]) -> list[float]:
    """The figures derived from masks (scores, aggregates), not the inputs/attribution arrays of the downloads."""
    figures: list[float] = []
    for board in reach["boards"].values():
        metric_columns = ["score", "vs_random", *board.shown_metrics]
        figures += list(numbers(board.table[metric_columns]))
        figures += list(numbers(board.baselines[metric_columns]))
        figures += list(numbers(board.progression["best_score"]))
        if not board.histogram.empty:
            figures += [float(board.histogram["bin_start"].iloc[0]), float(board.histogram["bin_end"].iloc[-1])]
    for view, _ in reach["views"].values():
        figures += list(numbers(view.summary[["mean", "std"]]))
        figures.append(view.submission.primary_value)
    return [f for f in figures if f is not None and not (isinstance(f, float) and math.isnan(f))]


# --- 1. the ground-truth baseline's result ---------------------------------------------------------------------


def test_visitor_sees_only_development_samples_of_the_ground_truth_baseline(db, storage, private, cast):
    new_challenge(db, storage, private, cast.owner, "gt1")
    sid = baseline_ids(db, "gt1")[BASELINES["ground_truth"]]
    published = published_inputs(db, storage, "gt1")
    dev_masks = dict(zip(published["development_indices"].tolist(), published["development_masks"], strict=True))
    assert len(dev_masks) == 6  # 10 % of 60

    shown = results.gallery(db, storage, private, None, sid)
    assert shown, "the visitor sees a gallery"
    for item in shown:
        assert item["split"] == "development"
        assert item["index"] in dev_masks
        assert np.array_equal(item["mask"], dev_masks[item["index"]])
        assert np.array_equal(item["attribution"], dev_masks[item["index"]])  # the ceiling's attribution is the mask
    view = results.view_submission(db, None, sid)
    assert set(view.per_sample["split"]) == {"development"}
    assert set(view.per_sample["sample"]) <= set(dev_masks)
    assert set(view.summary["split"]) == {"Development", "Public leaderboard"}  # private: only after the end
    assert "seed" not in (view.evaluation.benchmark or {})  # the generator's seed would regenerate every mask

    # The organiser sees every sample: the visitor's restriction is real, not an empty result.
    full = results.view_submission(db, cast.owner.id, sid)
    assert set(full.per_sample["split"]) == {"development", "public", "private"}
    assert len(full.per_sample[full.per_sample["key"] == "emd"]) == 60


# --- 2. reconstruction from everything a visitor can fetch ----------------------------------------------------


def _strip_aggregates(reach: dict[str, Any]) -> bytes:
    """What a visitor sees without the documented aggregates (and ids, time stamps, the challenge id)."""
    out: list[Any] = []
    for name, board in sorted(reach["boards"].items()):
        keep = [c for c in board.table.columns if c not in {"score", "vs_random", *board.shown_metrics}]
        keep = [c for c in keep if c not in {"created_at", "score_id", "submission_id", "rank"}]
        out.append((name, board.table[keep].to_csv(index=False)))
        out.append((name, board.baselines[["method", "status"]].sort_values("method").to_csv(index=False)))
        out.append((name, board.progression[["username"]].to_csv(index=False)))
        out.append((name, list(board.histogram["count"])))
    for method, (view, shown) in sorted(reach["views"].items()):
        out.append((method, view.summary.drop(columns=["mean", "std"]).to_csv(index=False)))
        out.append((method, view.per_sample.to_csv(index=False)))
        sub = view.submission
        out.append((method, sub.kind, sub.status, sub.error, sub.method_name, sub.username, view.access))
        out.append((method, [(g["index"], g["split"], g["input"].tobytes(), g["mask"].tobytes(),
                              g["attribution"].tobytes()) for g in shown]))  # fmt: skip
    for key, array in sorted(reach["inputs"].items()):
        out.append((key, array.dtype.str, array.shape, array.tobytes()))
    for key, array in sorted(reach["dataset"].items()):
        out.append((key, array.dtype.str, array.shape, array.tobytes()))
    return repr(out).encode()


def test_everything_a_visitor_fetches_reveals_only_rounded_aggregates_of_the_secret_masks(db, storage, private, cast):
    """Two challenges with the same inputs, the same split and the same development masks, but different public
    and private masks: everything a visitor can fetch, except the documented aggregates, is byte-identical.

    Bits bound: the secret (non-development) masks reach a visitor only through aggregates (mean and standard
    deviation of a metric over the public part, one value per shown figure), each rounded to 1e-4 in [0, 1], so each
    shown figure reveals at most log2(10^4 + 1) ≈ 13.3 bits about the masks, whatever the number of samples; ranks,
    histogram counts and the progression are functions of those rounded figures and add nothing. The old design
    showed every sample's value at full precision (and the gallery of any sample) to anyone.
    """
    prepared = rigid_prepared()
    new_challenge(db, storage, private, cast.owner, "world-a", prepared=prepared, score=False)
    new_challenge(db, storage, private, cast.owner, "world-b", prepared=prepared, score=False)
    ev_a, ev_b = evaluation_of(db, "world-a"), evaluation_of(db, "world-b")
    codes = load_split_codes(ev_a, private)
    development = codes == 0
    # World b: same inputs, split and development masks; other (equally realistic) masks everywhere else.
    other = generate(BenchmarkSpec("rigid", n_samples=N_SAMPLES, seed=evaluation_sets.secret_seed())).test.masks
    masks_b = np.where(development[:, None, None], prepared.masks, other)
    differing = [i for i in range(60) if not development[i] and not np.array_equal(masks_b[i], prepared.masks[i])]
    assert len(differing) > 40
    private.resolve(ev_b.masks_path).write_bytes(npz_bytes(masks=masks_b, split=codes))
    storage.resolve(ev_b.inputs_path).write_bytes(storage.resolve(ev_a.inputs_path).read_bytes())
    paths = {
        cid: {r["method_name"]: r["file_path"] for r in rows(
            db, "SELECT method_name, file_path FROM exact_submission WHERE challenge_id = :c AND kind = 'baseline'",
            c=cid)}
        for cid in ("world-a", "world-b")
    }  # fmt: skip
    for method, path in paths["world-b"].items():
        content = private.resolve(paths["world-a"][method]).read_bytes()
        if method == BASELINES["ground_truth"]:
            content = npy_bytes(masks_b)  # world b's ceiling is its own truth
        private.resolve(path).write_bytes(content)
    attributions = np.random.default_rng(5).normal(size=(60, 8, 8))
    for cid in ("world-a", "world-b"):
        scoring.score_waiting_baselines(db, storage, private, cid)
        upload(db, storage, private, cast.participant, cid, attributions)

    reach_a = visitor_reachable(db, storage, private, "world-a")
    reach_b = visitor_reachable(db, storage, private, "world-b")

    # (c) identical but for the aggregates; and the aggregates do differ (the masks really changed).
    assert _strip_aggregates(reach_a) == _strip_aggregates(reach_b)
    assert shown_figures(reach_a) != shown_figures(reach_b)

    for cid, reach in (("world-a", reach_a), ("world-b", reach_b)):
        # (b) every figure derived from masks has at most 4 decimals; histogram edges derive from rounded ones.
        figures = shown_figures(reach)
        assert figures and all(has_at_most_4_decimals(f) for f in figures), [
            f for f in figures if not has_at_most_4_decimals(f)
        ]
        # (a) no per-sample value of a non-development sample is reachable: not at full precision, and of the
        # rounded values of the random baseline's public/private EMD (60-odd distinct numbers) at most chance hits.
        reachable = set(figures)
        for view, shown in reach["views"].values():
            reachable |= set(numbers(view.per_sample["value"]))
            reachable |= set(numbers([g["mask"] for g in shown]))
        for method, sid in baseline_ids(db, cid).items():
            full = results.view_submission(db, cast.owner.id, sid).per_sample
            secret = full[full["split"] != "development"]
            exact_values = {v for v in secret["value"] if not has_at_most_4_decimals(v)}
            assert not exact_values & reachable, method
            visitor = reach["views"][method][0].per_sample
            assert set(visitor["sample"]).isdisjoint(set(secret["sample"])), method
        random_secret = results.view_submission(db, cast.owner.id, baseline_ids(db, cid)[BASELINES["random"]])
        frame = random_secret.per_sample
        emd = frame[(frame["split"] != "development") & (frame["key"] == "emd")]["value"]
        rounded_secret = {round(v, 4) for v in emd}
        assert len(rounded_secret) > 40
        assert len(rounded_secret & reachable) <= 2


# --- 3. the per-sample oracle ----------------------------------------------------------------------------------

WEIGHTS = np.array([2.0 ** (j % 50) for j in range(64)]).reshape(8, 8)


def candidate_masks() -> np.ndarray:
    """Every rigid 8×8 mask (T or L, rotated, anywhere): from a large benchmark anyone can generate."""
    big = generate(BenchmarkSpec("rigid", n_samples=20_000, seed=1))
    everything = np.concatenate([big.train.masks, big.validation.masks, big.test.masks]).reshape(-1, 64)
    return np.unique(everything, axis=0).reshape(-1, 8, 8)


def decode(per_sample: pd.DataFrame, candidates: np.ndarray) -> dict[int, np.ndarray]:
    """The old attack: per-sample scores of the 2^j-weighted map → the mask with the same scores."""
    local = metrics.score_batch(np.broadcast_to(WEIGHTS, candidates.shape), candidates)
    table = np.stack([local.per_sample[k] for k in metrics.METRICS], axis=1)
    decoded = {}
    for sample, group in per_sample.groupby("sample"):
        observed = np.array([group.set_index("key")["value"].get(k, np.nan) for k in metrics.METRICS])
        distance = np.nanmax(np.abs(table - observed), axis=1)
        decoded[int(sample)] = candidates[int(np.argmin(distance))]
    return decoded


def test_per_sample_oracle_decodes_only_the_already_public_development_masks(db, storage, private, cast):
    prepared = new_challenge(db, storage, private, cast.owner, "oracle")
    codes = load_split_codes(evaluation_of(db, "oracle"), private)
    probe = upload(db, storage, private, cast.participant, "oracle", np.broadcast_to(WEIGHTS, (60, 8, 8)).copy())

    view = results.view_submission(db, cast.participant.id, probe.id)
    shown = results.gallery(db, storage, private, cast.participant.id, probe.id)
    mine = intake.my_submissions(db, cast.participant.id, "oracle")
    assert set(view.per_sample["split"]) == {"development"}
    assert {g["split"] for g in shown} == {"development"}
    assert set(view.summary["split"]) == {"Development", "Public leaderboard"}
    assert len(mine) == 1 and mine[0].result is None
    assert mine[0].public_value == round(public_mean(db, probe.id), 4)  # one rounded mean

    candidates = candidate_masks()
    decoded = decode(view.per_sample, candidates)
    development = np.flatnonzero(codes == 0)
    assert set(decoded) == set(development.tolist())  # nothing to decode for a public or private sample
    # The oracle itself still works where values exist: the development masks (published anyway) come out.
    assert all(np.array_equal(decoded[i], prepared.masks[i]) for i in development)

    # The attacker's best guess for the others from one rounded mean: the candidate whose mass is nearest to it.
    mass_of = metrics.score_batch(np.broadcast_to(WEIGHTS, candidates.shape), candidates, metrics=["mass"])
    guess = candidates[int(np.argmin(np.abs(mass_of.per_sample["mass"] - mine[0].public_value)))]
    attempt = np.stack([decoded.get(i, guess) for i in range(60)])
    third = upload(db, storage, private, cast.participant, "oracle", attempt, name="decoded")
    assert public_mean(db, third.id) < 0.95

    # Against the old design (per-sample values of every sample shown), the same decoder reaches the ceiling:
    everything = decode(results.view_submission(db, cast.owner.id, probe.id).per_sample, candidates)
    leaked = np.stack([everything[i] for i in range(60)])
    assert np.mean([np.array_equal(leaked[i], prepared.masks[i]) for i in range(60)]) > 0.9


# --- 4. class-mean attack --------------------------------------------------------------------------------------


def test_no_test_labels_are_published_and_class_means_do_not_reach_the_ceiling(db, storage, private, cast):
    for scenario in ("linear", "xor"):
        prepared = evaluation_sets.prepare_benchmark(
            BenchmarkSpec(scenario, n_samples=N_SAMPLES, seed=evaluation_sets.secret_seed())
        )
        new_challenge(db, storage, private, cast.owner, f"cm-{scenario}", prepared=prepared, score=False)
        assert "labels" not in published_inputs(db, storage, f"cm-{scenario}")
        _, dataset = dataset_download(db, storage, f"cm-{scenario}")
        assert "y_test" not in dataset and "masks_test" not in dataset
        # What labels would have given away: with the true labels, the class-mean mask IS the test mask.
        mean_mask = {c: dataset["masks_train"][dataset["y_train"] == c].mean(axis=0) for c in (0, 1)}
        with_labels = np.stack([mean_mask[int(c)] for c in prepared.labels])
        if scenario == "linear":
            assert np.array_equal(with_labels, prepared.masks)

    new_challenge(db, storage, private, cast.owner, "cm-rigid")
    _, dataset = dataset_download(db, storage, "cm-rigid")
    assert "y_test" not in dataset
    class_mean = dataset["masks_train"][dataset["y_train"] == 0].mean(axis=0)
    result = upload(db, storage, private, cast.participant, "cm-rigid", np.broadcast_to(class_mean, (60, 8, 8)).copy())
    board = leaderboard(db, "cm-rigid").table
    row = board[board["submission_id"] == result.id].iloc[0]
    assert row["score"] < 0.9  # EMD: the ground-truth baseline scores 1.0
    assert row["mass"] < 0.3 and row["precision"] < 0.5
    ceiling = leaderboard(db, "cm-rigid").baselines.set_index("method").loc[BASELINES["ground_truth"], "score"]
    assert ceiling == 1.0


# --- 5. rigid regeneration -------------------------------------------------------------------------------------


def test_regenerating_the_rigid_benchmark_with_small_seeds_never_reproduces_the_inputs(db, storage, private, cast):
    new_challenge(db, storage, private, cast.owner, "regen", score=False)
    published = published_inputs(db, storage, "regen")["inputs"]
    spec = BenchmarkSpec("rigid", n_samples=N_SAMPLES)  # counts and settings are public
    assert spec.seed == 0  # the old default
    for seed in range(201):
        regenerated = generate(dataclasses.replace(spec, seed=seed)).test.inputs
        assert regenerated.shape == published.shape
        assert not np.allclose(regenerated, published), seed


# --- 6. random baseline recomputation ---------------------------------------------------------------------------


def test_random_baseline_is_not_seed_zero_and_differs_between_challenges(db, storage, private, cast):
    prepared = rigid_prepared()
    stored = []
    for cid in ("rand-a", "rand-b"):
        new_challenge(db, storage, private, cast.owner, cid, prepared=prepared, score=False)
        path = scalar(
            db, "SELECT file_path FROM exact_submission WHERE challenge_id = :c AND method_name = :m",
            c=cid, m=BASELINES["random"],
        )  # fmt: skip
        stored.append(np.load(io.BytesIO(private.resolve(path).read_bytes()), allow_pickle=False))
    old = np.random.default_rng(0).standard_normal((60, 8, 8))
    assert stored[0].shape == old.shape
    assert not np.allclose(stored[0], old) and not np.allclose(stored[1], old)
    assert not np.allclose(stored[0], stored[1])
    assert "seed" not in str(rows(db, "SELECT * FROM exact_submission WHERE kind = 'baseline'"))


# --- 7. score-only values out of range -------------------------------------------------------------------------


def test_out_of_range_score_is_refused_and_lower_is_better_ranks_lowest_first(db, storage, cast, snapshot):
    rules = Rules(metric_name="Precision", min_value=0, max_value=1)
    create_challenge(db, storage, cast.owner.id, ChallengeForm("Range", "d", "range"), {}, rules=rules)
    before = snapshot()
    with pytest.raises(ValidationError) as refused:
        submit_score(db, cast.participant.id, "range", 1.5)
    assert "Precision" in str(refused.value) and "between 0 and 1" in str(refused.value)
    before.assert_unchanged("out-of-range score")
    for value in (-0.01, 1.0001):
        with pytest.raises(ValidationError):
            submit_score(db, cast.participant.id, "range", value)
    before.assert_unchanged("out-of-range scores")
    assert submit_score(db, cast.participant.id, "range", 1).score == 1.0

    create_challenge(
        db, storage, cast.owner.id, ChallengeForm("Errors", "d", "errors"), {},
        rules=Rules(metric_name="Error", higher_is_better=False),
    )  # fmt: skip
    for user, value in ((cast.participant, 0.3), (cast.other, 0.1), (cast.admin, 0.7)):
        submit_score(db, user.id, "errors", value)
    table = leaderboard(db, "errors").table
    assert list(table["score"]) == [0.1, 0.3, 0.7]
    assert list(table["username"]) == [cast.other.username, cast.participant.username, cast.admin.username]


# --- 8. unlimited submissions -----------------------------------------------------------------------------------


@pytest.fixture
def pool(db):
    database = Database(db.url, pool_size=12, max_overflow=12)
    yield database
    database.dispose()


def test_daily_limit_refuses_the_third_submission_and_invalid_uploads_do_not_count(db, storage, private, cast):
    create_challenge(db, storage, cast.owner.id, ChallengeForm("Daily", "d", "daily"), {}, rules=Rules(daily_limit=2))
    submit_score(db, cast.participant.id, "daily", 0.1)
    submit_score(db, cast.participant.id, "daily", 0.2)
    with pytest.raises(ValidationError, match="today's 2 submissions"):
        submit_score(db, cast.participant.id, "daily", 0.3)
    assert scalar(db, "SELECT count(*) FROM api_score WHERE challenge_id = 'daily'") == 2

    new_challenge(db, storage, private, cast.owner, "daily-gt", rules=Rules(daily_limit=2))
    good = np.random.default_rng(1).normal(size=(60, 8, 8))
    for bad in (np.full((60, 8, 8), np.nan), np.zeros((59, 8, 8))):  # refused by validation: never stored
        with pytest.raises(ValidationError):
            intake.submit_attributions(
                db, storage, cast.participant.id, "daily-gt", UploadedFile("a.npy", npy(bad)), method_name="bad"
            )
    upload(db, storage, private, cast.participant, "daily-gt", good, name="one")
    upload(db, storage, private, cast.participant, "daily-gt", good, name="two")
    with pytest.raises(ValidationError, match="today's 2 submissions"):
        intake.submit_attributions(
            db, storage, cast.participant.id, "daily-gt", UploadedFile("a.npy", npy(good)), method_name="three"
        )
    assert (
        scalar(db, "SELECT count(*) FROM exact_submission WHERE challenge_id = 'daily-gt' AND kind = 'participant'")
        == 2
    )


def test_ten_parallel_submissions_with_daily_limit_three_store_exactly_three(db, pool, storage, private, cast):
    create_challenge(db, storage, cast.owner.id, ChallengeForm("Par", "d", "par"), {}, rules=Rules(daily_limit=3))
    outcomes = _all_at_once([lambda v=v: submit_score(pool, cast.participant.id, "par", v / 10) for v in range(10)])
    assert sum(not isinstance(o, Exception) for o in outcomes) == 3
    assert all(isinstance(o, ValidationError) for o in outcomes if isinstance(o, Exception))
    assert scalar(db, "SELECT count(*) FROM api_score WHERE challenge_id = 'par'") == 3

    new_challenge(db, storage, private, cast.owner, "par-gt", rules=Rules(daily_limit=3))
    data = npy(np.random.default_rng(2).normal(size=(60, 8, 8)))
    outcomes = _all_at_once([
        lambda i=i: intake.submit_attributions(
            pool, storage, cast.other.id, "par-gt", UploadedFile("a.npy", data), method_name=f"m{i}", max_waiting=100
        )
        for i in range(10)
    ])  # fmt: skip
    assert sum(not isinstance(o, Exception) for o in outcomes) == 3
    assert (
        scalar(db, "SELECT count(*) FROM exact_submission WHERE challenge_id = 'par-gt' AND kind = 'participant'") == 3
    )


# --- 9. junk inside an .npz -------------------------------------------------------------------------------------


def test_npz_junk_entries_are_dropped_and_only_the_validated_array_is_stored(db, media_root, private, cast):
    big = MediaStorage(media_root, max_bytes=32 * 1024 * 1024)
    new_challenge(db, big, private, cast.owner, "junk", score=False)
    attributions = np.random.default_rng(3).normal(size=(60, 8, 8))
    junk = {f"junk{i}": np.random.default_rng(i).integers(0, 255, size=6 * 1024 * 1024, dtype=np.uint8)
            for i in range(3)}  # fmt: skip
    data = npz(attributions=attributions, **junk)
    assert len(data) > 18 * 1024 * 1024
    sub = intake.submit_attributions(db, big, cast.participant.id, "junk", UploadedFile("a.npz", data), method_name="j")
    assert sub.file_path.endswith(".npy")
    stored = big.resolve(sub.file_path).read_bytes()
    assert np.array_equal(np.load(io.BytesIO(stored), allow_pickle=False), attributions)
    assert len(stored) < attributions.nbytes + 1024
    assert sub.file_size == len(stored)
    on_disk = sum(p.stat().st_size for p in (media_root / "submissions").rglob("*") if p.is_file())
    assert on_disk == len(stored)


# --- 10. queue flooding, fairness and the time budget ----------------------------------------------------------


def test_queue_flooding_is_refused_and_the_queue_is_fair(db, storage, private, cast):
    new_challenge(db, storage, private, cast.owner, "queue")  # baselines scored: the queue holds only ours
    data = npy(np.random.default_rng(4).normal(size=(60, 8, 8)))

    def send(user, name):
        return intake.submit_attributions(db, storage, user.id, "queue", UploadedFile("a.npy", data), method_name=name)

    a_jobs = [send(cast.participant, f"a{i}").id for i in range(3)]
    with pytest.raises(ValidationError, match="3 submissions waiting"):
        send(cast.participant, "a3")
    b_job = send(cast.other, "b0").id
    order = []
    while True:
        with db.transaction() as conn:
            evaluations_sql.split_into_chunks(conn, chunk_pixels=64 * 64, whole_up_to_pixels=32 * 32)
            claimed = evaluations_sql.claim_chunk(conn, worker="test")
        if claimed is None:
            break
        order.append(claimed[1]["id"])  # one chunk per submission (8 x 8 grids)
    assert sorted(order) == sorted([*a_jobs, b_job])
    assert order.index(b_job) <= 1


def test_scoring_over_the_time_budget_fails_with_a_reason(db, storage, private, cast):
    new_challenge(db, storage, private, cast.owner, "slow")
    sub = intake.submit_attributions(
        db, storage, cast.participant.id, "slow",
        UploadedFile("a.npy", npy(np.random.default_rng(6).normal(size=(60, 8, 8)))), method_name="slow",
    )  # fmt: skip
    done = scoring.process_submission(db, storage, private, sub.id, time_budget=0)
    assert done.status == "failed"
    assert "budget" in done.error
    assert scalar(db, "SELECT count(*) FROM api_score WHERE challenge_id = 'slow'") == 0


# --- 11. moderation --------------------------------------------------------------------------------------------


def test_moderation_hides_logs_and_is_limited_to_organisers_and_the_submitter(db, storage, private, cast):
    new_challenge(db, storage, private, cast.owner, "mod")
    attributions = np.random.default_rng(7).normal(size=(60, 8, 8))
    pat = upload(db, storage, private, cast.participant, "mod", attributions)
    quinn = upload(db, storage, private, cast.other, "mod", attributions * 2)
    assert set(leaderboard(db, "mod").table["submission_id"]) == {pat.id, quinn.id}

    moderation.moderate(db, cast.owner.id, pat.score_id, "hidden", "Copied from another team.")
    assert set(leaderboard(db, "mod").table["submission_id"]) == {quinn.id}
    assert set(leaderboard(db, "mod", show_all=True).table["submission_id"]) == {quinn.id}
    mine = intake.my_submissions(db, cast.participant.id, "mod")
    assert [(m.moderation, m.moderation_reason) for m in mine] == [("hidden", "Copied from another team.")]
    content_type = scalar(db, "SELECT id FROM django_content_type WHERE app_label = 'api' AND model = 'score'")
    logged = rows(db, "SELECT * FROM django_admin_log WHERE object_id = :o", o=str(pat.score_id))
    assert len(logged) == 1
    assert logged[0]["content_type_id"] == content_type and logged[0]["user_id"] == cast.owner.id
    assert "Copied from another team." in logged[0]["change_message"]

    with pytest.raises(PermissionDenied):
        moderation.moderate(db, cast.participant.id, quinn.score_id, "hidden", "Mine is better.")
    with pytest.raises(PermissionDenied):
        moderation.moderate(db, cast.participant.id, quinn.score_id, "withdrawn")
    with pytest.raises(PermissionDenied):
        moderation.moderate(db, cast.rival.id, quinn.score_id, "hidden", "Another challenge's organiser.")
    moderation.moderate(db, cast.other.id, quinn.score_id, "withdrawn")
    assert leaderboard(db, "mod").table.empty
    assert scalar(db, "SELECT count(*) FROM django_admin_log") == 2
    with db.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM exact_moderation")).scalar_one() == 2

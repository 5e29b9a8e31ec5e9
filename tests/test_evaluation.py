"""Ground-truth challenges: evaluation sets, attribution submissions scored on the server, baselines, worker."""

import io
import pickle

import numpy as np
import pytest
import sqlalchemy as sa

from exact import evaluation_sets, intake, results, scoring, splits
from exact.challenges import ChallengeForm, EvaluationChoice, create_challenge
from exact.errors import NotFound, PermissionDenied, ValidationError
from exact.scores import leaderboard, submit_score
from exact.storage import MediaStorage, UploadedFile
from exact.worker import ScoringWorker
from exact.xaitris import BenchmarkSpec, generate
from tests.conftest import make_user

N, H, W = 12, 4, 4


def _npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@pytest.fixture
def private(tmp_path):
    root = tmp_path / "private"
    root.mkdir()
    return MediaStorage(root, max_bytes=1024 * 1024)


@pytest.fixture
def masks():
    rng = np.random.default_rng(3)
    masks = np.zeros((N, H, W))
    for i in range(N):
        masks[i].flat[rng.choice(H * W, size=3, replace=False)] = 1.0
    return masks


@pytest.fixture
def world(db, storage, private, masks):
    organiser = make_user(db, "olivia", staff=True)
    rng = np.random.default_rng(4)
    prepared = evaluation_sets.prepare_uploaded_evaluation(
        UploadedFile("inputs.npz", _npz(inputs=rng.normal(size=(N, H * W)), labels=np.arange(N) % 2)),
        UploadedFile("masks.npy", _npy(masks)),
        max_bytes=1024 * 1024,
    )
    create_challenge(
        db,
        storage,
        organiser.id,
        ChallengeForm("GT", "desc", "gt"),
        {},
        evaluation=EvaluationChoice(
            prepared=prepared, private=private, primary_metric="mass", shown_metrics=("emd", "auc")
        ),
    )
    return {"organiser": organiser, "alice": make_user(db, "alice"), "bob": make_user(db, "bob")}


def _mass(attributions, masks, samples=None):
    """Independent reference: relevance mass accuracy per sample, averaged (over ``samples``, default all)."""
    a = np.abs(attributions.reshape(len(masks), -1))
    inside = masks.reshape(len(masks), -1) > 0
    samples = range(len(masks)) if samples is None else samples
    return float(np.mean([a[i][inside[i]].sum() / a[i].sum() for i in samples]))


def _split_samples(db, private, split, challenge_id="gt"):
    """Indices of one split's samples, read from the private masks file (as the scorer does)."""
    codes = evaluation_sets.load_split_codes(evaluation_sets.get_evaluation(db, challenge_id), private)
    return [int(i) for i in np.flatnonzero(codes == splits.SPLIT_CODES[split])]


def _submit(db, storage, user, data, name="a.npy", **kwargs):
    return intake.submit_attributions(
        db, storage, user.id, "gt", UploadedFile(name, data), method_name=kwargs.pop("method", "My method"), **kwargs
    )


def _files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_creation_stores_public_inputs_private_masks_and_baselines(db, storage, private, media_root, world, masks):
    evaluation = evaluation_sets.get_evaluation(db, "gt")
    assert (evaluation.n_samples, evaluation.height, evaluation.width) == (N, H, W)
    assert evaluation.primary_metric == "mass" and evaluation.shown_metrics == ("emd", "auc")
    assert evaluation.inputs_path.startswith("challenges/gt/evaluation/")
    assert (media_root / evaluation.inputs_path).is_file()
    assert not any("mask" in path for path in _files(media_root)), "masks must never be under the media root"
    assert (private.root / evaluation.masks_path).is_file()
    public = np.load(media_root / evaluation.inputs_path, allow_pickle=False)
    # Inputs and the development samples' masks only; labels only when the organiser opts in (they did not here).
    assert sorted(public.files) == ["development_indices", "development_masks", "inputs"]
    development = public["development_indices"]
    assert len(development) == evaluation.n_development == evaluation.split_sizes["development"]
    np.testing.assert_array_equal(public["development_masks"], masks[development])
    assert evaluation.split_sizes == {"development": 1, "public": 4, "private": 7}  # 10/30/60 % of 12
    assert scoring.score_waiting_baselines(db, storage, private, "gt") == 5
    board = leaderboard(db, "gt")
    baselines = board.baselines.set_index("method")
    assert set(baselines.status) == {"done"}
    assert baselines.loc["Ground truth (ceiling)", "score"] == pytest.approx(1.0)
    random_score = baselines.loc["Random attributions", "score"]
    assert baselines.loc["Random attributions", "vs_random"] == pytest.approx(0.0)
    assert baselines.loc["Ground truth (ceiling)", "vs_random"] == pytest.approx(1.0 - random_score)


def test_good_submission_is_scored_with_the_logged_in_username(db, storage, private, masks, world):
    attributions = np.random.default_rng(9).normal(size=(N, H, W))
    submission = _submit(db, storage, world["alice"], _npy(attributions), url="https://example.org/paper")
    assert submission.status == "queued" and submission.username == "alice"
    done = scoring.process_submission(db, storage, private, submission.id)
    # The primary value is the mean over the public part, rounded to the shown decimals (api_score too).
    public_mass = _mass(attributions, masks, _split_samples(db, private, "public"))
    assert done.status == "done" and done.primary_value == round(public_mass, 4)
    with db.connect() as conn:
        row = conn.execute(sa.text("SELECT username, challenge_id, score FROM api_score")).one()
    assert row == ("alice", "gt", round(public_mass, 4))
    with db.connect() as conn:
        summaries = dict(
            conn.execute(
                sa.text("SELECT split, primary_value FROM exact_submission_summary WHERE submission_id = :s"),
                {"s": submission.id},
            ).all()
        )
    assert set(summaries) == {"development", "public", "private"}
    for split, value in summaries.items():
        assert value == pytest.approx(_mass(attributions, masks, _split_samples(db, private, split)), abs=1e-12)
    result = intake.get_submission_row(db, submission.id, with_result=True).result
    assert set(result["metrics"]) == {"emd", "mass", "precision", "auc"}
    assert len(result["metrics"]["emd"]["per_sample"]) == N
    assert done.file_sha256 and done.file_size == len(_npy(attributions))
    board = leaderboard(db, "gt")
    assert list(board.table.method) == ["My method"] and "emd" in board.table.columns


@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        (_npy(np.zeros((N - 1, H, W))), "a.npy", "expected 12 samples of 4×4"),
        (_npy(np.full((N, H, W), np.nan)), "a.npy", "NaN"),
        (pickle.dumps(np.zeros((N, H, W))), "a.npy", "pickle"),
        (_npy(np.array([object()] * N)), "a.npy", "Python objects"),
        (b"", "a.npy", "empty"),
        (_npy(np.zeros((N, H, W))), "a.exe", "not accepted"),
        (b"\x80\x04junk", "a.npy", "pickle|not a NumPy"),
    ],
)
def test_bad_attribution_files_store_nothing(db, storage, media_root, world, data, name, message):
    before = _files(media_root)
    with pytest.raises(ValidationError, match=message):
        _submit(db, storage, world["alice"], data, name=name)
    assert _files(media_root) == before
    with db.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM exact_submission WHERE kind='participant'")).scalar() == 0


@pytest.mark.parametrize("zero_maps", [[0], [3, 5], list(range(N))])
def test_an_upload_with_all_zero_maps_is_refused_and_stores_nothing(db, storage, media_root, world, zero_maps):
    """Every map needs some attribution (exact.arrays.validate_submitted_attributions): a summary over the scorable
    samples of a split would otherwise be over a set the submitter chose (docs/security.md)."""
    attributions = np.random.default_rng(0).random((N, H, W)) + 0.1
    attributions[zero_maps] = 0.0
    before = _files(media_root)
    with pytest.raises(ValidationError, match=rf"{len(zero_maps)} of {N} maps are all zeros \(sample {zero_maps[0]}"):
        _submit(db, storage, world["alice"], _npy(attributions))
    assert _files(media_root) == before
    with db.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM exact_submission WHERE kind='participant'")).scalar() == 0
        assert conn.execute(sa.text("SELECT count(*) FROM api_score")).scalar() == 0


def test_typed_scores_are_refused_for_ground_truth_challenges(db, world):
    with pytest.raises(ValidationError, match="upload an attribution file"):
        submit_score(db, world["alice"].id, "gt", "0.99")


def test_same_request_key_stores_once(db, storage, world):
    data = _npy(np.ones((N, H, W)))
    first = _submit(db, storage, world["alice"], data, request_key="k1")
    again = _submit(db, storage, world["alice"], data, request_key="k1")
    assert first.id == again.id
    with pytest.raises(ValidationError):
        _submit(db, storage, world["bob"], data, request_key="k1")


def test_visitors_and_non_organisers_are_refused(db, storage, private, world, masks):
    with pytest.raises(PermissionDenied):
        intake.submit_attributions(db, storage, None, "gt", UploadedFile("a.npy", _npy(masks)), method_name="m")
    with pytest.raises(NotFound):
        intake.submit_attributions(
            db, storage, world["alice"].id, "nope", UploadedFile("a.npy", _npy(masks)), method_name="m"
        )
    submission = _submit(db, storage, world["alice"], _npy(masks + 0.1))
    scoring.process_submission(db, storage, private, submission.id)
    assert results.view_submission(db, world["alice"].id, submission.id).submission.id == submission.id
    assert results.view_submission(db, world["organiser"].id, submission.id).submission.id == submission.id
    for outsider in (None, world["bob"].id):
        with pytest.raises(PermissionDenied):
            results.view_submission(db, outsider, submission.id)
    with pytest.raises(PermissionDenied):
        results.ground_truth_statistics(db, private, world["alice"].id, "gt")
    stats = results.ground_truth_statistics(db, private, world["organiser"].id, "gt")
    assert stats["samples"] == N and stats["mask pixels (mean)"] == 3


def test_gallery_shows_masks_only_to_submitter_and_organisers(db, storage, private, world, masks):
    scoring.score_waiting_baselines(db, storage, private, "gt")
    baseline_id = int(leaderboard(db, "gt").baselines.submission_id.iloc[0])
    development = _split_samples(db, private, "development")
    # Everyone sees a baseline's gallery, but only on development samples (whose masks are published anyway).
    for viewer in (None, world["bob"].id):
        public_view = results.gallery(db, storage, private, viewer, baseline_id)
        assert public_view and [sample["index"] for sample in public_view] == development[: results.GALLERY_SAMPLES]
        for sample in public_view:
            assert sample["split"] == "development"
            np.testing.assert_array_equal(sample["mask"], masks[sample["index"]])
    # The organisers see the first samples, whichever part they belong to.
    organiser_view = results.gallery(db, storage, private, world["organiser"].id, baseline_id)
    assert [sample["index"] for sample in organiser_view] == list(range(results.GALLERY_SAMPLES))
    np.testing.assert_array_equal(organiser_view[0]["mask"], masks[0])
    # A participant's own result: development samples only; nobody else's result at all.
    submission = _submit(db, storage, world["alice"], _npy(masks + 0.1))
    scoring.process_submission(db, storage, private, submission.id)
    own = results.gallery(db, storage, private, world["alice"].id, submission.id)
    assert [sample["index"] for sample in own] == development[: results.GALLERY_SAMPLES]
    with pytest.raises(PermissionDenied):
        results.gallery(db, storage, private, world["bob"].id, submission.id)


def test_worker_takes_over_a_submission_left_running_by_a_stopped_app(db, storage, private, world):
    submission = _submit(db, storage, world["alice"], _npy(np.ones((N, H, W))))
    with db.transaction() as conn:  # as if the app died mid-scoring: running, lease already expired
        conn.execute(
            sa.text(
                "UPDATE exact_submission SET status='running', attempts=1, "
                "lease_until = now() - interval '1 second' WHERE id = :i"
            ),
            {"i": submission.id},
        )
    worker = ScoringWorker(db, storage, private)
    while worker.run_once():
        pass
    assert intake.get_submission_row(db, submission.id).status == "done"


def test_a_live_lease_is_not_taken_twice(db, storage, private, world):
    submission = _submit(db, storage, world["alice"], _npy(np.ones((N, H, W))))
    with db.transaction() as conn:
        conn.execute(
            sa.text(
                "UPDATE exact_submission SET status='running', lease_until = now() + interval '1 minute' WHERE id = :i"
            ),
            {"i": submission.id},
        )
    assert scoring.process_submission(db, storage, private, submission.id) is None


def test_benchmark_challenge_dataset_has_training_masks_but_no_test_masks(db, storage, private, media_root):
    organiser = make_user(db, "olivia", staff=True)
    spec = BenchmarkSpec(scenario="xor", n_samples=200, seed=5)
    prepared = evaluation_sets.prepare_benchmark(spec)
    benchmark = generate(spec)
    created = create_challenge(
        db,
        storage,
        organiser.id,
        ChallengeForm("XOR", "d", "xor"),
        {},
        evaluation=EvaluationChoice(prepared=prepared, private=private),
    )
    dataset = np.load(media_root / created.files["dataset"], allow_pickle=False)
    assert {"x_train", "y_train", "masks_train", "x_test"} <= set(dataset.files)
    assert "y_test" not in dataset.files  # on XOR the test labels would give the test masks away
    assert not any(name.startswith("masks_test") for name in dataset.files)
    np.testing.assert_array_equal(dataset["masks_train"], benchmark.train.masks)
    assert evaluation_sets.get_evaluation(db, "xor").benchmark["scenario"] == "xor"


def test_mismatched_evaluation_files_are_refused(masks):
    with pytest.raises(ValidationError, match="same samples"):
        evaluation_sets.prepare_uploaded_evaluation(
            UploadedFile("inputs.npy", _npy(np.zeros((N + 1, H, W)))),
            UploadedFile("masks.npy", _npy(masks)),
            max_bytes=10**6,
        )
    with pytest.raises(ValidationError):
        evaluation_sets.prepare_uploaded_evaluation(
            UploadedFile("inputs.npy", _npy(np.zeros((N, H, W)))),
            UploadedFile("masks.npy", _npy(-masks)),
            max_bytes=10**6,
        )

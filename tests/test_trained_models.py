"""Models of a challenge (exact.trained_models): queued with a generated benchmark, trained by the background
trainer under a lease, shipped as safetensors and ONNX, the explained model's Captum baselines ranked as reference
rows; organisers' uploads, with the refusals that must change nothing."""

import io
import pickle
import tempfile
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from exact import evaluation_sets, intake, networks, scoring, trained_models
from exact.challenges import ChallengeForm, EvaluationChoice, create_challenge, delete_challenge
from exact.errors import PermissionDenied, ValidationError
from exact.storage import MediaStorage, UploadedFile
from exact.trained_models import TrainingPlan
from exact.worker import TrainingWorker
from exact.xaitris import BenchmarkSpec
from tests.conftest import make_user

MAX_BYTES = 32 << 20
EPOCHS = 3
CAPTUM_LABELS = ("Saliency", "Integrated Gradients", "Gradient SHAP", "DeepLift", "LRP")


@pytest.fixture
def private(tmp_path):
    root = tmp_path / "private"
    root.mkdir()
    return MediaStorage(root, max_bytes=MAX_BYTES)


@pytest.fixture
def media(media_root):
    return MediaStorage(media_root, max_bytes=MAX_BYTES)


def _create(db, media, private, organiser_id, challenge_id="bench", *, scenario="linear", explained="CNN8by8"):
    spec = BenchmarkSpec(scenario, size=8, alpha=0.5, n_samples=200, seed=11)
    create_challenge(
        db,
        media,
        organiser_id,
        ChallengeForm("Benchmark", "desc", challenge_id),
        {},
        evaluation=EvaluationChoice(
            prepared=evaluation_sets.prepare_benchmark(spec),
            private=private,
            primary_metric="emd",
            training=TrainingPlan(explained=explained, epochs=EPOCHS, seed=5) if explained else None,
        ),
    )


def _rows(db, query, **params):
    with db.connect() as conn:
        return [tuple(row) for row in conn.execute(sa.text(query), params).all()]


@pytest.fixture
def organiser(db):
    return make_user(db, "olivia", staff=True)


def test_a_benchmark_queues_the_papers_models_with_one_to_explain(db, media, private, organiser):
    _create(db, media, private, organiser.id)
    # The paper trains LLR only on the linear scenario, and the 8x8 variants of its MLP and CNN.
    assert _rows(db, "SELECT architecture, status, explained, epochs_total FROM exact_model ORDER BY id") == [
        ("LLR", "queued", False, EPOCHS),
        ("MLP8by8", "queued", False, EPOCHS),
        ("CNN8by8", "queued", True, EPOCHS),
    ]
    _create(db, media, private, organiser.id, "rigid", scenario="rigid", explained="MLP8by8")
    assert _rows(db, "SELECT architecture FROM exact_model WHERE challenge_id = 'rigid' ORDER BY id") == [
        ("MLP8by8",),
        ("CNN8by8",),
    ]


def test_an_unknown_model_to_explain_is_refused_and_nothing_is_created(db, media, private, organiser):
    with pytest.raises(ValidationError, match="must be one of LLR, MLP8by8, CNN8by8"):
        _create(db, media, private, organiser.id, explained="CNN")  # the 64x64 CNN on an 8x8 benchmark
    assert _rows(db, "SELECT count(*) FROM api_challenge") == [(0,)]
    assert _rows(db, "SELECT count(*) FROM exact_model") == [(0,)]
    assert not list(private.root.rglob("*.npz")) and not list(media.root.rglob("*.npz"))


def test_training_ships_both_formats_and_queues_the_explained_models_baselines(db, media, private, organiser):
    _create(db, media, private, organiser.id)
    epochs_seen = []
    done = [trained_models.train_next(db, media, private, on_epoch=lambda d, t: epochs_seen.append((d, t)))]
    while done[-1] is not None:
        done.append(trained_models.train_next(db, media, private))
    assert len(done) == 4 and done[-1] is None  # three jobs, then nothing waiting
    assert epochs_seen[-1] == (EPOCHS, EPOCHS)
    models = trained_models.list_models(db, None, "bench")
    assert [(m.architecture, m.status, m.epochs_done) for m in models] == [
        ("LLR", "ready", EPOCHS),
        ("MLP8by8", "ready", EPOCHS),
        ("CNN8by8", "ready", EPOCHS),
    ]
    for model in models:
        assert 0.0 <= model.test_accuracy <= 1.0
        weights = trained_models.model_file(db, media, "bench", model.id, "weights").read_bytes()
        graph = trained_models.model_file(db, media, "bench", model.id, "onnx").read_bytes()
        loaded = networks.load_safetensors(weights, model.architecture, 8)
        inputs = np.random.default_rng(0).normal(size=(6, 8, 8)).astype(np.float32)
        np.testing.assert_allclose(networks.predict_onnx(graph, inputs), networks.predict(loaded, inputs), atol=1e-5)
    # Only the explained model (the CNN) gets reference rows, one per Captum method, scored like any baseline.
    baselines = _rows(
        db, "SELECT method_name, status FROM exact_submission WHERE kind = 'baseline' AND method_name LIKE '% · %'"
    )
    cnn = trained_models.architecture_label("CNN8by8")
    assert sorted(baselines) == sorted((f"{label} · {cnn}", "queued") for label in CAPTUM_LABELS)
    scoring.score_waiting_baselines(db, media, private, "bench")
    assert _rows(
        db,
        "SELECT count(*) FROM exact_submission WHERE kind = 'baseline' AND method_name LIKE '% · %' "
        "AND status = 'done' AND primary_value BETWEEN 0 AND 1",
    ) == [(5,)]


def test_the_test_accuracy_shown_is_the_models_accuracy_on_the_test_split(db, media, private, organiser):
    _create(db, media, private, organiser.id)
    while trained_models.train_next(db, media, private) is not None:
        pass
    from exact.xaitris import generate

    test = generate(BenchmarkSpec("linear", size=8, alpha=0.5, n_samples=200, seed=11)).test
    for model in trained_models.list_models(db, None, "bench"):
        loaded = networks.load_safetensors(
            trained_models.model_file(db, media, "bench", model.id, "weights").read_bytes(), model.architecture, 8
        )
        outputs = networks.predict(loaded, test.inputs)
        expected = float(np.mean(np.argmax(outputs, axis=1) == test.labels))  # counted here, independently
        assert model.test_accuracy == round(expected, 4)


def test_a_trainer_that_vanished_leaves_its_job_to_the_next_and_three_crashes_give_up(db, media, private, organiser):
    from db import trained_models as models_sql

    _create(db, media, private, organiser.id, explained="MLP8by8")
    expire = "UPDATE exact_model SET lease_until = now() - interval '1 second' WHERE id = :i"
    with db.transaction() as conn:
        first = models_sql.claim_training(conn)
        assert first["attempts"] == 1 and first["status"] == "training"
        # Its lease is still running: the next claim takes another job instead.
        second = models_sql.claim_training(conn)
        assert second["id"] != first["id"]
        for attempt in (2, 3):  # the first job's trainer dies (its lease runs out) and another takes it up
            conn.execute(sa.text(expire), {"i": first["id"]})
            again = models_sql.claim_training(conn)
            assert (again["id"], again["attempts"]) == (first["id"], attempt)
        conn.execute(sa.text(expire), {"i": first["id"]})  # the third trainer dies too
        third = models_sql.claim_training(conn)
        assert third["id"] not in (first["id"], second["id"])  # the given-up job is not claimed a fourth time
    assert _rows(db, "SELECT status, attempts, error FROM exact_model WHERE id = :i", i=first["id"]) == [
        ("failed", 3, "Training stopped unexpectedly 3 times; it was given up.")
    ]
    assert _rows(db, "SELECT status FROM exact_model WHERE id = :i", i=second["id"]) == [("training",)]


def test_a_stopping_trainer_gives_its_job_back_without_counting_the_attempt(db, media, private, organiser, monkeypatch):
    _create(db, media, private, organiser.id, explained="MLP8by8")

    def stop(*_args, **_kwargs):
        raise SystemExit(0)  # what the worker's SIGTERM handler raises in the middle of a job

    monkeypatch.setattr(networks, "train", stop)
    with pytest.raises(SystemExit):
        trained_models.train_next(db, media, private)
    assert _rows(db, "SELECT status, attempts FROM exact_model ORDER BY id") == [
        ("queued", 0),
        ("queued", 0),
        ("queued", 0),
    ]


def _claimed_twice(conn, db, media, private, organiser):
    """A queued job claimed, its lease run out, and claimed again: the first attempt's and the live one's rows."""
    from db import trained_models as models_sql

    _create(db, media, private, organiser.id, explained="MLP8by8")
    job = models_sql.claim_training(conn)
    conn.execute(sa.text("UPDATE exact_model SET lease_until = now() - interval '1 second' WHERE id = :i"),
                 {"i": job["id"]})  # fmt: skip
    return job, models_sql.claim_training(conn)


def test_a_stale_attempts_failure_does_not_fail_the_live_attempt(db, media, private, organiser):
    from db import trained_models as models_sql

    with db.transaction() as conn:
        job, live = _claimed_twice(conn, db, media, private, organiser)
        assert live["id"] == job["id"]
        assert not models_sql.fail_training(conn, job["id"], 1, "out of memory in the old attempt")
    assert _rows(db, "SELECT status, attempts, error FROM exact_model WHERE id = :i", i=job["id"]) == [
        ("training", 2, None)
    ]


def test_a_model_uploaded_while_the_explained_one_trains_keeps_its_baselines_alone(db, media, private, organiser):
    _create(db, media, private, organiser.id, explained="CNN8by8")
    original = networks.train

    def upload_meanwhile(architecture, *args, **kwargs):
        if architecture == "CNN8by8":  # the explained model is training: the organiser uploads another one
            _, weights = _trained("MLP8by8")
            trained_models.upload_model(
                db, media, private, organiser.id, "bench", UploadedFile("m.safetensors", weights),
                architecture="MLP8by8",
            )  # fmt: skip
        return original(architecture, *args, **kwargs)

    networks.train = upload_meanwhile
    try:
        while trained_models.train_next(db, media, private) is not None:
            pass
    finally:
        networks.train = original
    mlp = trained_models.architecture_label("MLP8by8")
    names = [n for (n,) in _rows(db, "SELECT method_name FROM exact_submission WHERE method_name LIKE '% · %'")]
    assert sorted(names) == sorted(f"{label} · {mlp}" for label in CAPTUM_LABELS), "no rows for the CNN"
    explained = [(m.architecture, m.source) for m in trained_models.list_models(db, None, "bench") if m.explained]
    assert explained == [("MLP8by8", "uploaded")]


def test_withdrawn_baselines_leave_no_files_behind(db, media, private, organiser):
    _create(db, media, private, organiser.id, explained="MLP8by8")
    while trained_models.train_next(db, media, private) is not None:
        pass

    def files_of(architecture: str) -> int:
        return sum(p.name.startswith(f"{architecture}-") for p in private.root.rglob("*.npy"))

    assert (files_of("MLP8by8"), files_of("CNN8by8")) == (5, 0)  # one per Captum method of the explained MLP
    _, weights = _trained("CNN8by8")
    trained_models.upload_model(
        db, media, private, organiser.id, "bench", UploadedFile("c.safetensors", weights), architecture="CNN8by8"
    )
    assert (files_of("MLP8by8"), files_of("CNN8by8")) == (0, 5)


def test_a_stale_attempt_cannot_overwrite_the_job_another_worker_took(db, media, private, organiser):
    from db import trained_models as models_sql

    with db.transaction() as conn:
        job, taken = _claimed_twice(conn, db, media, private, organiser)
        assert taken["id"] == job["id"] and taken["attempts"] == 2
        assert not models_sql.extend_training_lease(conn, job["id"], 1, epochs_done=1, epochs_total=3)
        assert not models_sql.finish_training(conn, job["id"], 1, test_accuracy=0.5)
        assert models_sql.extend_training_lease(conn, job["id"], 2, epochs_done=1, epochs_total=3)


def test_failures_are_told_to_the_organisers_and_summarised_for_everyone(db, media, private, organiser):
    _create(db, media, private, organiser.id, explained="MLP8by8")
    with db.transaction() as conn:  # the evaluation set vanished under the job (e.g. an operator removed it)
        conn.execute(sa.text("DELETE FROM exact_evaluation WHERE challenge_id = 'bench'"))
    trained_models.train_next(db, media, private)
    alice = make_user(db, "alice")
    mine = [m for m in trained_models.list_models(db, organiser.id, "bench") if m.status == "failed"]
    theirs = [m for m in trained_models.list_models(db, alice.id, "bench") if m.status == "failed"]
    assert mine[0].error == "This challenge has no generated benchmark to train on."
    assert theirs[0].error == "Training failed; the organisers have been told why."


def test_the_training_worker_trains_queued_jobs(db, media, private, organiser):
    _create(db, media, private, organiser.id, explained="MLP8by8")
    worker = TrainingWorker(db, media, private, poll_seconds=0.01)
    assert worker.run_once() and worker.run_once() and worker.run_once()
    assert not worker.run_once()
    assert _rows(db, "SELECT DISTINCT status FROM exact_model") == [("ready",)]


def test_deleting_the_challenge_removes_its_models_and_files(db, media, private, organiser):
    _create(db, media, private, organiser.id, explained="MLP8by8")
    trained_models.train_next(db, media, private)
    assert list((media.root / "challenges" / "bench" / "models").iterdir())
    delete_challenge(db, media, private, organiser.id, "bench", confirmation="bench")
    assert _rows(db, "SELECT count(*) FROM exact_model") == [(0,)]
    assert not (media.root / "challenges" / "bench").exists()


# --- uploads ---------------------------------------------------------------------------------------------------


def _trained(architecture="MLP8by8"):
    model = networks.build(architecture, 8)
    return model, networks.safetensors_bytes(model, {"architecture": architecture, "size": "8"})


def _snapshot(db, media, private):
    tables = ("exact_model", "exact_submission", "exact_submission_summary")
    counts = {table: _rows(db, f"SELECT count(*) FROM {table}")[0][0] for table in tables}
    files = sorted(str(p) for root in (media.root, private.root) for p in root.rglob("*") if p.is_file())
    return counts, files


def test_an_uploaded_model_becomes_the_model_to_explain_with_its_own_baselines(db, media, private, organiser):
    _create(db, media, private, organiser.id, explained="MLP8by8")
    while trained_models.train_next(db, media, private) is not None:
        pass
    model, weights = _trained("CNN8by8")
    saved = trained_models.upload_model(
        db, media, private, organiser.id, "bench", UploadedFile("mine.safetensors", weights), architecture="CNN8by8"
    )
    assert saved.explained and saved.source == "uploaded" and saved.has_onnx and saved.has_weights
    explained = [m for m in trained_models.list_models(db, None, "bench") if m.explained]
    assert [m.id for m in explained] == [saved.id]
    # The trained MLP's reference rows explained another model: withdrawn; the upload's are queued instead.
    names = [name for (name,) in _rows(db, "SELECT method_name FROM exact_submission WHERE method_name LIKE '% · %'")]
    cnn = trained_models.architecture_label("CNN8by8")
    assert sorted(names) == sorted(f"{label} · {cnn}" for label in CAPTUM_LABELS)
    graph = trained_models.model_file(db, media, "bench", saved.id, "onnx").read_bytes()
    inputs = np.random.default_rng(1).normal(size=(4, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(networks.predict_onnx(graph, inputs), networks.predict(model, inputs), atol=1e-5)


def test_an_onnx_upload_is_checked_and_shipped_as_it_is(db, media, private, organiser):
    _create(db, media, private, organiser.id, explained=None)
    model, _ = _trained("MLP8by8")
    graph = networks.onnx_bytes(model, 8)
    saved = trained_models.upload_model(
        db, media, private, organiser.id, "bench", UploadedFile("net.onnx", graph), architecture=None
    )
    assert saved.explained and saved.has_onnx and not saved.has_weights
    assert trained_models.model_file(db, media, "bench", saved.id, "onnx").read_bytes() == graph
    assert trained_models.pytorch_snippet(saved) is None  # no declared architecture: nothing to rebuild


# Unpickling this creates the marker file: a refusal must never get that far.
MARKER = Path(tempfile.gettempdir()) / "exact-unpickled-marker"


class _WritesAFile:
    def __reduce__(self):
        return (open, (str(MARKER), "w"))


@pytest.mark.parametrize(
    ("name", "data", "architecture", "message"),
    [
        ("model.pt", b"PK\x03\x04 a torch.save zip", "MLP8by8", "Pickled PyTorch files"),
        ("model.pkl", pickle.dumps(_WritesAFile()), "MLP8by8", "Pickled PyTorch files"),
        ("model.safetensors", pickle.dumps(_WritesAFile()), "MLP8by8", "needs code to load"),
        ("model.safetensors", _trained("CNN8by8")[1], "MLP8by8", "holds CNN8by8 at 8x8, not MLP8by8"),
        ("model.safetensors", _trained("MLP8by8")[1], None, "Declare the architecture"),
        ("model.safetensors", _trained("MLP8by8")[1], "CNN", "another image size"),
        ("model.onnx", b"not a graph", None, "not an ONNX model"),
    ],
)
def test_refused_uploads_change_nothing(db, media, private, organiser, name, data, architecture, message):
    _create(db, media, private, organiser.id, explained="MLP8by8")
    MARKER.unlink(missing_ok=True)
    before = _snapshot(db, media, private)
    with pytest.raises(ValidationError, match=message):
        trained_models.upload_model(
            db, media, private, organiser.id, "bench", UploadedFile(name, data), architecture=architecture
        )
    assert _snapshot(db, media, private) == before
    assert not MARKER.exists()


def test_only_the_challenges_organisers_upload_and_only_before_anyone_submitted(db, media, private, organiser):
    _create(db, media, private, organiser.id, explained="MLP8by8")
    alice = make_user(db, "alice")
    other = make_user(db, "oscar", staff=True)
    _, weights = _trained("MLP8by8")
    upload = UploadedFile("m.safetensors", weights)
    for intruder in (alice, other, None):
        with pytest.raises(PermissionDenied):
            trained_models.upload_model(
                db, media, private, intruder.id if intruder else None, "bench", upload, architecture="MLP8by8"
            )
    masks = evaluation_sets.load_masks(evaluation_sets.get_evaluation(db, "bench"), private)
    buffer = io.BytesIO()
    np.save(buffer, masks + 0.1)
    intake.submit_attributions(db, media, alice.id, "bench", UploadedFile("a.npy", buffer.getvalue()), method_name="m")
    before = _snapshot(db, media, private)
    with pytest.raises(ValidationError, match="already submitted"):
        trained_models.upload_model(db, media, private, organiser.id, "bench", upload, architecture="MLP8by8")
    assert _snapshot(db, media, private) == before


def test_models_need_a_generated_benchmark_to_train_on(db, media, private, organiser):
    rng = np.random.default_rng(2)
    masks = np.zeros((20, 8, 8))
    masks[:, 2:4, 2:4] = 1
    buffer_inputs, buffer_masks = io.BytesIO(), io.BytesIO()
    np.save(buffer_inputs, rng.normal(size=(20, 8, 8)))
    np.save(buffer_masks, masks)
    prepared = evaluation_sets.prepare_uploaded_evaluation(
        UploadedFile("inputs.npy", buffer_inputs.getvalue()), UploadedFile("masks.npy", buffer_masks.getvalue()),
        max_bytes=MAX_BYTES,
    )  # fmt: skip
    with pytest.raises(ValidationError, match="generated benchmarks only"):
        create_challenge(
            db, media, organiser.id, ChallengeForm("Up", "d", "up"), {},
            evaluation=EvaluationChoice(prepared=prepared, private=private, training=TrainingPlan("MLP8by8")),
        )  # fmt: skip
    assert _rows(db, "SELECT count(*) FROM api_challenge") == [(0,)]

"""Models a challenge asks participants to explain: queued with a generated benchmark, trained in the background,
uploaded by organisers; and the model-based baselines (Captum attributions of the explained model).

PyTorch is an optional install (requirements-models.txt). Without it nothing is queued, the create form says so,
and score-only challenges run as before; torch itself is imported only where it is needed.
Design and rules: docs/models.md.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.engine import Connection

from db import challenges as challenges_sql
from db import evaluations as evaluations_sql
from db import trained_models as models_sql
from db.database import Database
from exact import arrays, networks
from exact.accounts import load_active_user, require_user
from exact.errors import NotFound, UserError, ValidationError
from exact.evaluation_sets import BASELINE_USERNAME, EvaluationSet, load_inputs
from exact.networks import models_available
from exact.permissions import is_challenge_organiser, require_challenge_organiser, rounded
from exact.storage import MediaStorage, UploadedFile

log = logging.getLogger(__name__)


UPLOAD_FORMATS = {".safetensors": "safetensors", ".onnx": "onnx"}
# The paper's training set-up (training/training_config.json of XAI-TRIS); tests and demos may shorten it.
PAPER_EPOCHS = 500
# Seconds between two progress writes of a training job (each also renews its lease).
_PROGRESS_WRITE_SECONDS = 5.0


@dataclass(frozen=True)
class TrainingPlan:
    """What to train for a generated benchmark: the paper's models, one of them the model to explain."""

    explained: str
    epochs: int = PAPER_EPOCHS
    seed: int | None = None  # None: drawn per model from the operating system's secure source

    def settings(self, size: int) -> dict[str, Any]:
        from exact.evaluation_sets import secret_seed

        seed = int(self.seed if self.seed is not None else secret_seed())
        return {"epochs": int(self.epochs), "seed": seed, "size": int(size)}


@dataclass(frozen=True)
class ChallengeModel:
    """A model as pages and the API show it: no server paths, no seeds, errors only for organisers."""

    id: int
    challenge_id: str
    architecture: str
    label: str
    source: str
    size: int | None  # image side the model takes (n, 1, size, size)
    explained: bool
    status: str
    test_accuracy: float | None
    validation_accuracy: float | None
    epochs_done: int
    epochs_total: int
    error: str | None
    has_weights: bool
    has_onnx: bool
    created_at: datetime
    finished_at: datetime | None

    @property
    def weights_file_name(self) -> str:
        return f"{self.challenge_id}-{self.architecture}.safetensors"

    @property
    def onnx_file_name(self) -> str:
        return f"{self.challenge_id}-{self.architecture}.onnx"


def architecture_choices() -> list[str]:
    """Architectures an uploaded safetensors file may declare (none without the PyTorch extra)."""
    if not models_available():
        return []

    return list(networks.ARCHITECTURES)


def architecture_label(architecture: str) -> str:
    try:

        info = networks.ARCHITECTURES.get(architecture)
    except ImportError:
        info = None
    return getattr(info, "label", None) or architecture


def _as_model(row: dict[str, Any], *, organiser: bool) -> ChallengeModel:
    failed_for_everyone = "Training failed; the organisers have been told why." if row["status"] == "failed" else None
    return ChallengeModel(
        id=int(row["id"]),
        challenge_id=row["challenge_id"],
        architecture=row["architecture"],
        label=architecture_label(row["architecture"]),
        source=row["source"],
        size=int(row["settings"]["size"]) if (row["settings"] or {}).get("size") else None,
        explained=bool(row["explained"]),
        status=row["status"],
        test_accuracy=rounded(row["test_accuracy"]),
        validation_accuracy=rounded(row["validation_accuracy"]),
        epochs_done=int(row["epochs_done"]),
        epochs_total=int(row["epochs_total"]),
        error=(row["error"] if organiser else failed_for_everyone) if row["status"] == "failed" else None,
        has_weights=bool(row["weights_path"]),
        has_onnx=bool(row["onnx_path"]),
        created_at=row["created_at"],
        finished_at=row["finished_at"],
    )


# --- queueing ------------------------------------------------------------------------------------------------------


def queue_benchmark_models(
    conn: Connection, *, challenge_id: str, benchmark: dict[str, Any], plan: TrainingPlan, created_by: int
) -> list[int]:
    """Inside the challenge's unit of work: one training job per paper model of the benchmark."""

    architectures = networks.paper_architectures(benchmark["scenario"], int(benchmark["size"]))
    if plan.explained not in architectures:
        raise ValidationError(
            f"The model to explain must be one of {', '.join(architectures)} for this benchmark, "
            f"not {plan.explained!r}."
        )
    if not isinstance(plan.epochs, int) or isinstance(plan.epochs, bool) or not 1 <= plan.epochs <= PAPER_EPOCHS:
        raise ValidationError(f"Training epochs must be a whole number from 1 to {PAPER_EPOCHS}.")
    ids = []
    for architecture in architectures:
        row = models_sql.insert_model(
            conn,
            challenge_id=challenge_id,
            architecture=architecture,
            source="trained",
            status="queued",
            explained=architecture == plan.explained,
            epochs_total=plan.epochs,
            settings=plan.settings(int(benchmark["size"])),
            created_by=created_by,
        )
        ids.append(int(row["id"]))
    return ids


# --- reading -------------------------------------------------------------------------------------------------------


def list_models(db: Database, viewer_id: int | None, challenge_id: str) -> list[ChallengeModel]:
    """The challenge's models for anyone who may see the challenge (models are public downloads)."""
    with db.connect() as conn:
        viewer = load_active_user(conn, viewer_id)
        organiser = is_challenge_organiser(viewer, challenges_sql.get_owner(conn, challenge_id))
        rows = models_sql.list_for_challenge(conn, challenge_id)
    return [_as_model(row, organiser=organiser) for row in rows]


def model_file(db: Database, media: MediaStorage, challenge_id: str, model_id: int, kind: str) -> Path:
    """The file of a ready model: ``kind`` 'weights' (safetensors) or 'onnx'. NotFound for anything else."""
    if kind not in ("weights", "onnx"):
        raise NotFound("No such model file.")
    with db.connect() as conn:
        row = models_sql.get_model(conn, model_id)
    if row is None or row["challenge_id"] != challenge_id or row["status"] != "ready":
        raise NotFound("No such model.")
    stored = row["weights_path"] if kind == "weights" else row["onnx_path"]
    if not stored:
        raise NotFound("This model has no such file.")
    return media.resolve(stored)


def pytorch_snippet(model: ChallengeModel) -> str | None:
    """Three lines of plain PyTorch that load the downloaded weights (None without a declared architecture)."""
    if not model.has_weights or model.size is None or not models_available():
        return None

    if model.architecture not in networks.ARCHITECTURES:
        return None
    return networks.pytorch_snippet(model.architecture, model.size, model.weights_file_name)


# --- training (background workers) ---------------------------------------------------------------------------------


def _benchmark_of(conn: Connection, challenge_id: str):
    """The stored spec, seed included (server side only), regenerated into the benchmark it describes."""
    from exact.xaitris import BenchmarkSpec, generate

    row = evaluations_sql.get_evaluation(conn, challenge_id)
    if row is None or not row.get("benchmark"):
        raise UserError("This challenge has no generated benchmark to train on.")
    return EvaluationSet.from_row(row), generate(BenchmarkSpec.from_dict(dict(row["benchmark"])))


def train_next(
    db: Database,
    media: MediaStorage,
    private: MediaStorage,
    *,
    on_epoch: Callable[[int, int], None] | None = None,
    challenge_id: str | None = None,
) -> int | None:
    """Claim the next training job (of ``challenge_id`` only, when given), train, store the files and, for the
    explained model, queue its model-based baselines. Returns the model's id, or None when nothing was waiting.

    The lease is renewed with every progress write and between the slow steps after training (export, each Captum
    method), so a long job is not taken over while it is alive. A stopping trainer (SIGTERM, Ctrl+C) gives its job
    back to the queue without counting the attempt."""
    with db.transaction() as conn:
        job = models_sql.claim_training(conn, challenge_id)
    if job is None:
        return None
    model_id, attempt = int(job["id"]), int(job["attempts"])
    epochs_done = [0, int(job["epochs_total"])]

    def renew() -> None:
        with db.transaction() as conn:
            if not models_sql.extend_training_lease(
                conn, model_id, attempt, epochs_done=epochs_done[0], epochs_total=epochs_done[1]
            ):
                raise _Abandoned

    try:
        with db.connect() as conn:
            evaluation, benchmark = _benchmark_of(conn, job["challenge_id"])
        renew()  # regenerating a 64×64 benchmark takes a while
        size = int(benchmark.spec.size)
        settings = networks.TrainingSettings(
            epochs=int(job["settings"].get("epochs", PAPER_EPOCHS)), seed=int(job["settings"]["seed"])
        )
        last_write = [0.0]

        def progress(done: int, total: int) -> None:
            if on_epoch is not None:
                on_epoch(done, total)
            epochs_done[:] = [done, total]
            now = time.monotonic()
            if now - last_write[0] >= _PROGRESS_WRITE_SECONDS or done == total:
                last_write[0] = now
                renew()

        outcome = networks.train(
            job["architecture"],
            size,
            benchmark.train.inputs,
            benchmark.train.labels,
            benchmark.validation.inputs,
            benchmark.validation.labels,
            settings,
            progress=progress,
        )
        test_accuracy = networks.accuracy(outcome.model, benchmark.test.inputs, benchmark.test.labels)
        metadata = {"architecture": job["architecture"], "size": str(size), "challenge": job["challenge_id"]}
        files = {
            "weights": UploadedFile(
                f"{job['architecture']}.safetensors", networks.safetensors_bytes(outcome.model, metadata)
            ),
            "onnx": UploadedFile(f"{job['architecture']}.onnx", networks.onnx_bytes(outcome.model, size)),
        }
        renew()
        baselines = (
            _model_baselines(
                outcome.model, job["architecture"], evaluation, media, benchmark.test.labels, settings.seed, renew
            )
            if job["explained"]
            else {}
        )
        with media.staged() as staged, private.staged() as private_staged, db.transaction() as conn:
            # Serialised with an organiser's upload (which locks the challenge too): if the upload made another
            # model the one to explain meanwhile, this model's baselines are not added.
            challenges_sql.lock(conn, job["challenge_id"])
            paths = {kind: staged.write(f"challenges/{job['challenge_id']}/models", f) for kind, f in files.items()}
            still_explained = models_sql.finish_training(
                conn,
                model_id,
                attempt,
                weights_path=paths["weights"],
                onnx_path=paths["onnx"],
                train_accuracy=float(outcome.train_accuracy),
                validation_accuracy=float(outcome.validation_accuracy),
                test_accuracy=float(test_accuracy),
                epochs_done=int(outcome.epochs_run),
                settings={**job["settings"], "best_epoch": int(outcome.best_epoch)},
            )
            if still_explained is None:
                raise _Abandoned
            if still_explained:
                _insert_baselines(conn, private_staged, evaluation, job["architecture"], baselines)
    except _Abandoned:
        log.info("training job %s was taken over by another attempt", model_id)
    except UserError as exc:
        with db.transaction() as conn:
            models_sql.fail_training(conn, model_id, attempt, str(exc))
    except (SystemExit, KeyboardInterrupt):
        with db.transaction() as conn:
            models_sql.release_training(conn, model_id, attempt)
        raise
    except Exception:
        reference = uuid.uuid4().hex[:8]
        log.exception("training model %s failed (reference %s)", model_id, reference)
        with db.transaction() as conn:
            models_sql.fail_training(conn, model_id, attempt, f"Training failed on our side (reference {reference}).")
    return model_id


class _Abandoned(Exception):
    """The job is no longer this attempt's (its lease ran out and another worker took it)."""


def baseline_method_name(method_label: str, architecture: str) -> str:
    return f"{method_label} · {architecture_label(architecture)}"


def _model_baselines(
    model: Any,
    architecture: str,
    evaluation: EvaluationSet,
    media: MediaStorage,
    targets: np.ndarray | None,
    seed: int,
    heartbeat: Callable[[], None] | None = None,
) -> dict[str, np.ndarray]:
    """Captum attributions of the explained model for every evaluation input (the paper's target: the true class;
    without labels, the model's own prediction)."""
    from exact import model_attributions, networks

    inputs = load_inputs(evaluation, media)
    if targets is None or len(targets) != inputs.shape[0]:
        targets = np.argmax(networks.predict(model, inputs), axis=1)
    attributions = {}
    for method in model_attributions.MODEL_METHODS:
        attributions[method] = model_attributions.attribute(model, method, inputs, np.asarray(targets), seed=seed)
        if heartbeat is not None:
            heartbeat()
    return attributions


def _insert_baselines(
    conn: Connection,
    private_staged: Any,
    evaluation: EvaluationSet,
    architecture: str,
    baselines: dict[str, np.ndarray],
) -> None:
    from exact.model_attributions import MODEL_METHODS

    for method, attribution in baselines.items():
        path = private_staged.write(
            f"evaluations/{evaluation.challenge_id}/baselines",
            UploadedFile(f"{architecture}-{method}.npy", arrays.npy_bytes(attribution)),
        )
        evaluations_sql.insert_submission(
            conn,
            challenge_id=evaluation.challenge_id,
            kind="baseline",
            username=BASELINE_USERNAME,
            method_name=baseline_method_name(MODEL_METHODS[method], architecture),
            file_path=path,
            primary_metric=evaluation.primary_metric,
        )


# --- uploaded models (organisers) ----------------------------------------------------------------------------------


def upload_model(
    db: Database,
    media: MediaStorage,
    private: MediaStorage,
    actor_id: int | None,
    challenge_id: str,
    upload: UploadedFile,
    *,
    architecture: str | None,
) -> ChallengeModel:
    """An organiser's model becomes the one the challenge asks to explain.

    ONNX: any graph of standard operators taking (n, 1, H, W) and returning (n, 2). safetensors: weights of a
    declared architecture (the paper's). Anything that needs code to load (pickles, TorchScript, .pt) is refused.
    Allowed only until the first participant submission, so nobody's entry explained a different model.
    """

    suffix = Path(upload.name or "").suffix.lower()
    file_format = UPLOAD_FORMATS.get(suffix)
    if file_format is None:
        raise ValidationError(
            "Upload the model as .onnx or .safetensors. Pickled PyTorch files (.pt, .pth, .pkl) are refused: "
            "loading them runs code."
        )
    limit = min(media.max_bytes, networks.MAX_MODEL_BYTES)
    if len(upload.data) > limit:
        raise ValidationError(f"The model file is larger than the limit of {limit // 2**20} MB.")
    with db.connect() as conn:
        owner = challenges_sql.get_owner(conn, challenge_id)
        require_challenge_organiser(require_user(conn, actor_id, "upload a model"), owner)
        row = evaluations_sql.get_evaluation(conn, challenge_id)
    if row is None:
        raise ValidationError("Models can be attached to challenges the server scores (with an evaluation set).")
    evaluation = EvaluationSet.from_row(row)
    if evaluation.height != evaluation.width or evaluation.height not in (8, 64):
        raise ValidationError("Models can be attached to 8×8 and 64×64 evaluation sets.")
    size = evaluation.height
    # The file's own checks first: a refused file costs no data loading and no regenerated benchmark.
    if file_format == "onnx":
        networks.check_onnx(upload.data, size)
        model, weights, onnx_data, declared = None, None, upload.data, "onnx"
    else:
        if not architecture or architecture not in networks.ARCHITECTURES:
            raise ValidationError(
                f"Declare the architecture of the weights: one of {', '.join(networks.ARCHITECTURES)}."
            )
        if size not in networks.ARCHITECTURES[architecture].sizes:
            raise ValidationError(
                f"{architecture} is built for another image size than this challenge's {size}×{size}."
            )
        model = networks.load_safetensors(upload.data, architecture, size)
        weights, onnx_data, declared = upload.data, networks.onnx_bytes(model, size), architecture
    inputs = load_inputs(evaluation, media)
    labels = _benchmark_test_labels(row)
    probabilities = networks.predict_onnx(onnx_data, inputs) if model is None else networks.predict(model, inputs)
    test_accuracy = float(np.mean(np.argmax(probabilities, axis=1) == labels)) if labels is not None else None
    baselines = _model_baselines(model, declared, evaluation, media, labels, 0) if model is not None else {}
    with media.staged() as staged, private.staged() as private_staged, db.transaction() as conn:
        organiser = require_challenge_organiser(
            require_user(conn, actor_id, "upload a model"), challenges_sql.get_owner(conn, challenge_id)
        )
        if challenges_sql.lock(conn, challenge_id) is None:
            raise NotFound(f"There is no challenge {challenge_id!r}.")
        if models_sql.has_participant_submissions(conn, challenge_id):
            raise ValidationError(
                "Participants have already submitted explanations of this challenge's model; the model cannot "
                "change any more."
            )
        if models_sql.count_for_challenge(conn, challenge_id) >= models_sql.MAX_MODELS_PER_CHALLENGE:
            raise ValidationError(f"A challenge holds at most {models_sql.MAX_MODELS_PER_CHALLENGE} models.")
        folder = f"challenges/{challenge_id}/models/uploaded-{uuid.uuid4().hex[:8]}"
        created = models_sql.insert_model(
            conn,
            challenge_id=challenge_id,
            architecture=declared,
            source="uploaded",
            status="ready",
            weights_path=staged.write(folder, UploadedFile(f"{declared}.safetensors", weights)) if weights else None,
            onnx_path=staged.write(folder, UploadedFile(f"{declared}.onnx", onnx_data)),
            test_accuracy=test_accuracy,
            settings={"size": size},
            created_by=organiser.id,
        )
        withdrawn = _withdraw_model_baselines(conn, challenge_id)
        models_sql.set_explained(conn, challenge_id, int(created["id"]))
        _insert_baselines(conn, private_staged, evaluation, declared, baselines)
        created = models_sql.get_model(conn, int(created["id"]))
    for path in withdrawn:  # only once the rows are gone for good
        private.delete(path)
    return _as_model(created, organiser=True)


def _benchmark_test_labels(row: dict[str, Any]) -> np.ndarray | None:
    if not row.get("benchmark"):
        return None
    from exact.xaitris import BenchmarkSpec, generate

    return np.asarray(generate(BenchmarkSpec.from_dict(dict(row["benchmark"]))).test.labels)


def _withdraw_model_baselines(conn: Connection, challenge_id: str) -> list[str]:
    """The model-based reference rows of the previously explained model (they explain another model now); returns
    their files' paths in the private store."""
    from exact.model_attributions import MODEL_METHODS

    return models_sql.delete_baselines_named(conn, challenge_id, [f"{label} · %" for label in MODEL_METHODS.values()])


def accuracy_text(value: float | None) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{100 * value:.1f} %"

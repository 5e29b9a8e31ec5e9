"""Ground-truth challenges: evaluation sets, attribution submissions scored on the server, baselines.

Researchers upload attribution maps; nothing they send is executed or unpickled. The masks stay in the private
store (never downloadable); the server scores each submission against them (``exact.metrics``) and records the
primary metric as the api_score row, with the full result in exact_submission.
"""

from __future__ import annotations

import hashlib
import io
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pandas as pd
from scipy import ndimage
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from db import evaluations as evaluations_sql
from db import scores as scores_sql
from db.database import Database
from exact import arrays, metrics
from exact.accounts import User, load_active_user, require_user
from exact.errors import NotFound, PermissionDenied, UserError, ValidationError
from exact.storage import MediaStorage, StagedFiles, UploadedFile
from exact.validation import clean_text
from exact.xaitris import Benchmark, BenchmarkSpec, generate

log = logging.getLogger(__name__)

# Grids up to this many pixels are scored while the submitter waits (8×8: 1,000 samples in well under a second);
# larger ones (64×64: seconds per sample) go to the background worker.
INLINE_PIXEL_LIMIT = 32 * 32
MAX_ATTEMPTS = 3
BASELINES: dict[str, str] = {
    "random": "Random attributions",
    "sobel": "Sobel edges of the input",
    "laplace": "Laplace edges of the input",
    "input": "The input itself",
    "ground_truth": "Ground truth (ceiling)",
}
BASELINE_USERNAME = "baseline"
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class EvaluationSet:
    challenge_id: str
    inputs_path: str
    masks_path: str
    n_samples: int
    height: int
    width: int
    primary_metric: str
    shown_metrics: tuple[str, ...]
    benchmark: dict[str, Any] | None
    created_by: int | None
    created_at: datetime

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> EvaluationSet:
        return cls(
            challenge_id=row["challenge_id"],
            inputs_path=row["inputs_path"],
            masks_path=row["masks_path"],
            n_samples=row["n_samples"],
            height=row["height"],
            width=row["width"],
            primary_metric=row["primary_metric"],
            shown_metrics=tuple(row["shown_metrics"] or ()),
            benchmark=row["benchmark"],
            created_by=row["created_by"],
            created_at=row["created_at"],
        )

    @property
    def scored_inline(self) -> bool:
        return self.height * self.width <= INLINE_PIXEL_LIMIT

    def may_see_ground_truth(self, user: User | None) -> bool:
        """The challenge's organisers: whoever attached the evaluation set, and administrators."""
        return user is not None and user.is_active and (user.is_admin or user.id == self.created_by)


@dataclass(frozen=True)
class Submission:
    id: int
    challenge_id: str
    kind: str
    user_id: int | None
    username: str
    method_name: str
    description: str
    url: str
    status: str
    error: str | None
    primary_metric: str
    primary_value: float | None
    file_path: str | None
    file_size: int | None
    file_sha256: str | None
    score_id: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    result: dict[str, Any] | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Submission:
        return cls(**{name: row.get(name) for name in cls.__dataclass_fields__})

    @property
    def seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


@dataclass(frozen=True)
class PreparedEvaluation:
    """A validated evaluation set, ready to store: arrays plus the files to write."""

    inputs: np.ndarray  # (n, H, W)
    labels: np.ndarray | None
    masks: np.ndarray  # (n, H, W)
    inputs_file: UploadedFile  # public: evaluation inputs (+ labels), no masks
    masks_file: UploadedFile  # private
    dataset_file: UploadedFile | None  # public dataset download (benchmarks: training split with masks + inputs)
    benchmark: dict[str, Any] | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.masks.shape  # type: ignore[return-value]


def _npz(**named: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **named)
    return buffer.getvalue()


def clean_metric_choice(primary: str, shown: list[str] | tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    if primary not in metrics.METRICS:
        raise ValidationError(f"Unknown primary metric {primary!r}; choose one of {', '.join(metrics.METRICS)}.")
    unknown = [name for name in shown if name not in metrics.METRICS]
    if unknown:
        raise ValidationError(f"Unknown metric(s): {', '.join(unknown)}.")
    return primary, tuple(name for name in metrics.METRICS if name in shown and name != primary)


def prepare_uploaded_evaluation(
    inputs_upload: UploadedFile, masks_upload: UploadedFile, *, max_bytes: int
) -> PreparedEvaluation:
    """Validate an organiser's evaluation files: inputs (.npz with `inputs` [+ `labels`], or .npy) and masks."""
    masks = arrays.validate_masks(
        arrays.load_array_file(
            masks_upload.data,
            name=masks_upload.name,
            max_bytes=max_bytes,
            key="masks" if masks_upload.name.lower().endswith(".npz") else None,
        )
    )
    n, height, width = masks.shape
    labels = None
    if inputs_upload.name.lower().endswith(".npz"):
        raw_inputs = arrays.load_array_file(
            inputs_upload.data, name=inputs_upload.name, max_bytes=max_bytes, key="inputs"
        )
        try:
            raw_labels = arrays.load_array_file(
                inputs_upload.data, name=inputs_upload.name, max_bytes=max_bytes, key="labels"
            )
        except ValidationError:
            raw_labels = None
        labels = arrays.validate_labels(raw_labels, n) if raw_labels is not None else None
    else:
        raw_inputs = arrays.load_array_file(inputs_upload.data, name=inputs_upload.name, max_bytes=max_bytes)
    inputs = arrays.validate_inputs(raw_inputs)
    if inputs.shape not in ((n, height, width), (n, height * width)):
        raise ValidationError(
            f"Inputs have shape {inputs.shape} but the masks are {n} samples of {height}×{width}: "
            "they must describe the same samples."
        )
    inputs = inputs.reshape(n, height, width)
    public = {"inputs": inputs} if labels is None else {"inputs": inputs, "labels": labels}
    return PreparedEvaluation(
        inputs=inputs,
        labels=labels,
        masks=masks,
        inputs_file=UploadedFile("evaluation-inputs.npz", _npz(**public)),
        masks_file=UploadedFile("masks.npz", _npz(masks=masks)),
        dataset_file=None,
    )


def prepare_benchmark(spec: BenchmarkSpec) -> tuple[PreparedEvaluation, Benchmark]:
    benchmark = generate(spec)
    test = benchmark.test
    prepared = PreparedEvaluation(
        inputs=np.asarray(test.inputs, dtype=np.float64),
        labels=np.asarray(test.labels),
        masks=np.asarray(test.masks, dtype=np.float64),
        inputs_file=UploadedFile("evaluation-inputs.npz", benchmark.evaluation_inputs_npz()),
        masks_file=UploadedFile("masks.npz", benchmark.evaluation_masks_npz()),
        dataset_file=UploadedFile(
            f"xai-tris-{spec.scenario}-{spec.size}x{spec.size}.npz", benchmark.public_dataset_npz()
        ),
        benchmark=spec.as_dict(),
    )
    return prepared, benchmark


def baseline_attributions(inputs: np.ndarray, masks: np.ndarray, *, seed: int = 0) -> dict[str, np.ndarray]:
    """Reference attributions every method should beat (and the ground truth, which none can)."""
    images = inputs.reshape(masks.shape).astype(np.float64)
    sobel = np.stack([np.hypot(ndimage.sobel(x, axis=0), ndimage.sobel(x, axis=1)) for x in images])
    laplace = np.stack([np.abs(ndimage.laplace(x)) for x in images])
    return {
        "random": np.random.default_rng(seed).standard_normal(masks.shape),
        "sobel": sobel,
        "laplace": laplace,
        "input": images,
        "ground_truth": masks.copy(),
    }


def store_evaluation(
    conn: Connection,
    public: StagedFiles,
    private: StagedFiles,
    *,
    challenge_id: str,
    prepared: PreparedEvaluation,
    primary_metric: str,
    shown_metrics: tuple[str, ...],
    created_by: int,
) -> list[int]:
    """Inside the challenge's unit of work: files, the evaluation row and the queued baselines."""
    inputs_path = public.write(f"challenges/{challenge_id}/evaluation", prepared.inputs_file)
    masks_path = private.write(f"evaluations/{challenge_id}", prepared.masks_file)
    n, height, width = prepared.shape
    evaluations_sql.insert_evaluation(
        conn,
        challenge_id=challenge_id,
        inputs_path=inputs_path,
        masks_path=masks_path,
        n_samples=n,
        height=height,
        width=width,
        primary_metric=primary_metric,
        shown_metrics=list(shown_metrics),
        benchmark=prepared.benchmark,
        created_by=created_by,
    )
    baseline_ids = []
    for name, attribution in baseline_attributions(prepared.inputs, prepared.masks).items():
        path = private.write(f"evaluations/{challenge_id}/baselines", UploadedFile(f"{name}.npy", _npy(attribution)))
        row = evaluations_sql.insert_submission(
            conn,
            challenge_id=challenge_id,
            kind="baseline",
            username=BASELINE_USERNAME,
            method_name=BASELINES[name],
            file_path=path,
            primary_metric=primary_metric,
        )
        baseline_ids.append(row["id"])
    return baseline_ids


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def get_evaluation(db: Database, challenge_id: str) -> EvaluationSet | None:
    with db.connect() as conn:
        row = evaluations_sql.get_evaluation(conn, challenge_id)
    return EvaluationSet.from_row(row) if row else None


def evaluated_challenges(db: Database) -> set[str]:
    with db.connect() as conn:
        return evaluations_sql.evaluated_challenge_ids(conn)


# --- submitting -----------------------------------------------------------------------------------------------


def _clean_url(url: str) -> str:
    url = clean_text(url, field="Paper/code URL", max_length=500, required=False)
    if url:
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValidationError("Paper/code URL must start with http:// or https://.")
    return url


def submit_attributions(
    db: Database,
    media: MediaStorage,
    actor_id: int | None,
    challenge_id: str,
    upload: UploadedFile,
    *,
    method_name: str,
    description: str = "",
    url: str = "",
    request_key: str | None = None,
) -> Submission:
    """Validate and store an attribution file as a queued submission of the logged-in user (one unit)."""
    method_name = clean_text(method_name, field="Method name", max_length=100)
    description = clean_text(description, field="Description", max_length=5000, required=False, multiline=True)
    url = _clean_url(url)
    if request_key is not None and not 0 < len(request_key) <= 100:
        raise ValidationError("Invalid submission key.")
    with db.connect() as conn:
        user = require_user(conn, actor_id, "submit attributions")
        row = evaluations_sql.get_evaluation(conn, challenge_id or "")
        if row is None:
            raise NotFound(f"Challenge {challenge_id!r} has no evaluation set: submit a score instead.")
        if request_key is not None:
            existing = evaluations_sql.submission_for_request_key(conn, request_key)
            if existing is not None:
                if existing["user_id"] != user.id:
                    raise ValidationError("This form was already used; reload the page to submit again.")
                return Submission.from_row(existing)
    evaluation = EvaluationSet.from_row(row)
    # Size and emptiness here; the content is checked by loading it below (once), which refuses pickles too.
    media.check_upload(upload, label="Attributions", allowed_extensions=None)
    if not upload.name.lower().endswith((".npy", ".npz")):
        raise ValidationError("Attributions: files of this type are not accepted (.npy, .npz).")
    shape = (evaluation.n_samples, evaluation.height, evaluation.width)
    key = arrays.ATTRIBUTIONS_KEY if upload.name.lower().endswith(".npz") else None
    raw = arrays.load_array_file(upload.data, name=upload.name, max_bytes=media.max_bytes, key=key)
    arrays.validate_attributions(raw, shape)  # refuse bad files now, with a precise message
    digest = hashlib.sha256(upload.data).hexdigest()
    extension = ".npz" if key else ".npy"
    try:
        return _store_submission(
            db,
            media,
            actor_id,
            challenge_id,
            upload,
            evaluation,
            digest,
            extension,
            method_name=method_name,
            description=description,
            url=url,
            request_key=request_key,
        )
    except IntegrityError:
        # The same form sent twice at once: the unique request key let one through; answer with that one.
        with db.connect() as conn:
            existing = evaluations_sql.submission_for_request_key(conn, request_key or "")
        if existing is None or existing["user_id"] != actor_id:
            raise ValidationError("This form was already used; reload the page to submit again.") from None
        return Submission.from_row(existing)


def _store_submission(
    db: Database,
    media: MediaStorage,
    actor_id: int | None,
    challenge_id: str,
    upload: UploadedFile,
    evaluation: EvaluationSet,
    digest: str,
    extension: str,
    *,
    method_name: str,
    description: str,
    url: str,
    request_key: str | None,
) -> Submission:
    with media.staged() as staged, db.transaction() as conn:
        user = require_user(conn, actor_id, "submit attributions")
        path = staged.write(
            f"submissions/{challenge_id}/{user.id}", UploadedFile(f"{digest[:16]}{extension}", upload.data)
        )
        row = evaluations_sql.insert_submission(
            conn,
            challenge_id=challenge_id,
            kind="participant",
            user_id=user.id,
            username=user.username,
            method_name=method_name,
            description=description,
            url=url,
            file_path=path,
            file_size=len(upload.data),
            file_sha256=digest,
            request_key=request_key,
            primary_metric=evaluation.primary_metric,
        )
    return Submission.from_row(row)


# --- scoring --------------------------------------------------------------------------------------------------


def _load_attributions(
    submission: dict[str, Any], media: MediaStorage, private: MediaStorage, shape: tuple[int, int, int]
) -> np.ndarray:
    store = private if submission["kind"] == "baseline" else media
    path = store.resolve(submission["file_path"])
    name = path.name
    key = arrays.ATTRIBUTIONS_KEY if name.endswith(".npz") else None
    # Validated on upload; validated again (it sat on disk) under the same bound as the upload.
    raw = arrays.load_array_file(
        path.read_bytes(), name=name, max_bytes=max(store.max_bytes, int(np.prod(shape)) * 16), key=key
    )
    return arrays.validate_attributions(raw, shape)


def _load_masks(evaluation: EvaluationSet, private: MediaStorage) -> np.ndarray:
    path = private.resolve(evaluation.masks_path)
    shape = (evaluation.n_samples, evaluation.height, evaluation.width)
    raw = arrays.load_array_file(path.read_bytes(), name=path.name, max_bytes=int(np.prod(shape)) * 16, key="masks")
    return arrays.validate_masks(raw, evaluation.n_samples)


def process_submission(
    db: Database,
    media: MediaStorage,
    private: MediaStorage,
    submission_id: int | None = None,
    *,
    progress: Progress | None = None,
) -> Submission | None:
    """Claim one submission (this one, or the oldest waiting), score it and store the result.

    Returns None when there was nothing to claim (another worker has it, or the queue is empty). A failure is
    recorded on the submission (status 'failed' with the reason), never lost.
    """
    with db.transaction() as conn:
        claimed = evaluations_sql.claim(conn, submission_id)
    if claimed is None:
        return None
    sid = claimed["id"]
    if claimed["attempts"] > MAX_ATTEMPTS:
        with db.transaction() as conn:
            evaluations_sql.fail(conn, sid, "Scoring was interrupted repeatedly; please submit again.")
        return get_submission_row(db, sid)
    try:
        with db.connect() as conn:
            row = evaluations_sql.get_evaluation(conn, claimed["challenge_id"])
        if row is None:
            raise ValidationError("The challenge's evaluation set no longer exists.")
        evaluation = EvaluationSet.from_row(row)
        shape = (evaluation.n_samples, evaluation.height, evaluation.width)
        masks = _load_masks(evaluation, private)
        attributions = _load_attributions(claimed, media, private, shape)
        last_lease = time.monotonic()

        def report(done: int, total: int) -> None:
            nonlocal last_lease
            if time.monotonic() - last_lease > 10:  # keep our claim while a long scoring runs
                with db.transaction() as lease_conn:
                    evaluations_sql.extend_lease(lease_conn, sid)
                last_lease = time.monotonic()
            if progress is not None:
                progress(done, total)

        result = metrics.score_batch(attributions, masks, progress=report)
        primary = result.summary[evaluation.primary_metric]
        if primary.n_scored == 0:
            raise ValidationError(
                f"No sample could be scored on {metrics.METRICS[evaluation.primary_metric].label}: every "
                "attribution map is all zeros (or every mask is empty)."
            )
        stored = result.to_dict()
        with db.transaction() as conn:
            score_id = None
            if claimed["kind"] == "participant":
                user = load_active_user(conn, claimed["user_id"])
                if user is None:
                    raise PermissionDenied("The submitting account is no longer active.")
                score_id = scores_sql.insert(
                    conn, username=user.username, challenge_id=claimed["challenge_id"], score=primary.mean
                )["id"]
            evaluations_sql.finish(conn, sid, primary_value=primary.mean, result=stored, score_id=score_id)
    except UserError as exc:
        with db.transaction() as conn:
            evaluations_sql.fail(conn, sid, str(exc))
    except Exception:
        reference = uuid.uuid4().hex[:8]
        log.exception("scoring submission %s failed (reference %s)", sid, reference)
        with db.transaction() as conn:
            evaluations_sql.fail(conn, sid, f"Scoring failed on our side (reference {reference}).")
    return get_submission_row(db, sid)


def get_submission_row(db: Database, submission_id: int, *, with_result: bool = False) -> Submission | None:
    with db.connect() as conn:
        row = evaluations_sql.get_submission(conn, submission_id, with_result=with_result)
    return Submission.from_row(row) if row else None


def score_waiting_baselines(
    db: Database, media: MediaStorage, private: MediaStorage, challenge_id: str, *, progress: Progress | None = None
) -> int:
    """Score a new challenge's queued baselines now (small grids: a second or two), reporting per baseline."""
    with db.connect() as conn:
        waiting = [b["id"] for b in evaluations_sql.baselines(conn, challenge_id) if b["status"] == "queued"]
    for index, sid in enumerate(waiting):
        process_submission(db, media, private, sid)
        if progress is not None:
            progress(index + 1, len(waiting))
    return len(waiting)


# --- reading results ------------------------------------------------------------------------------------------


def can_view_submission(user: User | None, submission: Submission, evaluation: EvaluationSet | None) -> bool:
    if submission.kind == "baseline":
        return True
    if user is None or not user.is_active:
        return False
    return user.id == submission.user_id or (evaluation is not None and evaluation.may_see_ground_truth(user))


def view_submission(db: Database, actor_id: int | None, submission_id: int) -> tuple[Submission, EvaluationSet | None]:
    with db.connect() as conn:
        user = load_active_user(conn, actor_id)
        row = evaluations_sql.get_submission(conn, submission_id, with_result=True)
        evaluation_row = evaluations_sql.get_evaluation(conn, row["challenge_id"]) if row else None
    if row is None:
        raise NotFound("No such submission.")
    submission = Submission.from_row(row)
    evaluation = EvaluationSet.from_row(evaluation_row) if evaluation_row else None
    if not can_view_submission(user, submission, evaluation):
        raise PermissionDenied("Only the submitter and the challenge's organisers can see this result.")
    return submission, evaluation


def my_submissions(db: Database, actor_id: int | None) -> list[Submission]:
    with db.connect() as conn:
        user = require_user(conn, actor_id, "see your submissions")
        return [Submission.from_row(r) for r in evaluations_sql.list_for_user(conn, user.id)]


def _stored_metrics(submission: Submission) -> list[tuple[str, dict[str, Any]]]:
    """The stored metric entries in registry order (jsonb does not keep key order)."""
    stored = (submission.result or {}).get("metrics") or {}
    return [(name, stored[name]) for name in metrics.METRICS if name in stored]


def per_sample_frame(submission: Submission) -> pd.DataFrame:
    """Long format (metric, sample, value) of the stored per-sample scores, for box/violin plots."""
    records = []
    for name, entry in _stored_metrics(submission):
        for index, value in enumerate(entry["per_sample"]):
            if value is not None:
                records.append({"metric": entry["label"], "sample": index, "value": value, "key": name})
    return pd.DataFrame.from_records(records, columns=["metric", "sample", "value", "key"])


def summary_frame(submission: Submission) -> pd.DataFrame:
    rows = []
    for name, entry in _stored_metrics(submission):
        rows.append(
            {
                "metric": entry["label"],
                "mean": entry["mean"],
                "std": entry["std"],
                "scored": entry["n_scored"],
                "not scorable": entry["n_not_scorable"],
                "key": name,
            }
        )
    return pd.DataFrame.from_records(rows, columns=["metric", "mean", "std", "scored", "not scorable", "key"])


GALLERY_SAMPLES = 4


def gallery(
    db: Database,
    media: MediaStorage,
    private: MediaStorage,
    actor_id: int | None,
    submission_id: int,
) -> list[dict[str, Any]]:
    """The first few evaluation samples: input, ground-truth mask (submitter/organisers only) and attribution.

    Only these fixed samples' masks are ever shown, and only to those allowed to see the result.
    """
    submission, evaluation = view_submission(db, actor_id, submission_id)
    if evaluation is None or submission.status != "done":
        return []
    with db.connect() as conn:
        viewer = load_active_user(conn, actor_id)
    shape = (evaluation.n_samples, evaluation.height, evaluation.width)
    inputs_path = media.resolve(evaluation.inputs_path)
    inputs = arrays.validate_inputs(
        arrays.load_array_file(
            inputs_path.read_bytes(), name=inputs_path.name, max_bytes=int(np.prod(shape)) * 16, key="inputs"
        )
    ).reshape(shape)
    attributions = _load_attributions(
        {"kind": submission.kind, "file_path": submission.file_path}, media, private, shape
    )
    show_masks = viewer is not None and (viewer.id == submission.user_id or evaluation.may_see_ground_truth(viewer))
    masks = _load_masks(evaluation, private) if show_masks else None
    count = min(GALLERY_SAMPLES, evaluation.n_samples)
    return [
        {"index": i, "input": inputs[i], "mask": None if masks is None else masks[i], "attribution": attributions[i]}
        for i in range(count)
    ]


def ground_truth_statistics(
    db: Database, private: MediaStorage, actor_id: int | None, challenge_id: str
) -> dict[str, Any]:
    with db.connect() as conn:
        user = load_active_user(conn, actor_id)
        row = evaluations_sql.get_evaluation(conn, challenge_id)
    if row is None:
        raise NotFound("This challenge has no evaluation set.")
    evaluation = EvaluationSet.from_row(row)
    if not evaluation.may_see_ground_truth(user):
        raise PermissionDenied("Only the challenge's organisers can see the ground-truth statistics.")
    masks = _load_masks(evaluation, private)
    sizes = (masks > 0).reshape(len(masks), -1).sum(axis=1)
    return {
        "samples": evaluation.n_samples,
        "grid": f"{evaluation.height}×{evaluation.width}",
        "mask pixels (mean)": float(sizes.mean()),
        "mask pixels (min)": int(sizes.min()),
        "mask pixels (max)": int(sizes.max()),
        "empty masks": int((sizes == 0).sum()),
        "mask coverage": float(sizes.mean() / (evaluation.height * evaluation.width)),
    }

"""Scoring jobs: claim a queued submission, score it against the private masks, store its aggregates per split.

A failure is recorded on the submission (status 'failed' with the reason), never lost; a job that exceeds its time
budget fails with a reason saying so. A participant's done submission gets its api_score row (the rounded public
aggregate, what Django's leaderboard would show) in the same transaction that marks it done.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np

from db import evaluations as evaluations_sql
from db import scores as scores_sql
from db.database import Database
from exact import arrays, metrics, splits
from exact.accounts import load_active_user
from exact.errors import PermissionDenied, UserError, ValidationError
from exact.evaluation_sets import EvaluationSet, load_masks, load_split_codes
from exact.intake import Submission, get_submission_row
from exact.permissions import rounded
from exact.storage import MediaStorage

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
DEFAULT_TIME_BUDGET_SECONDS = 900  # EXACT_SCORING_SECONDS
Progress = Callable[[int, int], None]


class ScoringTimeout(UserError):
    pass


def load_attributions(
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


def process_submission(
    db: Database,
    media: MediaStorage,
    private: MediaStorage,
    submission_id: int | None = None,
    *,
    progress: Progress | None = None,
    time_budget: float = DEFAULT_TIME_BUDGET_SECONDS,
) -> Submission | None:
    """Claim one submission (this one, or the next in the fair queue), score it and store the result.

    Returns None when there was nothing to claim (another worker has it, or the queue is empty).
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
        _score(db, media, private, claimed, progress, time_budget)
    except UserError as exc:
        with db.transaction() as conn:
            evaluations_sql.fail(conn, sid, str(exc))
    except Exception:
        reference = uuid.uuid4().hex[:8]
        log.exception("scoring submission %s failed (reference %s)", sid, reference)
        with db.transaction() as conn:
            evaluations_sql.fail(conn, sid, f"Scoring failed on our side (reference {reference}).")
    return get_submission_row(db, sid)


def _score(
    db: Database,
    media: MediaStorage,
    private: MediaStorage,
    claimed: dict[str, Any],
    progress: Progress | None,
    time_budget: float,
) -> None:
    sid = claimed["id"]
    with db.connect() as conn:
        row = evaluations_sql.get_evaluation(conn, claimed["challenge_id"])
    if row is None:
        raise ValidationError("The challenge's evaluation set no longer exists.")
    evaluation = EvaluationSet.from_row(row)
    masks = load_masks(evaluation, private)
    codes = load_split_codes(evaluation, private)
    attributions = load_attributions(claimed, media, private, evaluation.shape)
    started = last_lease = time.monotonic()

    def report(done: int, total: int) -> None:
        nonlocal last_lease
        now = time.monotonic()
        if now - started > time_budget:
            raise ScoringTimeout(
                f"Scoring took longer than this server's budget of {time_budget:g} s per submission and was stopped "
                f"after {done} of {total} samples. Sparser attributions score faster."
            )
        if now - last_lease > 10:  # keep our claim while a long scoring runs
            with db.transaction() as lease_conn:
                evaluations_sql.extend_lease(lease_conn, sid)
            last_lease = now
        if progress is not None:
            progress(done, total)

    result = metrics.score_batch(attributions, masks, progress=report)
    if result.summary[evaluation.primary_metric].n_scored == 0:
        raise ValidationError(
            f"No sample could be scored on {metrics.METRICS[evaluation.primary_metric].label}: every "
            "attribution map is all zeros (or every mask is empty)."
        )
    by_split = {
        split: {name: summary.to_dict() for name, summary in summaries.items()}
        for split, summaries in splits.summarise(result, codes).items()
    }
    public_value = by_split["public"][evaluation.primary_metric]["mean"]
    with db.transaction() as conn:
        score_id = None
        if claimed["kind"] == "participant":
            user = load_active_user(conn, claimed["user_id"])
            if user is None:
                raise PermissionDenied("The submitting account is no longer active.")
            shown = rounded(public_value)
            if shown is not None:  # nothing scorable on the public part: nothing to rank
                score_id = scores_sql.insert(
                    conn, username=user.username, challenge_id=claimed["challenge_id"], score=shown
                )["id"]
        evaluations_sql.insert_summaries(conn, sid, by_split, evaluation.primary_metric)
        stored = {**result.to_dict(), "split_codes": None if codes is None else codes.tolist()}  # organisers only
        evaluations_sql.finish(conn, sid, primary_value=public_value, result=stored, score_id=score_id)


def score_waiting_baselines(
    db: Database,
    media: MediaStorage,
    private: MediaStorage,
    challenge_id: str,
    *,
    progress: Progress | None = None,
) -> int:
    """Score a new challenge's queued baselines now (small grids: a second or two), reporting per baseline."""
    with db.connect() as conn:
        waiting = evaluations_sql.waiting_baseline_ids(conn, challenge_id)
    for index, sid in enumerate(waiting):
        process_submission(db, media, private, sid)
        if progress is not None:
            progress(index + 1, len(waiting))
    return len(waiting)

"""Scoring jobs: a submission's samples are scored in chunks against the private masks, by any number of worker
processes on any number of machines; the worker finishing the last chunk stores the aggregates per split.

A failure is recorded on the submission (status 'failed' with the reason), never lost; a submission whose chunks
together took longer than the time budget fails with a reason saying so. A participant's done submission gets its
api_score row (the rounded public aggregate, what Django's leaderboard would show) in the same transaction that
marks it done. Design: docs/architecture.md, "Parallel scoring".
"""

from __future__ import annotations

import logging
import math
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from db import challenges as challenges_sql
from db import evaluations as evaluations_sql
from db import scores as scores_sql
from db.database import Database
from exact import arrays, metrics, splits
from exact.accounts import load_active_user
from exact.errors import NotFound, PermissionDenied, UserError, ValidationError
from exact.evaluation_sets import INLINE_PIXEL_LIMIT, EvaluationSet, load_masks, load_split_codes
from exact.intake import Submission, get_submission_row
from exact.permissions import is_challenge_organiser, rounded
from exact.storage import MediaStorage

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
DEFAULT_TIME_BUDGET_SECONDS = 900  # EXACT_SCORING_SECONDS
Progress = Callable[[int, int], None]
# How often a worker renews its lease and records the chunk's progress (the lease itself lasts 60 s).
LEASE_RENEWAL_SECONDS = 2.0


class ScoringTimeout(UserError):
    pass


class _Abandoned(Exception):
    """The submission stopped being scored (it failed on another worker) while we scored one of its chunks."""


@dataclass(frozen=True)
class Chunking:
    """How submissions are split into chunks (every worker sharing a database should use the same).

    About ``chunk_pixels`` pixels of samples per chunk: 4 dense 64 x 64 samples, a few seconds of work, so two
    processes share even a small submission and a lost chunk costs little. Grids of at most
    ``whole_up_to_pixels`` pixels (the ones scored while the submitter waits) stay one chunk.
    """

    chunk_pixels: int = 4 * 64 * 64
    whole_up_to_pixels: int = INLINE_PIXEL_LIMIT


DEFAULT_CHUNKING = Chunking()


def worker_name() -> str:
    """Who holds a chunk, as recorded in exact_scoring_chunk.claimed_by: this machine and process."""
    return f"{socket.gethostname()}:{os.getpid()}"


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


class InputCache:
    """The last submission's inputs (evaluation set, masks, split codes, attributions) of one worker, so the next
    chunk of the same submission does not read its files again. One entry: a worker moves on to the next job."""

    def __init__(self) -> None:
        self._key: tuple[int, str | None] | None = None
        self._value: tuple[EvaluationSet, np.ndarray, np.ndarray | None, np.ndarray] | None = None

    def load(
        self, db: Database, media: MediaStorage, private: MediaStorage, submission: dict[str, Any]
    ) -> tuple[EvaluationSet, np.ndarray, np.ndarray | None, np.ndarray]:
        key = (submission["id"], submission["file_sha256"])
        if self._key != key or self._value is None:
            self._key, self._value = None, None
            with db.connect() as conn:
                row = evaluations_sql.get_evaluation(conn, submission["challenge_id"])
            if row is None:
                raise ValidationError("The challenge's evaluation set no longer exists.")
            evaluation = EvaluationSet.from_row(row)
            masks = load_masks(evaluation, private)
            codes = load_split_codes(evaluation, private)
            attributions = load_attributions(submission, media, private, evaluation.shape)
            self._key, self._value = key, (evaluation, masks, codes, attributions)
        return self._value


def process_submission(
    db: Database,
    media: MediaStorage,
    private: MediaStorage,
    submission_id: int | None = None,
    *,
    progress: Progress | None = None,
    time_budget: float = DEFAULT_TIME_BUDGET_SECONDS,
    chunking: Chunking = DEFAULT_CHUNKING,
) -> Submission | None:
    """Score this submission here, chunk after chunk (small grids: one chunk, while the submitter waits); without
    an id, score the next chunk of the fair queue. Returns the submission as it is afterwards (still 'running'
    when other workers hold some of its chunks), or None when there was nothing to claim."""
    cache = InputCache()
    if submission_id is None:
        sid = score_next_chunk(db, media, private, time_budget=time_budget, chunking=chunking, cache=cache)
        return None if sid is None else get_submission_row(db, sid)
    scored_any = False
    while score_next_chunk(
        db, media, private, submission_id, progress=progress, time_budget=time_budget, chunking=chunking, cache=cache
    ):
        scored_any = True
    return get_submission_row(db, submission_id) if scored_any else None


def score_next_chunk(
    db: Database,
    media: MediaStorage,
    private: MediaStorage,
    submission_id: int | None = None,
    *,
    progress: Progress | None = None,
    time_budget: float = DEFAULT_TIME_BUDGET_SECONDS,
    chunking: Chunking = DEFAULT_CHUNKING,
    cache: InputCache | None = None,
) -> int | None:
    """Claim one chunk (of this submission, or the next in the fair queue), score it, store it, and assemble the
    submission's result when it was the last. Returns the submission's id, or None when there was nothing to do."""
    with db.transaction() as conn:
        for orphan in evaluations_sql.waiting_without_evaluation(conn):
            evaluations_sql.fail(conn, orphan, "The challenge's evaluation set no longer exists.")
        evaluations_sql.split_into_chunks(
            conn,
            chunk_pixels=chunking.chunk_pixels,
            whole_up_to_pixels=chunking.whole_up_to_pixels,
            submission_id=submission_id,
        )
        claimed = evaluations_sql.claim_chunk(conn, worker=worker_name(), submission_id=submission_id)
    if claimed is None:
        return None
    chunk, submission = claimed
    sid = submission["id"]
    if chunk["attempts"] > MAX_ATTEMPTS:
        with db.transaction() as conn:
            evaluations_sql.fail(conn, sid, "Scoring was interrupted repeatedly; please submit again.")
        return sid
    try:
        _score_chunk(db, media, private, submission, chunk, cache or InputCache(), progress, time_budget)
    except _Abandoned:
        pass
    except UserError as exc:
        with db.transaction() as conn:
            evaluations_sql.fail(conn, sid, str(exc))
    except Exception:
        reference = uuid.uuid4().hex[:8]
        log.exception("scoring submission %s failed (reference %s)", sid, reference)
        with db.transaction() as conn:
            evaluations_sql.fail(conn, sid, f"Scoring failed on our side (reference {reference}).")
    return sid


def _json_float(value: float) -> float | None:
    return value if math.isfinite(value) else None  # NaN (not scorable) is stored as JSON null


def _over_budget(time_budget: float, done: int, total: int) -> ScoringTimeout:
    return ScoringTimeout(
        f"Scoring took longer than this server's budget of {time_budget:g} s per submission and was stopped "
        f"after {done} of {total} samples. Sparser attributions score faster."
    )


def _score_chunk(
    db: Database,
    media: MediaStorage,
    private: MediaStorage,
    submission: dict[str, Any],
    chunk: dict[str, Any],
    cache: InputCache,
    progress: Progress | None,
    time_budget: float,
) -> None:
    sid, index = submission["id"], chunk["chunk"]
    first, stop = chunk["first_sample"], chunk["stop_sample"]
    evaluation, masks, codes, attributions = cache.load(db, media, private, submission)
    total = evaluation.n_samples
    with db.connect() as conn:
        before = evaluations_sql.scoring_progress(conn, sid) or {}
    done_elsewhere = int(before.get("done") or 0)
    # The budget counts the time spent scoring the submission, summed over its chunks (an earlier attempt at
    # this chunk included): the same on one core or twenty, and waiting in the queue does not count.
    spent_before = float(chunk["seconds"])
    spent_elsewhere = 0.0
    started = last_renewal = time.monotonic()

    def report(done: int, _size: int) -> None:
        nonlocal last_renewal, spent_elsewhere
        now = time.monotonic()
        if spent_before + spent_elsewhere + (now - started) > time_budget:
            raise _over_budget(time_budget, done_elsewhere + done, total)
        if now - last_renewal > LEASE_RENEWAL_SECONDS:  # keep our claim while a long chunk runs
            with db.transaction() as lease_conn:
                others = evaluations_sql.extend_chunk_lease(
                    lease_conn, sid, index, samples_done=done, seconds=spent_before + now - started
                )
            if others is None:
                raise _Abandoned
            spent_elsewhere, last_renewal = others, now
        if progress is not None:
            progress(done_elsewhere + done, total)

    result = metrics.score_batch(
        attributions[first:stop],
        masks[first:stop],
        progress=report,
        emd_normaliser=evaluation.emd_normaliser,
        precision_rule=evaluation.precision_rule,
    )
    values = {name: [_json_float(v) for v in result.per_sample[name].tolist()] for name in result.metrics}
    seconds = spent_before + time.monotonic() - started
    with db.transaction() as conn:
        state = evaluations_sql.finish_chunk(conn, sid, index, per_sample=values, seconds=seconds)
        if state is None:
            return
        left, spent = state
        if spent > time_budget:
            raise _over_budget(time_budget, done_elsewhere + stop - first, total)
        if left == 0:
            _assemble(conn, submission, evaluation, codes)


def _assembled_result(chunks: list[dict[str, Any]], n_samples: int) -> metrics.EvaluationResult:
    """The per-sample values of every chunk, in sample order: the result scoring all samples at once gives."""
    expected_start = 0
    for c in chunks:
        if c["first_sample"] != expected_start:
            raise RuntimeError(f"the scored chunks do not cover samples {expected_start}.. exactly")
        expected_start = c["stop_sample"]
    if expected_start != n_samples:
        raise RuntimeError(f"the scored chunks cover {expected_start} of {n_samples} samples")
    names = [name for name in metrics.METRICS if name in chunks[0]["per_sample"]]  # jsonb does not keep key order
    per_sample: dict[str, np.ndarray] = {}
    for name in names:
        values = np.array(
            [math.nan if v is None else float(v) for c in chunks for v in c["per_sample"][name]], dtype=np.float64
        )
        values.setflags(write=False)
        per_sample[name] = values
    return metrics.EvaluationResult(
        n_samples=n_samples,
        per_sample=MappingProxyType(per_sample),
        summary=MappingProxyType({name: metrics.summarise(values) for name, values in per_sample.items()}),
    )


def _assemble(conn, claimed: dict[str, Any], evaluation: EvaluationSet, codes: np.ndarray | None) -> None:
    """In the transaction that stored the last chunk: the summaries per split, the api_score row, the result."""
    sid = claimed["id"]
    result = _assembled_result(evaluations_sql.chunk_results(conn, sid), evaluation.n_samples)
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
    score_id = None
    if claimed["kind"] == "participant":
        user = load_active_user(conn, claimed["user_id"])
        if user is None:
            raise PermissionDenied("The submitting account is no longer active.")
        shown = rounded(public_value)
        if shown is not None:  # nothing scorable on the public part: nothing to rank
            # The method's name goes to upstream's method_name column where there is one; its standard deviation
            # does not (emd_std stays NULL): Django would show it to everyone, and it is not a published aggregate.
            score_id = scores_sql.insert(
                conn,
                username=user.username,
                challenge_id=claimed["challenge_id"],
                score=shown,
                method_name=claimed.get("method_name") or None,
            )["id"]
    evaluations_sql.insert_summaries(conn, sid, by_split, evaluation.primary_metric)
    stored = {**result.to_dict(), "split_codes": None if codes is None else codes.tolist()}  # organisers only
    evaluations_sql.finish(conn, sid, primary_value=public_value, result=stored, score_id=score_id)


def progress(db: Database, actor_id: int | None, submission_id: int) -> tuple[int, int]:
    """(samples scored, samples in all) of a submission, for its submitter and the challenge's organisers only.

    A count, nothing per sample. A queued submission is at 0; a done one at N of N.
    """
    with db.connect() as conn:
        viewer = load_active_user(conn, actor_id)
        row = evaluations_sql.get_submission(conn, submission_id)
        if row is None:
            raise NotFound("No such submission.")
        own = viewer is not None and row["user_id"] is not None and viewer.id == row["user_id"]
        if not own and not is_challenge_organiser(viewer, challenges_sql.get_owner(conn, row["challenge_id"])):
            raise PermissionDenied("Only the submitter and the challenge's organisers can follow this scoring.")
        counts = evaluations_sql.scoring_progress(conn, submission_id) or {}
    total = int(counts.get("total") or 0)
    done = total if row["status"] == "done" else min(int(counts.get("done") or 0), total)
    return done, total


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

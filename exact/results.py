"""Reading results: one submission's figures and gallery, as exact.permissions allows the viewer to see them.

The page gets only what it may show: aggregates per permitted split (rounded), per-sample values and gallery
samples of the permitted splits. The stored per-sample arrays never leave this module for anyone else.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from db import challenges as challenges_sql
from db import evaluations as evaluations_sql
from db.database import Database
from exact import metrics, splits
from exact.accounts import load_active_user
from exact.competition import rules_in
from exact.errors import NotFound, PermissionDenied
from exact.evaluation_sets import EvaluationSet, load_inputs, load_masks, load_split_codes
from exact.intake import Submission
from exact.permissions import ResultAccess, is_challenge_organiser, result_access, rounded
from exact.scoring import load_attributions
from exact.storage import MediaStorage

GALLERY_SAMPLES = 4
SPLIT_LABELS = {"development": "Development", "public": "Public leaderboard", "private": "Private"}


@dataclass(frozen=True)
class ResultView:
    submission: Submission  # without its stored per-sample result
    evaluation: EvaluationSet | None
    access: ResultAccess
    summary: pd.DataFrame  # split, metric, mean, std, scored, not scorable, key
    per_sample: pd.DataFrame  # split, metric, sample, value, key (permitted splits only)


def _access(conn, viewer, submission: Submission, challenge_id: str) -> ResultAccess:
    rules = rules_in(conn, challenge_id)
    revealed = rules.private_revealed()
    final = (
        revealed
        and submission.user_id is not None
        and evaluations_sql.counts_at_the_end(conn, challenge_id, submission.user_id, submission.id)
    )
    access = result_access(
        viewer,
        owner_id=challenges_sql.get_owner(conn, challenge_id),
        submitter_id=submission.user_id,
        is_baseline=submission.kind == "baseline",
        private_revealed=revealed,
        counts_at_the_end=final,
    )
    if access is None:
        raise PermissionDenied("Only the submitter and the challenge's organisers can see this result.")
    return access


def view_submission(db: Database, actor_id: int | None, submission_id: int) -> ResultView:
    with db.connect() as conn:
        viewer = load_active_user(conn, actor_id)
        row = evaluations_sql.get_submission(conn, submission_id, with_result=True)
        if row is None:
            raise NotFound("No such submission.")
        submission = Submission.from_row(row)
        access = _access(conn, viewer, submission, submission.challenge_id)
        evaluation_row = evaluations_sql.get_evaluation(conn, submission.challenge_id)
        stored_summaries = evaluations_sql.summaries_of(conn, submission_id)
    evaluation = EvaluationSet.from_row(evaluation_row) if evaluation_row else None
    summary = _summary_frame(stored_summaries, access)
    per_sample = _per_sample_frame(submission.result, evaluation, access)
    return ResultView(
        submission=replace(submission, result=None, primary_value=rounded(submission.primary_value)),
        evaluation=evaluation,
        access=access,
        summary=summary,
        per_sample=per_sample,
    )


def _summary_frame(stored: dict[str, dict[str, Any]], access: ResultAccess) -> pd.DataFrame:
    records = []
    for split in splits.SPLITS:
        if split not in access.summary_splits or split not in stored:
            continue
        for name in metrics.METRICS:
            entry = stored[split].get(name)
            if entry is None:
                continue
            records.append(
                {
                    "split": SPLIT_LABELS[split],
                    "metric": metrics.METRICS[name].label,
                    "mean": rounded(entry["mean"]),
                    "std": rounded(entry["std"]),
                    "scored": entry["n_scored"],
                    "not scorable": entry["n_not_scorable"],
                    "key": name,
                }
            )
    return pd.DataFrame.from_records(
        records, columns=["split", "metric", "mean", "std", "scored", "not scorable", "key"]
    )


def _per_sample_frame(
    result: dict[str, Any] | None, evaluation: EvaluationSet | None, access: ResultAccess
) -> pd.DataFrame:
    """Long format (split, metric, sample, value) of the per-sample scores of the permitted samples only."""
    columns = ["split", "metric", "sample", "value", "key"]
    if not result or evaluation is None:
        return pd.DataFrame(columns=columns)
    codes = _codes_for(evaluation, result)
    allowed = {splits.SPLIT_CODES[s] for s in access.per_sample_splits}
    records = []
    stored = result.get("metrics") or {}
    for name in metrics.METRICS:
        entry = stored.get(name)
        if entry is None:
            continue
        for index, value in enumerate(entry["per_sample"]):
            if value is not None and int(codes[index]) in allowed:
                split = splits.SPLITS[int(codes[index])]
                records.append({"split": split, "metric": entry["label"], "sample": index, "value": value, "key": name})
    return pd.DataFrame.from_records(records, columns=columns)


def _codes_for(evaluation: EvaluationSet, result: dict[str, Any]) -> np.ndarray:
    """Split codes from the stored result (written at scoring time), else all public (sets from before splits)."""
    codes = result.get("split_codes")
    if codes is None:
        return np.ones(evaluation.n_samples, dtype=np.int8)
    return np.asarray(codes, dtype=np.int8)


def gallery(
    db: Database, media: MediaStorage, private: MediaStorage, actor_id: int | None, submission_id: int
) -> list[dict[str, Any]]:
    """A few samples: input, ground-truth mask and the attribution. Organisers see the first samples; everyone
    else (the submitter, or anyone for a baseline) the first development samples, whose masks are public."""
    view = view_submission(db, actor_id, submission_id)
    evaluation = view.evaluation
    if evaluation is None or view.submission.status != "done":
        return []
    codes = load_split_codes(evaluation, private)
    if codes is None:
        codes = np.ones(evaluation.n_samples, dtype=np.int8)
    allowed = [splits.SPLIT_CODES[s] for s in view.access.per_sample_splits]
    indices = [int(i) for i in np.flatnonzero(np.isin(codes, allowed))[:GALLERY_SAMPLES]]
    if not indices:
        return []
    inputs = load_inputs(evaluation, media)
    masks = load_masks(evaluation, private)
    attributions = load_attributions(
        {"kind": view.submission.kind, "file_path": view.submission.file_path}, media, private, evaluation.shape
    )
    return [
        {"index": i, "split": splits.SPLITS[int(codes[i])], "input": inputs[i], "mask": masks[i],
         "attribution": attributions[i]}
        for i in indices
    ]  # fmt: skip


def ground_truth_statistics(
    db: Database, private: MediaStorage, actor_id: int | None, challenge_id: str
) -> dict[str, Any]:
    with db.connect() as conn:
        user = load_active_user(conn, actor_id)
        row = evaluations_sql.get_evaluation(conn, challenge_id)
        owner = challenges_sql.get_owner(conn, challenge_id)
    if row is None:
        raise NotFound("This challenge has no evaluation set.")
    if not is_challenge_organiser(user, owner):
        raise PermissionDenied("Only the challenge's organisers can see the ground-truth statistics.")
    evaluation = EvaluationSet.from_row(row)
    masks = load_masks(evaluation, private)
    sizes = (masks > 0).reshape(len(masks), -1).sum(axis=1)
    return {
        "samples": evaluation.n_samples,
        "split": evaluation.split_sizes,
        "grid": f"{evaluation.height}×{evaluation.width}",
        "mask pixels (mean)": float(sizes.mean()),
        "mask pixels (min)": int(sizes.min()),
        "mask pixels (max)": int(sizes.max()),
        "empty masks": int((sizes == 0).sum()),
        "mask coverage": float(sizes.mean() / (evaluation.height * evaluation.width)),
        "seed": (row["benchmark"] or {}).get("seed"),  # the raw row: EvaluationSet never carries the seed
    }

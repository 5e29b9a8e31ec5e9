"""Scores: submit (logged-in users only, as themselves) and leaderboards ranked by PostgreSQL.

Score-only challenges rank the submitted numbers (in the direction the organiser chose). Ground-truth challenges
rank the server's aggregates: the public part while the challenge runs, the private part (each participant's
final submissions) once it has ended and the final board is revealed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import pandas as pd

from db import challenges as challenges_sql
from db import evaluations as evaluations_sql
from db import scores as scores_sql
from db.database import Database
from exact.accounts import require_user
from exact.competition import Rules, enforce_submission_rules, rules_in
from exact.errors import NotFound, ValidationError
from exact.evaluation_sets import BASELINES
from exact.permissions import rounded
from exact.validation import clean_score

LEADERBOARD_LIMIT = 1000  # rows shown; the ranking itself always covers every submission
REQUEST_KEY_MAX_LENGTH = 100
Board = Literal["public", "private"]


@dataclass(frozen=True)
class SubmissionResult:
    score_id: int
    challenge_id: str
    username: str
    score: float
    created_at: datetime
    rank: int
    best_score: float
    ranked_users: int
    repeated: bool = False  # True when this was a replay of an earlier submit (double click)


def submit_score(
    db: Database, actor_id: int | None, challenge_id: str, score: object, *, request_key: str | None = None
) -> SubmissionResult:
    """Store a score for the logged-in user. The username comes from the database, never from the caller.

    ``request_key`` makes a submit idempotent: the same key (one per filled-in form) stores one row only. The
    challenge's rules apply: its phase, the submission limits and the metric's valid range.
    """
    value = clean_score(score)
    if request_key is not None and not 0 < len(request_key) <= REQUEST_KEY_MAX_LENGTH:
        raise ValidationError("Invalid submission key.")
    with db.transaction() as conn:
        user = require_user(conn, actor_id, "submit a score")
        if not challenges_sql.exists(conn, challenge_id or ""):
            raise NotFound(f"There is no challenge {challenge_id!r}.")
        if evaluations_sql.get_evaluation(conn, challenge_id) is not None:
            raise ValidationError(
                "This challenge is scored on the server from your attributions: upload an attribution file instead."
            )
        repeated = False
        if request_key is not None and not scores_sql.claim_request_key(conn, request_key):
            existing_id = scores_sql.score_for_request_key(conn, request_key)
            row = scores_sql.get(conn, existing_id) if existing_id else None
            if row is None or row["username"] != user.username:
                raise ValidationError("This form was already used; reload the page to submit again.")
            rules = rules_in(conn, challenge_id)
            repeated = True
        else:
            rules = enforce_submission_rules(conn, user, challenge_id)
            rules.check_value(value)
            row = scores_sql.insert(conn, username=user.username, challenge_id=challenge_id, score=value)
            if request_key is not None:
                scores_sql.attach_request_key(conn, request_key, row["id"])
        standing = scores_sql.user_standing(conn, challenge_id, user.username, higher_is_better=rules.higher_is_better)
    return SubmissionResult(
        score_id=row["id"],
        challenge_id=challenge_id,
        username=user.username,
        score=row["score"],
        created_at=row["created_at"],
        rank=standing["rank"] if standing else 0,
        best_score=standing["best_score"] if standing else row["score"],
        ranked_users=standing["ranked_users"] if standing else 0,
        repeated=repeated,
    )


@dataclass(frozen=True)
class Leaderboard:
    challenge_id: str
    show_all: bool
    table: pd.DataFrame  # rank, username, score, created_at[, submissions], score_id[, submission_id, method, ...]
    progression: pd.DataFrame  # created_at, best_score, username
    histogram: pd.DataFrame  # bin_start, bin_end, count
    rules: Rules
    board: Board = "public"  # which part ranks this table (ground-truth challenges)
    # Ground-truth challenges only: baseline rows (submission_id, method, status, score, vs_random, metric means)
    # and the extra metric columns shown in ``table`` (method, vs_random, one column per shown metric).
    baselines: pd.DataFrame | None = None
    primary_metric: str | None = None
    shown_metrics: tuple[str, ...] = ()
    final_available: bool = False  # the private board is revealed (a viewer may switch to it)

    @property
    def is_empty(self) -> bool:
        return self.table.empty


def _histogram_frame(rows: list[dict], bins: int) -> pd.DataFrame:
    if not rows:
        return pd.DataFrame(columns=["bin_start", "bin_end", "count"])
    lo, hi = rows[0]["lo"], rows[0]["hi"]
    width = hi / bins - lo / bins if hi > lo else 0.0  # not (hi - lo) / bins: that overflows near the float limit
    records = []
    for row in rows:
        start = lo + (row["bucket"] - 1) * width
        records.append({"bin_start": start, "bin_end": start + width if width else hi, "count": row["count"]})
    return pd.DataFrame.from_records(records)


def leaderboard(
    db: Database, challenge_id: str, *, show_all: bool = False, bins: int = 30, board: Board | None = None
) -> Leaderboard:
    """The ranking shown to everyone. ``board`` None: the final (private) one once revealed, else the public one."""
    with db.connect() as conn:
        if not challenges_sql.exists(conn, challenge_id or ""):
            raise NotFound(f"There is no challenge {challenge_id!r}.")
        rules = rules_in(conn, challenge_id)
        evaluation = evaluations_sql.get_evaluation(conn, challenge_id)
        if evaluation is not None:
            return _ground_truth_board(conn, rules, evaluation, show_all=show_all, bins=bins, board=board)
        order = {"higher_is_better": rules.higher_is_better}
        if show_all:
            rows = scores_sql.all_ranked(conn, challenge_id, limit=LEADERBOARD_LIMIT, **order)
            columns = ["rank", "username", "score", "created_at", "score_id"]
        else:
            rows = scores_sql.best_per_user(conn, challenge_id, limit=LEADERBOARD_LIMIT, **order)
            columns = ["rank", "username", "score", "created_at", "submissions", "score_id"]
        progression = scores_sql.record_progression(conn, challenge_id, **order)
        histogram = scores_sql.histogram(conn, challenge_id, bins=bins)
    return Leaderboard(
        challenge_id=challenge_id,
        show_all=show_all,
        table=pd.DataFrame.from_records(rows, columns=columns),
        progression=pd.DataFrame.from_records(progression, columns=["created_at", "best_score", "username"]),
        histogram=_histogram_frame(histogram, bins),
        rules=rules,
    )


def _means(metrics_json: dict[str, Any] | None, names: tuple[str, ...]) -> dict[str, float | None]:
    return {name: rounded(((metrics_json or {}).get(name) or {}).get("mean")) for name in names}


def _ground_truth_board(
    conn, rules: Rules, evaluation: dict[str, Any], *, show_all: bool, bins: int, board: Board | None
) -> Leaderboard:
    """Method names, the shown metrics and each score relative to the random baseline, on the chosen part."""
    revealed = rules.private_revealed()
    if board is None:
        board = "private" if revealed else "public"
    if board == "private" and not revealed:
        raise ValidationError("The final leaderboard is revealed when the challenge has ended.")
    cid = rules.challenge_id
    shown = tuple(evaluation["shown_metrics"] or ())
    rows = evaluations_sql.ranked_submissions(
        conn, cid, split=board, best_per_user=not show_all, finals_only=board == "private", limit=LEADERBOARD_LIMIT
    )
    progression = evaluations_sql.board_progression(conn, cid, split=board)
    histogram = evaluations_sql.board_histogram(conn, cid, split=board, bins=bins)
    baseline_rows = evaluations_sql.baselines(conn, cid, split=board)
    random_row = next((b for b in baseline_rows if b["method_name"] == BASELINES["random"]), None)
    random_score = random_row["value"] if random_row and random_row["status"] == "done" else None

    def versus_random(value: float | None) -> float | None:
        return None if value is None or random_score is None else rounded(value - random_score)

    records = [
        {
            "rank": r["rank"],
            "username": r["username"],
            "method": r["method_name"],
            "score": r["score"],
            "vs_random": versus_random(r["score"]),
            **_means(r["metrics"], shown),
            "created_at": r["created_at"],
            **({} if show_all else {"submissions": r["submissions"]}),
            "score_id": r["score_id"],
            "submission_id": r["submission_id"],
        }
        for r in rows
    ]
    columns = ["rank", "username", "method", "score", "vs_random", *shown, "created_at"]
    columns += ([] if show_all else ["submissions"]) + ["score_id", "submission_id"]
    baselines = pd.DataFrame.from_records(
        [
            {
                "submission_id": b["id"],
                "method": b["method_name"],
                "status": b["status"],
                "score": b["value"],
                "vs_random": versus_random(b["value"]),
                **_means(b["metrics"], shown),
            }
            for b in baseline_rows
        ],
        columns=["submission_id", "method", "status", "score", "vs_random", *shown],
    )
    return Leaderboard(
        challenge_id=cid,
        show_all=show_all,
        table=pd.DataFrame.from_records(records, columns=columns),
        progression=pd.DataFrame.from_records(progression, columns=["created_at", "best_score", "username"]),
        histogram=_histogram_frame(histogram, bins),
        rules=rules,
        board=board,
        baselines=baselines,
        primary_metric=evaluation["primary_metric"],
        shown_metrics=shown,
        final_available=revealed,
    )


def leaderboard_csv(board: Leaderboard) -> bytes:
    """CSV of what the table shows (internal ids left out)."""
    table = board.table.drop(columns=["score_id", "submission_id"], errors="ignore").copy()
    # Spreadsheets run text cells starting with = + - @ (or tab/CR) as formulas: usernames and method names may.
    for column in table.columns:
        if table[column].dtype == object:
            table[column] = table[column].map(_defuse_formula)
    return table.to_csv(index=False).encode("utf-8")


def _defuse_formula(value: object) -> object:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def site_totals(db: Database) -> dict[str, int]:
    with db.connect() as conn:
        return scores_sql.totals(conn)


def recent_submissions(db: Database, *, limit: int = 10) -> pd.DataFrame:
    with db.connect() as conn:
        rows = scores_sql.recent(conn, limit=limit)
    return pd.DataFrame.from_records(
        rows, columns=["score_id", "username", "challenge_id", "score", "created_at", "title"]
    )

"""Scores: submit (logged-in users only, as themselves) and leaderboards ranked by PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from db import challenges as challenges_sql
from db import evaluations as evaluations_sql
from db import scores as scores_sql
from db.database import Database
from exact.accounts import require_user
from exact.errors import NotFound, ValidationError
from exact.evaluation import BASELINES
from exact.validation import clean_score

LEADERBOARD_LIMIT = 1000  # rows shown; the ranking itself always covers every submission
REQUEST_KEY_MAX_LENGTH = 100


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

    ``request_key`` makes a submit idempotent: the same key (one per filled-in form) stores one row only.
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
            repeated = True
        else:
            row = scores_sql.insert(conn, username=user.username, challenge_id=challenge_id, score=value)
            if request_key is not None:
                scores_sql.attach_request_key(conn, request_key, row["id"])
        standing = scores_sql.user_standing(conn, challenge_id, user.username)
    return SubmissionResult(
        score_id=row["id"],
        challenge_id=challenge_id,
        username=user.username,
        score=row["score"],
        created_at=row["created_at"],
        rank=standing["rank"],
        best_score=standing["best_score"],
        ranked_users=standing["ranked_users"],
        repeated=repeated,
    )


@dataclass(frozen=True)
class Leaderboard:
    challenge_id: str
    show_all: bool
    table: pd.DataFrame  # rank, username, score, created_at[, submissions]
    progression: pd.DataFrame  # created_at, best_score, username
    histogram: pd.DataFrame  # bin_start, bin_end, count
    # Ground-truth challenges only: baseline rows (method, score, vs_random, metric means) and the extra
    # metric columns shown in ``table`` (method, vs_random, one column per shown metric).
    baselines: pd.DataFrame | None = None
    primary_metric: str | None = None
    shown_metrics: tuple[str, ...] = ()

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


def leaderboard(db: Database, challenge_id: str, *, show_all: bool = False, bins: int = 30) -> Leaderboard:
    with db.connect() as conn:
        if not challenges_sql.exists(conn, challenge_id or ""):
            raise NotFound(f"There is no challenge {challenge_id!r}.")
        if show_all:
            rows = scores_sql.all_ranked(conn, challenge_id, limit=LEADERBOARD_LIMIT)
            columns = ["rank", "username", "score", "created_at", "score_id"]
        else:
            rows = scores_sql.best_per_user(conn, challenge_id, limit=LEADERBOARD_LIMIT)
            columns = ["rank", "username", "score", "created_at", "submissions", "score_id"]
        progression = scores_sql.record_progression(conn, challenge_id)
        histogram = scores_sql.histogram(conn, challenge_id, bins=bins)
        evaluation = evaluations_sql.get_evaluation(conn, challenge_id)
        details = evaluations_sql.details_for_scores(conn, [r["score_id"] for r in rows]) if evaluation else {}
        baseline_rows = evaluations_sql.baselines(conn, challenge_id) if evaluation else []
    table = pd.DataFrame.from_records(rows, columns=columns)
    board = Leaderboard(
        challenge_id=challenge_id,
        show_all=show_all,
        table=table,
        progression=pd.DataFrame.from_records(progression, columns=["created_at", "best_score", "username"]),
        histogram=_histogram_frame(histogram, bins),
    )
    if evaluation is None:
        return board
    return _with_ground_truth_columns(board, evaluation, details, baseline_rows)


def _with_ground_truth_columns(board: Leaderboard, evaluation: dict, details: dict, baseline_rows: list[dict]):
    """Method names, the shown metrics and each score relative to the random baseline."""
    shown = tuple(evaluation["shown_metrics"] or ())
    random_row = next((b for b in baseline_rows if b["method_name"] == BASELINES["random"]), None)
    random_score = random_row["primary_value"] if random_row and random_row["status"] == "done" else None
    table = board.table.copy()
    table.insert(2, "method", [details.get(sid, {}).get("method_name", "") for sid in table["score_id"]])
    table["vs_random"] = table["score"] - random_score if random_score is not None else None
    for name in shown:
        table[name] = [(details.get(sid, {}).get("means") or {}).get(name) for sid in table["score_id"]]
    table["result"] = [
        f"result?submission={details[sid]['submission_id']}" if sid in details else None for sid in table["score_id"]
    ]
    leading = ["rank", "username", "method", "score", "vs_random", *shown]
    table = table[leading + [c for c in table.columns if c not in leading]]
    baselines = pd.DataFrame.from_records(
        [
            {
                "result": f"result?submission={b['id']}",
                "method": b["method_name"],
                "status": b["status"],
                "score": b["primary_value"],
                "vs_random": None
                if b["primary_value"] is None or random_score is None
                else b["primary_value"] - random_score,
                **{name: ((b["metrics"] or {}).get(name) or {}).get("mean") for name in shown},
            }
            for b in baseline_rows
        ],
        columns=["result", "method", "status", "score", "vs_random", *shown],
    )
    return Leaderboard(
        challenge_id=board.challenge_id,
        show_all=board.show_all,
        table=table,
        progression=board.progression,
        histogram=board.histogram,
        baselines=baselines,
        primary_metric=evaluation["primary_metric"],
        shown_metrics=shown,
    )


def leaderboard_csv(board: Leaderboard) -> bytes:
    """CSV of what the table shows (internal ids left out)."""
    table = board.table.drop(columns=["score_id", "result"], errors="ignore").copy()
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

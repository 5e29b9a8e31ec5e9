"""Scores: submit (logged-in users only, as themselves) and leaderboards ranked by PostgreSQL.

Score-only challenges rank the submitted numbers (in the direction the organiser chose). Ground-truth challenges
rank the server's aggregates: the public part while the challenge runs, the private part (each participant's
final submissions) once it has ended and the final board is revealed.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
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
from exact.validation import clean_request_key, clean_score

PAGE_SIZE = 50  # rows of a leaderboard page; every row is reachable by paging and in the CSV
MAX_PAGE_SIZE = 1000
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
    request_key = clean_request_key(request_key)
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
    table: pd.DataFrame  # one page: rank, username, score, created_at[, submissions], score_id[, submission_id, ...]
    progression: pd.DataFrame  # created_at, best_score, username (empty when charts were not asked for)
    histogram: pd.DataFrame  # bin_start, bin_end, count (participants' best scores; empty without charts)
    rules: Rules
    board: Board = "public"  # which part ranks this table (ground-truth challenges)
    # Ground-truth challenges only: baseline rows (submission_id, method, status, score, vs_random, metric means)
    # and the extra metric columns shown in ``table`` (method, vs_random, one column per shown metric).
    baselines: pd.DataFrame | None = None
    primary_metric: str | None = None
    shown_metrics: tuple[str, ...] = ()
    final_available: bool = False  # the private board is revealed (a viewer may switch to it)
    total: int = 0  # rows of the whole ranking (users, or submissions with show_all)
    offset: int = 0  # position of the table's first row in the whole ranking
    limit: int = PAGE_SIZE

    @property
    def is_empty(self) -> bool:
        return self.total == 0 and self.table.empty

    @property
    def page(self) -> int:
        """0-based page number of this table."""
        return self.offset // self.limit

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.limit))


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


_PROGRESSION_COLUMNS = ["created_at", "best_score", "username"]


def _score_columns(show_all: bool) -> list[str]:
    if show_all:
        return ["rank", "username", "score", "created_at", "score_id"]
    return ["rank", "username", "score", "created_at", "submissions", "score_id"]


def _check_page(limit: int, offset: int) -> None:
    if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValidationError(f"A leaderboard page holds 1 to {MAX_PAGE_SIZE} rows.")
    if not isinstance(offset, int) or offset < 0:
        raise ValidationError("The page offset must be a whole number, 0 or more.")


def _open_board(conn, challenge_id: str):
    if not challenges_sql.exists(conn, challenge_id or ""):
        raise NotFound(f"There is no challenge {challenge_id!r}.")
    return rules_in(conn, challenge_id), evaluations_sql.get_evaluation(conn, challenge_id)


def leaderboard(
    db: Database,
    challenge_id: str,
    *,
    show_all: bool = False,
    bins: int = 30,
    board: Board | None = None,
    limit: int = PAGE_SIZE,
    offset: int = 0,
    charts: bool = True,
) -> Leaderboard:
    """One page (``limit`` rows from ``offset``) of the ranking shown to everyone, with ``total`` rows in all.

    ``board`` None: the final (private) one once revealed, else the public one. ``charts`` False leaves out the
    over-time and distribution data (the challenge page shows only the top rows). Score-only challenges read the
    read models (db/read_models.sql): a constant number of index-bounded queries whatever the number of rows.
    """
    _check_page(limit, offset)
    with db.connect() as conn:
        rules, evaluation = _open_board(conn, challenge_id)
        if evaluation is not None:
            return _ground_truth_board(
                conn, rules, evaluation, show_all=show_all, bins=bins, board=board, limit=limit, offset=offset,
                charts=charts,
            )  # fmt: skip
        _refuse_private_of_score_only(board)
        order = {"higher_is_better": rules.higher_is_better}
        sizes = scores_sql.board_sizes(conn, challenge_id)
        if show_all:
            rows = scores_sql.all_page(conn, challenge_id, limit=limit, offset=offset, **order)
            total = sizes["submissions"]
        else:
            rows = scores_sql.best_page(conn, challenge_id, limit=limit, offset=offset, **order)
            total = sizes["participants"]
        progression = scores_sql.record_progression(conn, challenge_id, **order) if charts else []
        histogram = scores_sql.histogram(conn, challenge_id, bins=bins, **order) if charts else []
    return Leaderboard(
        challenge_id=challenge_id,
        show_all=show_all,
        table=pd.DataFrame.from_records(rows, columns=_score_columns(show_all)),
        progression=pd.DataFrame.from_records(progression, columns=_PROGRESSION_COLUMNS),
        histogram=_histogram_frame(histogram, bins),
        rules=rules,
        total=total,
        offset=offset,
        limit=limit,
    )


def leaderboard_position(
    db: Database, challenge_id: str, username: str, *, show_all: bool = False, board: Board | None = None
) -> int | None:
    """0-based position of the user's (best) row in the ranking ("jump to my row"); None if they are not ranked."""
    with db.connect() as conn:
        rules, evaluation = _open_board(conn, challenge_id)
        if evaluation is None:
            position = scores_sql.best_position(conn, challenge_id, username, higher_is_better=rules.higher_is_better)
            if position is None or not show_all:
                return position
            return scores_sql.all_position(conn, challenge_id, username, higher_is_better=rules.higher_is_better)
        rows = _ground_truth_rows(conn, rules, show_all=show_all, board=board)[1]
    return next((i for i, r in enumerate(rows) if r["username"] == username), None)


def _means(metrics_json: dict[str, Any] | None, names: tuple[str, ...]) -> dict[str, float | None]:
    return {name: rounded(((metrics_json or {}).get(name) or {}).get("mean")) for name in names}


def _refuse_private_of_score_only(board: Board | None) -> None:
    if board == "private":
        raise ValidationError("This challenge has one leaderboard (scores are submitted, not split into parts).")


def _chosen_board(rules: Rules, board: Board | None) -> Board:
    revealed = rules.private_revealed()
    if board is None:
        board = "private" if revealed else "public"
    if board == "private" and not revealed:
        raise ValidationError("The final leaderboard is revealed when the challenge has ended.")
    return board


def _ground_truth_rows(conn, rules: Rules, *, show_all: bool, board: Board | None) -> tuple[Board, list[dict]]:
    # Ground-truth boards are ranked by db/evaluations.py over stored summaries (one row per scored submission,
    # far fewer than api_score rows); it ranks the whole board, which is paged here.
    board = _chosen_board(rules, board)
    rows = evaluations_sql.ranked_submissions(
        conn, rules.challenge_id, split=board, best_per_user=not show_all, finals_only=board == "private",
        limit=None,
    )  # fmt: skip
    return board, rows


def _ground_truth_columns(shown: tuple[str, ...], show_all: bool) -> list[str]:
    columns = ["rank", "username", "method", "score", "vs_random", *shown, "created_at"]
    return columns + ([] if show_all else ["submissions"]) + ["score_id", "submission_id"]


def _ground_truth_records(rows, shown, show_all: bool, random_score: float | None) -> list[dict[str, Any]]:
    def versus_random(value: float | None) -> float | None:
        return None if value is None or random_score is None else rounded(value - random_score)

    return [
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


def _random_score(baseline_rows) -> float | None:
    random_row = next((b for b in baseline_rows if b["method_name"] == BASELINES["random"]), None)
    return random_row["value"] if random_row and random_row["status"] == "done" else None


def _ground_truth_board(
    conn, rules: Rules, evaluation: dict[str, Any], *, show_all: bool, bins: int, board: Board | None,
    limit: int, offset: int, charts: bool,
) -> Leaderboard:  # fmt: skip
    """Method names, the shown metrics and each score relative to the random baseline, on the chosen part."""
    board, rows = _ground_truth_rows(conn, rules, show_all=show_all, board=board)
    cid = rules.challenge_id
    shown = tuple(evaluation["shown_metrics"] or ())
    progression = evaluations_sql.board_progression(conn, cid, split=board) if charts else []
    histogram = evaluations_sql.board_histogram(conn, cid, split=board, bins=bins) if charts else []
    baseline_rows = evaluations_sql.baselines(conn, cid, split=board)
    random_score = _random_score(baseline_rows)
    records = _ground_truth_records(rows[offset : offset + limit], shown, show_all, random_score)
    baselines = pd.DataFrame.from_records(
        [
            {
                "submission_id": b["id"],
                "method": b["method_name"],
                "status": b["status"],
                "score": b["value"],
                "vs_random": None if b["value"] is None or random_score is None else rounded(b["value"] - random_score),
                **_means(b["metrics"], shown),
            }
            for b in baseline_rows
        ],
        columns=["submission_id", "method", "status", "score", "vs_random", *shown],
    )
    return Leaderboard(
        challenge_id=cid,
        show_all=show_all,
        table=pd.DataFrame.from_records(records, columns=_ground_truth_columns(shown, show_all)),
        progression=pd.DataFrame.from_records(progression, columns=_PROGRESSION_COLUMNS),
        histogram=_histogram_frame(histogram, bins),
        rules=rules,
        board=board,
        baselines=baselines,
        primary_metric=evaluation["primary_metric"],
        shown_metrics=shown,
        final_available=rules.private_revealed(),
        total=len(rows),
        offset=offset,
        limit=limit,
    )


def iter_leaderboard_csv(
    db: Database, challenge_id: str, *, show_all: bool = False, board: Board | None = None
) -> Iterator[bytes]:
    """The whole ranking as CSV, chunk by chunk from a server-side cursor (internal ids left out)."""
    with db.streaming() as conn:
        rules, evaluation = _open_board(conn, challenge_id)
        if evaluation is None:
            _refuse_private_of_score_only(board)
            columns = [c for c in _score_columns(show_all) if c != "score_id"]
            chunks = scores_sql.iter_ranking(
                conn, challenge_id, show_all=show_all, higher_is_better=rules.higher_is_better
            )
        else:
            board, rows = _ground_truth_rows(conn, rules, show_all=show_all, board=board)
            shown = tuple(evaluation["shown_metrics"] or ())
            random_score = _random_score(evaluations_sql.baselines(conn, challenge_id, split=board))
            columns = [c for c in _ground_truth_columns(shown, show_all) if c not in ("score_id", "submission_id")]
            chunks = iter([_ground_truth_records(rows, shown, show_all, random_score)])
        yield _csv_lines([columns])
        for chunk in chunks:
            yield _csv_lines([[_csv_cell(row.get(c)) for c in columns] for row in chunk])


def leaderboard_csv(db: Database, board: Leaderboard) -> bytes:
    """CSV of the whole ranking the board's table pages through (every row, not just the page shown)."""
    return b"".join(iter_leaderboard_csv(db, board.challenge_id, show_all=board.show_all, board=board.board))


def _csv_lines(rows: list[list[object]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode("utf-8")


def _csv_cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return _defuse_formula(value)


def _defuse_formula(value: object) -> object:
    # Spreadsheets run text cells starting with = + - @ (or tab/CR) as formulas: usernames and method names may.
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

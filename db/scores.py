"""SQL for api_score: inserts, and rankings computed by PostgreSQL (never by loading every row)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

# Rows on the leaderboard: the challenge's scores that are not hidden, disqualified or withdrawn.
_RANKED_ROWS = """
api_score s WHERE s.challenge_id = :challenge_id
AND NOT EXISTS (SELECT 1 FROM exact_moderation m WHERE m.score_id = s.id)
"""


def _order(higher_is_better: bool) -> str:
    return "DESC" if higher_is_better else "ASC"


def _best_per_user(order: str) -> str:
    """One row per user: their best score, the earliest submission reaching it breaking ties."""
    return f"""
    SELECT DISTINCT ON (username) id, username, score, created_at FROM {_RANKED_ROWS}
    ORDER BY username, score {order}, created_at ASC, id ASC
    """


def insert(
    conn: Connection, *, username: str, challenge_id: str, score: float, created_at: datetime | None = None
) -> dict[str, Any]:
    query = sa.text(
        """
        INSERT INTO api_score (username, challenge_id, score, created_at)
        VALUES (:username, :challenge_id, :score, COALESCE(:created_at, now()))
        RETURNING id, username, challenge_id, score, created_at
        """
    )
    params = {"username": username, "challenge_id": challenge_id, "score": score, "created_at": created_at}
    return dict(conn.execute(query, params).mappings().one())


def get(conn: Connection, score_id: int) -> dict[str, Any] | None:
    query = sa.text("SELECT id, username, challenge_id, score, created_at FROM api_score WHERE id = :id")
    row = conn.execute(query, {"id": score_id}).mappings().first()
    return dict(row) if row else None


def claim_request_key(conn: Connection, request_key: str) -> bool:
    """True if this key is new; False if a submission with it already happened (double click, retry)."""
    query = sa.text(
        "INSERT INTO exact_submission_request (request_key, score_id) VALUES (:k, 0) "
        "ON CONFLICT (request_key) DO NOTHING RETURNING request_key"
    )
    return conn.execute(query, {"k": request_key}).first() is not None


def attach_request_key(conn: Connection, request_key: str, score_id: int) -> None:
    conn.execute(
        sa.text("UPDATE exact_submission_request SET score_id = :s WHERE request_key = :k"),
        {"s": score_id, "k": request_key},
    )


def score_for_request_key(conn: Connection, request_key: str) -> int | None:
    query = sa.text("SELECT score_id FROM exact_submission_request WHERE request_key = :k")
    return conn.execute(query, {"k": request_key}).scalar_one_or_none()


def best_per_user(
    conn: Connection, challenge_id: str, *, limit: int | None = None, higher_is_better: bool = True
) -> list[dict[str, Any]]:
    """Ranked best scores: ties share a rank (RANK), listed earlier submission first."""
    order = _order(higher_is_better)
    query = sa.text(
        f"""
        WITH best AS ({_best_per_user(order)}),
        counts AS (SELECT username, count(*) AS submissions FROM {_RANKED_ROWS} GROUP BY username)
        SELECT RANK() OVER (ORDER BY b.score {order}) AS rank,
               b.username, b.score, b.created_at, b.id AS score_id, c.submissions
        FROM best b JOIN counts c USING (username)
        ORDER BY b.score {order}, b.created_at ASC, b.id ASC
        LIMIT :limit
        """
    )
    rows = conn.execute(query, {"challenge_id": challenge_id, "limit": limit}).mappings()
    return [dict(r) for r in rows]


def all_ranked(
    conn: Connection, challenge_id: str, *, limit: int | None = None, higher_is_better: bool = True
) -> list[dict[str, Any]]:
    """Every submission, ranked among all submissions the same way."""
    order = _order(higher_is_better)
    query = sa.text(
        f"""
        SELECT RANK() OVER (ORDER BY score {order}) AS rank, username, score, created_at, id AS score_id
        FROM {_RANKED_ROWS}
        ORDER BY score {order}, created_at ASC, id ASC
        LIMIT :limit
        """
    )
    return [dict(r) for r in conn.execute(query, {"challenge_id": challenge_id, "limit": limit}).mappings()]


def user_standing(
    conn: Connection, challenge_id: str, username: str, *, higher_is_better: bool = True
) -> dict[str, Any] | None:
    """The user's rank among best-per-user scores, their best score and the number of ranked users."""
    order = _order(higher_is_better)
    query = sa.text(
        f"""
        WITH best AS ({_best_per_user(order)}),
        ranked AS (SELECT username, score, RANK() OVER (ORDER BY score {order}) AS rank FROM best)
        SELECT rank, score AS best_score, (SELECT count(*) FROM best) AS ranked_users
        FROM ranked WHERE username = :username
        """
    )
    row = conn.execute(query, {"challenge_id": challenge_id, "username": username}).mappings().first()
    return dict(row) if row else None


def record_progression(conn: Connection, challenge_id: str, *, higher_is_better: bool = True) -> list[dict[str, Any]]:
    """The submissions that improved the challenge's best score, in time order (a step line, not every row)."""
    best, better = ("max", ">") if higher_is_better else ("min", "<")
    query = sa.text(
        f"""
        WITH running AS (
            SELECT username, score, created_at, id,
                   {best}(score) OVER (ORDER BY created_at, id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
                       AS previous_best
            FROM {_RANKED_ROWS}
        )
        SELECT created_at, score AS best_score, username
        FROM running
        WHERE previous_best IS NULL OR score {better} previous_best
        ORDER BY created_at, id
        """
    )
    return [dict(r) for r in conn.execute(query, {"challenge_id": challenge_id}).mappings()]


def histogram(conn: Connection, challenge_id: str, *, bins: int = 30) -> list[dict[str, Any]]:
    """Counts of all submitted scores in equal-width bins between the lowest and highest score."""
    query = sa.text(
        f"""
        WITH ranked_rows AS (SELECT s.score FROM {_RANKED_ROWS}),
        bounds AS (SELECT min(score) AS lo, max(score) AS hi FROM ranked_rows),
        binned AS (
            SELECT CASE WHEN b.hi = b.lo THEN 1
                        ELSE LEAST(width_bucket(r.score, b.lo, b.hi, :bins), :bins) END AS bucket
            FROM ranked_rows r CROSS JOIN bounds b
        )
        SELECT bucket, count(*) AS count,
               (SELECT lo FROM bounds) AS lo, (SELECT hi FROM bounds) AS hi
        FROM binned GROUP BY bucket ORDER BY bucket
        """
    )
    return [dict(r) for r in conn.execute(query, {"challenge_id": challenge_id, "bins": bins}).mappings()]


def recent(conn: Connection, *, limit: int = 10) -> list[dict[str, Any]]:
    query = sa.text(
        """
        SELECT s.id AS score_id, s.username, s.challenge_id, s.score, s.created_at, c.title
        FROM api_score s LEFT JOIN api_challenge c ON c.challenge_id = s.challenge_id
        WHERE NOT EXISTS (SELECT 1 FROM exact_moderation m WHERE m.score_id = s.id)
        ORDER BY s.created_at DESC, s.id DESC
        LIMIT :limit
        """
    )
    return [dict(r) for r in conn.execute(query, {"limit": limit}).mappings()]


def totals(conn: Connection) -> dict[str, int]:
    query = sa.text(
        """
        SELECT (SELECT count(*) FROM api_challenge) AS challenges,
               (SELECT count(*) FROM api_score) AS submissions,
               (SELECT count(DISTINCT username) FROM api_score) AS participants,
               (SELECT count(*) FROM auth_user WHERE is_active) AS users
        """
    )
    return dict(conn.execute(query).mappings().one())

"""SQL for api_challenge, with per-challenge statistics read from exact_challenge_stats (db/read_models.sql)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

CHALLENGE_COLUMNS = "c.id, c.challenge_id, c.title, c.description, c.created_at, c.mlmodel, c.dataset, c.xaimethod"

# Whitelisted ORDER BY clauses; the UI picks a key, never SQL. Every one ends in a unique key so pages never
# overlap or skip rows.
SORTS = {
    "newest": "c.created_at DESC, c.id DESC",
    "oldest": "c.created_at ASC, c.id ASC",
    "participants": "participants DESC, c.created_at DESC, c.id DESC",
    "submissions": "submissions DESC, c.created_at DESC, c.id DESC",
    "best_score": "best_score DESC NULLS LAST, c.created_at DESC, c.id DESC",
    "title": "lower(c.title) ASC, c.id ASC",
}

# Statistics from the read model exact_challenge_stats (maintained by triggers, moderated scores left out); the
# best score in the challenge's direction (exact_competition; higher is better without a row).
_STATS_JOIN = """
LEFT JOIN exact_competition comp ON comp.challenge_id = c.challenge_id
LEFT JOIN exact_challenge_stats s ON s.challenge_id = c.challenge_id
"""
_STATS_COLUMNS = """
COALESCE(s.participants, 0) AS participants,
COALESCE(s.submissions, 0) AS submissions,
CASE WHEN comp.higher_is_better IS FALSE THEN s.lowest ELSE s.highest END AS best_score,
s.last_submission_at
"""
_SEARCH = """
(:search = '' OR c.title ILIKE :pattern OR c.challenge_id ILIKE :pattern OR c.description ILIKE :pattern)
"""


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# With an organiser's id: only the challenges they organise, i.e. their own and those without a recorded owner
# (exact.permissions.is_challenge_organiser); NULL: every challenge.
_ORGANISED_BY = """
(CAST(:organiser AS integer) IS NULL OR COALESCE(
    (SELECT o.user_id FROM exact_challenge_owner o WHERE o.challenge_id = c.challenge_id), CAST(:organiser AS integer)
) = CAST(:organiser AS integer))
"""


def list_with_stats(
    conn: Connection,
    *,
    search: str = "",
    sort: str = "newest",
    limit: int = 50,
    offset: int = 0,
    organiser_id: int | None = None,
) -> list[dict[str, Any]]:
    """One page of challenges with their statistics (only those ``organiser_id`` organises, if given)."""
    query = sa.text(
        f"""
        SELECT {CHALLENGE_COLUMNS}, {_STATS_COLUMNS}
        FROM api_challenge c
        {_STATS_JOIN}
        WHERE {_SEARCH} AND {_ORGANISED_BY}
        ORDER BY {SORTS[sort]}
        LIMIT :limit OFFSET :offset
        """
    )
    params = {
        "search": search,
        "pattern": _like_pattern(search),
        "limit": limit,
        "offset": offset,
        "organiser": organiser_id,
    }
    return [dict(row) for row in conn.execute(query, params).mappings()]


def count_matching(conn: Connection, *, search: str = "", organiser_id: int | None = None) -> int:
    query = sa.text(f"SELECT count(*) FROM api_challenge c WHERE {_SEARCH} AND {_ORGANISED_BY}")
    params = {"search": search, "pattern": _like_pattern(search), "organiser": organiser_id}
    return conn.execute(query, params).scalar_one()


def with_evaluation(conn: Connection, challenge_ids: list[str]) -> set[str]:
    """Which of these challenges are scored on the server (have an evaluation set): one statement for a page."""
    if not challenge_ids:
        return set()
    query = sa.text("SELECT challenge_id FROM exact_evaluation WHERE challenge_id = ANY(:ids)")
    return set(conn.execute(query, {"ids": list(challenge_ids)}).scalars())


def get(conn: Connection, challenge_id: str) -> dict[str, Any] | None:
    query = sa.text(
        f"""
        SELECT {CHALLENGE_COLUMNS}, {_STATS_COLUMNS}
        FROM api_challenge c
        {_STATS_JOIN}
        WHERE c.challenge_id = :challenge_id
        """
    )
    row = conn.execute(query, {"challenge_id": challenge_id}).mappings().first()
    return dict(row) if row else None


def lock(conn: Connection, challenge_id: str) -> dict[str, Any] | None:
    """The bare row, locked until the transaction ends (edits must not interleave)."""
    query = sa.text(f"SELECT {CHALLENGE_COLUMNS} FROM api_challenge c WHERE c.challenge_id = :c FOR UPDATE")
    row = conn.execute(query, {"c": challenge_id}).mappings().first()
    return dict(row) if row else None


def exists(conn: Connection, challenge_id: str) -> bool:
    query = sa.text("SELECT 1 FROM api_challenge WHERE challenge_id = :c")
    return conn.execute(query, {"c": challenge_id}).first() is not None


def insert(
    conn: Connection,
    *,
    challenge_id: str,
    title: str,
    description: str,
    mlmodel: str,
    dataset: str,
    xaimethod: str,
    owner: str = "",
) -> int:
    """Through exact_insert_challenge (db/upstream.py): it also fills the columns a newer upstream schema has,
    e.g. ``created_by``/``creator`` with ``owner`` (the organiser's username)."""
    query = sa.text(
        "SELECT exact_insert_challenge(:challenge_id, :title, :description, :mlmodel, :dataset, :xaimethod, :owner)"
    )
    params = {
        "challenge_id": challenge_id,
        "title": title,
        "description": description,
        "mlmodel": mlmodel,
        "dataset": dataset,
        "xaimethod": xaimethod,
        "owner": owner,
    }
    return conn.execute(query, params).scalar_one()


def update(
    conn: Connection, *, challenge_id: str, title: str, description: str, mlmodel: str, dataset: str, xaimethod: str
) -> None:
    query = sa.text(
        """
        UPDATE api_challenge
        SET title = :title, description = :description, mlmodel = :mlmodel, dataset = :dataset, xaimethod = :xaimethod
        WHERE challenge_id = :challenge_id
        """
    )
    conn.execute(
        query,
        {
            "challenge_id": challenge_id,
            "title": title,
            "description": description,
            "mlmodel": mlmodel,
            "dataset": dataset,
            "xaimethod": xaimethod,
        },
    )


def count(conn: Connection) -> int:
    return conn.execute(sa.text("SELECT count(*) FROM api_challenge")).scalar_one()


def get_owner(conn: Connection, challenge_id: str) -> int | None:
    query = sa.text("SELECT user_id FROM exact_challenge_owner WHERE challenge_id = :c")
    return conn.execute(query, {"c": challenge_id}).scalar_one_or_none()


def set_owner(conn: Connection, challenge_id: str, user_id: int) -> None:
    conn.execute(
        sa.text("INSERT INTO exact_challenge_owner (challenge_id, user_id) VALUES (:c, :u)"),
        {"c": challenge_id, "u": user_id},
    )


def delete_everything(conn: Connection, challenge_id: str) -> dict[str, int]:
    """The challenge and everything that refers to it by its business id (Django defined no foreign keys)."""
    counts = {}
    conn.execute(
        sa.text(
            "DELETE FROM exact_submission_summary WHERE submission_id IN "
            "(SELECT id FROM exact_submission WHERE challenge_id = :c)"
        ),
        {"c": challenge_id},
    )
    conn.execute(
        sa.text(
            "DELETE FROM exact_scoring_chunk WHERE submission_id IN "
            "(SELECT id FROM exact_submission WHERE challenge_id = :c)"
        ),
        {"c": challenge_id},
    )
    tables = (
        "api_score", "exact_submission", "exact_evaluation", "exact_evaluation_split", "exact_evaluation_rules",
        "exact_competition",
        "exact_moderation", "exact_final_choice", "exact_challenge_owner", "exact_model", "api_challenge",
    )  # fmt: skip
    for table in tables:
        result = conn.execute(sa.text(f"DELETE FROM {table} WHERE challenge_id = :c"), {"c": challenge_id})
        counts[table] = result.rowcount or 0
    return counts

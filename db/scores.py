"""SQL for api_score: inserts, and rankings read from the read models (db/read_models.sql), one page at a time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

# Rows on the leaderboard: the challenge's ranked scores (exact_ranked_score: completed and with a value on newer
# upstream schemas, db/upstream.py) that are not hidden, disqualified or withdrawn.
_RANKED_ROWS = """
exact_ranked_score s WHERE s.challenge_id = :challenge_id
AND NOT EXISTS (SELECT 1 FROM exact_moderation m WHERE m.score_id = s.id)
"""


def insert(
    conn: Connection,
    *,
    username: str,
    challenge_id: str,
    score: float,
    created_at: datetime | None = None,
    method_name: str | None = None,
    std: float | None = None,
) -> dict[str, Any]:
    """Through exact_insert_score (db/upstream.py): on a newer upstream schema it also writes status, emd_score
    (= score), emd_std (= ``std``) and method_name, as upstream's Django would."""
    query = sa.text("SELECT * FROM exact_insert_score(:username, :challenge_id, :score, :created_at, :method, :std)")
    params = {
        "username": username,
        "challenge_id": challenge_id,
        "score": score,
        "created_at": created_at,
        "method": method_name,
        "std": std,
    }
    return dict(conn.execute(query, params).mappings().one())


def get(conn: Connection, score_id: int) -> dict[str, Any] | None:
    query = sa.text("SELECT id, username, challenge_id, score, created_at FROM exact_ranked_score WHERE id = :id")
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


def _direction(higher_is_better: bool) -> dict[str, str]:
    """Columns and comparisons of exact_score_best in one ranking direction (indexes exist for both)."""
    if higher_is_better:
        return {"score": "best_high", "id": "best_high_id", "at": "best_high_at", "order": "DESC", "better": ">"}
    return {"score": "best_low", "id": "best_low_id", "at": "best_low_at", "order": "ASC", "better": "<"}


def board_sizes(conn: Connection, challenge_id: str) -> dict[str, int]:
    """Ranked users and ranked submissions of a challenge (exact_challenge_stats)."""
    query = sa.text("SELECT participants, submissions FROM exact_challenge_stats WHERE challenge_id = :c")
    row = conn.execute(query, {"c": challenge_id}).mappings().first()
    return (
        {"participants": row["participants"], "submissions": row["submissions"]}
        if row
        else {
            "participants": 0,
            "submissions": 0,
        }
    )


def _ranked_page(rows: list[dict[str, Any]], offset: int, better_than_first: int) -> list[dict[str, Any]]:
    """RANK across page boundaries: a row's rank is 1 + the number of strictly better rows. Rows sharing the
    page's first score may continue a tie from the previous page (``better_than_first`` counts what beats it);
    for any other row every row before the page is strictly better."""
    for position, row in enumerate(rows):
        if row["score"] == rows[0]["score"]:
            row["rank"] = better_than_first + 1
        elif row["score"] == rows[position - 1]["score"]:
            row["rank"] = rows[position - 1]["rank"]
        else:
            row["rank"] = offset + position + 1
    return rows


def best_page(
    conn: Connection, challenge_id: str, *, higher_is_better: bool = True, limit: int = 50, offset: int = 0
) -> list[dict[str, Any]]:
    """One page of each user's best score, ranked (ties listed earlier submission first), from exact_score_best."""
    d = _direction(higher_is_better)
    query = sa.text(
        f"""
        SELECT username, {d["score"]} AS score, {d["at"]} AS created_at, submissions, {d["id"]} AS score_id
        FROM exact_score_best WHERE challenge_id = :c
        ORDER BY {d["score"]} {d["order"]}, {d["at"]}, {d["id"]}
        LIMIT :limit OFFSET :offset
        """
    )
    rows = [dict(r) for r in conn.execute(query, {"c": challenge_id, "limit": limit, "offset": offset}).mappings()]
    if not rows:
        return []
    better = 0
    if offset:
        count = sa.text(
            f"SELECT count(*) FROM exact_score_best WHERE challenge_id = :c AND {d['score']} {d['better']} :s"
        )
        better = conn.execute(count, {"c": challenge_id, "s": rows[0]["score"]}).scalar_one()
    return _ranked_page(rows, offset, better)


def all_page(
    conn: Connection, challenge_id: str, *, higher_is_better: bool = True, limit: int = 50, offset: int = 0
) -> list[dict[str, Any]]:
    """One page of every ranked submission, ranked the same way, over api_score's direction index."""
    order, better = ("DESC", ">") if higher_is_better else ("ASC", "<")
    query = sa.text(
        f"""
        SELECT s.username, s.score, s.created_at, s.id AS score_id FROM {_RANKED_ROWS}
        ORDER BY s.score {order}, s.created_at, s.id
        LIMIT :limit OFFSET :offset
        """
    )
    params = {"challenge_id": challenge_id, "limit": limit, "offset": offset}
    rows = [dict(r) for r in conn.execute(query, params).mappings()]
    if not rows:
        return []
    count = 0
    if offset:
        query = sa.text(f"SELECT count(*) FROM {_RANKED_ROWS} AND s.score {better} :s")
        count = conn.execute(query, {"challenge_id": challenge_id, "s": rows[0]["score"]}).scalar_one()
    return _ranked_page(rows, offset, count)


def best_position(conn: Connection, challenge_id: str, username: str, *, higher_is_better: bool = True) -> int | None:
    """0-based position of the user's row in the best-per-user listing (None: not ranked)."""
    d = _direction(higher_is_better)
    query = sa.text(
        f"""
        SELECT (SELECT count(*) FROM exact_score_best o
                WHERE o.challenge_id = b.challenge_id
                  AND (o.{d["score"]} {d["better"]} b.{d["score"]}
                       OR (o.{d["score"]} = b.{d["score"]}
                           AND (o.{d["at"]}, o.{d["id"]}) < (b.{d["at"]}, b.{d["id"]}))))
        FROM exact_score_best b WHERE b.challenge_id = :c AND b.username = :u
        """
    )
    return conn.execute(query, {"c": challenge_id, "u": username}).scalar_one_or_none()


def all_position(conn: Connection, challenge_id: str, username: str, *, higher_is_better: bool = True) -> int | None:
    """0-based position of the user's best submission in the all-submissions listing (None: not ranked)."""
    d = _direction(higher_is_better)
    query = sa.text(
        f"""
        SELECT (SELECT count(*) FROM {_RANKED_ROWS}
                AND (s.score {d["better"]} b.{d["score"]}
                     OR (s.score = b.{d["score"]} AND (s.created_at, s.id) < (b.{d["at"]}, b.{d["id"]}))))
        FROM exact_score_best b WHERE b.challenge_id = :challenge_id AND b.username = :u
        """
    )
    return conn.execute(query, {"challenge_id": challenge_id, "u": username}).scalar_one_or_none()


def iter_ranking(
    conn: Connection, challenge_id: str, *, show_all: bool, higher_is_better: bool = True, chunk: int = 5000
) -> Iterator[list[dict[str, Any]]]:
    """The whole ranking in chunks from a server-side cursor (the CSV): never all rows in memory at once."""
    if show_all:
        order = "DESC" if higher_is_better else "ASC"
        query = sa.text(
            f"""
            SELECT RANK() OVER (ORDER BY s.score {order}) AS rank, s.username, s.score, s.created_at,
                   s.id AS score_id
            FROM {_RANKED_ROWS} ORDER BY s.score {order}, s.created_at, s.id
            """
        )
    else:
        d = _direction(higher_is_better)
        query = sa.text(
            f"""
            SELECT RANK() OVER (ORDER BY {d["score"]} {d["order"]}) AS rank, username, {d["score"]} AS score,
                   {d["at"]} AS created_at, submissions, {d["id"]} AS score_id
            FROM exact_score_best WHERE challenge_id = :challenge_id
            ORDER BY {d["score"]} {d["order"]}, {d["at"]}, {d["id"]}
            """
        )
    result = conn.execution_options(stream_results=True, yield_per=chunk).execute(query, {"challenge_id": challenge_id})
    for part in result.mappings().partitions():
        yield [dict(r) for r in part]


def user_standing(
    conn: Connection, challenge_id: str, username: str, *, higher_is_better: bool = True
) -> dict[str, Any] | None:
    """The user's rank among best-per-user scores, their best score and the number of ranked users."""
    d = _direction(higher_is_better)
    query = sa.text(
        f"""
        SELECT 1 + (SELECT count(*) FROM exact_score_best o
                    WHERE o.challenge_id = b.challenge_id AND o.{d["score"]} {d["better"]} b.{d["score"]}) AS rank,
               b.{d["score"]} AS best_score,
               (SELECT participants FROM exact_challenge_stats s WHERE s.challenge_id = b.challenge_id)
                   AS ranked_users
        FROM exact_score_best b WHERE b.challenge_id = :c AND b.username = :u
        """
    )
    row = conn.execute(query, {"c": challenge_id, "u": username}).mappings().first()
    return dict(row) if row else None


def record_progression(conn: Connection, challenge_id: str, *, higher_is_better: bool = True) -> list[dict[str, Any]]:
    """The submissions that improved the challenge's best score, in time order, from exact_score_record (a row
    only for each improvement, so bounded by the number of records, not of submissions)."""
    query = sa.text(
        """
        SELECT created_at, score AS best_score, username FROM exact_score_record
        WHERE challenge_id = :c AND higher_is_better = :h
        ORDER BY created_at, score_id
        """
    )
    return [dict(r) for r in conn.execute(query, {"c": challenge_id, "h": higher_is_better}).mappings()]


def histogram(
    conn: Connection, challenge_id: str, *, bins: int = 30, higher_is_better: bool = True
) -> list[dict[str, Any]]:
    """Counts of the participants' best scores in equal-width bins between the lowest and highest (bounded by
    the number of participants, read from exact_score_best)."""
    column = _direction(higher_is_better)["score"]
    # The bounds are the two ends of the challenge's index on that column (two probes, not a pass), and the
    # rows are grouped by bucket alone: half the time of aggregating a materialised copy of the bests.
    query = sa.text(
        f"""
        WITH bounds AS MATERIALIZED (
            SELECT (SELECT {column} FROM exact_score_best WHERE challenge_id = :challenge_id
                    ORDER BY {column} LIMIT 1) AS lo,
                   (SELECT {column} FROM exact_score_best WHERE challenge_id = :challenge_id
                    ORDER BY {column} DESC LIMIT 1) AS hi
        )
        SELECT bucket, count(*) AS count, min(lo) AS lo, min(hi) AS hi
        FROM (
            SELECT CASE WHEN b.hi = b.lo THEN 1
                        ELSE LEAST(width_bucket(r.{column}, b.lo, b.hi, :bins), :bins) END AS bucket, b.lo, b.hi
            FROM exact_score_best r CROSS JOIN bounds b WHERE r.challenge_id = :challenge_id
        ) binned
        GROUP BY bucket ORDER BY bucket
        """
    )
    return [dict(r) for r in conn.execute(query, {"challenge_id": challenge_id, "bins": bins}).mappings()]


def recent(conn: Connection, *, limit: int = 10) -> list[dict[str, Any]]:
    query = sa.text(
        """
        SELECT s.id AS score_id, s.username, s.challenge_id, s.score, s.created_at, c.title
        FROM exact_ranked_score s LEFT JOIN api_challenge c ON c.challenge_id = s.challenge_id
        WHERE NOT EXISTS (SELECT 1 FROM exact_moderation m WHERE m.score_id = s.id)
        ORDER BY s.created_at DESC, s.id DESC
        LIMIT :limit
        """
    )
    return [dict(r) for r in conn.execute(query, {"limit": limit}).mappings()]


def totals(conn: Connection) -> dict[str, int]:
    """Site counts from the read models: ranked submissions and distinct participants over all challenges, and
    active users (exact_site_count, kept by triggers)."""
    query = sa.text(
        """
        SELECT (SELECT count(*) FROM api_challenge) AS challenges,
               (SELECT COALESCE(sum(submissions), 0) FROM exact_challenge_stats) AS submissions,
               (SELECT count(*) FROM exact_participant) AS participants,
               (SELECT value FROM exact_site_count WHERE name = 'active_users') AS users
        """
    )
    return dict(conn.execute(query).mappings().one())

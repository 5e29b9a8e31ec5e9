"""SQL for an organiser's challenge dashboard: every submission of one challenge, whichever way it came in.

A challenge's submissions are the participants' rows in ``exact_submission`` (attribution uploads, in any state,
with the score they produced) plus the ``api_score`` rows no submission produced (typed-in scores, and rows
written through Django). Baselines are the organiser's own reference points, not submissions, and are left out.
Every statement is bounded by the challenge (indexes on ``challenge_id``) and, for listings, by a page.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

_ENTRIES = """
WITH entries AS (
    SELECT NULL::bigint AS submission_id, s.id AS score_id, s.username, ''::text AS method_name,
           'done'::text AS status, s.score, ''::text AS error, s.created_at, NULL::timestamptz AS finished_at
    FROM api_score s
    WHERE s.challenge_id = :c AND NOT EXISTS (SELECT 1 FROM exact_submission e WHERE e.score_id = s.id)
    UNION ALL
    SELECT e.id, e.score_id, e.username, e.method_name::text, e.status::text,
           COALESCE(sc.score, e.primary_value), COALESCE(e.error, ''), e.created_at, e.finished_at
    FROM exact_submission e
    LEFT JOIN api_score sc ON sc.id = e.score_id
    WHERE e.challenge_id = :c AND e.kind = 'participant'
)
"""


def totals(conn: Connection, challenge_id: str) -> dict[str, int]:
    query = sa.text(
        f"""
        {_ENTRIES}
        SELECT count(*) AS submissions,
               count(*) FILTER (WHERE status = 'failed') AS failed,
               count(*) FILTER (WHERE status IN ('queued', 'running')) AS waiting,
               count(DISTINCT username) AS participants
        FROM entries
        """
    )
    return dict(conn.execute(query, {"c": challenge_id}).mappings().one())


def count_participants(conn: Connection, challenge_id: str) -> int:
    query = sa.text(f"{_ENTRIES} SELECT count(DISTINCT username) FROM entries")
    return conn.execute(query, {"c": challenge_id}).scalar_one()


def count_failed(conn: Connection, challenge_id: str) -> int:
    query = sa.text(
        "SELECT count(*) FROM exact_submission WHERE challenge_id = :c AND kind = 'participant' AND status = 'failed'"
    )
    return conn.execute(query, {"c": challenge_id}).scalar_one()


def per_day(conn: Connection, challenge_id: str, *, since: datetime) -> list[dict[str, Any]]:
    """Submissions per UTC day since ``since`` (at most one row per day), by outcome."""
    query = sa.text(
        f"""
        {_ENTRIES}
        SELECT (created_at AT TIME ZONE 'UTC')::date AS day,
               count(*) FILTER (WHERE status = 'done') AS scored,
               count(*) FILTER (WHERE status = 'failed') AS failed,
               count(*) FILTER (WHERE status IN ('queued', 'running')) AS waiting
        FROM entries
        WHERE created_at >= :since
        GROUP BY 1
        ORDER BY 1
        """
    )
    return [dict(r) for r in conn.execute(query, {"c": challenge_id, "since": since}).mappings()]


def participants(conn: Connection, challenge_id: str, *, limit: int, offset: int) -> list[dict[str, Any]]:
    """One page of the participants, most recently active first (the username breaks ties: pages never overlap)."""
    query = sa.text(
        f"""
        {_ENTRIES}
        SELECT username, count(*) AS submissions, count(*) FILTER (WHERE status = 'failed') AS failed,
               min(created_at) AS first_at, max(created_at) AS last_at
        FROM entries
        GROUP BY username
        ORDER BY max(created_at) DESC, username
        LIMIT :limit OFFSET :offset
        """
    )
    params = {"c": challenge_id, "limit": limit, "offset": offset}
    return [dict(r) for r in conn.execute(query, params).mappings()]


def failed(conn: Connection, challenge_id: str, *, limit: int, offset: int) -> list[dict[str, Any]]:
    """One page of the challenge's failed submissions, newest first, with the reason scoring gave."""
    query = sa.text(
        """
        SELECT id AS submission_id, username, method_name, COALESCE(error, '') AS error, created_at, finished_at
        FROM exact_submission
        WHERE challenge_id = :c AND kind = 'participant' AND status = 'failed'
        ORDER BY created_at DESC, id DESC
        LIMIT :limit OFFSET :offset
        """
    )
    params = {"c": challenge_id, "limit": limit, "offset": offset}
    return [dict(r) for r in conn.execute(query, params).mappings()]


def iter_export(
    conn: Connection, challenge_id: str, *, limit: int, offset: int, chunk: int = 5000
) -> Iterator[list[dict[str, Any]]]:
    """Rows ``offset`` to ``offset + limit`` of every submission in time order, in chunks from a server-side cursor
    (``conn`` must be a ``Database.streaming()`` connection), with any moderation of its score."""
    query = sa.text(
        f"""
        {_ENTRIES}
        SELECT en.submission_id, en.score_id, en.username, en.method_name, en.status, en.score, en.error,
               COALESCE(m.action, '') AS moderation, COALESCE(m.reason, '') AS moderation_reason,
               en.created_at, en.finished_at
        FROM entries en
        LEFT JOIN exact_moderation m ON m.score_id = en.score_id
        ORDER BY en.created_at, en.submission_id NULLS FIRST, en.score_id NULLS FIRST
        LIMIT :limit OFFSET :offset
        """
    )
    params = {"c": challenge_id, "limit": limit, "offset": offset}
    result = conn.execution_options(stream_results=True, yield_per=chunk).execute(query, params)
    for part in result.mappings().partitions():
        yield [dict(r) for r in part]

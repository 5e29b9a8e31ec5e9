"""SQL for exact_evaluation (ground-truth sets) and exact_submission (attribution submissions and baselines)."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

EVALUATION_COLUMNS = (
    "challenge_id, inputs_path, masks_path, n_samples, height, width, primary_metric, shown_metrics, benchmark, "
    "created_by, created_at"
)
SUBMISSION_COLUMNS = (
    "id, challenge_id, kind, user_id, username, method_name, description, url, file_path, file_size, file_sha256, "
    "request_key, status, error, primary_metric, primary_value, score_id, attempts, created_at, started_at, "
    "finished_at, lease_until"
)
LEASE_SECONDS = 60


def insert_evaluation(conn: Connection, **values: Any) -> None:
    values = {**values, "benchmark": json.dumps(values["benchmark"]) if values.get("benchmark") else None}
    conn.execute(
        sa.text(
            """
            INSERT INTO exact_evaluation (challenge_id, inputs_path, masks_path, n_samples, height, width,
                                          primary_metric, shown_metrics, benchmark, created_by)
            VALUES (:challenge_id, :inputs_path, :masks_path, :n_samples, :height, :width, :primary_metric,
                    :shown_metrics, CAST(:benchmark AS jsonb), :created_by)
            """
        ),
        values,
    )


def get_evaluation(conn: Connection, challenge_id: str) -> dict[str, Any] | None:
    query = sa.text(f"SELECT {EVALUATION_COLUMNS} FROM exact_evaluation WHERE challenge_id = :c")
    row = conn.execute(query, {"c": challenge_id}).mappings().first()
    return dict(row) if row else None


def evaluated_challenge_ids(conn: Connection) -> set[str]:
    return set(conn.execute(sa.text("SELECT challenge_id FROM exact_evaluation")).scalars())


def insert_submission(conn: Connection, **values: Any) -> dict[str, Any]:
    defaults = {"user_id": None, "description": "", "url": "", "file_path": None, "file_size": None,
                "file_sha256": None, "request_key": None}
    query = sa.text(
        f"""
        INSERT INTO exact_submission (challenge_id, kind, user_id, username, method_name, description, url,
                                      file_path, file_size, file_sha256, request_key, status, primary_metric)
        VALUES (:challenge_id, :kind, :user_id, :username, :method_name, :description, :url, :file_path,
                :file_size, :file_sha256, :request_key, 'queued', :primary_metric)
        RETURNING {SUBMISSION_COLUMNS}
        """
    )
    return dict(conn.execute(query, {**defaults, **values}).mappings().one())


def get_submission(conn: Connection, submission_id: int, *, with_result: bool = False) -> dict[str, Any] | None:
    columns = SUBMISSION_COLUMNS + (", result" if with_result else "")
    row = conn.execute(
        sa.text(f"SELECT {columns} FROM exact_submission WHERE id = :id"), {"id": submission_id}
    ).mappings().first()
    return dict(row) if row else None


def submission_for_request_key(conn: Connection, request_key: str) -> dict[str, Any] | None:
    query = sa.text(f"SELECT {SUBMISSION_COLUMNS} FROM exact_submission WHERE request_key = :k")
    row = conn.execute(query, {"k": request_key}).mappings().first()
    return dict(row) if row else None


def claim(conn: Connection, submission_id: int | None = None) -> dict[str, Any] | None:
    """Mark one queued submission (or one whose worker vanished: lease expired) as running, for this worker.

    ``SKIP LOCKED`` lets several app processes share the queue without ever scoring a submission twice at once.
    """
    which = "id = :id AND" if submission_id is not None else ""
    query = sa.text(
        f"""
        UPDATE exact_submission SET status = 'running', started_at = now(), attempts = attempts + 1,
               lease_until = now() + make_interval(secs => :lease)
        WHERE id = (
            SELECT id FROM exact_submission
            WHERE {which} (status = 'queued' OR (status = 'running' AND lease_until < now()))
            ORDER BY created_at, id
            FOR UPDATE SKIP LOCKED
            LIMIT 1
        )
        RETURNING {SUBMISSION_COLUMNS}
        """
    )
    row = conn.execute(query, {"id": submission_id, "lease": LEASE_SECONDS}).mappings().first()
    return dict(row) if row else None


def extend_lease(conn: Connection, submission_id: int) -> None:
    conn.execute(
        sa.text(
            "UPDATE exact_submission SET lease_until = now() + make_interval(secs => :lease) "
            "WHERE id = :id AND status = 'running'"
        ),
        {"id": submission_id, "lease": LEASE_SECONDS},
    )


def finish(
    conn: Connection, submission_id: int, *, primary_value: float, result: dict[str, Any], score_id: int | None
) -> None:
    conn.execute(
        sa.text(
            """
            UPDATE exact_submission
            SET status = 'done', primary_value = :v, result = CAST(:r AS jsonb), score_id = :s, error = NULL,
                finished_at = now(), lease_until = NULL
            WHERE id = :id
            """
        ),
        {"id": submission_id, "v": primary_value, "r": json.dumps(result), "s": score_id},
    )


def fail(conn: Connection, submission_id: int, error: str) -> None:
    conn.execute(
        sa.text(
            "UPDATE exact_submission SET status = 'failed', error = :e, finished_at = now(), lease_until = NULL "
            "WHERE id = :id"
        ),
        {"id": submission_id, "e": error[:2000]},
    )


def list_for_user(conn: Connection, user_id: int, *, limit: int = 50) -> list[dict[str, Any]]:
    query = sa.text(
        f"SELECT {SUBMISSION_COLUMNS} FROM exact_submission WHERE user_id = :u AND kind = 'participant' "
        "ORDER BY created_at DESC, id DESC LIMIT :limit"
    )
    return [dict(r) for r in conn.execute(query, {"u": user_id, "limit": limit}).mappings()]


def baselines(conn: Connection, challenge_id: str) -> list[dict[str, Any]]:
    query = sa.text(
        f"SELECT {SUBMISSION_COLUMNS}, result -> 'metrics' AS metrics FROM exact_submission "
        "WHERE challenge_id = :c AND kind = 'baseline' ORDER BY primary_value DESC NULLS LAST, id"
    )
    return [dict(r) for r in conn.execute(query, {"c": challenge_id}).mappings()]


def details_for_scores(conn: Connection, score_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Method name and metric means of the submissions behind api_score rows."""
    if not score_ids:
        return {}
    query = sa.text(
        """
        SELECT s.score_id, s.id AS submission_id, s.method_name, s.url,
               (SELECT jsonb_object_agg(key, value -> 'mean') FROM jsonb_each(s.result -> 'metrics')) AS means
        FROM exact_submission s WHERE s.score_id = ANY(:ids)
        """
    )
    return {r["score_id"]: dict(r) for r in conn.execute(query, {"ids": score_ids}).mappings()}

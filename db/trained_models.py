"""SQL for exact_model: the models a challenge ships to be explained, and the training queue (claimed with a lease)."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

MODEL_COLUMNS = (
    "id, challenge_id, architecture, source, explained, status, error, weights_path, onnx_path, train_accuracy, "
    "validation_accuracy, test_accuracy, epochs_done, epochs_total, settings, attempts, created_by, created_at, "
    "started_at, finished_at, lease_until"
)
# A challenge has a handful of models (the paper trains at most three per benchmark, plus uploads).
MAX_MODELS_PER_CHALLENGE = 20
TRAINING_LEASE_SECONDS = 120
# A job whose worker died this many times is given up (a model that crashes its trainer must not loop forever).
MAX_TRAINING_ATTEMPTS = 3


def insert_model(conn: Connection, **values: Any) -> dict[str, Any]:
    values = {"settings": {}, "explained": False, "created_by": None, **values}
    values["settings"] = json.dumps(values["settings"])
    names = ", ".join(values)
    params = ", ".join(f":{name}" for name in values)
    query = sa.text(f"INSERT INTO exact_model ({names}) VALUES ({params}) RETURNING {MODEL_COLUMNS}")
    return dict(conn.execute(query, values).mappings().one())


def count_for_challenge(conn: Connection, challenge_id: str) -> int:
    query = sa.text("SELECT count(*) FROM exact_model WHERE challenge_id = :c")
    return int(conn.execute(query, {"c": challenge_id}).scalar_one())


def list_for_challenge(conn: Connection, challenge_id: str) -> list[dict[str, Any]]:
    """Every model of the challenge, oldest first (bounded: a challenge holds at most MAX_MODELS_PER_CHALLENGE)."""
    query = sa.text(f"SELECT {MODEL_COLUMNS} FROM exact_model WHERE challenge_id = :c ORDER BY id LIMIT :limit")
    rows = conn.execute(query, {"c": challenge_id, "limit": MAX_MODELS_PER_CHALLENGE}).mappings().all()
    return [dict(row) for row in rows]


def get_model(conn: Connection, model_id: int) -> dict[str, Any] | None:
    row = conn.execute(sa.text(f"SELECT {MODEL_COLUMNS} FROM exact_model WHERE id = :id"), {"id": model_id})
    found = row.mappings().first()
    return dict(found) if found else None


def claim_training(conn: Connection, challenge_id: str | None = None) -> dict[str, Any] | None:
    """Mark the oldest queued job (of this challenge, when given) or one whose trainer's lease ran out as training;
    None when there is none.

    Jobs that used up their attempts are marked failed on the way, so they never block the queue.
    """
    conn.execute(
        sa.text(
            """
            WITH spent AS (
                SELECT id FROM exact_model
                WHERE status = 'training' AND lease_until < now() AND attempts >= :max_attempts
                ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 100
            )
            UPDATE exact_model m SET status = 'failed', finished_at = now(),
                error = 'Training stopped unexpectedly ' || m.attempts || ' times; it was given up.'
            FROM spent WHERE m.id = spent.id
            """
        ),
        {"max_attempts": MAX_TRAINING_ATTEMPTS},
    )
    which = "AND challenge_id = :challenge" if challenge_id is not None else ""
    query = sa.text(
        f"""
        WITH pick AS (
            SELECT id FROM exact_model
            WHERE (status = 'queued' OR (status = 'training' AND lease_until < now())) {which}
            ORDER BY created_at, id
            FOR UPDATE SKIP LOCKED
            LIMIT 1
        )
        UPDATE exact_model m
        SET status = 'training', attempts = m.attempts + 1, started_at = now(), epochs_done = 0, error = NULL,
            lease_until = now() + make_interval(secs => :lease)
        FROM pick WHERE m.id = pick.id
        RETURNING {", ".join(f"m.{name.strip()}" for name in MODEL_COLUMNS.split(","))}
        """
    )
    row = conn.execute(query, {"lease": TRAINING_LEASE_SECONDS, "challenge": challenge_id}).mappings().first()
    return dict(row) if row else None


def extend_training_lease(
    conn: Connection, model_id: int, attempt: int, *, epochs_done: int, epochs_total: int
) -> bool:
    """Record progress and keep the claim; False when the job is no longer ours (another attempt took it over)."""
    updated = conn.execute(
        sa.text(
            """
            UPDATE exact_model SET lease_until = now() + make_interval(secs => :lease), epochs_done = :done,
                epochs_total = :total
            WHERE id = :id AND status = 'training' AND attempts = :attempt
            """
        ),
        {
            "id": model_id,
            "attempt": attempt,
            "lease": TRAINING_LEASE_SECONDS,
            "done": epochs_done,
            "total": epochs_total,
        },
    ).rowcount
    return bool(updated)


def finish_training(conn: Connection, model_id: int, attempt: int, **values: Any) -> bool | None:
    """Store a trained model's files and accuracies. Returns whether it is (still) the model to explain, or None
    when the job is no longer this attempt's."""
    values = {**values, "settings": json.dumps(values.get("settings") or {})}
    assignments = ", ".join(f"{name} = :{name}" for name in values)
    row = conn.execute(
        sa.text(
            f"""
            UPDATE exact_model SET {assignments}, status = 'ready', lease_until = NULL, finished_at = now()
            WHERE id = :id AND status = 'training' AND attempts = :attempt
            RETURNING explained
            """
        ),
        {**values, "id": model_id, "attempt": attempt},
    ).first()
    return None if row is None else bool(row[0])


def fail_training(conn: Connection, model_id: int, attempt: int, error: str) -> bool:
    """Mark this attempt's job failed; False (nothing changed) when another attempt holds it now."""
    updated = conn.execute(
        sa.text(
            "UPDATE exact_model SET status = 'failed', error = :error, lease_until = NULL, finished_at = now() "
            "WHERE id = :id AND status = 'training' AND attempts = :attempt"
        ),
        {"id": model_id, "attempt": attempt, "error": error[:2000]},
    ).rowcount
    return bool(updated)


def release_training(conn: Connection, model_id: int, attempt: int) -> bool:
    """Give a job back to the queue, its attempt not counted (the trainer is stopping, not crashing)."""
    updated = conn.execute(
        sa.text(
            "UPDATE exact_model SET status = 'queued', attempts = attempts - 1, lease_until = NULL, epochs_done = 0 "
            "WHERE id = :id AND status = 'training' AND attempts = :attempt"
        ),
        {"id": model_id, "attempt": attempt},
    ).rowcount
    return bool(updated)


def set_explained(conn: Connection, challenge_id: str, model_id: int) -> None:
    """Make ``model_id`` the one model the challenge asks to explain (the partial unique index keeps it one)."""
    conn.execute(
        sa.text("UPDATE exact_model SET explained = false WHERE challenge_id = :c AND explained AND id <> :id"),
        {"c": challenge_id, "id": model_id},
    )
    conn.execute(
        sa.text("UPDATE exact_model SET explained = true WHERE challenge_id = :c AND id = :id"),
        {"c": challenge_id, "id": model_id},
    )


def has_participant_submissions(conn: Connection, challenge_id: str) -> bool:
    query = sa.text("SELECT EXISTS (SELECT 1 FROM exact_submission WHERE challenge_id = :c AND kind = 'participant')")
    return bool(conn.execute(query, {"c": challenge_id}).scalar_one())


def delete_baselines_named(conn: Connection, challenge_id: str, like_patterns: list[str]) -> list[str]:
    """Baseline rows of the challenge whose method name matches one of the LIKE patterns, with their parts; returns
    their files' paths (the caller deletes the files once this is committed). A challenge has a handful of them."""
    chosen = (
        "SELECT id FROM exact_submission WHERE challenge_id = :c AND kind = 'baseline' "
        "AND method_name LIKE ANY(:patterns)"
    )
    params = {"c": challenge_id, "patterns": like_patterns}
    conn.execute(sa.text(f"DELETE FROM exact_submission_summary WHERE submission_id IN ({chosen})"), params)
    conn.execute(sa.text(f"DELETE FROM exact_scoring_chunk WHERE submission_id IN ({chosen})"), params)
    deleted = conn.execute(sa.text(f"DELETE FROM exact_submission WHERE id IN ({chosen}) RETURNING file_path"), params)
    return [path for (path,) in deleted if path]

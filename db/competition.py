"""SQL for competition rules (exact_competition), submission counts, final choices and moderation."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

RULE_COLUMNS = (
    "starts_at", "ends_at", "reveal", "revealed_at", "daily_limit", "total_limit", "final_count",
    "metric_name", "higher_is_better", "min_value", "max_value",
)  # fmt: skip


def get_rules(conn: Connection, challenge_id: str) -> dict[str, Any] | None:
    query = sa.text(f"SELECT challenge_id, {', '.join(RULE_COLUMNS)} FROM exact_competition WHERE challenge_id = :c")
    row = conn.execute(query, {"c": challenge_id}).mappings().first()
    return dict(row) if row else None


def rules_for(conn: Connection, challenge_ids: list[str]) -> dict[str, dict[str, Any]]:
    if not challenge_ids:
        return {}
    query = sa.text(
        f"SELECT challenge_id, {', '.join(RULE_COLUMNS)} FROM exact_competition WHERE challenge_id = ANY(:ids)"
    )
    return {r["challenge_id"]: dict(r) for r in conn.execute(query, {"ids": challenge_ids}).mappings()}


def save_rules(conn: Connection, challenge_id: str, values: dict[str, Any]) -> None:
    """Insert or replace the rules (revealed_at is kept: set only by ``set_revealed``)."""
    columns = [c for c in RULE_COLUMNS if c != "revealed_at"]
    query = sa.text(
        f"""
        INSERT INTO exact_competition (challenge_id, {", ".join(columns)})
        VALUES (:challenge_id, {", ".join(":" + c for c in columns)})
        ON CONFLICT (challenge_id) DO UPDATE SET {", ".join(f"{c} = EXCLUDED.{c}" for c in columns)}
        """
    )
    conn.execute(query, {"challenge_id": challenge_id, **{c: values[c] for c in columns}})


def set_revealed(conn: Connection, challenge_id: str) -> None:
    conn.execute(
        sa.text("UPDATE exact_competition SET revealed_at = now() WHERE challenge_id = :c AND revealed_at IS NULL"),
        {"c": challenge_id},
    )


def lock_submitter(conn: Connection, user_id: int) -> None:
    """Serialise one user's submissions (counting against limits, then inserting) until the transaction ends."""
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('exact-submit'), :u)"), {"u": user_id})


def count_submissions(
    conn: Connection, *, challenge_id: str, user_id: int, username: str, since: datetime, scored_on_server: bool
) -> tuple[int, int]:
    """(since ``since``, in total) submissions that count against the limits; failed scorings do not."""
    if scored_on_server:
        query = sa.text(
            """
            SELECT count(*) FILTER (WHERE created_at >= :since), count(*) FROM exact_submission
            WHERE challenge_id = :c AND user_id = :u AND kind = 'participant' AND status <> 'failed'
            """
        )
    else:
        query = sa.text(
            # exact_ranked_score: on upstream's later schemas a failed (or unfinished) run does not count
            "SELECT count(*) FILTER (WHERE created_at >= :since), count(*) FROM exact_ranked_score "
            "WHERE challenge_id = :c AND username = :name"
        )
    row = conn.execute(query, {"since": since, "c": challenge_id, "u": user_id, "name": username}).one()
    return int(row[0]), int(row[1])


def count_waiting(conn: Connection, user_id: int) -> int:
    """The user's submissions waiting for or under scoring, over every challenge."""
    query = sa.text(
        "SELECT count(*) FROM exact_submission "
        "WHERE user_id = :u AND kind = 'participant' AND status IN ('queued', 'running')"
    )
    return conn.execute(query, {"u": user_id}).scalar_one()


# --- final submissions ----------------------------------------------------------------------------------------


def final_choices(conn: Connection, challenge_id: str, user_id: int) -> list[int]:
    query = sa.text(
        "SELECT submission_id FROM exact_final_choice WHERE challenge_id = :c AND user_id = :u ORDER BY submission_id"
    )
    return list(conn.execute(query, {"c": challenge_id, "u": user_id}).scalars())


def replace_final_choices(conn: Connection, challenge_id: str, user_id: int, submission_ids: list[int]) -> None:
    params = {"c": challenge_id, "u": user_id}
    conn.execute(sa.text("DELETE FROM exact_final_choice WHERE challenge_id = :c AND user_id = :u"), params)
    for submission_id in submission_ids:
        conn.execute(
            sa.text("INSERT INTO exact_final_choice (challenge_id, user_id, submission_id) VALUES (:c, :u, :s)"),
            {**params, "s": submission_id},
        )


# --- moderation -----------------------------------------------------------------------------------------------


def moderation_of(conn: Connection, score_ids: list[int]) -> dict[int, dict[str, Any]]:
    if not score_ids:
        return {}
    query = sa.text(
        "SELECT score_id, action, reason, user_id, created_at FROM exact_moderation WHERE score_id = ANY(:ids)"
    )
    return {r["score_id"]: dict(r) for r in conn.execute(query, {"ids": score_ids}).mappings()}


def moderated_scores(conn: Connection, challenge_id: str, *, limit: int = 500) -> list[dict[str, Any]]:
    """The challenge's hidden, disqualified and withdrawn scores, newest action first."""
    query = sa.text(
        """
        SELECT m.score_id, m.action, m.reason, m.created_at, s.username, s.score
        FROM exact_moderation m JOIN api_score s ON s.id = m.score_id
        WHERE m.challenge_id = :c ORDER BY m.created_at DESC, m.score_id DESC LIMIT :limit
        """
    )
    return [dict(r) for r in conn.execute(query, {"c": challenge_id, "limit": limit}).mappings()]


def set_moderation(
    conn: Connection, *, score_id: int, challenge_id: str, action: str, reason: str, user_id: int
) -> None:
    conn.execute(
        sa.text(
            """
            INSERT INTO exact_moderation (score_id, challenge_id, action, reason, user_id)
            VALUES (:s, :c, :a, :r, :u)
            ON CONFLICT (score_id) DO UPDATE
            SET action = EXCLUDED.action, reason = EXCLUDED.reason, user_id = EXCLUDED.user_id, created_at = now()
            """
        ),
        {"s": score_id, "c": challenge_id, "a": action, "r": reason, "u": user_id},
    )


def clear_moderation(conn: Connection, score_id: int) -> bool:
    result = conn.execute(sa.text("DELETE FROM exact_moderation WHERE score_id = :s"), {"s": score_id})
    return bool(result.rowcount)


def score_content_type_id(conn: Connection) -> int | None:
    query = sa.text("SELECT id FROM django_content_type WHERE app_label = 'api' AND model = 'score'")
    return conn.execute(query).scalar_one_or_none()


def log_admin_action(
    conn: Connection, *, user_id: int, content_type_id: int | None, object_id: str, object_repr: str, message: str
) -> None:
    """A django_admin_log row (action_flag 2 = change), as the Django admin writes one."""
    conn.execute(
        sa.text(
            """
            INSERT INTO django_admin_log (action_time, object_id, object_repr, action_flag, change_message,
                                          content_type_id, user_id)
            VALUES (now(), :oid, :repr, 2, :msg, :ct, :u)
            """
        ),
        {"oid": object_id, "repr": object_repr[:200], "msg": message, "ct": content_type_id, "u": user_id},
    )

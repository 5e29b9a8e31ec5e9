"""Moderation of ranked scores: organisers hide or disqualify with a reason the submitter sees, participants
withdraw their own, organisers restore. Every action is also a django_admin_log row (content type api.score)."""

from __future__ import annotations

from typing import Literal

from db import challenges as challenges_sql
from db import competition as competition_sql
from db import scores as scores_sql
from db.database import Database
from exact.accounts import require_user
from exact.errors import NotFound, PermissionDenied, ValidationError
from exact.permissions import is_challenge_organiser
from exact.validation import clean_text

Action = Literal["hidden", "disqualified", "withdrawn"]
ACTION_LABELS = {"hidden": "hidden by the organisers", "disqualified": "disqualified", "withdrawn": "withdrawn"}


def _log(conn, user_id: int, row: dict, message: str) -> None:
    """The action as the Django admin records a change of an api.score row."""
    competition_sql.log_admin_action(
        conn,
        user_id=user_id,
        content_type_id=competition_sql.score_content_type_id(conn),
        object_id=str(row["id"]),
        object_repr=f"Score {row['id']} of {row['username']} on {row['challenge_id']}",
        message=message,
    )


def moderate(db: Database, actor_id: int | None, score_id: int, action: Action, reason: str = "") -> None:
    """Hide, disqualify (organisers of the challenge) or withdraw (the submitter) one score."""
    if action not in ACTION_LABELS:
        raise ValidationError(f"Unknown moderation action {action!r}.")
    reason = clean_text(reason, field="Reason", max_length=1000, required=action != "withdrawn", multiline=True)
    with db.transaction() as conn:
        user = require_user(conn, actor_id, "moderate submissions")
        row = scores_sql.get(conn, score_id)
        if row is None:
            raise NotFound("No such score.")
        owner = challenges_sql.get_owner(conn, row["challenge_id"])
        if action == "withdrawn":
            if row["username"] != user.username:
                raise PermissionDenied("You can only withdraw your own submissions.")
        elif not is_challenge_organiser(user, owner):
            raise PermissionDenied("Only the challenge's organisers can hide or disqualify submissions.")
        current = competition_sql.moderation_of(conn, [score_id]).get(score_id)
        if current is not None and current["action"] != "withdrawn" and action == "withdrawn":
            raise ValidationError("This submission was already taken off the leaderboard by the organisers.")
        competition_sql.set_moderation(
            conn, score_id=score_id, challenge_id=row["challenge_id"], action=action, reason=reason, user_id=user.id
        )
        _log(conn, user.id, row, f"{action.capitalize()} on Exact" + (f": {reason}" if reason else "."))


def moderated(db: Database, actor_id: int | None, challenge_id: str) -> list[dict]:
    """What the challenge's organisers took off (or participants withdrew from) its leaderboard."""
    with db.connect() as conn:
        user = require_user(conn, actor_id, "moderate submissions")
        if not is_challenge_organiser(user, challenges_sql.get_owner(conn, challenge_id)):
            raise PermissionDenied("Only the challenge's organisers can see moderated submissions.")
        return competition_sql.moderated_scores(conn, challenge_id)


def restore(db: Database, actor_id: int | None, score_id: int) -> None:
    """Put a hidden, disqualified or withdrawn score back on the leaderboard (organisers of the challenge)."""
    with db.transaction() as conn:
        user = require_user(conn, actor_id, "moderate submissions")
        row = scores_sql.get(conn, score_id)
        if row is None:
            raise NotFound("No such score.")
        if not is_challenge_organiser(user, challenges_sql.get_owner(conn, row["challenge_id"])):
            raise PermissionDenied("Only the challenge's organisers can restore submissions.")
        if not competition_sql.clear_moderation(conn, score_id):
            raise ValidationError("This submission is not hidden, disqualified or withdrawn.")
        _log(conn, user.id, row, "Restored on Exact.")

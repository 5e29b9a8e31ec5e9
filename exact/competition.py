"""Competition rules, enforced on the server: phases, submission limits, final submissions, score ranges.

A challenge without rules (e.g. created through Django) is open forever, has no limits and ranks higher scores
first. Days for the daily limit are UTC days (as on Kaggle): the count resets at 00:00 UTC.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy.engine import Connection

from db import challenges as challenges_sql
from db import competition as competition_sql
from db import evaluations as evaluations_sql
from db.database import Database
from exact.accounts import User, load_active_user, require_user
from exact.errors import NotFound, ValidationError
from exact.permissions import require_challenge_organiser
from exact.validation import clean_text

Phase = Literal["upcoming", "open", "closed"]
MAX_LIMIT = 10_000
MAX_FINAL_COUNT = 20
DEFAULT_DAILY_LIMIT = 5
DEFAULT_FINAL_COUNT = 2


@dataclass(frozen=True)
class Rules:
    challenge_id: str = ""
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    reveal: str = "auto"  # 'auto': the private board shows at the end; 'manual': when the organiser publishes it
    revealed_at: datetime | None = None
    daily_limit: int | None = None
    total_limit: int | None = None
    final_count: int = DEFAULT_FINAL_COUNT
    metric_name: str = "Score"
    higher_is_better: bool = True
    min_value: float | None = None
    max_value: float | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any] | None, challenge_id: str) -> Rules:
        if row is None:
            return cls(challenge_id=challenge_id)
        return cls(**{name: row[name] for name in cls.__dataclass_fields__ if name in row})

    def phase(self, now: datetime | None = None) -> Phase:
        now = now or datetime.now(UTC)
        if self.starts_at is not None and now < self.starts_at:
            return "upcoming"
        if self.ends_at is not None and now >= self.ends_at:
            return "closed"
        return "open"

    def private_revealed(self, now: datetime | None = None) -> bool:
        """The final (private) ranking is public: after the end, automatically or once the organiser published."""
        return self.phase(now) == "closed" and (self.reveal == "auto" or self.revealed_at is not None)

    def check_accepting(self, now: datetime | None = None) -> None:
        phase = self.phase(now)
        if phase == "upcoming":
            raise ValidationError(f"This challenge opens for submissions on {_when(self.starts_at)}.")
        if phase == "closed":
            raise ValidationError(
                f"This challenge closed on {_when(self.ends_at)}; submissions are no longer accepted."
            )

    def check_value(self, value: float) -> None:
        low, high = self.min_value, self.max_value
        if (low is not None and value < low) or (high is not None and value > high):
            span = (
                f"between {_number(low)} and {_number(high)}"
                if low is not None and high is not None
                else (f"at least {_number(low)}" if low is not None else f"at most {_number(high)}")
            )
            raise ValidationError(f"{self.metric_name} must be {span}; {_number(value)} is outside that range.")


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def day_start(now: datetime) -> datetime:
    """00:00 UTC of ``now``'s day: the daily limit counts submissions since then."""
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def countdown(until: datetime, now: datetime | None = None) -> str:
    """'3 days 4 hours', '2 hours 5 minutes', '45 minutes' until ``until`` (never negative)."""
    seconds = max(0, int((until - (now or datetime.now(UTC))).total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = [(days, "day"), (hours, "hour"), (minutes, "minute")]
    shown = [(n, unit) for n, unit in parts if n][:2] or [(0, "minute")]
    return " ".join(f"{n} {unit}{'s' if n != 1 else ''}" for n, unit in shown)


# --- reading and writing the rules ----------------------------------------------------------------------------


def rules_in(conn: Connection, challenge_id: str) -> Rules:
    return Rules.from_row(competition_sql.get_rules(conn, challenge_id), challenge_id)


def get_rules(db: Database, challenge_id: str) -> Rules:
    with db.connect() as conn:
        return rules_in(conn, challenge_id)


def _limit(value: object, label: str) -> int | None:
    if value in (None, "", 0):
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_LIMIT:
        raise ValidationError(f"{label} must be a whole number between 1 and {MAX_LIMIT:,} (or empty for no limit).")
    return value


def _bound(value: object, label: str) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationError(f"{label} must be a finite number (or empty).")
    return float(value)


def _aware(value: datetime | None, label: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValidationError(f"{label} needs a time zone.")
    return value


def clean_rules(rules: Rules) -> Rules:
    """Validated rules, with a clear message for the organiser for each mistake."""
    starts_at = _aware(rules.starts_at, "The start")
    ends_at = _aware(rules.ends_at, "The end")
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        raise ValidationError("The end must come after the start.")
    if rules.reveal not in ("auto", "manual"):
        raise ValidationError("Reveal the private leaderboard either automatically at the end or manually.")
    final_count = rules.final_count
    if isinstance(final_count, bool) or not isinstance(final_count, int) or not 1 <= final_count <= MAX_FINAL_COUNT:
        raise ValidationError(f"Final submissions per participant must be between 1 and {MAX_FINAL_COUNT}.")
    low, high = _bound(rules.min_value, "The lowest valid score"), _bound(rules.max_value, "The highest valid score")
    if low is not None and high is not None and low >= high:
        raise ValidationError("The lowest valid score must be below the highest.")
    return replace(
        rules,
        starts_at=starts_at,
        ends_at=ends_at,
        daily_limit=_limit(rules.daily_limit, "Submissions per day"),
        total_limit=_limit(rules.total_limit, "Submissions in total"),
        metric_name=clean_text(rules.metric_name or "Score", field="Metric name", max_length=100),
        higher_is_better=bool(rules.higher_is_better),
        min_value=low,
        max_value=high,
    )


def store_rules(conn: Connection, challenge_id: str, rules: Rules) -> None:
    """Inside the caller's unit of work (challenge creation); ``rules`` must come from ``clean_rules``."""
    competition_sql.save_rules(
        conn, challenge_id, {name: getattr(rules, name) for name in competition_sql.RULE_COLUMNS}
    )


def update_rules(db: Database, actor_id: int | None, challenge_id: str, rules: Rules) -> Rules:
    rules = clean_rules(rules)
    with db.transaction() as conn:
        user = require_user(conn, actor_id, "change the competition rules")
        if challenges_sql.lock(conn, challenge_id) is None:
            raise NotFound(f"There is no challenge {challenge_id!r}.")
        require_challenge_organiser(user, challenges_sql.get_owner(conn, challenge_id))
        store_rules(conn, challenge_id, rules)
        return rules_in(conn, challenge_id)


def publish_private_board(db: Database, actor_id: int | None, challenge_id: str) -> Rules:
    """Reveal the final ranking of a closed challenge whose rules say 'manual'."""
    with db.transaction() as conn:
        user = require_user(conn, actor_id, "publish the final leaderboard")
        if challenges_sql.lock(conn, challenge_id) is None:
            raise NotFound(f"There is no challenge {challenge_id!r}.")
        require_challenge_organiser(user, challenges_sql.get_owner(conn, challenge_id))
        rules = rules_in(conn, challenge_id)
        if rules.phase() != "closed":
            raise ValidationError("The final leaderboard can be published once the challenge has ended.")
        competition_sql.set_revealed(conn, challenge_id)
        return rules_in(conn, challenge_id)


# --- submission limits ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Allowance:
    """What a user may still submit to a challenge now."""

    phase: Phase
    today_left: int | None  # None: no daily limit
    total_left: int | None  # None: no total limit
    resets_at: datetime  # next 00:00 UTC

    @property
    def left(self) -> int | None:
        """The binding limit: submissions possible right now (None: unlimited)."""
        known = [n for n in (self.today_left, self.total_left) if n is not None]
        return min(known) if known else None

    @property
    def may_submit(self) -> bool:
        return self.phase == "open" and (self.left is None or self.left > 0)


def allowance_in(conn: Connection, rules: Rules, user: User, *, now: datetime | None = None) -> Allowance:
    now = now or datetime.now(UTC)
    since = day_start(now)
    today = total = 0
    if rules.daily_limit is not None or rules.total_limit is not None:  # no limit: nothing to count
        scored_on_server = evaluations_sql.get_evaluation(conn, rules.challenge_id) is not None
        today, total = competition_sql.count_submissions(
            conn,
            challenge_id=rules.challenge_id,
            user_id=user.id,
            username=user.username,
            since=since,
            scored_on_server=scored_on_server,
        )
    return Allowance(
        phase=rules.phase(now),
        today_left=None if rules.daily_limit is None else max(0, rules.daily_limit - today),
        total_left=None if rules.total_limit is None else max(0, rules.total_limit - total),
        resets_at=since + timedelta(days=1),
    )


def allowance(db: Database, actor_id: int | None, challenge_id: str) -> Allowance | None:
    """The logged-in user's remaining submissions (None for visitors)."""
    with db.connect() as conn:
        user = load_active_user(conn, actor_id)  # a database error must not read as "visitor"
        if user is None:
            return None
        return allowance_in(conn, rules_in(conn, challenge_id), user)


def enforce_submission_rules(conn: Connection, user: User, challenge_id: str) -> Rules:
    """Inside the transaction that stores a submission: phase and limits, serialised per user (no race)."""
    competition_sql.lock_submitter(conn, user.id)
    rules = rules_in(conn, challenge_id)
    rules.check_accepting()
    left = allowance_in(conn, rules, user)
    if left.today_left == 0:
        raise ValidationError(
            f"You have used today's {rules.daily_limit} submission{'s' if rules.daily_limit != 1 else ''} to this "
            f"challenge; more are possible from {_when(left.resets_at)}."
        )
    if left.total_left == 0:
        raise ValidationError(f"You have used all {rules.total_limit} submissions allowed for this challenge.")
    return rules


# --- final submissions ----------------------------------------------------------------------------------------


def final_choices(db: Database, actor_id: int | None, challenge_id: str) -> list[int]:
    with db.connect() as conn:
        user = require_user(conn, actor_id, "see your final submissions")
        return competition_sql.final_choices(conn, challenge_id, user.id)


def choose_finals(db: Database, actor_id: int | None, challenge_id: str, submission_ids: list[int]) -> list[int]:
    """Replace the user's final submissions (empty: their best public one counts). Only before the end."""
    chosen = sorted(set(int(s) for s in submission_ids))
    with db.transaction() as conn:
        user = require_user(conn, actor_id, "choose final submissions")
        rules = rules_in(conn, challenge_id)
        if rules.phase() == "closed":
            raise ValidationError("The challenge has ended; final submissions can no longer be changed.")
        if len(chosen) > rules.final_count:
            raise ValidationError(
                f"Choose at most {rules.final_count} final submission{'s' if rules.final_count != 1 else ''}."
            )
        eligible = evaluations_sql.rankable_submission_ids(conn, challenge_id, user.id)
        foreign = [s for s in chosen if s not in eligible]
        if foreign:
            raise ValidationError("Only your own scored, visible submissions to this challenge can be final.")
        competition_sql.replace_final_choices(conn, challenge_id, user.id, chosen)
        return chosen

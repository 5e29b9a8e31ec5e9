"""An organiser's dashboard of one challenge: participants, submissions per day, failed submissions with their
reasons, and an export of every submission (CSV and JSON).

Only the challenge's organisers and administrators (exact.permissions.is_challenge_organiser) may read it: they
see everything about their challenge anyway. Every call re-reads the acting user and checks again, in the same
connection as the reads. Listings are pages; the export comes in parts of at most EXPORT_PART_ROWS rows, each
read from a server-side cursor in chunks, so neither the database nor the app ever holds a whole large
challenge at once (docs/journeys.md, "The organiser's dashboard").
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from sqlalchemy.engine import Connection

from db import challenges as challenges_sql
from db import dashboard as dashboard_sql
from db.database import Database
from exact.accounts import User, require_user
from exact.errors import NotFound, PermissionDenied, ValidationError
from exact.paging import Page
from exact.permissions import is_challenge_organiser
from exact.scores import _csv_cell, _csv_lines  # the leaderboard CSV's formula-defused cells, one rule for both

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
DAY_CHOICES = (30, 90, 365)
EXPORT_PART_ROWS = 50_000
EXPORT_COLUMNS = (
    "submission_id", "score_id", "username", "method_name", "status", "score", "error", "moderation",
    "moderation_reason", "created_at", "finished_at",
)  # fmt: skip
Format = Literal["csv", "json"]


@dataclass(frozen=True)
class DayCount:
    day: date
    scored: int
    failed: int
    waiting: int  # queued or being scored


@dataclass(frozen=True)
class Overview:
    challenge_id: str
    participants: int
    submissions: int
    failed: int
    waiting: int
    days: int
    per_day: list[DayCount]  # one entry per UTC day of the last ``days`` days, oldest first, zeros included

    @property
    def export_parts(self) -> int:
        return max(1, math.ceil(self.submissions / EXPORT_PART_ROWS))


@dataclass(frozen=True)
class Participant:
    username: str
    submissions: int
    failed: int
    first_at: datetime
    last_at: datetime


@dataclass(frozen=True)
class FailedSubmission:
    submission_id: int
    username: str
    method_name: str
    error: str
    created_at: datetime
    finished_at: datetime | None


def _require_access(conn: Connection, actor_id: int | None, challenge_id: str) -> User:
    user = require_user(conn, actor_id, "see a challenge's dashboard")
    if not isinstance(challenge_id, str) or not challenge_id or len(challenge_id) > 100:
        raise NotFound("No such challenge.")
    if not challenges_sql.exists(conn, challenge_id):
        raise NotFound(f"There is no challenge {challenge_id!r}.")
    if not is_challenge_organiser(user, challenges_sql.get_owner(conn, challenge_id)):
        raise PermissionDenied("Only this challenge's organisers (and administrators) may see its dashboard.")
    return user


def may_see(db: Database, actor_id: int | None, challenge_id: str) -> bool:
    try:
        with db.connect() as conn:
            _require_access(conn, actor_id, challenge_id)
    except (PermissionDenied, NotFound):
        return False
    return True


def _check_page(limit: int, offset: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValidationError(f"A page holds 1 to {MAX_PAGE_SIZE} rows.")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValidationError("The page offset must be a whole number, 0 or more.")


def overview(
    db: Database, actor_id: int | None, challenge_id: str, *, days: int = DAY_CHOICES[0], now: datetime | None = None
) -> Overview:
    """The counts, and submissions per UTC day over the last ``days`` days (one of DAY_CHOICES)."""
    if days not in DAY_CHOICES:
        raise ValidationError(f"Show the last {', '.join(str(d) for d in DAY_CHOICES)} days.")
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    first_day = today - timedelta(days=days - 1)
    since = datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC)
    with db.connect() as conn:
        _require_access(conn, actor_id, challenge_id)
        counts = dashboard_sql.totals(conn, challenge_id)
        rows = {r["day"]: r for r in dashboard_sql.per_day(conn, challenge_id, since=since)}
    per_day = []
    for n in range(days):
        day = first_day + timedelta(days=n)
        row = rows.get(day, {})
        per_day.append(DayCount(day, row.get("scored", 0), row.get("failed", 0), row.get("waiting", 0)))
    return Overview(challenge_id=challenge_id, days=days, per_day=per_day, **counts)


def participants(
    db: Database, actor_id: int | None, challenge_id: str, *, limit: int = PAGE_SIZE, offset: int = 0
) -> Page[Participant]:
    _check_page(limit, offset)
    with db.connect() as conn:
        _require_access(conn, actor_id, challenge_id)
        rows = dashboard_sql.participants(conn, challenge_id, limit=limit, offset=offset)
        total = dashboard_sql.count_participants(conn, challenge_id)
    return Page(items=[Participant(**r) for r in rows], total=total, limit=limit, offset=offset)


def failed_submissions(
    db: Database, actor_id: int | None, challenge_id: str, *, limit: int = PAGE_SIZE, offset: int = 0
) -> Page[FailedSubmission]:
    _check_page(limit, offset)
    with db.connect() as conn:
        _require_access(conn, actor_id, challenge_id)
        rows = dashboard_sql.failed(conn, challenge_id, limit=limit, offset=offset)
        total = dashboard_sql.count_failed(conn, challenge_id)
    return Page(items=[FailedSubmission(**r) for r in rows], total=total, limit=limit, offset=offset)


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # a NaN or infinite score written through Django: JSON has no such number
    return value.isoformat() if isinstance(value, datetime) else value


def iter_export(
    db: Database, actor_id: int | None, challenge_id: str, *, fmt: Format = "csv", part: int = 1
) -> Iterator[bytes]:
    """Part ``part`` (1-based, EXPORT_PART_ROWS rows each, in time order) of every submission, as CSV (cells that
    a spreadsheet would run as a formula are defused, as in the leaderboard CSV) or as a JSON array of objects.

    The permission is checked when the export runs, not when its button was drawn."""
    if fmt not in ("csv", "json"):
        raise ValidationError("Export as CSV or JSON.")
    if isinstance(part, bool) or not isinstance(part, int) or part < 1:
        raise ValidationError("The export part must be a whole number, 1 or more.")
    offset = (part - 1) * EXPORT_PART_ROWS
    with db.streaming() as conn:
        _require_access(conn, actor_id, challenge_id)
        chunks = dashboard_sql.iter_export(conn, challenge_id, limit=EXPORT_PART_ROWS, offset=offset)
        if fmt == "csv":
            yield _csv_lines([list(EXPORT_COLUMNS)])
            for chunk in chunks:
                yield _csv_lines([[_csv_cell(row[c]) for c in EXPORT_COLUMNS] for row in chunk])
            return
        yield b"["
        first = True
        for chunk in chunks:
            for row in chunk:
                record = json.dumps({c: _json_value(row[c]) for c in EXPORT_COLUMNS}, ensure_ascii=False,
                                    allow_nan=False)  # fmt: skip
                yield ("\n" if first else ",\n").encode() + record.encode("utf-8")
                first = False
        yield b"\n]\n"


def export(db: Database, actor_id: int | None, challenge_id: str, *, fmt: Format = "csv", part: int = 1) -> bytes:
    """One part of the export as one download (at most EXPORT_PART_ROWS rows)."""
    return b"".join(iter_export(db, actor_id, challenge_id, fmt=fmt, part=part))

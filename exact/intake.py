"""Taking in attribution submissions: validate the upload, apply the competition rules, store a queued row.

Nothing a participant sends is executed or unpickled, and what is stored is the validated array as the server
writes it back (a .npy of the array alone), never the uploaded file: extra entries in an .npz are dropped.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlparse

from sqlalchemy.exc import IntegrityError

from db import competition as competition_sql
from db import evaluations as evaluations_sql
from db.database import Database
from exact import arrays
from exact.accounts import require_user
from exact.competition import enforce_submission_rules
from exact.errors import NotFound, ValidationError
from exact.evaluation_sets import EvaluationSet
from exact.paging import Page
from exact.permissions import rounded
from exact.storage import MediaStorage, UploadedFile
from exact.validation import clean_request_key, clean_text

DEFAULT_MAX_WAITING = 3  # submissions per user queued or being scored at once (EXACT_MAX_QUEUED_PER_USER)


@dataclass(frozen=True)
class Submission:
    id: int
    challenge_id: str
    kind: str
    user_id: int | None
    username: str
    method_name: str
    description: str
    url: str
    status: str
    error: str | None
    primary_metric: str
    primary_value: float | None
    file_path: str | None
    file_size: int | None
    file_sha256: str | None
    score_id: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    result: dict[str, Any] | None = None
    public_value: float | None = None  # rounded public aggregate (what may be shown)
    moderation: str | None = None  # hidden, disqualified or withdrawn
    moderation_reason: str | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Submission:
        values = {name: row.get(name) for name in cls.__dataclass_fields__}
        values["primary_value"] = rounded(values["primary_value"])  # never finer than what may be shown
        return cls(**values)

    @property
    def seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


def clean_url(url: str) -> str:
    url = clean_text(url, field="Paper/code URL", max_length=500, required=False)
    if url:
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc or any(c.isspace() for c in url):
            raise ValidationError("Paper/code URL must be one web address starting with http:// or https://.")
    return url


def submit_attributions(
    db: Database,
    media: MediaStorage,
    actor_id: int | None,
    challenge_id: str,
    upload: UploadedFile,
    *,
    method_name: str,
    description: str = "",
    url: str = "",
    request_key: str | None = None,
    max_waiting: int = DEFAULT_MAX_WAITING,
) -> Submission:
    """Validate and store an attribution file as a queued submission of the logged-in user (one unit)."""
    method_name = clean_text(method_name, field="Method name", max_length=100)
    description = clean_text(description, field="Description", max_length=5000, required=False, multiline=True)
    url = clean_url(url)
    request_key = clean_request_key(request_key)
    with db.connect() as conn:
        user = require_user(conn, actor_id, "submit attributions")
        row = evaluations_sql.get_evaluation(conn, challenge_id or "")
        if row is None:
            raise NotFound(f"Challenge {challenge_id!r} has no evaluation set: submit a score instead.")
        if request_key is not None:
            existing = evaluations_sql.submission_for_request_key(conn, request_key)
            if existing is not None:
                if existing["user_id"] != user.id:
                    raise ValidationError("This form was already used; reload the page to submit again.")
                return Submission.from_row(existing)
    evaluation = EvaluationSet.from_row(row)
    # Size and emptiness here; the content is checked by loading it below (once), which refuses pickles too.
    media.check_upload(upload, label="Attributions", allowed_extensions=None)
    if not upload.name.lower().endswith((".npy", ".npz")):
        raise ValidationError("Attributions: files of this type are not accepted (.npy, .npz).")
    key = arrays.ATTRIBUTIONS_KEY if upload.name.lower().endswith(".npz") else None
    raw = arrays.load_array_file(upload.data, name=upload.name, max_bytes=media.max_bytes, key=key)
    arrays.validate_submitted_attributions(raw, evaluation.shape)  # refuse bad files now, with a precise message
    stored = arrays.npy_bytes(raw.reshape(evaluation.shape))  # the array alone, in its own (real) dtype
    digest = hashlib.sha256(upload.data).hexdigest()
    try:
        with media.staged() as staged, db.transaction() as conn:
            user = require_user(conn, actor_id, "submit attributions")
            if request_key is not None:
                # The same form sent again while the first send was being stored: once this user's lock is ours,
                # that send has committed; answer with it rather than count it against the limits.
                competition_sql.lock_submitter(conn, user.id)
                existing = evaluations_sql.submission_for_request_key(conn, request_key)
                if existing is not None:
                    if existing["user_id"] != user.id:
                        raise ValidationError("This form was already used; reload the page to submit again.")
                    return Submission.from_row(existing)
            enforce_submission_rules(conn, user, challenge_id)
            waiting = competition_sql.count_waiting(conn, user.id)
            if waiting >= max_waiting:
                raise ValidationError(
                    f"You already have {waiting} submissions waiting to be scored; submit again once one is done."
                )
            path = staged.write(f"submissions/{challenge_id}/{user.id}", UploadedFile(f"{digest[:16]}.npy", stored))
            row = evaluations_sql.insert_submission(
                conn,
                challenge_id=challenge_id,
                kind="participant",
                user_id=user.id,
                username=user.username,
                method_name=method_name,
                description=description,
                url=url,
                file_path=path,
                file_size=len(stored),
                file_sha256=digest,
                request_key=request_key,
                primary_metric=evaluation.primary_metric,
            )
        return Submission.from_row(row)
    except IntegrityError:
        # The same form sent twice at once: the unique request key let one through; answer with that one.
        with db.connect() as conn:
            existing = evaluations_sql.submission_for_request_key(conn, request_key or "")
        if existing is None or existing["user_id"] != actor_id:
            raise ValidationError("This form was already used; reload the page to submit again.") from None
        return Submission.from_row(existing)


def get_submission_row(db: Database, submission_id: int, *, with_result: bool = False) -> Submission | None:
    with db.connect() as conn:
        row = evaluations_sql.get_submission(conn, submission_id, with_result=with_result)
    return Submission.from_row(row) if row else None


SUBMISSIONS_PAGE_SIZE = 50
MAX_SUBMISSIONS_PAGE_SIZE = 200


def submissions_page(
    db: Database, actor_id: int | None, challenge_id: str | None = None, *, limit: int = SUBMISSIONS_PAGE_SIZE,
    offset: int = 0,
) -> Page[Submission]:  # fmt: skip
    """A page of the logged-in user's own submissions, newest first, with how many there are in all."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_SUBMISSIONS_PAGE_SIZE:
        raise ValidationError(f"A page holds 1 to {MAX_SUBMISSIONS_PAGE_SIZE} submissions.")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValidationError("The page offset must be a whole number, 0 or more.")
    if challenge_id is not None and (not challenge_id or "\x00" in challenge_id or len(challenge_id) > 100):
        raise ValidationError("No such challenge id.")  # no stored id can contain NUL or be that long
    with db.connect() as conn:
        user = require_user(conn, actor_id, "see your submissions")
        rows = evaluations_sql.list_for_user(conn, user.id, challenge_id=challenge_id, limit=limit, offset=offset)
        total = evaluations_sql.count_for_user(conn, user.id, challenge_id=challenge_id)
    return Page(items=[Submission.from_row(r) for r in rows], total=total, limit=limit, offset=offset)


def my_submissions(db: Database, actor_id: int | None, challenge_id: str | None = None) -> list[Submission]:
    with db.connect() as conn:
        user = require_user(conn, actor_id, "see your submissions")
        rows = evaluations_sql.list_for_user(conn, user.id, challenge_id=challenge_id)
    return [Submission.from_row(r) for r in rows]

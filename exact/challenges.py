"""Challenges: list, read, create and edit (organisers only), with their three files."""

from __future__ import annotations

import logging
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError

from db import challenges as challenges_sql
from db import competition as competition_sql
from db.database import Database
from exact import splits
from exact.accounts import require_user
from exact.competition import Rules, clean_rules, countdown, store_rules
from exact.errors import NotFound, PermissionDenied, ValidationError
from exact.evaluation_sets import PreparedEvaluation, clean_metric_choice, store_evaluation
from exact.paging import Page
from exact.permissions import require_challenge_organiser
from exact.storage import MediaStorage, UploadedFile
from exact.trained_models import TrainingPlan, models_available, queue_benchmark_models
from exact.validation import CHALLENGE_ID_RE, clean_challenge_id, clean_text

log = logging.getLogger(__name__)

# The column allows 100 characters, but files live at challenges/<id>/<kind>/<name> within 100 characters too;
# 50 leaves file names room. Existing longer ids (created by Django) are still read and shown.
CHALLENGE_ID_MAX_LENGTH = 50
TITLE_MAX_LENGTH = 100
DESCRIPTION_MAX_LENGTH = 50_000
DELETE_TIMEOUT_MS = 120_000

# File kinds: form label, column, folder name, accepted extensions. Files are only ever offered for download.
FILE_KINDS: dict[str, tuple[str, str, frozenset[str]]] = {
    "dataset": (
        "Dataset",
        "dataset",
        frozenset({".csv", ".npz", ".npy", ".zip", ".parquet", ".json", ".tar.gz", ".h5"}),
    ),
    # No .pt/.pth/.pkl: those are pickles, which run code when loaded (docs/security.md).
    "model": ("Model", "mlmodel", frozenset({".onnx", ".safetensors", ".h5", ".keras", ".zip", ".json"})),
    "xai": ("XAI method template", "xaimethod", frozenset({".py", ".ipynb", ".zip", ".txt", ".md"})),
}
SORT_LABELS = {
    "newest": "Newest first",
    "oldest": "Oldest first",
    "participants": "Most participants",
    "submissions": "Most submissions",
    "best_score": "Best score",
    "title": "Title (A-Z)",
}

_UNIQUE_VIOLATION = "23505"  # SQLSTATE of a duplicate key


@dataclass(frozen=True)
class Challenge:
    id: int
    challenge_id: str
    title: str
    description: str
    created_at: datetime
    files: dict[str, str]  # kind -> relative path ('' when none)
    participants: int = 0
    submissions: int = 0
    best_score: float | None = None
    last_submission_at: datetime | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Challenge:
        return cls(
            id=row["id"],
            challenge_id=row["challenge_id"],
            title=row["title"],
            description=row["description"],
            created_at=row["created_at"],
            files={kind: row[column] or "" for kind, (_, column, _) in FILE_KINDS.items()},
            participants=row.get("participants") or 0,
            submissions=row.get("submissions") or 0,
            best_score=row.get("best_score"),
            last_submission_at=row.get("last_submission_at"),
        )

    def file_name(self, kind: str) -> str:
        return self.files.get(kind, "").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class ChallengeForm:
    title: str
    description: str
    challenge_id: str = ""  # blank: generated from the title


PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


def _clean_listing(search: str, sort: str, limit: int, offset: int) -> str | None:
    """The search as matched, or None when nothing can match; raises for a bad sort or page."""
    if sort not in challenges_sql.SORTS:
        raise ValidationError(f"Unknown sort order {sort!r}.")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValidationError(f"A page holds 1 to {MAX_PAGE_SIZE} challenges.")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValidationError("The page offset must be a whole number, 0 or more.")
    search = (search or "").strip()[:200]
    if "\x00" in search:  # no stored text can contain NUL (PostgreSQL refuses it), so nothing matches
        return None
    return search


def list_challenges(
    db: Database,
    *,
    search: str = "",
    sort: str = "newest",
    limit: int = PAGE_SIZE,
    offset: int = 0,
    organised_by: int | None = None,
) -> Page[Challenge]:
    """A page of challenges matching ``search`` (title, id or description), in one of SORT_LABELS' orders.

    ``organised_by`` (a user's id): only the challenges that user organises (exact.permissions; all of them for an
    administrator, none for someone who is not an organiser), as the user is in the database now."""
    search = _clean_listing(search, sort, limit, offset)
    if search is None:
        return Page(items=[], total=0, limit=limit, offset=offset)
    with db.connect() as conn:
        organiser_id = None
        if organised_by is not None:
            user = require_user(conn, organised_by, "see the challenges you organise")
            if not user.is_organiser:
                return Page(items=[], total=0, limit=limit, offset=offset)
            organiser_id = None if user.is_admin else user.id
        listing = {"search": search, "organiser_id": organiser_id}
        rows = challenges_sql.list_with_stats(conn, sort=sort, limit=limit, offset=offset, **listing)
        total = challenges_sql.count_matching(conn, **listing)
    return Page(items=[Challenge.from_row(r) for r in rows], total=total, limit=limit, offset=offset)


@dataclass(frozen=True)
class ChallengeSummary:
    """One row of the challenge list: the challenge, how it is scored and where its competition stands."""

    challenge: Challenge
    scored_on_server: bool
    phase: str  # "upcoming", "open" or "closed" (exact.competition.Rules.phase)
    status: str  # "Open", "Open, closes in 3 days", "Opens in 2 days 4 hours", "Closed"

    @property
    def kind(self) -> str:
        return "Server-scored" if self.scored_on_server else "Score-only"


def challenge_status(rules: Rules, now: datetime | None = None) -> str:
    """Where the challenge's competition stands, in words: open (and until when), upcoming or closed."""
    now = now or datetime.now(UTC)
    phase = rules.phase(now)
    if phase == "upcoming":
        return f"Opens in {countdown(rules.starts_at, now)}"
    if phase == "closed":
        return "Closed"
    if rules.ends_at is None:
        return "Open"
    return f"Open, closes in {countdown(rules.ends_at, now)}"


def list_challenge_summaries(
    db: Database,
    *,
    search: str = "",
    sort: str = "newest",
    limit: int = PAGE_SIZE,
    offset: int = 0,
    now: datetime | None = None,
) -> Page[ChallengeSummary]:
    """``list_challenges`` with each challenge's type and status: the page's rules and evaluation flags are read
    in one statement each, so a page costs four statements whatever its size."""
    search = _clean_listing(search, sort, limit, offset)
    if search is None:
        return Page(items=[], total=0, limit=limit, offset=offset)
    now = now or datetime.now(UTC)
    with db.connect() as conn:
        rows = challenges_sql.list_with_stats(conn, search=search, sort=sort, limit=limit, offset=offset)
        total = challenges_sql.count_matching(conn, search=search)
        ids = [r["challenge_id"] for r in rows]
        rules = competition_sql.rules_for(conn, ids)
        scored = challenges_sql.with_evaluation(conn, ids)
    items = []
    for row in rows:
        challenge = Challenge.from_row(row)
        challenge_rules = Rules.from_row(rules.get(challenge.challenge_id), challenge.challenge_id)
        items.append(
            ChallengeSummary(
                challenge=challenge,
                scored_on_server=challenge.challenge_id in scored,
                phase=challenge_rules.phase(now),
                status=challenge_status(challenge_rules, now),
            )
        )
    return Page(items=items, total=total, limit=limit, offset=offset)


def get_challenge(db: Database, challenge_id: str) -> Challenge:
    if not challenge_id or len(challenge_id) > 100:
        raise NotFound("No such challenge.")
    with db.connect() as conn:
        row = challenges_sql.get(conn, challenge_id)
    if row is None:
        raise NotFound(f"There is no challenge {challenge_id!r}.")
    return Challenge.from_row(row)


def slugify(title: str) -> str:
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii").lower()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title).strip("-")
    return slug[: CHALLENGE_ID_MAX_LENGTH - 5].strip("-") or "challenge"


def _require_organiser(conn, actor_id: int | None, action: str):
    user = require_user(conn, actor_id, action)
    if not user.is_organiser:
        raise PermissionDenied("Only organisers may create or edit challenges.")
    return user


def _require_editor(conn, actor_id: int | None, challenge_id: str, action: str):
    """The challenge's organisers (exact.permissions.is_challenge_organiser)."""
    user = _require_organiser(conn, actor_id, action)
    return require_challenge_organiser(user, challenges_sql.get_owner(conn, challenge_id))


def can_edit(db: Database, actor_id: int | None, challenge_id: str) -> bool:
    try:
        with db.connect() as conn:
            _require_editor(conn, actor_id, challenge_id, "edit a challenge")
    except PermissionDenied:
        return False
    return True


def _clean_form(form: ChallengeForm) -> tuple[str, str]:
    title = clean_text(form.title, field="Title", max_length=TITLE_MAX_LENGTH)
    description = clean_text(form.description, field="Description", max_length=DESCRIPTION_MAX_LENGTH, multiline=True)
    return title, description


def _check_files(storage: MediaStorage, files: dict[str, UploadedFile | None]) -> dict[str, UploadedFile]:
    unknown = set(files) - set(FILE_KINDS)
    if unknown:
        raise ValidationError(f"Unknown file kind(s): {', '.join(sorted(unknown))}.")
    present = {kind: upload for kind, upload in files.items() if upload is not None}
    for kind, upload in present.items():
        label, _, extensions = FILE_KINDS[kind]
        storage.check_upload(upload, label=label, allowed_extensions=extensions)
    return present


@dataclass(frozen=True)
class EvaluationChoice:
    """A ground-truth evaluation set to attach at creation, and how to rank by it."""

    prepared: PreparedEvaluation
    private: MediaStorage
    primary_metric: str = "emd"
    shown_metrics: tuple[str, ...] = ()
    split_fractions: tuple[float, float, float] = splits.DEFAULT_FRACTIONS
    publish_labels: bool = False
    # The paper's models to train on a generated benchmark, one of them the model to explain (docs/models.md).
    training: TrainingPlan | None = None


def create_challenge(
    db: Database,
    storage: MediaStorage,
    actor_id: int | None,
    form: ChallengeForm,
    files: dict[str, UploadedFile | None],
    *,
    evaluation: EvaluationChoice | None = None,
    rules: Rules | None = None,
) -> Challenge:
    """Store the files, then the rows, as one unit: if anything fails nothing is left behind.

    With ``evaluation``, the public evaluation inputs, the private masks, the evaluation row and the baseline
    submissions (queued, scored right after) are part of the same unit; so are the competition ``rules``.
    """
    title, description = _clean_form(form)
    rules = clean_rules(rules or Rules())
    if evaluation is not None:
        primary, shown = clean_metric_choice(evaluation.primary_metric, evaluation.shown_metrics)
        splits.split_sizes(evaluation.prepared.shape[0], evaluation.split_fractions)  # refuse before any write
        if evaluation.training is not None and evaluation.prepared.benchmark is None:
            raise ValidationError("Models are trained on generated benchmarks only; upload your own model instead.")
        if evaluation.training is not None and not models_available():
            raise ValidationError(
                "This installation cannot train models (the optional PyTorch extra, requirements-models.txt, is "
                "not installed); create the challenge without a model."
            )
        if files.get("dataset") is None and evaluation.prepared.dataset_file is not None:
            files = {**files, "dataset": evaluation.prepared.dataset_file}
    chosen_id = (form.challenge_id or "").strip()
    if chosen_id:
        challenge_id = clean_challenge_id(chosen_id, max_length=CHALLENGE_ID_MAX_LENGTH)
    else:
        challenge_id = slugify(title)
    uploads = _check_files(storage, files)

    with db.connect() as conn:
        _require_organiser(conn, actor_id, "create a challenge")
        if not chosen_id and challenges_sql.exists(conn, challenge_id):
            challenge_id = f"{challenge_id}-{secrets.token_hex(2)}"
        elif chosen_id and challenges_sql.exists(conn, challenge_id):
            raise ValidationError(f"The challenge id {challenge_id!r} is already taken; choose another.")

    paths = {kind: "" for kind in FILE_KINDS}
    private_store = evaluation.private if evaluation is not None else storage
    try:
        with storage.staged() as staged, private_store.staged() as private_staged, db.transaction() as conn:
            organiser = _require_organiser(conn, actor_id, "create a challenge")
            for kind, upload in uploads.items():
                paths[kind] = staged.write(f"challenges/{challenge_id}/{kind}", upload)
            challenges_sql.insert(
                conn,
                owner=organiser.username,
                challenge_id=challenge_id,
                title=title,
                description=description,
                mlmodel=paths["model"],
                dataset=paths["dataset"],
                xaimethod=paths["xai"],
            )
            challenges_sql.set_owner(conn, challenge_id, organiser.id)
            store_rules(conn, challenge_id, rules)
            if evaluation is not None:
                store_evaluation(
                    conn,
                    staged,
                    private_staged,
                    challenge_id=challenge_id,
                    prepared=evaluation.prepared,
                    primary_metric=primary,
                    shown_metrics=shown,
                    created_by=organiser.id,
                    split_fractions=evaluation.split_fractions,
                    publish_labels=evaluation.publish_labels,
                )
                if evaluation.training is not None:
                    queue_benchmark_models(
                        conn,
                        challenge_id=challenge_id,
                        benchmark=evaluation.prepared.benchmark,
                        plan=evaluation.training,
                        created_by=organiser.id,
                    )
    except IntegrityError as exc:
        if getattr(exc.orig, "sqlstate", None) != _UNIQUE_VIOLATION:
            raise  # e.g. a NOT NULL column of a newer upstream schema: not the user's doing, logged as such
        # Another organiser took the same id between our check and our insert; the unique key decided.
        raise ValidationError(f"The challenge id {challenge_id!r} is already taken; choose another.") from None
    return get_challenge(db, challenge_id)


def update_challenge(
    db: Database,
    storage: MediaStorage,
    actor_id: int | None,
    challenge_id: str,
    form: ChallengeForm,
    files: dict[str, UploadedFile | None],
    *,
    remove: frozenset[str] = frozenset(),
) -> Challenge:
    """Edit title, description and files; the challenge id never changes (scores refer to it)."""
    title, description = _clean_form(form)
    uploads = _check_files(storage, files)
    if remove - set(FILE_KINDS):
        raise ValidationError("Unknown file kind to remove.")
    replaced: list[str] = []
    with storage.staged() as staged, db.transaction() as conn:
        _require_organiser(conn, actor_id, "edit a challenge")
        row = challenges_sql.lock(conn, challenge_id)
        if row is None:
            raise NotFound(f"There is no challenge {challenge_id!r}.")
        _require_editor(conn, actor_id, challenge_id, "edit a challenge")
        current = Challenge.from_row(row)
        paths = dict(current.files)
        for kind in remove:
            if paths[kind]:
                replaced.append(paths[kind])
            paths[kind] = ""
        for kind, upload in uploads.items():
            if paths[kind]:
                replaced.append(paths[kind])
            paths[kind] = staged.write(f"challenges/{challenge_id}/{kind}", upload)
        challenges_sql.update(
            conn,
            challenge_id=challenge_id,
            title=title,
            description=description,
            mlmodel=paths["model"],
            dataset=paths["dataset"],
            xaimethod=paths["xai"],
        )
    # Only after the commit: the old files are no longer referenced.
    for relative in replaced:
        storage.delete(relative)
    return get_challenge(db, challenge_id)


def delete_challenge(
    db: Database,
    storage: MediaStorage,
    private: MediaStorage,
    actor_id: int | None,
    challenge_id: str,
    *,
    confirmation: str,
) -> dict[str, int]:
    """Delete a challenge with its scores, submissions and files. The organiser must type its id to confirm."""
    if confirmation.strip() != challenge_id:
        raise ValidationError("Type the challenge id exactly to confirm the deletion.")
    # Removing a large challenge touches every score row and its read models (300,000 rows: ~7 s), more than
    # a page's statement limit allows; it is a rare organiser action, so it gets a longer bound of its own.
    with db.transaction(statement_timeout_ms=DELETE_TIMEOUT_MS) as conn:
        _require_organiser(conn, actor_id, "delete a challenge")
        if challenges_sql.lock(conn, challenge_id) is None:
            raise NotFound(f"There is no challenge {challenge_id!r}.")
        _require_editor(conn, actor_id, challenge_id, "delete a challenge")
        counts = challenges_sql.delete_everything(conn, challenge_id)
    # Files only after the commit: a failed delete keeps everything. Only ids of our own safe form name a folder
    # (a Django-created id like "../x" must never widen what is deleted).
    if not CHALLENGE_ID_RE.match(challenge_id):
        log.warning("not deleting files of challenge %r: its id is not a safe folder name", challenge_id)
        return counts
    for store, folder in (
        (storage, f"challenges/{challenge_id}"),
        (storage, f"submissions/{challenge_id}"),
        (private, f"evaluations/{challenge_id}"),
    ):
        store.delete_tree(folder)
    return counts


def file_for_download(storage: MediaStorage, challenge: Challenge, kind: str) -> Path | None:
    """The file behind a challenge's column, if it exists inside the media root."""
    relative = challenge.files.get(kind) or ""
    if not relative:
        return None
    try:
        path = storage.resolve(relative)
    except ValidationError:
        return None
    return path if path.is_file() else None

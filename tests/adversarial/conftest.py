"""Shared fixtures of the adversarial suite: a cast of actors, a small world to attack, and before/after snapshots.

Every attack is checked the same way: the service (or page) refuses with a clear message, and a snapshot of every
table and of every file under the test's temporary folder is the same afterwards.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from db.database import Database
from exact import evaluation_sets, intake, scoring
from exact.challenges import ChallengeForm, EvaluationChoice, create_challenge
from exact.scores import submit_score
from exact.storage import MediaStorage, UploadedFile
from tests.conftest import make_user

PASSWORD = "correct horse battery"
N, H, W = 12, 4, 4  # the ground-truth challenge: 12 samples of 4×4
MISSING_USER_ID = 987_654_321
ONE_MB = 1024 * 1024


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def npz(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def good_files() -> dict[str, UploadedFile]:
    return {
        "dataset": UploadedFile("data.csv", b"a,b\n1,2\n"),
        "model": UploadedFile("model.json", b'{"layers": 2}'),
        "xai": UploadedFile("template.py", b"def explain(model, x):\n    return x\n"),
    }


# --- snapshots ------------------------------------------------------------------------------------------------


def db_snapshot(db: Database) -> dict[str, list[tuple[str, ...]]]:
    """Every row of every table of the public schema, as sorted tuples of their repr."""
    with db.connect() as conn:
        tables = conn.execute(sa.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars().all()
        return {
            table: sorted(tuple(repr(v) for v in row) for row in conn.execute(sa.text(f'SELECT * FROM "{table}"')))
            for table in sorted(tables)
        }


def tree(root: Path) -> list[str]:
    """Every file (with its size) and folder below ``root``."""
    entries = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        entries.append(f"{relative}/" if path.is_dir() else f"{relative} ({path.stat().st_size} B)")
    return entries


def files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@dataclass
class Snapshot:
    """The database and the whole temporary folder (media and private roots live in it) at one moment."""

    db: Database
    root: Path

    def __post_init__(self) -> None:
        self.tables = db_snapshot(self.db)
        self.tree = tree(self.root)

    def assert_unchanged(self, what: str = "") -> None:
        after_tables = db_snapshot(self.db)
        changed = [t for t in self.tables if self.tables[t] != after_tables.get(t)]
        assert not changed, f"{what}: tables changed: {changed}"
        assert after_tables.keys() == self.tables.keys(), what
        assert tree(self.root) == self.tree, f"{what}: files changed"


@pytest.fixture
def snapshot(db, tmp_path):
    """``snapshot()`` captures the database and every file under this test's temporary folder."""
    return lambda: Snapshot(db, tmp_path)


# --- the cast -------------------------------------------------------------------------------------------------


@dataclass
class Cast:
    admin: Any
    owner: Any  # organiser who creates the challenges below
    rival: Any  # another organiser
    participant: Any
    other: Any  # a second participant
    inactive: Any  # a deactivated organiser (still staff, so only is_active stops them)
    deleted_id: int  # the id of an organiser whose row was deleted (e.g. in the Django admin)

    @property
    def strangers(self) -> dict[str, int | None]:
        """Identities that are nobody now: visitor, deactivated, deleted, never existed."""
        return {
            "visitor": None,
            "inactive": self.inactive.id,
            "deleted": self.deleted_id,
            "nonexistent": MISSING_USER_ID,
        }


@pytest.fixture
def cast(db) -> Cast:
    ghost = make_user(db, "ghost", staff=True)
    with db.transaction() as conn:
        conn.execute(sa.text("DELETE FROM auth_user WHERE id = :i"), {"i": ghost.id})
    return Cast(
        admin=make_user(db, "root", superuser=True),
        owner=make_user(db, "olivia", staff=True),
        rival=make_user(db, "oscar", staff=True),
        participant=make_user(db, "pat"),
        other=make_user(db, "quinn"),
        inactive=make_user(db, "sleepy", staff=True, active=False),
        deleted_id=ghost.id,
    )


@pytest.fixture
def private(private_root: Path) -> MediaStorage:
    return MediaStorage(private_root, max_bytes=ONE_MB)


def masks_array() -> np.ndarray:
    rng = np.random.default_rng(3)
    masks = np.zeros((N, H, W))
    for i in range(N):
        masks[i].flat[rng.choice(H * W, size=3, replace=False)] = 1.0
    return masks


def evaluation_choice(private: MediaStorage) -> EvaluationChoice:
    rng = np.random.default_rng(4)
    prepared = evaluation_sets.prepare_uploaded_evaluation(
        UploadedFile("inputs.npz", npz(inputs=rng.normal(size=(N, H * W)), labels=np.arange(N) % 2)),
        UploadedFile("masks.npy", npy(masks_array())),
        max_bytes=ONE_MB,
    )
    return EvaluationChoice(prepared=prepared, private=private, primary_metric="mass", shown_metrics=("emd",))


@dataclass
class World:
    cast: Cast
    owned: str  # score-only challenge with three files, created by cast.owner
    gt: str  # ground-truth challenge created by cast.owner, baselines scored
    submission_id: int  # cast.participant's scored attribution submission to ``gt``


@pytest.fixture
def world(db, storage, private, cast) -> World:
    create_challenge(db, storage, cast.owner.id, ChallengeForm("Owned", "Owned by olivia.", "owned"), good_files())
    create_challenge(
        db,
        storage,
        cast.owner.id,
        ChallengeForm("Ground truth", "Scored on the server.", "gt"),
        {},
        evaluation=evaluation_choice(private),
    )
    scoring.score_waiting_baselines(db, storage, private, "gt")
    submit_score(db, cast.participant.id, "owned", 0.5)
    attributions = np.random.default_rng(9).normal(size=(N, H, W))
    submission = intake.submit_attributions(
        db, storage, cast.participant.id, "gt", UploadedFile("a.npy", npy(attributions)), method_name="Mine"
    )
    assert scoring.process_submission(db, storage, private, submission.id).status == "done"
    return World(cast=cast, owned="owned", gt="gt", submission_id=submission.id)

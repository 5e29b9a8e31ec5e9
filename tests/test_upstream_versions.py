"""The app on databases of each upstream schema version, built by Django's own migrations (tests/django_project,
EXACT_DJANGO_SCHEMA): log in with a Django-made hash, create a challenge, submit, score on the server, rank around
failed and NULL rows, and Django's ORM reads back what the app wrote (docs/upstream-versions.md)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import sqlalchemy as sa

from db.database import Database
from db.schema import apply_schema
from db.upstream import IncompatibleSchema, detect
from exact import accounts, charts, evaluation_sets, intake, scoring
from exact.challenges import ChallengeForm, EvaluationChoice, create_challenge
from exact.schema_status import schema_status
from exact.scores import leaderboard, recent_submissions, submit_score
from exact.storage import MediaStorage, UploadedFile
from tests.conftest import make_user
from tests.upstream_versions import VERSIONS, django_migrate, run_django

PASSWORD = "heron-violet-canoe-7"
N, H, W = 12, 4, 4


@pytest.fixture(params=VERSIONS)
def migrated(request, scratch_databases):
    """(version, url, Database) of a database Django of that version migrated, adopted by the app."""
    version = request.param
    url = scratch_databases.create(f"exact_up_{version.replace('-', '_')}")
    django_migrate(url, version)
    database = Database(url, pool_size=2, max_overflow=4)
    apply_schema(database)  # the app starting on it
    yield version, url, database
    database.dispose()


def _sql(db: Database, query: str, **params):
    with db.transaction() as conn:
        result = conn.execute(sa.text(query), params)
        return result.mappings().all() if result.returns_rows else None


def _orm(url: str, version: str, code: str):
    """Run Python in Django's shell of that version and parse the JSON it prints."""
    out = run_django(url, version, "shell", "-c", f"import json\n{code}").stdout
    return json.loads(out.strip().splitlines()[-1])


def _raw_score(db: Database, version: str, username: str, challenge: str, **values) -> None:
    """A row as upstream writes it: only the columns this version has."""
    columns = {"username": username, "challenge_id": challenge, **values}
    if version == "spec":
        columns = {k: v for k, v in columns.items() if k in {"username", "challenge_id", "score"}}
    names = ", ".join(columns)
    marks = ", ".join(f":{k}" for k in columns)
    _sql(db, f"INSERT INTO api_score ({names}, created_at) VALUES ({marks}, now())", **columns)


def test_detects_the_version_django_built(migrated):
    version, _, db = migrated
    with db.connect() as conn:
        assert detect(conn).version == version


def test_a_django_user_logs_in_creates_a_challenge_and_submits(migrated, tmp_path):
    version, url, db = migrated
    run_django(
        url,
        version,
        "shell",
        "-c",
        "from django.contrib.auth.models import User\n"
        f"User.objects.create_user('dj', password='{PASSWORD}', is_staff=True)",
    )
    organiser = accounts.authenticate(db, "dj", PASSWORD)  # Django's own PBKDF2 hash
    assert organiser.is_organiser
    storage = MediaStorage(tmp_path / "media", max_bytes=1024 * 1024)
    create_challenge(db, storage, organiser.id, ChallengeForm("Upstream", "d", "up"), {})
    result = submit_score(db, organiser.id, "up", 0.75)
    assert (result.rank, result.score) == (1, 0.75)

    read_back = _orm(
        url,
        version,
        "from api.models import Challenge, Score\n"
        "c = Challenge.objects.get(challenge_id='up')\n"
        "s = Score.objects.get(challenge_id='up')\n"
        "print(json.dumps({'challenge': {f.name: str(getattr(c, f.name)) for f in c._meta.fields},"
        " 'score': {f.name: getattr(s, f.name) if f.name != 'created_at' else None for f in s._meta.fields}}))",
    )
    assert read_back["challenge"]["title"] == "Upstream"
    assert read_back["score"]["username"] == "dj" and read_back["score"]["score"] == 0.75
    if version != "spec":  # written as upstream's Django would
        assert read_back["score"]["status"] == "completed" and read_back["score"]["emd_score"] == 0.75
    if version == "2025-07":
        assert read_back["challenge"]["created_by"] == "dj"
    if version == "2026-05":
        assert read_back["challenge"]["creator"] == "dj"


def test_only_completed_rows_with_a_value_rank(migrated, tmp_path):
    version, _, db = migrated
    organiser = make_user(db, "olivia", staff=True)
    storage = MediaStorage(tmp_path / "media", max_bytes=1024 * 1024)
    create_challenge(db, storage, organiser.id, ChallengeForm("Mixed", "d", "mixed"), {})
    for name in ("ann", "bob", "cat", "dan"):
        make_user(db, name)
    _raw_score(db, version, "ann", "mixed", score=0.5, **({} if version == "spec" else {"status": "completed"}))
    if version == "spec":
        expected = [("ann", 0.5)]
    else:
        # A failed and a running run with high scores, a completed row without any value, one with only
        # emd_score (upstream's primary value), and a user whose failed run must not hide their real best.
        _raw_score(db, version, "ann", "mixed", score=0.99, status="failed", error_message="crashed")
        _raw_score(db, version, "bob", "mixed", score=0.98, status="running")
        _raw_score(db, version, "cat", "mixed", score=None, status="completed")
        _raw_score(db, version, "dan", "mixed", score=None, emd_score=0.7, status="completed")
        _raw_score(db, version, "dan", "mixed", score=0.2, emd_score=0.6, status="completed")
        expected = [("dan", 0.7), ("ann", 0.5)]
    board = leaderboard(db, "mixed")
    assert list(zip(board.table["username"], board.table["score"], strict=True)) == expected
    assert board.total == len(expected)
    everything = leaderboard(db, "mixed", show_all=True)
    assert everything.total == (1 if version == "spec" else 3)
    assert None not in everything.table["score"].tolist()
    assert set(recent_submissions(db, limit=10)["score"]) == {s for _, s in expected} | (
        set() if version == "spec" else {0.6}
    )
    charts.ranking_bar(board.table)  # formats every score: no None reaches it
    if version != "spec":  # a running row completes (Django updates it): it now counts
        _sql(db, "UPDATE api_score SET status = 'completed' WHERE username = 'bob'")
        assert leaderboard(db, "mixed").table["username"].tolist() == ["bob", "dan", "ann"]


def test_a_submission_is_scored_on_the_server(migrated, tmp_path):
    version, url, db = migrated
    organiser, alice = make_user(db, "olivia", staff=True), make_user(db, "alice")
    storage = MediaStorage(tmp_path / "media", max_bytes=1024 * 1024)
    private = MediaStorage(tmp_path / "private", max_bytes=1024 * 1024)
    rng = np.random.default_rng(4)
    masks = np.zeros((N, H, W))
    for i in range(N):
        masks[i].flat[rng.choice(H * W, size=3, replace=False)] = 1.0

    def npy(array) -> bytes:
        buffer = io.BytesIO()
        np.save(buffer, array)
        return buffer.getvalue()

    inputs = io.BytesIO()
    np.savez(inputs, inputs=rng.normal(size=(N, H * W)), labels=np.arange(N) % 2)
    prepared = evaluation_sets.prepare_uploaded_evaluation(
        UploadedFile("inputs.npz", inputs.getvalue()), UploadedFile("masks.npy", npy(masks)), max_bytes=1024 * 1024
    )
    choice = EvaluationChoice(prepared=prepared, private=private, primary_metric="mass", shown_metrics=("emd",))
    create_challenge(db, storage, organiser.id, ChallengeForm("GT", "d", "gt"), {}, evaluation=choice)
    submission = intake.submit_attributions(
        db, storage, alice.id, "gt", UploadedFile("a.npy", npy(masks)), method_name="Oracle"
    )
    done = scoring.process_submission(db, storage, private, submission.id)
    assert done.status == "done"
    read_back = _orm(
        url,
        version,
        "from api.models import Score\n"
        "s = Score.objects.get(challenge_id='gt')\n"
        "print(json.dumps({f.name: getattr(s, f.name) for f in s._meta.fields if f.name != 'created_at'}))",
    )
    assert read_back["username"] == "alice" and read_back["score"] == done.primary_value
    if version != "spec":
        assert (read_back["status"], read_back["emd_score"], read_back["method_name"]) == (
            "completed",
            done.primary_value,
            "Oracle",
        )
        assert read_back["emd_std"] is None  # a spread over samples is not published
    assert leaderboard(db, "gt").table["username"].tolist() == ["alice"]


def test_the_administrator_page_names_the_version(migrated):
    version, _, db = migrated
    admin = make_user(db, "root", superuser=True)
    status = schema_status(db, admin.id)
    assert status.version == version and status.unknown_columns == ()
    assert ("api_score.status" in status.extra_columns) == (version != "spec")
    assert ("0004_score_plot_base64" in status.api_migrations) == (version == "2026-05")


def test_an_unknown_required_column_stops_the_start_with_its_name(scratch_databases):
    url = scratch_databases.create("exact_up_unknown")
    django_migrate(url, "2026-05")
    database = Database(url, pool_size=1, max_overflow=1)
    try:
        with database.transaction() as conn:  # as a later upstream migration might add
            conn.execute(sa.text("ALTER TABLE api_score ADD COLUMN reviewer varchar(50) NOT NULL"))
            tables_before = conn.execute(sa.text("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'exact%'"))
            tables_before = tables_before.scalar_one()
        with pytest.raises(IncompatibleSchema, match=r"api_score\.reviewer"):
            apply_schema(database)
        with database.connect() as conn:  # nothing was created or changed
            after = conn.execute(sa.text("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'exact%'"))
            assert after.scalar_one() == tables_before == 0
    finally:
        database.dispose()


def test_the_app_names_the_unknown_required_column_instead_of_starting(app, db):
    from tests.pages_helpers import run, title

    with db.transaction() as conn:
        conn.execute(sa.text("ALTER TABLE api_challenge ADD COLUMN sponsor varchar(50) NOT NULL"))
    at = app()
    run(at)
    assert title(at) == "Exact cannot use this database"
    assert len(at.error) == 1 and "api_challenge.sponsor" in at.error[0].value
    assert not at.exception


def test_a_later_upstream_migration_counts_at_once_and_the_next_start_adapts_the_rest(scratch_databases):
    """A spec database the app adopted, then migrated by upstream (status, emd_score) while the app runs: the read
    models apply the new rule at once (and Django's pending rows without a score insert fine); the next start
    regenerates the view and the insert functions."""
    url = scratch_databases.create("exact_up_later")
    django_migrate(url, "spec")
    db = Database(url, pool_size=2, max_overflow=2)
    try:
        apply_schema(db)
        _sql(db, "INSERT INTO api_challenge (challenge_id, title, description, created_at, mlmodel, dataset, "
             "xaimethod) VALUES ('c', 'C', 'd', now(), '', '', '')")  # fmt: skip
        _sql(db, "INSERT INTO api_score (username, challenge_id, score, created_at) VALUES ('ann', 'c', 0.5, now())")
        # What upstream's 0002 does (Django adds a NOT NULL column with a default, then drops the default):
        _sql(db, "ALTER TABLE api_score ADD COLUMN status varchar(20) NOT NULL DEFAULT 'completed'")
        _sql(db, "ALTER TABLE api_score ALTER COLUMN status DROP DEFAULT")
        _sql(db, "ALTER TABLE api_score ADD COLUMN emd_score double precision NULL")
        _sql(db, "ALTER TABLE api_score ALTER COLUMN score DROP NOT NULL")
        _sql(db, "INSERT INTO api_score (username, challenge_id, score, status, created_at) "
             "VALUES ('bob', 'c', 0.99, 'failed', now()), ('cat', 'c', NULL, 'pending', now())")  # fmt: skip
        _sql(db, "INSERT INTO api_score (username, challenge_id, score, emd_score, status, created_at) "
             "VALUES ('dan', 'c', NULL, 0.7, 'completed', now())")  # fmt: skip
        board = leaderboard(db, "c")  # before any restart
        assert list(zip(board.table["username"], board.table["score"], strict=True)) == [("dan", 0.7), ("ann", 0.5)]
        apply_schema(db)  # the next start
        everything = leaderboard(db, "c", show_all=True)
        assert everything.table["username"].tolist() == ["dan", "ann"] and everything.total == 2
        result = submit_score(db, make_user(db, "eve").id, "c", 0.6)  # written with status and emd_score
        assert (result.rank, result.ranked_users) == (2, 3)
        assert _sql(db, "SELECT status, emd_score FROM api_score WHERE username = 'eve'") == [
            {"status": "completed", "emd_score": 0.6}
        ]
        _sql(db, "UPDATE api_score SET status = 'completed' WHERE username = 'bob'")
        assert leaderboard(db, "c").table["username"].tolist() == ["bob", "dan", "eve", "ann"]
    finally:
        db.dispose()

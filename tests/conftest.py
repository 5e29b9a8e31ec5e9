"""Fixtures: a real PostgreSQL for every test (embedded by default, else DATABASE_URL), one scratch DB each."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from hypothesis import settings
from psycopg import sql
from sqlalchemy.engine import make_url

from db.database import Database, normalise_url
from db.schema import apply_schema
from exact import PROJECT_ROOT

# Property tests explore new random examples on every local `make test`; CI (.ci/run sets HYPOTHESIS_PROFILE=ci)
# replays the same derived examples each time, so a landing never fails on a draw nobody has seen locally.
# A failure found locally is kept as an explicit @example.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Remember each phase's outcome on the item, so live-server fixtures can print the log of a failed test."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def _server_url() -> str:
    configured = os.environ.get("DATABASE_URL")
    if configured:
        return normalise_url(configured)
    from db.embedded import start_embedded_server

    data_dir = Path(os.environ.get("EXACT_TEST_DATA_DIR") or PROJECT_ROOT / ".data" / "test")
    return start_embedded_server(data_dir / "postgres")


def _libpq(url: str) -> str:
    """psycopg wants a plain libpq URL, SQLAlchemy one with +psycopg."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    """URL of the server's maintenance database; tests never write to it."""
    return _server_url()


class ScratchDatabases:
    """Creates uniquely named databases on the test server and drops them at the end."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.created: list[str] = []

    def create(self, prefix: str = "exact_test") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(_libpq(self.server_url), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.created.append(name)
        return make_url(self.server_url).set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        with psycopg.connect(_libpq(self.server_url), autocommit=True) as conn:
            for name in self.created:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        self.created.clear()


@pytest.fixture(scope="session")
def scratch_databases(pg_server_url: str) -> Iterator[ScratchDatabases]:
    scratch = ScratchDatabases(pg_server_url)
    yield scratch
    scratch.drop_all()


@pytest.fixture
def empty_db_url(scratch_databases: ScratchDatabases) -> str:
    """A brand-new empty database (no schema)."""
    return scratch_databases.create()


@pytest.fixture
def db_url(scratch_databases: ScratchDatabases) -> str:
    """A brand-new database with schema.sql applied."""
    url = scratch_databases.create()
    database = Database(url, pool_size=2, max_overflow=2)
    apply_schema(database)
    database.dispose()
    return url


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url, pool_size=5, max_overflow=60)
    yield database
    database.dispose()


@pytest.fixture
def media_root(tmp_path: Path) -> Path:
    root = tmp_path / "media"
    root.mkdir()
    return root


@pytest.fixture(autouse=True)
def fast_password_hashing(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """1,000,000 PBKDF2 rounds take ~0.5 s; tests use fewer unless they check the real default."""
    if "real_hashing" not in request.keywords:
        from exact import passwords

        monkeypatch.setattr(passwords, "DEFAULT_ITERATIONS", 1000)


@pytest.fixture
def storage(media_root: Path):
    from exact.storage import MediaStorage

    return MediaStorage(media_root, max_bytes=1024 * 1024)


def make_user(
    db: Database,
    username: str,
    *,
    staff: bool = False,
    superuser: bool = False,
    active: bool = True,
    password: str = "correct horse battery",
):
    """A user straight in the database (trusted set-up for tests)."""
    from db import users as users_sql
    from exact import passwords
    from exact.accounts import User

    with db.transaction() as conn:
        user_id = users_sql.insert_user(
            conn,
            username=username,
            password_hash=passwords.make_password(password),
            is_staff=staff or superuser,
            is_superuser=superuser,
            is_active=active,
        )
        return User.from_row(users_sql.get_by_id(conn, user_id))


@pytest.fixture
def private_root(tmp_path: Path) -> Path:
    """The app's private (ground-truth) folder in tests: EXACT_DATA_DIR/private, its default place."""
    root = tmp_path / "exact-data" / "private"
    root.mkdir(parents=True)
    return root


@pytest.fixture
def app_env(db_url: str, media_root: Path, private_root: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Environment of the app under AppTest, on this test's scratch database; Streamlit caches emptied around it.

    (The scratch database exists before DATABASE_URL is patched, so the session's server choice is untouched.)
    """
    import contextlib

    import streamlit as st

    from tests.pages_helpers import SECRET_KEY

    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("EXACT_MEDIA_ROOT", str(media_root))
    monkeypatch.setenv("EXACT_PRIVATE_ROOT", str(private_root))
    monkeypatch.setenv("EXACT_SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv("EXACT_DATA_DIR", str(tmp_path / "exact-data"))
    monkeypatch.setenv("EXACT_WORKER", "off")  # tests drive scoring themselves; no thread outlives its database
    monkeypatch.delenv("EXACT_MAX_UPLOAD_MB", raising=False)
    monkeypatch.delenv("EXACT_SESSION_DAYS", raising=False)
    st.cache_resource.clear()
    yield
    from ui.runtime import get_db

    # The app's pooled connections to this scratch database; tests that break the configuration have none.
    with contextlib.suppress(Exception):
        get_db().dispose()
    st.cache_resource.clear()


@pytest.fixture
def app(app_env):
    """Runs of app.py as a live server does them: ``app()`` gives a fresh AppTest (app.py always runs first)."""
    from tests.pages_helpers import new_app

    return new_app

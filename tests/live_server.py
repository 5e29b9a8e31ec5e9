"""A live ``streamlit run server.py`` (the app with its HTTP routes) on a scratch database, for the browser
journeys and the HTTP API tests."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from db.database import Database
from db.schema import apply_schema

REPO_ROOT = Path(__file__).resolve().parents[1]
STARTUP_TIMEOUT_S = 60


@dataclass
class LiveApp:
    """A running ``streamlit run server.py`` and the handles a test needs to look behind it."""

    url: str  # base URL, no trailing slash
    db_url: str
    media_root: Path
    data_dir: Path
    log_path: Path
    process: subprocess.Popen = field(repr=False)
    _db: Database | None = field(default=None, repr=False)
    private_root: Path | None = None  # EXACT_PRIVATE_ROOT: ground-truth masks, outside the media root
    secret_key: str = field(default="", repr=False)  # the server's EXACT_SECRET_KEY, to make its login tickets

    @property
    def db(self) -> Database:
        """The same database the server uses, for seeding and for checking what the UI stored."""
        if self._db is None:
            self._db = Database(self.db_url, pool_size=2, max_overflow=2)
        return self._db

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return "(no server log)"

    def stop(self) -> None:
        if self._db is not None:
            self._db.dispose()
            self._db = None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(app: LiveApp) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        if app.process.poll() is not None:
            pytest.fail(
                f"The Streamlit server exited with code {app.process.returncode} before it was healthy.\n"
                f"--- server log ---\n{app.log()}"
            )
        try:
            with urllib.request.urlopen(f"{app.url}/_stcore/health", timeout=2) as response:  # noqa: S310 - local
                body = response.read().decode(errors="replace").strip()
            if body == "ok":
                return
            last_error = f"health answered {body!r}"
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
            last_error = str(exc)
        time.sleep(0.25)
    app.stop()
    pytest.fail(
        f"The Streamlit server was not healthy within {STARTUP_TIMEOUT_S} s ({last_error}).\n"
        f"--- server log ---\n{app.log()}"
    )


def _start_app(db_url: str, workdir: Path, extra_env: dict[str, str] | None = None) -> LiveApp:
    media_root = workdir / "media"
    data_dir = workdir / "data"
    private_root = workdir / "private"
    for folder in (media_root, data_dir, private_root):
        folder.mkdir(parents=True)
    port = _free_port()
    env = dict(os.environ)
    env.update(
        DATABASE_URL=db_url,
        EXACT_MEDIA_ROOT=str(media_root),
        EXACT_SECRET_KEY=secrets.token_urlsafe(36),  # 48 characters
        EXACT_DATA_DIR=str(data_dir),
        EXACT_PRIVATE_ROOT=str(private_root),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra_env or {})
    python = REPO_ROOT / ".venv" / "bin" / "python"
    command = [
        str(python if python.exists() else sys.executable),
        "-m",
        "streamlit",
        "run",
        "server.py",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
    ]
    log_path = workdir / "server.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(  # noqa: S603 - our interpreter, fixed arguments
            command, cwd=REPO_ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    app = LiveApp(
        url=f"http://127.0.0.1:{port}",
        db_url=db_url,
        media_root=media_root,
        data_dir=data_dir,
        log_path=log_path,
        process=process,
        private_root=private_root,
        secret_key=env["EXACT_SECRET_KEY"],
    )
    _wait_healthy(app)
    return app


def serve_on_scratch(
    scratch_databases, workdir: Path, env: dict[str, str] | None = None, *, prefix: str = "exact_live"
) -> LiveApp:
    """A live server on a brand-new scratch database that has the schema: for module-scoped fixtures (one server
    for many tests), which stop it themselves (``served`` does both)."""
    db_url = scratch_databases.create(prefix)
    database = Database(db_url, pool_size=1, max_overflow=1)
    try:
        apply_schema(database)
    finally:
        database.dispose()
    return _start_app(db_url, workdir, env)


@contextmanager
def served(scratch_databases, tmp_path_factory, request: pytest.FixtureRequest, env: dict[str, str] | None = None,
           *, prefix: str = "exact_live") -> Iterator[LiveApp]:  # fmt: skip
    """``serve_on_scratch`` for a module-scoped fixture: stopped at the end, its log printed if a test failed."""
    app = serve_on_scratch(scratch_databases, tmp_path_factory.mktemp(prefix), env, prefix=prefix)
    failures_before = request.session.testsfailed
    try:
        yield app
    finally:
        app.stop()
        if request.session.testsfailed > failures_before:
            print(f"\n--- server log of {app.url} ---\n{app.log()[-20_000:]}", file=sys.stderr)


def failed(request: pytest.FixtureRequest) -> bool:
    report = getattr(request.node, "report_call", None)
    return report is None or report.failed


@pytest.fixture
def start_live_app(
    scratch_databases, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., LiveApp]]:
    """Factory: ``start_live_app(with_schema=True)`` serves the app on a brand-new scratch database.

    ``with_schema=False`` leaves the database completely empty, so the app itself must create the schema.
    ``env`` adds to (or overrides) the server's environment, e.g. ``{"EXACT_WORKER": "on"}``.
    """
    started: list[LiveApp] = []

    def start(*, with_schema: bool = True, env: dict[str, str] | None = None) -> LiveApp:
        db_url = scratch_databases.create("exact_browser")
        if with_schema:
            database = Database(db_url, pool_size=1, max_overflow=1)
            try:
                apply_schema(database)
            finally:
                database.dispose()
        app = _start_app(db_url, tmp_path / f"app{len(started)}", env)
        started.append(app)
        return app

    yield start
    for app in started:
        app.stop()
        if failed(request):
            print(f"\n--- server log of {app.url} ---\n{app.log()[-20_000:]}", file=sys.stderr)


@pytest.fixture
def live_app(start_live_app: Callable[..., LiveApp]) -> LiveApp:
    """The app served on a fresh scratch database that already has the schema (but no users or challenges)."""
    return start_live_app()

"""Fixtures for the browser journeys: a live Streamlit server on a scratch database, and a Chromium page.

Playwright cannot download its own browsers here, so Chromium is Debian's (``make test`` installs it). A missing
Chromium fails these tests with an explanation instead of skipping them silently.
"""

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
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from db.database import Database
from db.schema import apply_schema

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
STARTUP_TIMEOUT_S = 60
UI_TIMEOUT_MS = 20_000  # Streamlit reruns asynchronously: every wait in the journeys is bounded by this


@dataclass
class LiveApp:
    """A running ``streamlit run app.py`` and the handles a test needs to look behind it."""

    url: str  # base URL, no trailing slash
    db_url: str
    media_root: Path
    data_dir: Path
    log_path: Path
    process: subprocess.Popen = field(repr=False)
    _db: Database | None = field(default=None, repr=False)
    private_root: Path | None = None  # EXACT_PRIVATE_ROOT: ground-truth masks, outside the media root

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
        "app.py",
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
    )
    _wait_healthy(app)
    return app


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Remember each phase's outcome on the item, so fixtures can add diagnostics when a journey failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def _failed(request: pytest.FixtureRequest) -> bool:
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
        if _failed(request):
            print(f"\n--- server log of {app.url} ---\n{app.log()[-20_000:]}", file=sys.stderr)


@pytest.fixture
def live_app(start_live_app: Callable[..., LiveApp]) -> LiveApp:
    """The app served on a fresh scratch database that already has the schema (but no users or challenges)."""
    return start_live_app()


@pytest.fixture(scope="session")
def chromium():
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium is missing at {CHROMIUM}: the browser journeys need it. Install it with `make browser` "
            "(apt-get install chromium); `make test` does this for you.",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def browser_page(chromium, request: pytest.FixtureRequest, tmp_path: Path):
    """A page in its own browser context (own cookies), with Streamlit-friendly timeouts."""
    from playwright.sync_api import expect

    expect.set_options(timeout=UI_TIMEOUT_MS)
    context = chromium.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    context.set_default_timeout(UI_TIMEOUT_MS)
    page = context.new_page()
    yield page
    if _failed(request):
        shot = tmp_path / "failure.png"
        try:
            page.screenshot(path=str(shot), full_page=True)
            print(f"\nscreenshot of the failed journey: {shot} (at {page.url})", file=sys.stderr)
        except Exception as exc:  # the page may be gone; the assertion already tells the story
            print(f"\nno failure screenshot: {exc}", file=sys.stderr)
    context.close()

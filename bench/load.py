"""Load test: many concurrent sessions against a real app server on loopback, bounded in time and page views.

``python -m bench.load [--sessions 50] [--duration 60] [--max-requests N] [--driver protocol|browser] [--json PATH]
[--dataset demo|scale|scale-small] [--scenario cycle|workshop [--submitters N]]``

What it does, in order (docs/load-test.md has the figures and how to read them):

1. Creates a scratch database (on the server in DATABASE_URL, else on a private embedded PostgreSQL in
   ``.data/load/postgres``), applies the schema, loads the demo (``exact.demo.load_demo``; its typed-score
   challenge's daily limit is lifted, as sessions submit more than 5 times a day) and inserts one participant
   account per session. ``--dataset scale`` loads bench/scale.py's data set instead (1,000,000 scores; on
   127.0.0.1:5432 when it answers, as bench/scale.py does) and every challenge page view, leaderboard and
   submission is on its hot challenge (300,000 scores); ``scale-small`` is its ``--small`` form. The accounts'
   password hashes use 1,000 PBKDF2 rounds instead of 1,000,000: the work factor only changes the cost of a
   login, and the sessions never log in through the form. Each one gets
   a login session straight from ``exact.sessions.start_session``, and its signed ``exact_session`` cookie is given
   to the browser (or sent with the websocket handshake), exactly as if the user had logged in before the test.
2. Starts ``streamlit run server.py`` (the pages and the HTTP routes) on 127.0.0.1 and a free port, with its
   own media folder and secret key.
3. Baseline: one session alone (one warm-up cycle, then ``--baseline-cycles`` measured cycles, 0.5 s apart).
4. Load: ``--sessions`` sessions opened over ``--ramp`` seconds, each cycling through home, a server-scored
   challenge, its leaderboard (three Plotly charts), the challenge list and a score submission, with a random
   think time (``--think`` seconds on average, 0 = none) between page views. It stops by itself at ``--duration``
   seconds or after ``--max-requests`` page views, whichever comes first (page views under way finish, each
   bounded by ``--timeout``).
   ``--scenario workshop`` (protocol driver): instead, the ``--sessions`` sessions open the presentation view
   (``/present?challenge=…`` of the challenge scores are submitted to) once and then answer its auto-refresh
   timer as a browser does (a fragment rerun every few seconds, "refresh"), while ``--submitters`` more sessions
   (default a tenth, 1 to 5) submit, after a think time each, scores that each beat the board's best, so that
   every one must reach every watcher's board. Besides the page times, it reports after how long the watchers'
   refreshes showed each new best.
5. Reports sessions held (most at once, and at the end), page views, median / 95th-percentile page times overall
   and per page, errors by kind, the baseline medians (so figures read as ratios), peak memory (app server,
   browser, PostgreSQL), the app's database connections, and the CPU used by each and by everything else on the
   machine (other work running beside the test makes the figures unreliable; the report warns). It prints a
   table and writes JSON with ``--json PATH``. The request budget (``--max-requests``) counts the load phase only,
   session openings included.
6. Cleans up whatever was started (browser, server, scratch database, temporary folders), also on Ctrl+C.

Two drivers:

* ``protocol`` (default): Streamlit's own websocket protocol (``/_stcore/stream``, protobuf ``BackMsg`` /
  ``ForwardMsg`` from ``streamlit.proto``), one websocket per session, spoken as the browser's frontend speaks it
  (the session first fetches ``/``, ``/_stcore/health`` and ``/_stcore/host-config``, then sends its login cookie
  with the websocket handshake). A page view is a rerun request for a page (with its query string, and for the
  submission the form's widget values), timed until the ``script_finished`` message; its content is checked (the
  page's own heading or text, three charts on the leaderboard, the "Stored score" message after a submission).
  Nothing is rendered, so this measures what the server sustains when every participant brings a laptop.
* ``browser``: one headless Chromium (Debian's, /usr/bin/chromium), one browser context (own cookies) per session.
  The first page is opened by URL, the rest by clicking sidebar entries and in-page links, like a user; a page
  view is timed from the click until an element specific to that page, rendered last, is visible. On one machine
  the browsers' rendering competes with the app server for the same cores: on 2 cores it measures Chromium more
  than the app (see docs/load-test.md).

Errors are counted by kind: timeouts, driver exceptions, Streamlit exception elements, the app's apology
("Sorry, something went wrong"), "database is unavailable", a page that did not show what it should, and lost
sessions; ERROR lines in the server log are counted too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import random
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from exact import PROJECT_ROOT

HOST = "127.0.0.1"  # loopback only: the load never leaves this machine
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
STARTUP_TIMEOUT_S = 90
BASELINE_THINK_S = 0.5
OTHER_CPU_WARNING = 0.2  # cores used by processes outside the test that make the figures unreliable
USER_PREFIX = "load"
VERBOSE = False  # --verbose: print every error as it happens
LOAD_PASSWORD_ITERATIONS = 1000  # login cost only; the sessions never log in through the form (see module doc)


@dataclass(frozen=True)
class Targets:
    """The challenges a session's page views are about, and what their pages must show."""

    scored_challenge_id: str  # challenge page and leaderboard
    scored_challenge_link: re.Pattern  # browser driver: the link to it on the home page
    leaderboard_needle: str
    submit_challenge_id: str  # typed-in scores, no submission limit (see prepare_database)
    submit_challenge_option: str  # browser driver: its entry in the select box


# Demo data: the challenge and leaderboard of a challenge scored on the server (baselines, metric columns,
# charts); scores are submitted to a typed-in-score challenge of the demo.
DEMO_TARGETS = Targets(
    scored_challenge_id="xai-tris-rigid-8x8-running",
    scored_challenge_link=re.compile(r"XAI-TRIS rigid 8×8 \(running competition\)"),
    leaderboard_needle="Baselines: reference methods",
    submit_challenge_id="xai-tris-linear-8x8",
    submit_challenge_option="XAI-TRIS linear 8×8 (xai-tris-linear-8x8)",
)
DATASETS = ("demo", "scale", "scale-small")  # scale: bench/scale.py's data set (scale-small: its --small form)
# The submit form's score field: its label is the challenge's metric name, so it is found by key / placeholder.
SCORE_WIDGET_KEY = "submit_score"
SCORE_PLACEHOLDER = "e.g. 0.8731"
APOLOGY = "Sorry, something went wrong"
DB_UNAVAILABLE = re.compile(r"database is unavailable|cannot reach its database", re.IGNORECASE)

BROWSER_STEPS = ("home", "challenge", "leaderboard", "challenges", "submit-open", "submit-pick", "submit")
PROTOCOL_STEPS = ("home", "challenge", "leaderboard", "challenges", "submit-open", "submit")
# The workshop scenario: watchers open the presentation view once ("present"), then its auto-refresh reruns the
# board ("refresh"); submitters open the submit page and submit.
WORKSHOP_STEPS = ("present", "refresh", "submit-open", "submit")
SCENARIOS = ("cycle", "workshop")


class ViewError(Exception):
    """A page view that failed; ``kind`` is the error category in the report."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail

    def args_for_report(self) -> tuple[str, str]:
        return self.kind, self.detail


# ----------------------------------------------------------------------------------------------------------------
# Scratch database, accounts and the app server
# ----------------------------------------------------------------------------------------------------------------


def _libpq(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@dataclass
class ScratchDatabase:
    """A uniquely named database on the given server, dropped by ``drop``."""

    server_url: str
    name: str = field(default_factory=lambda: f"exact_load_{uuid.uuid4().hex[:12]}")
    created: bool = False

    @property
    def url(self) -> str:
        from sqlalchemy.engine import make_url

        return make_url(self.server_url).set(database=self.name).render_as_string(hide_password=False)

    def create(self) -> str:
        import psycopg
        from psycopg import sql

        with psycopg.connect(_libpq(self.server_url), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))
        self.created = True
        return self.url

    def drop(self) -> None:
        if not self.created:
            return
        import psycopg
        from psycopg import sql

        with psycopg.connect(_libpq(self.server_url), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name)))
        self.created = False


def server_url() -> tuple[str, Path | None]:
    """The PostgreSQL server for the scratch database: DATABASE_URL, else a private embedded one (and its folder)."""
    from db.database import normalise_url

    configured = os.environ.get("DATABASE_URL")
    if configured:
        return normalise_url(configured), None
    from db.embedded import start_embedded_server

    pgdata = Path(os.environ.get("EXACT_LOAD_DATA_DIR") or PROJECT_ROOT / ".data" / "load") / "postgres"
    return start_embedded_server(pgdata), pgdata  # stopped when this process exits


@dataclass
class Account:
    username: str
    user_id: int
    cookie: str  # the signed exact_session cookie value


@dataclass
class Fixture:
    db_url: str
    media_root: Path
    data_dir: Path
    secret_key: str
    accounts: list[Account]
    demo_scores: int  # scores in the data set (the demo's, or the scale data set's)
    targets: Targets = DEMO_TARGETS
    dataset: str = "demo"


def _lift_submission_limits(db, challenge_id: str) -> None:
    """The demo limits typed-in scores to 5 a day; a session submits more often, and the 6th would be refused."""
    from db import competition as competition_sql

    with db.transaction() as conn:
        rules = competition_sql.get_rules(conn, challenge_id)
        if rules is not None:
            competition_sql.save_rules(conn, challenge_id, {**rules, "daily_limit": None, "total_limit": None})


def prepare_database(db_url: str, workdir: Path, n_accounts: int, dataset: str = "demo") -> Fixture:
    """Schema, data (the demo, or the scale data set of bench/scale.py) and ``n_accounts`` participants, each
    with a live login session (cookie)."""
    from db import users as users_sql
    from db.database import Database
    from db.schema import apply_schema
    from exact import passwords, sessions
    from exact.demo import load_demo
    from exact.storage import MediaStorage

    media_root, data_dir = workdir / "media", workdir / "data"
    private_root = data_dir / "private"  # the app's default: <EXACT_DATA_DIR>/private
    for folder in (media_root, private_root):
        folder.mkdir(parents=True)
    secret_key = secrets.token_urlsafe(36)
    targets = DEMO_TARGETS
    if dataset != "demo":
        from bench import scale

        spec = scale.SMALL if dataset == "scale-small" else scale.FULL
        built = scale.build_dataset(db_url, spec)
        print(
            f"scale data set ({spec.label}) loaded in {built.load_s:.0f} s: "
            + ", ".join(f"{step} {seconds:.1f} s" for step, seconds in built.timings_s.items()),
            flush=True,
        )
        scores_created = spec.scores
        targets = scale.LOAD_TARGETS
    db = Database(db_url, pool_size=2, max_overflow=2)
    try:
        if dataset == "demo":
            apply_schema(db)
            limit = 64 << 20
            report = load_demo(
                db,
                MediaStorage(media_root, max_bytes=limit),
                MediaStorage(private_root, max_bytes=limit),
                training_epochs=5,  # the load test measures pages, not how well the demo's models are trained
            )
            scores_created = report.scores_created
            _lift_submission_limits(db, targets.submit_challenge_id)
        password_hash = passwords.make_password(secrets.token_urlsafe(12), iterations=LOAD_PASSWORD_ITERATIONS)
        accounts = []
        with db.transaction() as conn:
            # An administrator, as on any set-up site (without one every page is the first-run set-up page).
            users_sql.insert_user(
                conn, username=f"{USER_PREFIX}-admin", password_hash=password_hash, is_staff=True, is_superuser=True
            )
            ids = [
                users_sql.insert_user(
                    conn,
                    username=f"{USER_PREFIX}{i:03d}",
                    password_hash=password_hash,
                    email=f"{USER_PREFIX}{i:03d}@example.org",
                )
                for i in range(1, n_accounts + 1)
            ]
        for i, user_id in enumerate(ids, start=1):
            _, cookie = sessions.start_session(db, user_id, secret_key=secret_key, days=1)
            accounts.append(Account(f"{USER_PREFIX}{i:03d}", user_id, cookie))
    finally:
        db.dispose()
    return Fixture(db_url, media_root, data_dir, secret_key, accounts, scores_created, targets, dataset)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@dataclass
class AppServer:
    process: subprocess.Popen
    url: str
    log_path: Path

    @classmethod
    def start(cls, fixture: Fixture, workdir: Path, extra_options: tuple[str, ...] = ()) -> AppServer:
        """``extra_options``: ``name=value`` Streamlit settings for experiments (e.g. ``runner.postScriptGC=false``)."""
        port = _free_port()
        env = dict(os.environ)
        env.update(
            DATABASE_URL=fixture.db_url,
            EXACT_MEDIA_ROOT=str(fixture.media_root),
            EXACT_DATA_DIR=str(fixture.data_dir),
            EXACT_SECRET_KEY=fixture.secret_key,
            PYTHONUNBUFFERED="1",
        )
        command = [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "server.py",
            "--server.address",
            HOST,
            "--server.port",
            str(port),
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
        ]
        for option in extra_options:
            name, _, value = option.partition("=")
            command += [f"--{name}", value]
        log_path = workdir / "server.log"
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(  # noqa: S603 - our interpreter, fixed arguments
                command,
                cwd=PROJECT_ROOT,
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl+C reaches us only; we stop the server ourselves, in order
            )
        server = cls(process, f"http://{HOST}:{port}", log_path)
        try:
            server.wait_healthy()
        except BaseException:
            server.stop()
            raise
        return server

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the app server exited with code {self.process.returncode}:\n{self.log()[-4000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as response:  # noqa: S310
                    if response.read().decode(errors="replace").strip() == "ok":
                        return
            except (urllib.error.URLError, OSError) as exc:
                last = str(exc)
            time.sleep(0.25)
        raise RuntimeError(f"the app server was not healthy within {STARTUP_TIMEOUT_S} s ({last})")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)


# ----------------------------------------------------------------------------------------------------------------
# Measurements
# ----------------------------------------------------------------------------------------------------------------


class ResourceSampler:
    """Samples memory (RSS) and CPU time of process groups in a thread: the app server, the browser (Chromium and
    Playwright's driver), this process and, for the embedded server, PostgreSQL; plus the whole machine's CPU.

    RSS sums count pages shared between processes once per process (Chromium!): an upper bound. CPU time is
    summed per process between ``mark()`` and ``stop()``; a process that ends between two samples loses at most
    one interval of it.
    """

    def __init__(
        self, server_pid: int, pgdata: Path | None, scratch: ScratchDatabase | None = None, interval: float = 0.5
    ) -> None:
        self.server = psutil.Process(server_pid)
        self.scratch = scratch  # to count the app's connections to its database
        self.peak_db_connections = 0
        self._probe = None
        self.me = psutil.Process()
        self.postmaster = _find_postmaster(pgdata) if pgdata else None
        self.interval = interval
        self.peak_rss: dict[str, int] = Counter()
        self.peak_used_memory = 0
        self._cpu: dict[tuple[int, float], tuple[str, float]] = {}
        self._mark: dict[tuple[int, float], float] = {}
        self._machine_mark = psutil.cpu_times()
        self._mark_time = time.perf_counter()
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load-sampler", daemon=True)

    def _groups(self) -> dict[str, list[psutil.Process]]:
        def tree(root: psutil.Process | None) -> list[psutil.Process]:
            if root is None:
                return []
            try:
                return [root, *root.children(recursive=True)]
            except psutil.Error:
                return []

        mine = tree(self.me)
        groups = {
            "app": tree(self.server),
            "browser": [p for p in mine[1:] if _name(p).startswith(("chrom", "node"))],
            "driver": [self.me],
        }
        if self.postmaster is not None:
            groups["database"] = tree(self.postmaster)
        return groups

    def sample(self) -> None:
        with self._lock:  # called from the sampling thread and from the event loop's thread
            for group, procs in self._groups().items():
                rss = 0
                for proc in procs:
                    try:
                        with proc.oneshot():
                            rss += proc.memory_info().rss
                            times = proc.cpu_times()
                            key = (proc.pid, proc.create_time())
                    except psutil.Error:
                        continue
                    self._cpu[key] = (group, times.user + times.system)
                self.peak_rss[group] = max(self.peak_rss[group], rss)
            self.peak_used_memory = max(self.peak_used_memory, psutil.virtual_memory().used)
            self._count_db_connections()

    def _count_db_connections(self) -> None:
        if self.scratch is None:
            return
        try:
            if self._probe is None:
                import psycopg

                self._probe = psycopg.connect(_libpq(self.scratch.server_url), autocommit=True, connect_timeout=5)
            row = self._probe.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (self.scratch.name,)
            ).fetchone()
            self.peak_db_connections = max(self.peak_db_connections, int(row[0]))
        except Exception:  # a monitoring hiccup must not stop the test
            self._close_probe()

    def _close_probe(self) -> None:
        if self._probe is not None:
            with contextlib.suppress(Exception):
                self._probe.close()
            self._probe = None

    def mark(self) -> None:
        """Start counting CPU time from now (the load phase)."""
        self.sample()
        with self._lock:
            self._mark = {key: cpu for key, (_, cpu) in self._cpu.items()}
        self._machine_mark = psutil.cpu_times()
        self._mark_time = time.perf_counter()

    def cpu_since_mark(self) -> dict[str, float]:
        """Average cores used per group since ``mark()``, and by the whole machine ("machine") and by processes
        outside these groups ("other": tests or builds running beside the load test would show here)."""
        self.sample()
        wall = time.perf_counter() - self._mark_time
        used: dict[str, float] = Counter()
        with self._lock:
            for key, (group, cpu) in self._cpu.items():
                used[group] += cpu - self._mark.get(key, 0.0)
        now = psutil.cpu_times()
        before = self._machine_mark
        total = sum(now) - sum(before)
        idle = (now.idle + getattr(now, "iowait", 0)) - (before.idle + getattr(before, "iowait", 0))
        cores = os.cpu_count() or 1
        machine = (total - idle) / total * cores if total > 0 else float("nan")
        result = {group: round(seconds / wall, 2) for group, seconds in used.items()}
        result["machine"] = round(machine, 2)
        result["other"] = round(max(0.0, machine - sum(used.values()) / wall), 2)
        return result

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def start(self) -> ResourceSampler:
        self.sample()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        with self._lock:
            self._close_probe()


def _name(proc: psutil.Process) -> str:
    try:
        return proc.name().lower()
    except psutil.Error:
        return ""


def _data_directory(db_url: str) -> Path | None:
    """The server's data folder (to find its processes when it runs on this machine), if it tells us."""
    import psycopg

    try:
        with psycopg.connect(_libpq(db_url), connect_timeout=5) as conn:
            return Path(conn.execute("SHOW data_directory").fetchone()[0])
    except psycopg.Error:  # not a superuser (pg_read_all_settings): no PostgreSQL figures, nothing else changes
        return None


def _find_postmaster(pgdata: Path) -> psutil.Process | None:
    """The embedded server's postmaster (its command line names the data folder), if it runs on this machine."""
    wanted = str(pgdata.resolve())
    for proc in psutil.process_iter(["name", "cmdline"]):
        try:
            if "postgres" in (proc.info["name"] or "") and wanted in " ".join(proc.info["cmdline"] or []):
                return proc
        except psutil.Error:
            continue
    return None


@dataclass
class Recorder:
    """Page times and errors of one phase (baseline or load)."""

    max_requests: int | None = None
    times: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)
    started: int = 0  # page views started (the request budget counts these)
    held: int = 0
    max_held: int = 0

    def take_ticket(self) -> bool:
        if self.max_requests is not None and self.started >= self.max_requests:
            return False
        self.started += 1
        return True

    def ok(self, page: str, seconds: float) -> None:
        self.times[page].append(seconds)

    def error(self, page: str, kind: str, detail: str = "") -> None:
        if VERBOSE:
            print(f"  error on {page}: {kind} {detail[:500]}", file=sys.stderr, flush=True)
        self.errors[kind] += 1
        if len(self.error_samples) < 20:
            self.error_samples.append(f"{page}: {kind}{' - ' + detail[:300] if detail else ''}")

    def session_up(self) -> None:
        self.held += 1
        self.max_held = max(self.max_held, self.held)

    def session_down(self) -> None:
        self.held -= 1

    @property
    def views(self) -> int:
        return sum(len(v) for v in self.times.values()) + sum(self.errors.values())


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def summarise(values: list[float]) -> dict[str, float | int]:
    return {
        "views": len(values),
        "median_s": statistics.median(values) if values else float("nan"),
        "p95_s": percentile(values, 95),
        "max_s": max(values) if values else float("nan"),
    }


# ----------------------------------------------------------------------------------------------------------------
# Drivers: a session opens once, then performs page views ("steps"); each raises ViewError on failure
# ----------------------------------------------------------------------------------------------------------------


class BrowserDriver:
    steps = BROWSER_STEPS

    def __init__(self, base_url: str, timeout_s: float, targets: Targets = DEMO_TARGETS) -> None:
        self.base_url = base_url
        self.timeout_ms = timeout_s * 1000
        self.targets = targets
        self._playwright = None
        self.browser = None

    async def __aenter__(self) -> BrowserDriver:
        if not CHROMIUM.exists():
            raise SystemExit(f"Chromium is missing at {CHROMIUM}: run `make browser` (apt-get install chromium).")
        from playwright.async_api import async_playwright

        self._playwright = await async_playwright().start()
        self.browser = await self._playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        return self

    async def __aexit__(self, *exc_info) -> None:
        with contextlib.suppress(Exception):
            if self.browser is not None:
                await self.browser.close()
        with contextlib.suppress(Exception):
            if self._playwright is not None:
                await self._playwright.stop()

    def session(self, account: Account) -> BrowserSession:
        return BrowserSession(self, account)


class BrowserSession:
    up = False  # opened and not lost

    def __init__(self, driver: BrowserDriver, account: Account) -> None:
        self.driver = driver
        self.account = account
        self.context = None
        self.page = None
        self.score = ""

    async def open(self) -> None:
        self.context = await self.driver.browser.new_context(viewport={"width": 1400, "height": 1000})
        self.context.set_default_timeout(self.driver.timeout_ms)
        await self.context.add_cookies(
            [{"name": "exact_session", "value": self.account.cookie, "url": self.driver.base_url, "sameSite": "Strict"}]
        )
        self.page = await self.context.new_page()
        await self.page.goto(self.driver.base_url + "/")
        await self._visible(self._sidebar().get_by_text(f"Logged in as {self.account.username}"))
        await self._settle()

    def _sidebar(self):
        return self.page.get_by_test_id("stSidebar")

    def _main(self):
        return self.page.get_by_test_id("stMain")

    async def _visible(self, locator) -> None:
        await locator.first.wait_for(state="visible")

    async def _settle(self) -> None:
        """Wait until the script run is over (Streamlit's running indicator is gone), then look for errors."""
        await self.page.get_by_test_id("stStatusWidget").wait_for(state="hidden")
        await self.check_errors()

    async def check_errors(self) -> None:
        found = await self.page.evaluate(
            """(apology) => {
                const text = document.body ? document.body.innerText : "";
                return {
                    exception: !!document.querySelector('[data-testid="stException"]'),
                    apology: text.includes(apology),
                    database: /database is unavailable|cannot reach its database/i.test(text),
                    connection: !!document.querySelector('[data-testid="stConnectionStatus"]')
                        && /connect/i.test(document.querySelector('[data-testid="stConnectionStatus"]').innerText),
                };
            }""",
            APOLOGY,
        )
        for kind in ("exception", "apology", "database", "connection"):
            if found.get(kind):
                raise ViewError({"database": "database-unavailable", "connection": "connection-lost"}.get(kind, kind))

    async def view(self, step: str) -> float:
        """Perform one step; return the page time in seconds (action until the page's own element is visible)."""
        main, sidebar = self._main(), self._sidebar()
        if step == "home":
            action = sidebar.get_by_role("link", name="Home", exact=True).click
            target = (
                main.get_by_test_id("stColumn")
                .filter(has=self.page.get_by_role("heading", name="Recent submissions"))
                .get_by_test_id("stDataFrame")
            )
        elif step == "challenge":
            action = main.get_by_role("link", name=self.driver.targets.scored_challenge_link).click
            target = main.get_by_role("link", name=re.compile(r"Submit a score"))
        elif step == "leaderboard":
            action = main.get_by_role("link", name=re.compile(r"Full leaderboard and charts")).click
            target = main.get_by_test_id("stPlotlyChart")
        elif step == "challenges":
            action = sidebar.get_by_role("link", name="Challenges", exact=True).click
            target = main.get_by_text(re.compile(r"challenge\(s\)\. Select a row"))
        elif step == "submit-open":
            action = sidebar.get_by_role("link", name="Submit score", exact=True).click
            target = main.get_by_role("combobox", name="Challenge")
        elif step == "submit-pick":

            async def action() -> None:
                await main.get_by_role("combobox", name="Challenge").click()
                await self.page.get_by_role("option", name=self.driver.targets.submit_challenge_option).click()

            target = self.page.get_by_test_id("stForm").get_by_placeholder(SCORE_PLACEHOLDER)
        elif step == "submit":
            self.score = _new_score(self.score)
            form = self.page.get_by_test_id("stForm")
            await form.get_by_placeholder(SCORE_PLACEHOLDER).fill(self.score)
            if not await form.get_by_role("checkbox").is_checked():
                await form.get_by_text("I confirm this score is the result of my own method").click()
            action = form.get_by_role("button", name="Submit score").click
            target = main.get_by_test_id("stAlert").filter(has_text=f"Stored score {self.score} for")
        else:
            raise ValueError(step)
        start = time.perf_counter()
        await action()
        await self._visible(target)
        elapsed = time.perf_counter() - start
        await self._settle()
        return elapsed

    async def recover(self) -> None:
        """After a failed view: reload the app (a new Streamlit session, same login cookie)."""
        await self.page.goto(self.driver.base_url + "/")
        await self._visible(self._sidebar().get_by_text(f"Logged in as {self.account.username}"))
        await self._settle()

    async def alive(self) -> bool:
        try:
            if self.page is None or self.page.is_closed():
                return False
            await self.check_errors()
            return await self._sidebar().get_by_text(f"Logged in as {self.account.username}").is_visible()
        except Exception:
            return False

    async def close(self) -> None:
        if self.context is not None:
            with contextlib.suppress(Exception):
                await self.context.close()


def _new_score(previous: str) -> str:
    """A score whose text is unique per session from one submission to the next (format_score keeps 4 digits)."""
    while True:
        score = f"0.{random.randint(100, 999)}{random.randint(1, 9)}"  # last digit never 0: "%.6g" keeps it
        if score != previous:
            return score


class ProtocolDriver:
    steps = PROTOCOL_STEPS

    def __init__(self, base_url: str, timeout_s: float, targets: Targets = DEMO_TARGETS) -> None:
        self.base_url = base_url
        self.targets = targets
        self.stream_url = base_url.replace("http://", "ws://", 1) + "/_stcore/stream"
        self.timeout_s = timeout_s

    async def __aenter__(self) -> ProtocolDriver:
        return self

    async def __aexit__(self, *exc_info) -> None:
        return None

    def session(self, account: Account) -> ProtocolSession:
        return ProtocolSession(self, account)


@dataclass
class RunResult:
    """What one script run (with the reruns it triggered) sent: element texts, widgets, counts."""

    texts: list[str] = field(default_factory=list)
    widgets: dict[str, Any] = field(default_factory=dict)  # "score", "confirm", "submit" -> widget id
    element_types: Counter = field(default_factory=Counter)
    cached_refs: int = 0
    auto_rerun: tuple[float, str] | None = None  # (interval s, fragment id) of an st.fragment(run_every=...)


class ProtocolSession:
    up = False  # opened and not lost

    @staticmethod
    def pages(targets: Targets) -> dict[str, tuple[str, str]]:
        """step -> (page url path, query string)"""
        scored, submit = targets.scored_challenge_id, targets.submit_challenge_id
        return {
            "home": ("", ""),
            "challenge": ("challenge", f"challenge={scored}"),
            "leaderboard": ("leaderboard", f"challenge={scored}"),
            "challenges": ("challenges", ""),
            "submit-open": ("submit", f"challenge={submit}"),
            "submit": ("submit", f"challenge={submit}"),
        }

    def __init__(self, driver: ProtocolDriver, account: Account) -> None:
        self.driver = driver
        self.account = account
        self.ws = None
        self.widgets: dict[str, Any] = {}
        self.score = ""

    async def open(self) -> None:
        """What the browser does: fetch the page and the server's settings, then open the websocket and run."""
        from websockets.asyncio.client import connect

        for path in ("/", "/_stcore/health", "/_stcore/host-config"):
            await asyncio.to_thread(_http_get, self.driver.base_url + path, self.driver.timeout_s)
        self.ws = await connect(
            self.driver.stream_url,
            origin=self.driver.base_url,
            subprotocols=["streamlit"],
            additional_headers={"Cookie": f"exact_session={self.account.cookie}"},
            max_size=None,  # offers permessage-deflate like a browser; the server decides (off by default)
            open_timeout=self.driver.timeout_s,
            ping_interval=None,  # like the browser, rely on the app's own traffic
        )
        result = await self._rerun("", "")
        self._expect(result, f"Logged in as **{self.account.username}**", "open")

    async def _rerun(
        self, page_name: str, query: str, widgets: list | None = None, *, fragment_id: str = ""
    ) -> RunResult:
        """One script run, or with ``fragment_id`` one fragment's rerun as the frontend's auto-rerun timer sends it."""
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        msg = BackMsg()
        state = msg.rerun_script
        state.page_name = page_name
        state.query_string = query
        state.context_info.timezone = "UTC"
        state.context_info.url = f"{self.driver.base_url}/{page_name}{'?' + query if query else ''}"
        if widgets:
            state.widget_states.widgets.extend(widgets)
        if fragment_id:
            state.fragment_id = fragment_id
            state.is_auto_rerun = True
        await self.ws.send(msg.SerializeToString())
        result = RunResult()
        while True:
            data = await self.ws.recv()
            if isinstance(data, str):
                raise ViewError("protocol", "text frame from the server")
            fwd = ForwardMsg()
            fwd.ParseFromString(data)
            kind = fwd.WhichOneof("type")
            if kind == "ref_hash":
                result.cached_refs += 1
            elif kind == "auto_rerun":
                result.auto_rerun = (fwd.auto_rerun.interval, fwd.auto_rerun.fragment_id)
            elif kind == "delta" and fwd.delta.WhichOneof("type") == "new_element":
                _collect(fwd.delta.new_element, result)
            elif kind == "script_finished":
                if fwd.script_finished == ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                    continue  # st.rerun / st.switch_page: the next run follows on the same socket
                if fwd.script_finished == ForwardMsg.FINISHED_WITH_COMPILE_ERROR:
                    raise ViewError("exception", "script compile error")
                return result

    @staticmethod
    def _expect(result: RunResult, needle: str, step: str) -> None:
        if result.element_types["exception"]:
            raise ViewError("exception", next((t for t in result.texts if t.startswith("exception:")), ""))
        joined = "\n".join(result.texts)
        if APOLOGY in joined:
            raise ViewError("apology")
        if DB_UNAVAILABLE.search(joined):
            raise ViewError("database-unavailable")
        if needle not in joined:
            raise ViewError("wrong-page", f"{step}: {needle!r} not shown in {joined[:300]!r}")

    async def view(self, step: str) -> float:
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        page_name, query = self.pages(self.driver.targets)[step]
        widgets = None
        if step == "submit":
            if not {"score", "confirm", "submit"} <= self.widgets.keys():
                raise ViewError("wrong-page", "submit form widgets not seen")
            self.score = self.next_score(self.score)
            widgets = [
                WidgetState(id=self.widgets["score"], string_value=self.score),
                WidgetState(id=self.widgets["confirm"], bool_value=True),
                WidgetState(id=self.widgets["submit"], trigger_value=True),
            ]
        start = time.perf_counter()
        result = await self._rerun(page_name, query, widgets)
        elapsed = time.perf_counter() - start
        needle = {
            "home": "Recent submissions",
            "challenge": "How to submit",
            "leaderboard": self.driver.targets.leaderboard_needle,
            "challenges": "Select a row to open its page",
            "submit-open": "Submitting as",
            "submit": f"Stored score **{self.score}** for",
        }[step]
        self._expect(result, needle, step)
        if step == "leaderboard" and result.element_types["plotly_chart"] + result.cached_refs < 3:
            raise ViewError("wrong-page", f"leaderboard without its three charts: {dict(result.element_types)}")
        if step == "submit-open":
            self.widgets = result.widgets
        return elapsed

    def next_score(self, previous: str) -> str:
        return _new_score(previous)

    async def recover(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        await self.open()

    async def alive(self) -> bool:
        from websockets.protocol import State

        return self.ws is not None and self.ws.state is State.OPEN

    async def close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.close()


def _http_get(url: str, timeout: float) -> None:
    assert url.startswith(f"http://{HOST}:"), url  # loopback only
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback URL, checked above
            response.read()
    except urllib.error.HTTPError as exc:
        raise ViewError("http-error", f"{url}: {exc.code}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise ViewError("connection-lost", f"{url}: {exc}") from exc


def _collect(element, result: RunResult) -> None:
    kind = element.WhichOneof("type")
    result.element_types[kind] += 1
    if kind in ("markdown", "heading", "alert", "html"):  # html: the presentation view's board (ui/presentation.py)
        result.texts.append(getattr(element, kind).body)
    elif kind == "exception":
        result.texts.append(f"exception: {element.exception.type}: {element.exception.message}")
    elif kind == "text_input" and element.text_input.id.endswith(SCORE_WIDGET_KEY):
        result.widgets["score"] = element.text_input.id
    elif kind == "checkbox" and element.checkbox.label.startswith("I confirm"):
        result.widgets["confirm"] = element.checkbox.id
    elif kind == "button" and element.button.is_form_submitter:
        result.widgets["submit"] = element.button.id


# ----------------------------------------------------------------------------------------------------------------
# Phases
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class Options:
    sessions: int
    duration: float
    max_requests: int | None
    driver: str
    think: float
    ramp: float
    timeout: float
    baseline_cycles: int
    server_options: tuple[str, ...] = ()
    scenario: str = "cycle"
    submitters: int = 0  # workshop scenario: sessions that submit while the others watch


async def _think(mean: float, stop: asyncio.Event) -> None:
    """A user's pause between two page views (uniform between half and one and a half times the mean)."""
    if mean > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), random.uniform(0.5 * mean, 1.5 * mean))


async def _timed(coro, timeout: float):
    try:
        return await asyncio.wait_for(coro, timeout)
    except TimeoutError as exc:
        raise ViewError("timeout", f"over {timeout:.0f} s") from exc


def _classify(exc: BaseException) -> ViewError:
    if isinstance(exc, ViewError):
        return exc
    name = type(exc).__name__
    if name == "TimeoutError" or "Timeout" in name:  # playwright's own timeout
        return ViewError("timeout", str(exc).splitlines()[0] if str(exc) else name)
    if "ConnectionClosed" in name:
        return ViewError("connection-lost", str(exc)[:200])
    return ViewError("driver-exception", f"{name}: {str(exc).splitlines()[0] if str(exc) else ''}")


async def run_session(
    driver, account: Account, recorder: Recorder, opts: Options, stop: asyncio.Event, *, cycles: int | None = None
):
    """Open a session, then cycle through the steps until ``stop`` (or ``cycles`` cycles, or the budget) ends it.

    A failed page view is counted, the session is reloaded (a fresh Streamlit session with the same login) and
    starts its next cycle; a session that cannot even be reloaded is counted as lost.
    """
    session = driver.session(account)
    if not recorder.take_ticket():
        stop.set()  # the request budget is spent: every session stops
        return session
    start = time.perf_counter()
    try:
        await _timed(session.open(), opts.timeout)
    except Exception as exc:
        recorder.error("open", *_classify(exc).args_for_report())
        await session.close()
        return session
    recorder.ok("open", time.perf_counter() - start)
    recorder.session_up()
    session.up = True
    done = 0
    while not stop.is_set() and (cycles is None or done < cycles):
        done += 1
        # A session may have steps of its own (the workshop's watchers and submitters), else the driver's cycle.
        for step in session.cycle_steps() if hasattr(session, "cycle_steps") else driver.steps:
            if stop.is_set():
                return session
            if not recorder.take_ticket():
                stop.set()  # the request budget is spent: every session stops
                return session
            try:
                recorder.ok(step, await _timed(session.view(step), opts.timeout))
            except Exception as exc:
                recorder.error(step, *_classify(exc).args_for_report())
                try:
                    await _timed(session.recover(), opts.timeout)
                except Exception as again:
                    recorder.error("recover", "session-lost", str(_classify(again)))
                    recorder.session_down()
                    session.up = False
                    return session
                break
            # A watcher waits for its next auto-refresh instead of a reader's think time.
            await (session.pause(stop) if hasattr(session, "pause") else _think(opts.think, stop))
    return session


async def run_phases(
    base_url: str, accounts: list[Account], opts: Options, sampler: ResourceSampler, targets: Targets = DEMO_TARGETS
) -> dict:
    driver_cls = BrowserDriver if opts.driver == "browser" else ProtocolDriver
    async with driver_cls(base_url, opts.timeout, targets) as driver:
        # 1. Baseline: one session alone, after one warm-up cycle (first imports, caches).
        baseline = Recorder()
        never = asyncio.Event()
        warm = Recorder()
        single = await run_session(driver, accounts[0], warm, opts, never, cycles=1)
        await single.close()
        # A short pause between views, so that each view starts on an idle server (as it would with think time).
        alone = Options(**{**opts.__dict__, "think": min(opts.think, BASELINE_THINK_S)})
        single = await run_session(driver, accounts[0], baseline, alone, never, cycles=opts.baseline_cycles)
        await single.close()
        baseline.errors.update(warm.errors)
        baseline.error_samples.extend(warm.error_samples)

        # 2. Load: all sessions, opened over the ramp, until the duration or the request budget runs out.
        plan = [(opts.ramp * i / max(1, opts.sessions), a) for i, a in enumerate(accounts[: opts.sessions])]
        outcome = await _load_phase(driver, plan, opts, sampler)
    return {"baseline": baseline, **outcome}


async def _load_phase(driver, plan: list[tuple[float, Account]], opts: Options, sampler: ResourceSampler) -> dict:
    """Start each planned session after its delay; stop them all at the duration or when the request budget is
    spent; count the sessions still working at the end."""
    load = Recorder(max_requests=opts.max_requests)
    stop = asyncio.Event()
    sampler.mark()
    wall_before = time.perf_counter()

    async def delayed(delay: float, account: Account):
        await asyncio.sleep(delay)
        if stop.is_set():
            return None
        return await run_session(driver, account, load, opts, stop)

    async def progress() -> None:
        while True:
            await asyncio.sleep(10)
            print(
                f"  {time.perf_counter() - wall_before:5.0f} s: {load.held} sessions held, {load.views} page views,"
                f" {sum(load.errors.values())} errors",
                flush=True,
            )

    tasks = [asyncio.create_task(delayed(delay, account)) for delay, account in plan]
    reporter = asyncio.create_task(progress())
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), opts.duration)
        stop.set()
        finished = await asyncio.gather(*tasks)
    finally:
        for task in [*tasks, reporter]:
            task.cancel()
    wall = time.perf_counter() - wall_before
    cpu = sampler.cpu_since_mark()
    sessions = [s for s in finished if s is not None]
    held_at_end = 0
    for session in sessions:
        if session.up and await session.alive():
            held_at_end += 1
    for session in sessions:
        await session.close()
    return {"load": load, "held_at_end": held_at_end, "load_wall_s": wall, "cpu_cores": cpu}


# ----------------------------------------------------------------------------------------------------------------
# Workshop scenario: many sessions watch one auto-refreshing presentation view while a few others submit
# ----------------------------------------------------------------------------------------------------------------


class RecordLadder:
    """Scores that each beat every score before them: the board's best when the test starts, then one step better
    each time, so that every submission takes the lead and must reach every watcher's board. The step is one unit
    of the 5th significant digit and the pages show 6 (``%.6g``), so each score's text is new."""

    def __init__(self, best: float | None, higher_is_better: bool) -> None:
        self.base = best if best is not None else 0.0
        self.step = 10.0 ** (math.floor(math.log10(abs(self.base))) - 4) if self.base else 1e-5
        self.sign = 1 if higher_is_better else -1
        self.count = 0

    def next(self) -> str:
        self.count += 1
        return f"{self.base + self.sign * self.count * self.step:.6g}"


def record_ladder(db_url: str, challenge_id: str) -> RecordLadder:
    """The ladder above the challenge's current best, read through the leaderboard service."""
    from db.database import Database
    from exact.scores import leaderboard

    db = Database(db_url, pool_size=1, max_overflow=0)
    try:
        board = leaderboard(db, challenge_id, limit=1, charts=False)
    finally:
        db.dispose()
    best = None if board.table.empty else float(board.table["score"].iloc[0])
    return RecordLadder(best, board.rules.higher_is_better)


@dataclass
class Freshness:
    """After how long each watcher's board showed each submitter's latest best: from the submit's answer to the
    end of the watcher's refresh that first showed it. A best replaced by the same submitter's next one before a
    watcher's refresh could show it is counted as superseded, not as late."""

    watchers: set[str] = field(default_factory=set)
    latest: dict[str, tuple[str, float, set[str]]] = field(default_factory=dict)  # submitter: text, when, seen by
    seen_s: list[float] = field(default_factory=list)
    superseded: int = 0

    def watching(self, watcher: str) -> None:
        self.watchers.add(watcher)
        for _text, _at, seen in self.latest.values():
            seen.add(watcher)  # on the board when it opened: no refresh brought it

    def stored(self, submitter: str, text: str) -> None:
        previous = self.latest.get(submitter)
        if previous is not None:
            self.superseded += len(self.watchers - previous[2])
        self.latest[submitter] = (text, time.perf_counter(), set())

    def refreshed(self, watcher: str, texts: list[str]) -> None:
        now = time.perf_counter()
        board = "\n".join(texts)
        for text, stored_at, seen in self.latest.values():
            if watcher not in seen and f">{text}<" in board:  # the score's own table cell, not a longer number
                seen.add(watcher)
                self.seen_s.append(now - stored_at)

    def unseen(self) -> int:
        return sum(len(self.watchers - seen) for _text, _at, seen in self.latest.values())


class WorkshopWatcher(ProtocolSession):
    """A screen showing the presentation view: opens it once, then answers its auto-refresh timer."""

    def __init__(self, driver: WorkshopDriver, account: Account) -> None:
        super().__init__(driver, account)
        self.fragment: tuple[float, str] | None = None  # (interval, fragment id) once the view is shown
        self.next_tick = 0.0

    def cycle_steps(self) -> tuple[str, ...]:
        return ("refresh",) if self.fragment else ("present",)

    async def view(self, step: str) -> float:
        query = f"challenge={self.driver.targets.submit_challenge_id}"
        start = time.perf_counter()
        if step == "present":
            result = await self._rerun("present", query)
        elif step == "refresh" and self.fragment is not None:
            result = await self._rerun("present", query, fragment_id=self.fragment[1])
        else:
            raise ValueError(step)
        elapsed = time.perf_counter() - start
        self._expect(result, 'class="exact-board"', step)
        if step == "present":
            if result.element_types["plotly_chart"] + result.cached_refs < 1:
                raise ViewError("wrong-page", "presentation without its chart")
            if result.auto_rerun is None:
                raise ViewError("wrong-page", "presentation without its auto-refresh")
            self.fragment = result.auto_rerun
            self.next_tick = time.perf_counter() + self.fragment[0]
            self.driver.freshness.watching(self.account.username)
        else:
            self.driver.freshness.refreshed(self.account.username, result.texts)
        return elapsed

    async def pause(self, stop: asyncio.Event) -> None:
        """Until the timer's next tick. Like the browser's interval timer it does not wait for the previous run;
        a run that took longer than the interval is followed at once."""
        now = time.perf_counter()
        self.next_tick = max(self.next_tick, now)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), self.next_tick - now)
        self.next_tick += self.fragment[0] if self.fragment else 0.0

    async def recover(self) -> None:
        self.fragment = None  # a fresh session opens the view again
        await super().recover()


class WorkshopSubmitter(ProtocolSession):
    """A participant submitting new bests through the submit page while the room watches."""

    def cycle_steps(self) -> tuple[str, ...]:
        return ("submit-open", "submit")

    def next_score(self, previous: str) -> str:
        return self.driver.ladder.next()

    async def view(self, step: str) -> float:
        elapsed = await super().view(step)
        if step == "submit":
            self.driver.freshness.stored(self.account.username, self.score)
        return elapsed


class WorkshopDriver(ProtocolDriver):
    steps = WORKSHOP_STEPS

    def __init__(self, base_url: str, timeout_s: float, targets: Targets, *, submitters: set[str], ladder) -> None:
        super().__init__(base_url, timeout_s, targets)
        self.submitters = submitters
        self.ladder = ladder
        self.freshness = Freshness()

    def session(self, account: Account) -> ProtocolSession:
        role = WorkshopSubmitter if account.username in self.submitters else WorkshopWatcher
        return role(self, account)


async def run_workshop_phases(
    base_url: str, accounts: list[Account], opts: Options, sampler: ResourceSampler, targets: Targets, ladder
) -> dict:
    """Baseline: one watcher alone (its view, then ``--baseline-cycles`` refreshes) and one submitter alone.
    Load: ``--sessions`` watchers opened over the ramp, then ``--submitters`` submitters, spread over one think
    time, submitting until the end."""
    watchers = accounts[: opts.sessions]
    submitters = accounts[opts.sessions : opts.sessions + opts.submitters]
    driver = WorkshopDriver(base_url, opts.timeout, targets, submitters={a.username for a in submitters}, ladder=ladder)
    baseline, warm, never = Recorder(), Recorder(), asyncio.Event()
    alone = Options(**{**opts.__dict__, "think": min(opts.think, BASELINE_THINK_S)})
    for account in (watchers[0], submitters[0]):
        await (await run_session(driver, account, warm, opts, never, cycles=1)).close()
    for account, cycles in ((watchers[0], 1 + opts.baseline_cycles), (submitters[0], opts.baseline_cycles)):
        await (await run_session(driver, account, baseline, alone, never, cycles=cycles)).close()
    baseline.errors.update(warm.errors)
    baseline.error_samples.extend(warm.error_samples)

    driver.freshness = Freshness()  # the load phase's own
    plan = [(opts.ramp * i / max(1, len(watchers)), a) for i, a in enumerate(watchers)]
    plan += [(opts.ramp + opts.think * i / max(1, len(submitters)), a) for i, a in enumerate(submitters)]
    outcome = await _load_phase(driver, plan, opts, sampler)
    return {"baseline": baseline, **outcome, "freshness": driver.freshness}


# ----------------------------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------------------------


def _server_log_errors(log: str) -> list[str]:
    return [line for line in log.splitlines() if " ERROR " in line or line.startswith("Traceback")]


def build_report(opts: Options, outcome: dict, sampler: ResourceSampler, server: AppServer, setup_s: float) -> dict:
    baseline: Recorder = outcome["baseline"]
    load: Recorder = outcome["load"]
    if opts.scenario == "workshop":
        steps = ["open", *WORKSHOP_STEPS]
    else:
        steps = ["open", *(BROWSER_STEPS if opts.driver == "browser" else PROTOCOL_STEPS)]
    all_load = [t for page in steps if page != "open" for t in load.times.get(page, [])]
    all_base = [t for page in steps if page != "open" for t in baseline.times.get(page, [])]
    log_errors = _server_log_errors(server.log())
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench.load", *sys.argv[1:]]),
        "machine": {
            "cpus": os.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "options": opts.__dict__,
        "setup_s": round(setup_s, 1),
        "sessions": {
            "target": opts.sessions + opts.submitters,  # the workshop's submitters come on top of its watchers
            "held_max": load.max_held,
            "held_at_end": outcome["held_at_end"],
        },
        "page_views": {"load": load.views, "baseline": baseline.views, "load_wall_s": round(outcome["load_wall_s"], 1)},
        "throughput_views_per_s": round(load.views / outcome["load_wall_s"], 2) if outcome["load_wall_s"] else None,
        "pages": {
            page: {
                **summarise(load.times.get(page, [])),
                "baseline_median_s": summarise(baseline.times.get(page, []))["median_s"],
            }
            for page in steps
        },
        "all_pages": {**summarise(all_load), "baseline_median_s": summarise(all_base)["median_s"]},
        "errors": dict(load.errors),
        "error_samples": load.error_samples,
        "baseline_errors": dict(baseline.errors),
        "server_log_errors": {"count": len(log_errors), "first": log_errors[:10]},
        "resources": {
            "peak_rss_mb": {group: round(rss / 2**20) for group, rss in sampler.peak_rss.items()},
            "machine_peak_used_mb": round(sampler.peak_used_memory / 2**20),
            "peak_db_connections": sampler.peak_db_connections,
            "cpu_cores_avg_during_load": outcome["cpu_cores"],
        },
    }
    freshness: Freshness | None = outcome.get("freshness")
    if freshness is not None:
        seen = summarise(freshness.seen_s)
        report["freshness"] = {
            "watchers": len(freshness.watchers),
            "seen": seen["views"],
            "median_s": seen["median_s"],
            "p95_s": seen["p95_s"],
            "max_s": seen["max_s"],
            "superseded": freshness.superseded,
            "unseen_at_end": freshness.unseen(),
        }
    return report


def _no_nan(value: Any) -> Any:
    """JSON has no NaN: pages without views get null."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {key: _no_nan(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_no_nan(item) for item in value]
    return value


def _ms(value: float) -> str:
    return "-" if value != value else f"{value * 1000:,.0f}"  # NaN check


def print_report(report: dict) -> None:
    s, pv, res = report["sessions"], report["page_views"], report["resources"]
    opts = report["options"]
    print()
    print(f"Exact load test, {report['date']}: {report['command']}")
    print(
        f"machine: {report['machine']['cpus']} CPUs, {report['machine']['memory_gb']} GB; driver {opts['driver']}, "
        f"think {opts['think']} s, ramp {opts['ramp']} s, timeout {opts['timeout']} s"
        + (f"; server options {' '.join(opts['server_options'])}" if opts["server_options"] else "")
    )
    if opts.get("scenario") == "workshop":
        watchers = s["target"] - opts["submitters"]
        print(f"scenario workshop: {watchers} sessions watch the presentation view, {opts['submitters']} submit")
    print(f"sessions: target {s['target']}, held at most {s['held_max']}, held at the end {s['held_at_end']}")
    print(
        f"page views: {pv['load']} in {pv['load_wall_s']} s ({report['throughput_views_per_s']}/s); "
        f"baseline {pv['baseline']} views by one session"
    )
    print()
    header = f"{'page':<14}{'views':>7}{'median ms':>11}{'p95 ms':>9}{'max ms':>9}{'1-session ms':>14}{'ratio':>7}"
    print(header)
    print("-" * len(header))
    rows = [*report["pages"].items(), ("all (no open)", report["all_pages"])]
    for page, row in rows:
        base = row["baseline_median_s"]
        ratio = row["median_s"] / base if base == base and base and row["median_s"] == row["median_s"] else None
        print(
            f"{page:<14}{row['views']:>7}{_ms(row['median_s']):>11}{_ms(row['p95_s']):>9}{_ms(row['max_s']):>9}"
            f"{_ms(base):>14}{(f'{ratio:.1f}' if ratio else '-'):>7}"
        )
    print()
    if "freshness" in report:
        f = report["freshness"]
        print(
            f"new bests on the watchers' boards: seen {f['seen']} times, after median {_ms(f['median_s'])} ms, "
            f"p95 {_ms(f['p95_s'])} ms, max {_ms(f['max_s'])} ms (submit answered → the refresh showing it ended); "
            f"{f['superseded']} superseded by the next before a refresh, {f['unseen_at_end']} not yet seen at the end"
        )
    errors = report["errors"]
    print("errors: " + (", ".join(f"{k} {v}" for k, v in sorted(errors.items())) if errors else "none"))
    for sample in report["error_samples"][:10]:
        print(f"  {sample}")
    if report["baseline_errors"]:
        print(f"baseline errors: {report['baseline_errors']}")
    print(f"server log ERROR/Traceback lines: {report['server_log_errors']['count']}")
    for line in report["server_log_errors"]["first"][:5]:
        print(f"  {line[:200]}")
    print(
        "peak RSS (MB): "
        + ", ".join(f"{group} {mb:,}" for group, mb in res["peak_rss_mb"].items())
        + f"; machine memory used at most {res['machine_peak_used_mb']:,} MB; "
        f"app's database connections at most {res['peak_db_connections']}"
    )
    cpu = res["cpu_cores_avg_during_load"]
    print(
        f"CPU during the load ({report['machine']['cpus']} cores), cores busy on average: "
        + ", ".join(f"{group} {cores}" for group, cores in cpu.items())
    )
    if cpu.get("other", 0) > OTHER_CPU_WARNING:
        print(
            f"warning: other processes used {cpu['other']} cores during the load: the figures are not those of a "
            "quiet machine"
        )


# ----------------------------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------------------------


def _positive(kind):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, not {text}")
        return value

    return parse


def _server_option(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z]+\.[A-Za-z]+=\S*", text):
        raise argparse.ArgumentTypeError(f"expected section.name=value, not {text!r}")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=_positive(int), default=50, help="concurrent sessions (default 50)")
    parser.add_argument(
        "--scenario",
        choices=SCENARIOS,
        default="cycle",
        help="cycle: every session cycles through the pages (default); workshop: the sessions watch one "
        "auto-refreshing presentation view while --submitters others submit new bests (protocol driver)",
    )
    parser.add_argument(
        "--submitters",
        type=_positive(int),
        default=None,
        help="workshop scenario: sessions submitting meanwhile, on top of --sessions (default: a tenth, 1 to 5)",
    )
    parser.add_argument("--duration", type=_positive(float), default=60, help="load phase, seconds (default 60)")
    parser.add_argument("--max-requests", type=_positive(int), default=None, help="page views at most (load phase)")
    parser.add_argument(
        "--driver",
        choices=("protocol", "browser"),
        default="protocol",
        help="protocol: Streamlit's websocket protocol (default); browser: headless Chromium, one context per session",
    )
    parser.add_argument("--think", type=float, default=2.0, help="mean pause between page views, s (default 2)")
    parser.add_argument("--ramp", type=float, default=10.0, help="open the sessions over this many s (default 10)")
    parser.add_argument("--timeout", type=_positive(float), default=30.0, help="per page view, s (default 30)")
    parser.add_argument("--baseline-cycles", type=_positive(int), default=3, help="measured one-session cycles")
    parser.add_argument("--json", type=Path, default=None, help="also write the report as JSON to this path")
    parser.add_argument(
        "--server-option",
        action="append",
        default=[],
        type=_server_option,
        metavar="NAME=VALUE",
        help="extra Streamlit setting for the app server, e.g. runner.postScriptGC=false (repeatable)",
    )
    parser.add_argument(
        "--dataset",
        choices=DATASETS,
        default="demo",
        help="demo (default); scale: the data set of bench/scale.py (1,000,000 scores, 1,000 challenges, 50,000 "
        "users; pages of its hot challenge); scale-small: its --small form",
    )
    parser.add_argument("--verbose", action="store_true", help="print every error as it happens")
    parser.add_argument("--keep-log", type=Path, default=None, help="copy the app server's log to this path")
    return parser


def _copy_if_exists(source: Path, target: Path) -> None:
    if source.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM behaves like Ctrl+C, so every cleanup below runs."""

    def handler(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    global VERBOSE
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.dataset != "demo" and args.driver == "browser":
        parser.error("the browser driver follows the demo's links: use the protocol driver with --dataset scale")
    if args.scenario == "workshop" and args.driver == "browser":
        parser.error("the workshop scenario speaks the websocket protocol: use the protocol driver")
    if args.submitters is not None and args.scenario != "workshop":
        parser.error("--submitters belongs to the workshop scenario")
    VERBOSE = args.verbose
    submitters = 0
    if args.scenario == "workshop":
        submitters = args.submitters or max(1, min(5, args.sessions // 10))
    opts = Options(
        sessions=args.sessions,
        duration=args.duration,
        max_requests=args.max_requests,
        driver=args.driver,
        think=max(0.0, args.think),
        ramp=max(0.0, args.ramp),
        timeout=args.timeout,
        baseline_cycles=args.baseline_cycles,
        server_options=tuple(args.server_option),
        scenario=args.scenario,
        submitters=submitters,
    )
    with _terminate_as_interrupt(), contextlib.ExitStack() as cleanup:
        workdir = Path(tempfile.mkdtemp(prefix="exact-load-"))
        cleanup.callback(shutil.rmtree, workdir, ignore_errors=True)
        t0 = time.perf_counter()
        accounts = max(1, opts.sessions) + opts.submitters
        print(f"preparing a scratch database with the {args.dataset} data and {accounts} accounts...", flush=True)
        if args.dataset == "demo":
            pg_url, pgdata = server_url()
        else:
            from bench.scale import scale_server_url

            pg_url, pgdata = scale_server_url()
        scratch = ScratchDatabase(pg_url)
        scratch.create()
        cleanup.callback(scratch.drop)
        fixture = prepare_database(scratch.url, workdir, accounts, args.dataset)
        if args.keep_log:  # runs after the server has stopped (callbacks run last-in, first-out)
            cleanup.callback(_copy_if_exists, workdir / "server.log", args.keep_log)
        server = AppServer.start(fixture, workdir, opts.server_options)
        cleanup.callback(server.stop)
        host = server.url.split("//", 1)[1].rsplit(":", 1)[0]
        assert host == HOST, f"refusing to load anything but {HOST}: {server.url}"
        # A server of this machine (e.g. 127.0.0.1:5432) is measured too; its other databases' work counts as ours.
        sampler = ResourceSampler(server.process.pid, pgdata or _data_directory(scratch.url), scratch).start()
        cleanup.callback(sampler.stop)
        setup_s = time.perf_counter() - t0
        print(
            f"app server on {server.url} (pid {server.process.pid}), ready in {setup_s:.0f} s; "
            f"driver {opts.driver}: baseline, then {opts.sessions} sessions for at most {opts.duration:.0f} s"
            + (f" or {opts.max_requests} page views" if opts.max_requests else ""),
            flush=True,
        )
        if opts.scenario == "workshop":
            ladder = record_ladder(fixture.db_url, fixture.targets.submit_challenge_id)
            outcome = asyncio.run(
                run_workshop_phases(server.url, fixture.accounts, opts, sampler, fixture.targets, ladder)
            )
        else:
            outcome = asyncio.run(run_phases(server.url, fixture.accounts, opts, sampler, fixture.targets))
        sampler.stop()
        report = build_report(opts, outcome, sampler, server, setup_s)
        report["dataset"] = fixture.dataset
        report["demo_scores"] = fixture.demo_scores
        print_report(report)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(_no_nan(report), indent=2, default=str, allow_nan=False) + "\n")
            print(f"JSON report: {args.json}")
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        print("interrupted: the app server, browser and scratch database were cleaned up", file=sys.stderr)
        raise SystemExit(130) from None

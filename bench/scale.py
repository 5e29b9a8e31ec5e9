"""Scale benchmark: the app's read paths at a million scores, against the naive approach, in one run.

``python -m bench.scale [--small] [--runs 15] [--warmups 3] [--page-runs 7] [--load-mode auto|triggers|replica]
[--keep] [--json PATH]`` (``make bench-scale``; ``make bench`` runs the ``--small`` form).

1. Builds the data set of issue 8 in a scratch database (DATABASE_URL's server, else PostgreSQL on
   127.0.0.1:5432 if it answers, else the private embedded server bench/load.py uses): the schema
   (``db.schema.apply_schema``), then with COPY 50,000 users (one superuser, so the set-up page never shows),
   1,000 challenges and 1,000,000 ``api_score`` rows, 300,000 of them in one "hot" challenge from 20,000 users.
   No challenge has competition rules (open, no limits). ``--small``: 50,000 rows, 100 challenges, 5,000 users.
2. For each operation: the median of ``--runs`` warm runs (after ``--warmups``) of the service call, and in the
   same run the naive approach it replaces (fetch the rows into pandas and aggregate / rank there), as a ratio.
3. Full page runs (Streamlit AppTest of app.py, as the page tests do) of home, challenges, challenge and
   leaderboard, deep-linked to the hot challenge.

Each figure is marked "ok" or "over target"; timing never fails the run. The exit code is 1 only on a wrong
result: the service's top 10 (or its counts, the submitter's rank, a page) differing from the naive computation.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import io
import json
import os
import platform
import re
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.load import ScratchDatabase, Targets, _libpq
from bench.load import server_url as load_server_url

LOCAL_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
HOT_CHALLENGE_ID = "scale-hot"
HOT_TITLE = "Hot challenge: saliency on XAI-TRIS 64×64"
ADMIN_USERNAME = "scale-admin"
SEARCH_TERM = "tetris"  # in about one challenge title of eight (TOPICS)
TOPICS = (
    "Saliency maps", "Tetris shapes", "Integrated gradients", "Occlusion", "Shapley values", "LIME on tabular",
    "Grad-CAM", "Counterfactuals",
)  # fmt: skip
SEED = 20261201
# bench/load.py --dataset scale: every challenge page view, leaderboard and submission is on the hot challenge.
LOAD_TARGETS = Targets(
    scored_challenge_id=HOT_CHALLENGE_ID,
    scored_challenge_link=re.compile(re.escape(HOT_TITLE)),
    leaderboard_needle="Open · no closing date",  # the status line of a challenge without rules
    submit_challenge_id=HOT_CHALLENGE_ID,
    submit_challenge_option=f"{HOT_TITLE} ({HOT_CHALLENGE_ID})",
)
COPY_CHUNK_BYTES = 8 << 20
BINS = 30

# Targets of issue 8 (seconds; ratio: naive time / service time).
TARGET_SERVICE_S = 0.020
TARGET_SUBMIT_S = 0.010
TARGET_PAGE_S = 0.300
TARGET_LEADERBOARD_RATIO = 50.0


@dataclass(frozen=True)
class Spec:
    scores: int
    challenges: int
    users: int
    hot_scores: int
    hot_users: int

    @property
    def label(self) -> str:
        return (
            f"{self.scores:,} scores over {self.challenges:,} challenges, {self.users:,} users; hot challenge "
            f"{self.hot_scores:,} scores from {self.hot_users:,} users"
        )


FULL = Spec(scores=1_000_000, challenges=1_000, users=50_000, hot_scores=300_000, hot_users=20_000)
SMALL = Spec(scores=50_000, challenges=100, users=5_000, hot_scores=15_000, hot_users=2_000)


# ----------------------------------------------------------------------------------------------------------------
# Server and data set
# ----------------------------------------------------------------------------------------------------------------


def _reachable(url: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(_libpq(url), connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def scale_server_url() -> tuple[str, Path | None]:
    """DATABASE_URL's server, else PostgreSQL on 127.0.0.1:5432 if it answers, else bench/load.py's embedded one."""
    if not os.environ.get("DATABASE_URL") and _reachable(LOCAL_SERVER):
        return LOCAL_SERVER, None
    return load_server_url()


@dataclass
class Dataset:
    spec: Spec
    hot_challenge_id: str
    load_mode: str
    timings_s: dict[str, float] = field(default_factory=dict)
    api_score_triggers: list[str] = field(default_factory=list)
    rebuild: str | None = None  # the read-model rebuild that was called after a replica-mode load

    @property
    def load_s(self) -> float:
        return sum(self.timings_s.values())


def _copy(cursor, statement: str, frame: pd.DataFrame) -> None:
    """COPY a frame (CSV, no header) in chunks: the whole text of a million rows is never sent at once."""
    text = frame.to_csv(header=False, index=False, lineterminator="\n")
    data = text.encode()
    with cursor.copy(statement) as copy:
        for start in range(0, len(data), COPY_CHUNK_BYTES):
            copy.write(data[start : start + COPY_CHUNK_BYTES])


def _timestamps(seconds_ago: np.ndarray, now: datetime) -> np.ndarray:
    base = np.datetime64(now.replace(tzinfo=None), "us")
    return base - (seconds_ago * 1e6).astype("timedelta64[us]")


def _iso(stamps: np.ndarray) -> np.ndarray:
    return np.char.add(np.datetime_as_string(stamps, unit="us"), "+00")


def generate(spec: Spec, seed: int = SEED, now: datetime | None = None) -> dict[str, pd.DataFrame]:
    """The three tables' rows (users, challenges, scores sorted by time), reproducible from the seed."""
    rng = np.random.default_rng(seed)
    now = now or datetime.now(UTC)
    year = 365 * 86400.0
    n_users, n_challenges = spec.users, spec.challenges
    usernames = np.array([f"user{i:05d}" for i in range(1, n_users + 1)])
    users = pd.DataFrame(
        {
            "username": usernames,
            "email": np.char.add(usernames, "@example.org"),
            "date_joined": _iso(_timestamps(rng.uniform(0, 3 * year, n_users), now)),
        }
    )
    # Challenge 0 is the hot one, about 80 days old; the others spread over three years.
    ages = rng.uniform(1 * 86400.0, 3 * year, n_challenges)
    ages[0] = 80 * 86400.0
    ids = np.array([HOT_CHALLENGE_ID] + [f"scale-{i:04d}" for i in range(1, n_challenges)])
    titles = [HOT_TITLE] + [f"{TOPICS[i % len(TOPICS)]} #{i}" for i in range(1, n_challenges)]
    challenges = pd.DataFrame(
        {
            "challenge_id": ids,
            "title": titles,
            "description": [f"Benchmark challenge {i} of the scale data set." for i in range(n_challenges)],
            "created_at": _iso(_timestamps(ages, now)),
        }
    )
    # Hot challenge: every one of its users has at least one row; the rest of its rows go to random ones of them.
    hot_users = np.concatenate(
        [rng.permutation(spec.hot_users), rng.integers(0, spec.hot_users, spec.hot_scores - spec.hot_users)]
    )
    other = spec.scores - spec.hot_scores
    which = np.concatenate([np.zeros(spec.hot_scores, dtype=np.int64), rng.integers(1, n_challenges, other)])
    who = np.concatenate([hot_users, rng.integers(0, n_users, other)])
    # A score is younger than its challenge; the hot challenge's come in over its 80 days.
    age = ages[which] * rng.uniform(0.0, 1.0, len(which))
    order = np.argsort(-age, kind="stable")  # oldest first: ids grow with time, as they would in production
    scores = pd.DataFrame(
        {
            "username": usernames[who[order]],
            "challenge_id": ids[which[order]],
            "score": np.round(rng.beta(2.0, 5.0, len(which)), 9),
            "created_at": _iso(_timestamps(age[order], now)),
        }
    )
    return {"users": users, "challenges": challenges, "scores": scores}


def api_score_triggers(db_url: str) -> list[str]:
    import psycopg

    with psycopg.connect(_libpq(db_url)) as conn:
        rows = conn.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'api_score'::regclass AND NOT tgisinternal ORDER BY 1"
        ).fetchall()
    return [r[0] for r in rows]


SQL_REBUILD = "exact_rebuild_read_models"  # db/read_models.sql: fills every read model from api_score


def find_rebuild(db_url: str) -> tuple[str, Callable[[str], None]] | None:
    """How to rebuild the read models after a load without triggers: a Python function of the schema module if it
    offers one (taking a Database), else the SQL function of db/read_models.sql; None if neither exists."""
    import importlib

    import psycopg

    for module_name in ("db.read_models", "db.schema"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for name in ("rebuild_read_models", "rebuild"):
            function = getattr(module, name, None)
            if callable(function):

                def call(url: str, function=function) -> None:
                    from db.database import Database

                    db = Database(url, pool_size=1, max_overflow=1)
                    try:
                        function(db)
                    finally:
                        db.dispose()

                return f"{module_name}.{name}()", call
    with psycopg.connect(_libpq(db_url)) as conn:
        found = conn.execute("SELECT 1 FROM pg_proc WHERE proname = %s", (SQL_REBUILD,)).fetchone()
    if found is None:
        return None

    def call_sql(url: str) -> None:
        with psycopg.connect(_libpq(url)) as conn:
            conn.execute("SET statement_timeout = 0")
            conn.execute(f"SELECT {SQL_REBUILD}()")

    return f"SQL {SQL_REBUILD}()", call_sql


def secondary_indexes(cursor, table: str) -> list[tuple[str, str]]:
    """(name, CREATE INDEX statement) of the table's indexes that back no constraint (not the primary key)."""
    cursor.execute(
        """
        SELECT i.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
        WHERE x.indrelid = %s::regclass
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)
        ORDER BY i.relname
        """,
        (table,),
    )
    return [(name, definition) for name, definition in cursor.fetchall()]


def build_dataset(
    db_url: str, spec: Spec, *, load_mode: str = "auto", seed: int = SEED, keep_indexes: bool = False
) -> Dataset:
    """Schema, then users, challenges and scores by COPY, then VACUUM ANALYZE.

    ``load_mode``: ``triggers`` fires api_score's row triggers (the read models fill themselves); ``replica``
    loads with ``session_replication_role = replica`` (no triggers) and calls the read models' rebuild;
    ``auto``: ``replica`` when api_score has triggers and a rebuild function exists, else ``triggers``.
    api_score's secondary indexes are dropped for the COPY and rebuilt from their own definitions after it
    (``keep_indexes``: COPY into them, much slower).
    """
    import psycopg
    from psycopg import sql

    from db.database import Database
    from db.schema import apply_schema
    from exact import passwords

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    db = Database(db_url, pool_size=1, max_overflow=1)
    try:
        apply_schema(db)
    finally:
        db.dispose()
    timings["schema"] = time.perf_counter() - t0
    triggers = api_score_triggers(db_url)
    rebuild = find_rebuild(db_url)
    if load_mode == "auto":
        load_mode = "replica" if triggers and rebuild else "triggers"
    if load_mode == "replica" and triggers and rebuild is None:
        raise SystemExit(
            "api_score has triggers but no read-model rebuild function was found: use --load-mode triggers"
        )

    t0 = time.perf_counter()
    tables = generate(spec, seed)
    timings["generate"] = time.perf_counter() - t0
    password_hash = passwords.make_password(secrets.token_urlsafe(12), iterations=1000)
    users = tables["users"].assign(password=password_hash)
    admin = pd.DataFrame(
        {"username": [ADMIN_USERNAME], "email": ["admin@example.org"], "date_joined": [datetime.now(UTC).isoformat()]}
    ).assign(password=password_hash)
    with psycopg.connect(_libpq(db_url)) as conn, conn.cursor() as cur:
        if load_mode == "replica":
            cur.execute("SET session_replication_role = replica")
        t0 = time.perf_counter()
        user_columns = (
            "password, is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined"
        )
        for frame, is_admin in ((admin, True), (users, False)):
            flag = "t" if is_admin else "f"
            rows = frame.assign(is_superuser=flag, first_name="", last_name="", is_staff=flag, is_active="t")
            _copy(
                cur,
                f"COPY auth_user ({user_columns}) FROM STDIN (FORMAT csv, NULL '\\N')",
                rows[[c.strip() for c in user_columns.split(",")]],
            )
        timings["copy users"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        challenges = tables["challenges"].assign(mlmodel="", dataset="", xaimethod="")
        columns = ["challenge_id", "title", "description", "created_at", "mlmodel", "dataset", "xaimethod"]
        _copy(
            cur, f"COPY api_challenge ({', '.join(columns)}) FROM STDIN (FORMAT csv, NULL '\\N')", challenges[columns]
        )
        timings["copy challenges"] = time.perf_counter() - t0
        conn.commit()
        # A million random inserts into api_score's six b-trees take half a minute on this machine (28 s against
        # 4 s without them); building them once after the COPY takes seconds. The same definitions, read back.
        t0 = time.perf_counter()
        indexes = [] if keep_indexes else secondary_indexes(cur, "api_score")
        for name, _definition in indexes:
            cur.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
        _copy(
            cur,
            "COPY api_score (username, challenge_id, score, created_at) FROM STDIN (FORMAT csv, NULL '\\N')",
            tables["scores"],
        )
        timings["copy scores" + (" (triggers on)" if triggers and load_mode == "triggers" else "")] = (
            time.perf_counter() - t0
        )
        t0 = time.perf_counter()
        cur.execute("SET maintenance_work_mem = '256MB'")
        for _name, definition in indexes:
            cur.execute(definition)
        conn.commit()
        if indexes:
            timings[f"index api_score ({len(indexes)})"] = time.perf_counter() - t0
    used_rebuild = None
    if load_mode == "replica" and rebuild is not None:
        name, function = rebuild
        t0 = time.perf_counter()
        function(db_url)
        timings[f"rebuild ({name})"] = time.perf_counter() - t0
        used_rebuild = name
    t0 = time.perf_counter()
    with psycopg.connect(_libpq(db_url), autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
        # Flush the load's WAL now, not during the first measurements (a superuser's right; skipped otherwise).
        with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
            conn.execute("CHECKPOINT")
    timings["vacuum analyze, checkpoint"] = time.perf_counter() - t0
    return Dataset(spec, HOT_CHALLENGE_ID, load_mode, timings, triggers, used_rebuild)


# ----------------------------------------------------------------------------------------------------------------
# Measuring
# ----------------------------------------------------------------------------------------------------------------


def timed_runs(fn: Callable[[], object], runs: int, warmups: int) -> tuple[list[float], object]:
    result = None
    for _ in range(warmups):
        result = fn()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return times, result


@dataclass
class Row:
    operation: str
    median_s: float
    target_s: float | None
    naive_s: float | None = None
    min_ratio: float | None = None  # target for naive / service
    runs: int = 0
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return self.naive_s / self.median_s if self.naive_s and self.median_s else None

    @property
    def verdict(self) -> str:
        over = []
        if self.target_s is not None and self.median_s > self.target_s:
            over.append("over target")
        if self.min_ratio is not None and (self.ratio or 0) < self.min_ratio:
            over.append(f"ratio under {self.min_ratio:.0f}×")
        return ", ".join(over) or "ok"


class Failures(list):
    def check(self, condition: bool, message: str) -> None:
        if not condition:
            self.append(message)
            print(f"  WRONG: {message}", flush=True)


def _accepts(function: Callable, name: str) -> bool:
    try:
        return name in inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False


def challenge_items(result: Any) -> list:
    """The challenges of a ``list_challenges`` answer: a list today, maybe a page object with them inside."""
    if isinstance(result, list | tuple):
        return list(result)
    for name in ("items", "challenges", "rows", "page"):
        value = getattr(result, name, None)
        if isinstance(value, list | tuple):
            return list(value)
    return list(result)


def challenge_total(result: Any) -> int | None:
    for name in ("total", "total_count", "count", "matches"):
        value = getattr(result, name, None)
        if isinstance(value, int):
            return value
    return None


# ----------------------------------------------------------------------------------------------------------------
# Naive approaches: fetch the rows into pandas and compute there
# ----------------------------------------------------------------------------------------------------------------


def _frame(db, query: str, params: dict | None = None, conn=None) -> pd.DataFrame:
    """The query's rows as a frame, through COPY ... TO STDOUT (the fastest way into pandas)."""
    if conn is None:
        with db.connect() as own:
            return _frame(db, query, params, own)
    buffer = io.BytesIO()
    statement = f"COPY ({query}) TO STDOUT (FORMAT csv, HEADER)"
    with conn.connection.driver_connection.cursor() as cursor, cursor.copy(statement, params) as copy:
        for block in copy:
            buffer.write(block)
    buffer.seek(0)
    frame = pd.read_csv(buffer)
    if "created_at" in frame:
        frame["created_at"] = pd.to_datetime(frame["created_at"], format="ISO8601", utc=True)
    return frame


_CHALLENGE_ROWS = """
SELECT s.id, s.username, s.score, s.created_at FROM api_score s
WHERE s.challenge_id = %(c)s AND NOT EXISTS (SELECT 1 FROM exact_moderation m WHERE m.score_id = s.id)
"""
_ALL_ROWS = """
SELECT s.id, s.username, s.challenge_id, s.score, s.created_at FROM api_score s
WHERE NOT EXISTS (SELECT 1 FROM exact_moderation m WHERE m.score_id = s.id)
"""
_LIST_SORTS = {  # sort -> (columns, ascending), as db/challenges.py's SORTS
    "newest": (["created_at", "id"], False),
    "oldest": (["created_at", "id"], True),
    "participants": (["participants", "created_at"], False),
    "submissions": (["submissions", "created_at"], False),
    "best_score": (["best_score", "created_at"], False),
    "title": (["title_key", "id"], True),
}


def naive_leaderboard(db, challenge_id: str, *, show_all: bool) -> dict[str, Any]:
    """The ranking, record progression and histogram computed in pandas from the challenge's rows."""
    rows = _frame(db, _CHALLENGE_ROWS, {"c": challenge_id})
    ordered = rows.sort_values(["score", "created_at", "id"], ascending=[False, True, True])
    if show_all:
        table = ordered.assign(rank=ordered["score"].rank(method="min", ascending=False).astype(int))
    else:
        best = ordered.drop_duplicates("username")  # = groupby(username).score.max(), earliest first on ties
        counts = rows.groupby("username").size().rename("submissions")
        table = best.join(counts, on="username")
        table = table.assign(rank=table["score"].rank(method="min", ascending=False).astype(int))
    by_time = rows.sort_values(["created_at", "id"])
    previous_best = by_time["score"].cummax().shift()
    progression = by_time[previous_best.isna() | (by_time["score"] > previous_best)]
    counts, _edges = np.histogram(rows["score"].to_numpy(), bins=BINS)
    users = rows["username"].nunique()
    return {"table": table, "progression": progression, "histogram": counts, "rows": len(rows), "users": users}


def _challenge_stats(db, scores: pd.DataFrame) -> pd.DataFrame:
    stats = scores.groupby("challenge_id").agg(
        participants=("username", "nunique"),
        submissions=("score", "size"),
        best_score=("score", "max"),
        last_submission_at=("created_at", "max"),
    )
    challenges = _frame(db, "SELECT id, challenge_id, title, description, created_at FROM api_challenge")
    table = challenges.join(stats, on="challenge_id")
    table[["participants", "submissions"]] = table[["participants", "submissions"]].fillna(0).astype(int)
    return table.assign(title_key=table["title"].str.lower())


def _sorted(table: pd.DataFrame, sort: str) -> pd.DataFrame:
    columns, ascending = _LIST_SORTS[sort]
    return table.sort_values(columns, ascending=ascending, na_position="last", kind="stable")


def naive_challenge_list(db, *, search: str = "", sort: str = "newest") -> pd.DataFrame:
    """Every score fetched, aggregated per challenge, filtered and sorted in pandas."""
    table = _challenge_stats(db, _frame(db, _ALL_ROWS))
    if search:
        hit = False
        for column in ("title", "challenge_id", "description"):
            hit = hit | table[column].str.contains(search, case=False, regex=False)
        table = table[hit]
    return _sorted(table, sort)


def naive_home(db) -> dict[str, Any]:
    scores = _frame(db, _ALL_ROWS)
    totals = {
        "challenges": int(_frame(db, "SELECT count(*) AS n FROM api_challenge")["n"][0]),
        "submissions": len(scores),
        "participants": int(scores["username"].nunique()),
        "users": int(_frame(db, "SELECT count(*) AS n FROM auth_user WHERE is_active")["n"][0]),
    }
    recent = scores.sort_values(["created_at", "id"], ascending=False).head(8)
    latest = _sorted(_challenge_stats(db, scores), "newest").head(5)
    return {"totals": totals, "recent": recent, "latest": latest}


def naive_rank(db, challenge_id: str, username: str) -> tuple[int, int]:
    """(rank of the user's best score, ranked users), from the challenge's rows in pandas."""
    rows = _frame(db, _CHALLENGE_ROWS, {"c": challenge_id})
    best = rows.groupby("username")["score"].max()
    ranks = best.rank(method="min", ascending=False).astype(int)
    return int(ranks[username]), len(best)


def naive_submit(db, challenge_id: str, username: str, score: float) -> int:
    """Insert a row, then rank the challenge in pandas; rolled back, so it leaves nothing behind."""
    import sqlalchemy as sa

    with db.connect() as conn:
        conn.execute(
            sa.text("INSERT INTO api_score (username, challenge_id, score, created_at) VALUES (:u, :c, :s, now())"),
            {"u": username, "c": challenge_id, "s": score},
        )
        rows = _frame(db, _CHALLENGE_ROWS, {"c": challenge_id}, conn)
        conn.rollback()
    best = rows.groupby("username")["score"].max()
    return int(best.rank(method="min", ascending=False)[username])


# ----------------------------------------------------------------------------------------------------------------
# The operations
# ----------------------------------------------------------------------------------------------------------------


def _top(table: pd.DataFrame, n: int = 10) -> list[tuple[str, float]]:
    return [(str(u), float(s)) for u, s in zip(table["username"].head(n), table["score"].head(n), strict=True)]


def _same_top(service: pd.DataFrame, naive: pd.DataFrame) -> bool:
    a, b = _top(service), _top(naive)
    return len(a) == len(b) and all(x[0] == y[0] and abs(x[1] - y[1]) <= 1e-9 for x, y in zip(a, b, strict=True))


def bench_leaderboard(db, dataset: Dataset, opts, failures: Failures) -> list[Row]:
    from exact.scores import leaderboard

    cid = dataset.hot_challenge_id
    rows = []
    for show_all in (False, True):
        label = "leaderboard, hot challenge: " + ("all submissions" if show_all else "best per user")
        times, board = timed_runs(lambda s=show_all: leaderboard(db, cid, show_all=s), opts.runs, opts.warmups)
        naive_times, naive = timed_runs(
            lambda s=show_all: naive_leaderboard(db, cid, show_all=s), opts.naive_runs, opts.naive_warmups
        )
        failures.check(
            _same_top(board.table, naive["table"]),
            f"{label}: top 10 {_top(board.table)} differ from the naive ranking {_top(naive['table'])}",
        )
        ranks = [int(r) for r in board.table["rank"].head(10)]
        failures.check(
            ranks == [int(r) for r in naive["table"]["rank"].head(10)], f"{label}: ranks {ranks} differ from naive"
        )
        if not show_all and "submissions" in board.table.columns:
            failures.check(
                [int(n) for n in board.table["submissions"].head(10)]
                == [int(n) for n in naive["table"]["submissions"].head(10)],
                f"{label}: submission counts of the top 10 differ from naive",
            )
        histogram_total = int(board.histogram["count"].sum()) if "count" in board.histogram else None
        # The distribution is of every submission or of each participant's best: either count is right.
        failures.check(
            histogram_total in (naive["rows"], naive["users"]),
            f"{label}: histogram counts {histogram_total}, neither {naive['rows']} rows nor {naive['users']} users",
        )
        if not board.progression.empty:
            failures.check(
                abs(float(board.progression["best_score"].iloc[-1]) - float(naive["table"]["score"].iloc[0])) < 1e-9,
                f"{label}: the progression does not end at the best score",
            )
        note = f"{len(board.table):,} rows returned of {len(naive['table']):,} ranked"
        rows.append(
            Row(
                label,
                statistics.median(times),
                TARGET_SERVICE_S,
                statistics.median(naive_times),
                # The issue sets the ratio at 300,000 rows; the small data set's naive run is too short for it.
                TARGET_LEADERBOARD_RATIO if dataset.spec.hot_scores >= FULL.hot_scores else None,
                len(times),
                note,
            )
        )
    return rows


def bench_challenge_list(db, dataset: Dataset, opts, failures: Failures) -> list[Row]:
    from exact.challenges import SORT_LABELS, list_challenges

    naive_times, naive = timed_runs(lambda: naive_challenge_list(db), opts.naive_runs, opts.naive_warmups)
    naive_s = statistics.median(naive_times)
    hot_submissions = int(naive.loc[naive["challenge_id"] == dataset.hot_challenge_id, "submissions"].iloc[0])
    hot_participants = int(naive.loc[naive["challenge_id"] == dataset.hot_challenge_id, "participants"].iloc[0])
    rows = []
    for sort in SORT_LABELS:
        times, result = timed_runs(lambda s=sort: list_challenges(db, sort=s), opts.runs, opts.warmups)
        items = challenge_items(result)
        total = challenge_total(result)
        expected = _sorted(naive, sort)
        if sort in ("participants", "submissions"):
            first = items[0] if items else None
            failures.check(
                first is not None
                and first.challenge_id == dataset.hot_challenge_id
                and first.submissions == hot_submissions
                and first.participants == hot_participants,
                f"challenge list by {sort}: first "
                f"{first and (first.challenge_id, first.submissions, first.participants)}, "
                f"expected ({dataset.hot_challenge_id}, {hot_submissions}, {hot_participants})",
            )
        elif sort in ("newest", "oldest", "title"):
            got = [c.challenge_id for c in items[:10]]
            want = list(expected["challenge_id"].head(10))
            if sort == "title":  # PostgreSQL's collation may order punctuation differently: compare as sets
                got, want = sorted(got), sorted(want)
            failures.check(got == want, f"challenge list by {sort}: first 10 {got} differ from naive {want}")
        note = f"{len(items):,} challenges returned" + (f" of {total:,}" if total is not None else "")
        if total is None and len(items) < dataset.spec.challenges:
            note += f" (of {dataset.spec.challenges:,}: cut off)"
        rows.append(
            Row(
                f"challenge list, sort {sort}",
                statistics.median(times),
                TARGET_SERVICE_S,
                naive_s,
                None,
                len(times),
                note,
            )
        )
    times, result = timed_runs(lambda: list_challenges(db, search=SEARCH_TERM), opts.runs, opts.warmups)
    items = challenge_items(result)
    total = challenge_total(result)
    naive_times, naive_hits = timed_runs(
        lambda: naive_challenge_list(db, search=SEARCH_TERM), opts.naive_runs, opts.naive_warmups
    )
    count = total if total is not None else len(items)
    failures.check(
        count == len(naive_hits), f"challenge search {SEARCH_TERM!r}: {count} matches, naive finds {len(naive_hits)}"
    )
    rows.append(
        Row(
            f"challenge list, search {SEARCH_TERM!r}",
            statistics.median(times),
            TARGET_SERVICE_S,
            statistics.median(naive_times),
            None,
            len(times),
            f"{count:,} matches",
        )
    )
    return rows


def home_calls(db) -> dict[str, Any]:
    """What app_pages/home.py asks the services for."""
    from exact.challenges import list_challenges
    from exact.scores import recent_submissions, site_totals

    kwargs = {"limit": 5} if _accepts(list_challenges, "limit") else {}
    latest = challenge_items(list_challenges(db, sort="newest", **kwargs))[:5]
    return {"totals": site_totals(db), "recent": recent_submissions(db, limit=8), "latest": latest}


def bench_home(db, dataset: Dataset, opts, failures: Failures) -> list[Row]:
    times, home = timed_runs(lambda: home_calls(db), opts.runs, opts.warmups)
    naive_times, naive = timed_runs(lambda: naive_home(db), opts.naive_runs, opts.naive_warmups)
    totals = {key: int(home["totals"][key]) for key in ("challenges", "submissions", "participants", "users")}
    failures.check(totals == naive["totals"], f"home totals {totals} differ from naive {naive['totals']}")
    recent = [int(i) for i in home["recent"]["score_id"]]
    failures.check(recent == [int(i) for i in naive["recent"]["id"]], "home: recent submissions differ from naive")
    latest = [c.challenge_id for c in home["latest"]]
    failures.check(latest == list(naive["latest"]["challenge_id"]), f"home: latest challenges {latest} differ")
    return [
        Row(
            "home: totals + recent + latest challenges",
            statistics.median(times),
            TARGET_SERVICE_S,
            statistics.median(naive_times),
            None,
            len(times),
        )
    ]


def bench_submit(db, dataset: Dataset, opts, failures: Failures) -> list[Row]:
    import sqlalchemy as sa

    from exact.scores import submit_score

    cid = dataset.hot_challenge_id
    with db.connect() as conn:  # users with a live row on the hot challenge
        submitters = conn.execute(
            sa.text(
                "SELECT u.id, u.username FROM auth_user u WHERE EXISTS "
                "(SELECT 1 FROM api_score s WHERE s.challenge_id = :c AND s.username = u.username) "
                "ORDER BY u.id LIMIT :n"
            ),
            {"c": cid, "n": opts.runs + opts.warmups},
        ).all()
    rng = np.random.default_rng(SEED + 1)
    turn = iter(submitters)
    last: dict[str, Any] = {}
    keyed = _accepts(submit_score, "request_key")

    def submit():
        user_id, username = next(turn)
        value = round(float(rng.uniform(0.1, 0.6)), 6)
        extra = {"request_key": uuid.uuid4().hex} if keyed else {}
        last.update(result=submit_score(db, user_id, cid, value, **extra), username=username)
        return last["result"]

    times, _ = timed_runs(submit, opts.runs, opts.warmups)
    result = last["result"]
    rank, ranked_users = naive_rank(db, cid, last["username"])
    failures.check(
        (result.rank, result.ranked_users) == (rank, ranked_users),
        f"submit: rank {result.rank} of {result.ranked_users}, naive {rank} of {ranked_users}",
    )
    naive_user = submitters[0][1]
    naive_times, _ = timed_runs(lambda: naive_submit(db, cid, naive_user, 0.5), opts.naive_runs, opts.naive_warmups)
    return [
        Row(
            "submit to the hot challenge, with the new rank",
            statistics.median(times),
            TARGET_SUBMIT_S,
            statistics.median(naive_times),
            None,
            len(times),
            f"rank {result.rank:,} of {result.ranked_users:,}",
        )
    ]


@contextlib.contextmanager
def app_environment(db_url: str) -> Iterator[None]:
    """The app's settings pointing at the scratch database, Streamlit's caches emptied before and after."""
    import streamlit as st

    workdir = Path(tempfile.mkdtemp(prefix="exact-scale-"))
    (workdir / "media").mkdir()
    (workdir / "data" / "private").mkdir(parents=True)
    values = {
        "DATABASE_URL": db_url,
        "EXACT_MEDIA_ROOT": str(workdir / "media"),
        "EXACT_PRIVATE_ROOT": str(workdir / "data" / "private"),
        "EXACT_DATA_DIR": str(workdir / "data"),
        "EXACT_SECRET_KEY": secrets.token_urlsafe(36),
        "EXACT_WORKER": "off",
    }
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    st.cache_resource.clear()
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            from ui.runtime import get_db

            get_db().dispose()
        st.cache_resource.clear()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)


PAGES = (  # page, deep link to the hot challenge, what the page must show
    ("home", "app_pages/home.py", False, "Recent submissions"),
    ("challenges", "app_pages/challenges.py", False, "Challenges"),
    ("challenge", "app_pages/challenge.py", True, HOT_TITLE),
    ("leaderboard", "app_pages/leaderboard.py", True, "Leaderboard"),
)


def _page_texts(at) -> str:
    parts = [e.value for e in at.title] + [e.value for e in at.subheader] + [e.value for e in at.markdown]
    return "\n".join(str(p) for p in parts)


def bench_pages(db_url: str, dataset: Dataset, opts, failures: Failures) -> list[Row]:
    from streamlit.testing.v1 import AppTest

    from exact import PROJECT_ROOT

    rows = []
    with app_environment(db_url):
        for name, page, deep_link, needle in PAGES:
            at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=120)
            at.run()  # the app's first run: home
            if deep_link:
                at.query_params["challenge"] = dataset.hot_challenge_id
            at.switch_page(page)
            times, _ = timed_runs(at.run, opts.page_runs, opts.page_warmups)
            problems = [str(e.value)[:200] for e in at.exception]
            failures.check(not problems, f"page {name}: exception {problems}")
            texts = _page_texts(at)
            failures.check(needle in texts, f"page {name}: {needle!r} not shown")
            if name == "leaderboard":
                charts = len(at.get("plotly_chart"))
                failures.check(charts == 3, f"page leaderboard: {charts} charts, not 3")
                if at.selectbox:
                    failures.check(
                        at.selectbox[0].value == dataset.hot_challenge_id,
                        f"page leaderboard shows {at.selectbox[0].value}, not the deep-linked challenge",
                    )
            rows.append(Row(f"page run (AppTest): {name}", statistics.median(times), TARGET_PAGE_S, runs=len(times)))
    return rows


# ----------------------------------------------------------------------------------------------------------------
# Report and main
# ----------------------------------------------------------------------------------------------------------------


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:,.1f}"


def print_table(rows: list[Row]) -> None:
    header = f"{'operation':<50}{'median ms':>11}{'target':>8}{'naive ms':>11}{'ratio':>9}  verdict / note"
    print(header)
    print("-" * len(header))
    for row in rows:
        ratio = f"{row.ratio:,.0f}×" if row.ratio else "-"
        target = _ms(row.target_s).removesuffix(".0") if row.target_s else "-"
        note = f"  ({row.note})" if row.note else ""
        print(
            f"{row.operation:<50}{_ms(row.median_s):>11}{target:>8}{_ms(row.naive_s):>11}{ratio:>9}"
            f"  {row.verdict}{note}"
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="50,000 scores, 100 challenges, 5,000 users")
    parser.add_argument("--runs", type=int, default=15, help="measured runs per operation (default 15)")
    parser.add_argument("--warmups", type=int, default=3, help="warm-up runs per operation (default 3)")
    parser.add_argument("--naive-runs", type=int, default=None, help="measured naive runs (default 3; 5 --small)")
    parser.add_argument("--page-runs", type=int, default=7, help="measured AppTest runs per page (default 7)")
    parser.add_argument("--no-pages", action="store_true", help="skip the AppTest page runs")
    parser.add_argument(
        "--load-mode",
        choices=("auto", "triggers", "replica"),
        default="auto",
        help="triggers: COPY fires api_score's triggers; replica: without them, then the read models' rebuild; "
        "auto (default): replica when a rebuild function exists",
    )
    parser.add_argument(
        "--keep-indexes", action="store_true", help="COPY into api_score's indexes instead of rebuilding them after"
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch database (its URL is printed)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON to this path")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    spec = SMALL if args.small else FULL
    opts = argparse.Namespace(
        runs=max(1, args.runs),
        warmups=max(0, args.warmups),
        naive_runs=max(1, args.naive_runs or (5 if args.small else 3)),
        naive_warmups=1 if args.small else 0,  # a naive run at full size takes seconds: nothing left to warm
        page_runs=max(1, args.page_runs),
        page_warmups=2,
    )
    print(f"Exact scale benchmark: {spec.label}", flush=True)
    print(
        f"  Python {platform.python_version()}, pandas {pd.__version__}, {os.cpu_count()} CPU(s), "
        f"load average {os.getloadavg()[0]:.1f}; median of {opts.runs} runs after {opts.warmups} warm-ups "
        f"(naive: {opts.naive_runs}; pages: {opts.page_runs} after {opts.page_warmups})",
        flush=True,
    )
    pg_url, _pgdata = scale_server_url()
    scratch = ScratchDatabase(pg_url, name=f"exact_scale_{uuid.uuid4().hex[:12]}")
    scratch.create()
    failures = Failures()
    rows: list[Row] = []
    try:
        import psycopg

        with psycopg.connect(_libpq(scratch.url)) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
        print(f"  scratch database {scratch.name} on PostgreSQL {version} ({pg_url.split('@')[-1]})", flush=True)
        dataset = build_dataset(scratch.url, spec, load_mode=args.load_mode, keep_indexes=args.keep_indexes)
        print(
            f"data set loaded in {dataset.load_s:.1f} s ({dataset.load_mode} mode; api_score triggers: "
            f"{', '.join(dataset.api_score_triggers) or 'none'}): "
            + ", ".join(f"{step} {seconds:.1f} s" for step, seconds in dataset.timings_s.items()),
            flush=True,
        )
        from db.database import Database

        db = Database(scratch.url, pool_size=2, max_overflow=2)
        try:
            for step in (bench_leaderboard, bench_challenge_list, bench_home, bench_submit):
                print(f"  {step.__name__.removeprefix('bench_')}...", flush=True)
                try:
                    rows += step(db, dataset, opts, failures)
                except Exception as exc:  # a broken service is a wrong result; the other figures still count
                    failures.check(False, f"{step.__name__}: {type(exc).__name__}: {exc}")
        finally:
            db.dispose()
        if not args.no_pages:
            print("  pages...", flush=True)
            try:
                rows += bench_pages(scratch.url, dataset, opts, failures)
            except Exception as exc:
                failures.check(False, f"pages: {type(exc).__name__}: {exc}")
    finally:
        if args.keep:
            print(f"kept the scratch database: {scratch.url}")
        else:
            scratch.drop()
    print()
    print_table(rows)
    over = [r.operation for r in rows if r.verdict != "ok"]
    print()
    print(
        f"{len(rows) - len(over)} of {len(rows)} figures within target" + (f"; over: {', '.join(over)}" if over else "")
    )
    if args.json:
        report = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "spec": asdict(spec),
            "load": {"mode": dataset.load_mode, "timings_s": dataset.timings_s, "rebuild": dataset.rebuild},
            "rows": [{**asdict(r), "ratio": r.ratio, "verdict": r.verdict} for r in rows],
            "failures": list(failures),
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    if failures:
        print(f"FAILED: {len(failures)} wrong result(s):", file=sys.stderr)
        for failure in failures:
            print(f"  {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

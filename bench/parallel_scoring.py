"""Parallel scoring benchmark: dense 64 x 64 samples per second through the real queue, 1 process vs all.

``python -m bench.parallel_scoring [--samples 40] [--processes N] [--keep]`` (part of ``make bench``).

1. A scratch database (DATABASE_URL's server, else PostgreSQL on 127.0.0.1:5432 if it answers, else an embedded
   server under .data/bench) with the schema, a ground-truth challenge of ``--samples`` 64 x 64 samples
   (XAI-TRIS-like tetromino masks of 8 x 8 cells, as ``python -m bench`` makes them) and two participants. Its
   baselines are set aside (marked failed) so the queue holds only ours.
2. For 1 process, then for ``--processes`` (default EXACT_SCORING_PROCESSES, the number of cores): start the
   worker processes exactly as ``python -m exact worker`` does, wait until each has connected, submit dense
   attributions (signal on the mask plus noise everywhere, half of them rectified) and time until the
   submission is done.
3. Prints samples per second for each and the ratio (measured in the same run), and checks that both runs
   stored the same result (exit code 1 otherwise). About a minute and a half on a 2-core machine.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import secrets
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import psycopg
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.engine import make_url

from bench.__main__ import make_samples
from db.database import Database, normalise_url
from db.schema import apply_schema
from exact import PROJECT_ROOT, evaluation_sets, intake
from exact.accounts import create_user
from exact.challenges import ChallengeForm, EvaluationChoice, create_challenge
from exact.config import load_settings
from exact.storage import MediaStorage, UploadedFile
from exact.worker import ScoringProcesses, WorkerConfig

LOCAL_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
SIZE = 64
SEED = 20261201
APPLICATION_NAME = "exact-bench-scorer"
MAX_BYTES = 256 * 1024 * 1024
GIVE_UP_SECONDS = 1800  # only so a broken run ends; never a pass/fail threshold


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _server_url() -> str:
    configured = os.environ.get("DATABASE_URL")
    if configured:
        return normalise_url(configured)
    try:
        with psycopg.connect(_libpq(LOCAL_SERVER), connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return LOCAL_SERVER
    except psycopg.Error:
        from db.embedded import start_embedded_server

        return start_embedded_server(PROJECT_ROOT / ".data" / "bench" / "postgres")


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _npz(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _scalar(db: Database, query: str, **params) -> object:
    with db.connect() as conn:
        return conn.execute(sa.text(query), params).scalar()


def _wait(condition, what: str) -> None:
    deadline = time.monotonic() + GIVE_UP_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what}")
        time.sleep(0.05)


def _time_one_run(db: Database, config: WorkerConfig, processes: int, submit) -> tuple[float, int]:
    """Seconds from submitting to 'done' with ``processes`` worker processes already waiting; the submission."""
    pool = ScoringProcesses(config, processes)
    pool.start()
    try:
        connected = "SELECT count(*) FROM pg_stat_activity WHERE application_name = :a"
        _wait(lambda: _scalar(db, connected, a=APPLICATION_NAME) >= processes, f"{processes} processes to connect")
        started = time.perf_counter()
        submission_id = submit()
        status = "SELECT status FROM exact_submission WHERE id = :i"
        _wait(lambda: _scalar(db, status, i=submission_id) in {"done", "failed"}, "the submission to be scored")
        seconds = time.perf_counter() - started
    finally:
        pool.stop()
    _wait(lambda: _scalar(db, connected, a=APPLICATION_NAME) == 0, "the processes to stop")
    if _scalar(db, status, i=submission_id) != "done":
        error = _scalar(db, "SELECT error FROM exact_submission WHERE id = :i", i=submission_id)
        raise SystemExit(f"scoring failed: {error}")
    return seconds, submission_id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.parallel_scoring", description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--processes", type=int, default=None, help="default: EXACT_SCORING_PROCESSES (the cores)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database (its URL is printed)")
    args = parser.parse_args(argv)
    processes = args.processes or load_settings().scoring_processes
    n = args.samples

    print(f"Parallel scoring: {n} dense {SIZE}x{SIZE} samples, 1 process vs {processes} ({os.cpu_count()} cores)")
    print(f"  Python {platform.python_version()} on {platform.machine()}")
    server = _server_url()
    name = f"exact_parallel_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq(server), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    db = Database(url, pool_size=2, max_overflow=4)
    try:
        apply_schema(db)
        with tempfile.TemporaryDirectory(prefix="exact-bench-") as tmp:
            media = MediaStorage(Path(tmp) / "media", max_bytes=MAX_BYTES)
            private = MediaStorage(Path(tmp) / "private", max_bytes=MAX_BYTES)
            media.root.mkdir()
            private.root.mkdir()
            rng = np.random.default_rng(SEED)
            password = secrets.token_urlsafe(16)  # nobody logs in: the accounts only own the submissions
            dense, masks = make_samples(n, SIZE, rng, cell=8)
            organiser = create_user(db, username="organiser", password=password, is_staff=True)
            users = [create_user(db, username=f"runner{i}", password=password) for i in range(2)]
            prepared = evaluation_sets.prepare_uploaded_evaluation(
                UploadedFile("inputs.npz", _npz(inputs=rng.normal(size=(n, SIZE * SIZE)))),
                UploadedFile("masks.npy", _npy(masks)),
                max_bytes=MAX_BYTES,
            )
            create_challenge(
                db,
                media,
                organiser.id,
                ChallengeForm("Parallel", "bench", "parallel"),
                {},
                evaluation=EvaluationChoice(prepared=prepared, private=private, primary_metric="emd", shown_metrics=()),
            )
            with db.transaction() as conn:  # only ours in the queue
                conn.execute(sa.text("UPDATE exact_submission SET status = 'failed' WHERE kind = 'baseline'"))
            attributions = _npy(dense)

            def submit_as(user):
                return lambda: (
                    intake.submit_attributions(
                        db, media, user.id, "parallel", UploadedFile("a.npy", attributions), method_name="dense"
                    ).id
                )

            separator = "&" if "?" in url else "?"
            config = WorkerConfig(
                database_url=f"{url}{separator}application_name={APPLICATION_NAME}",
                media_root=media.root,
                private_root=private.root,
                max_bytes=MAX_BYTES,
                time_budget=GIVE_UP_SECONDS,
                poll_seconds=0.05,
            )
            single, first_id = _time_one_run(db, config, 1, submit_as(users[0]))
            print(f"  1 process:   {n / single:6.3f} samples/s ({single:.1f} s)", flush=True)
            parallel, second_id = _time_one_run(db, config, processes, submit_as(users[1]))
            print(f"  {processes} processes: {n / parallel:6.3f} samples/s ({parallel:.1f} s)")
            print(f"  ratio:       {single / parallel:.2f}x with {processes} processes")
            claimers = _scalar(
                db, "SELECT count(DISTINCT claimed_by) FROM exact_scoring_chunk WHERE submission_id = :i", i=second_id
            )
            chunks = _scalar(db, "SELECT count(*) FROM exact_scoring_chunk WHERE submission_id = :i", i=second_id)
            print(f"  {chunks} chunks per submission; the parallel run's were scored by {claimers} processes")
            same = _scalar(
                db,
                "SELECT a.result = b.result FROM exact_submission a, exact_submission b WHERE a.id = :a AND b.id = :b",
                a=first_id,
                b=second_id,
            )
            print(f"  results identical: {'yes' if same else 'NO'}")
            return 0 if same else 1
    finally:
        db.dispose()
        if args.keep:
            print(f"kept the scratch database: {url}")
        else:
            with psycopg.connect(_libpq(server), autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


if __name__ == "__main__":
    sys.exit(main())

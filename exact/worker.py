"""The background scorers: worker processes that take chunks of queued submissions (and chunks whose worker
vanished) and score them.

``python -m exact worker`` (any machine that reaches the database and the private storage) and the app's own
background worker both start ``EXACT_SCORING_PROCESSES`` processes (``ScoringProcesses``), each with its own
database engine; a supervising thread restarts one that died. Claims use ``FOR UPDATE SKIP LOCKED`` and leases,
so a chunk is scored by one worker at a time, and one left "running" by a stopped worker is picked up again once
its lease expires. Design: docs/architecture.md, "Parallel scoring".
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from db.database import Database
from exact.errors import DatabaseUnavailable
from exact.scoring import DEFAULT_CHUNKING, DEFAULT_TIME_BUDGET_SECONDS, Chunking, InputCache, score_next_chunk
from exact.storage import MediaStorage

log = logging.getLogger(__name__)

# A process that dies this soon after starting is restarted only after a pause (a broken set-up must not spin).
_RESTART_PAUSE_SECONDS = 5.0


class ScoringWorker:
    """One scorer in this process: claims and scores one chunk after another."""

    def __init__(
        self,
        db: Database,
        media: MediaStorage,
        private: MediaStorage,
        *,
        poll_seconds: float = 1.0,
        time_budget: float = DEFAULT_TIME_BUDGET_SECONDS,
        chunking: Chunking = DEFAULT_CHUNKING,
    ):
        self.db = db
        self.time_budget = time_budget
        self.media = media
        self.private = private
        self.poll_seconds = poll_seconds
        self.chunking = chunking
        self._cache = InputCache()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    thread_name = "exact-scoring-worker"

    def run_once(self) -> bool:
        """Score one waiting chunk; False when there was none."""
        done = score_next_chunk(
            self.db,
            self.media,
            self.private,
            time_budget=self.time_budget,
            chunking=self.chunking,
            cache=self._cache,
        )
        return done is not None

    def run_forever(self) -> None:
        while not self._stop.is_set():
            try:
                if not self.run_once():
                    self._stop.wait(self.poll_seconds)
            except DatabaseUnavailable:
                log.warning("scoring worker: database unavailable, retrying in 5 s")
                self._stop.wait(5)
            except Exception:  # never let the worker die: log and keep serving the queue
                log.exception("scoring worker: unexpected error")
                self._stop.wait(5)

    def start(self) -> ScoringWorker:
        self._thread = threading.Thread(target=self.run_forever, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)


class TrainingWorker(ScoringWorker):
    """Trains the models of generated benchmarks (exact.trained_models), one job after another. A process of its
    own: a 64×64 model trains for a long time, and scoring must not wait for it."""

    thread_name = "exact-training-worker"

    def run_once(self) -> bool:
        from exact.trained_models import train_next

        return train_next(self.db, self.media, self.private) is not None


@dataclass(frozen=True)
class WorkerConfig:
    """What a worker process needs to open its own database engine and stores (picklable: sent to the child)."""

    database_url: str
    media_root: Path
    private_root: Path
    max_bytes: int
    time_budget: float = DEFAULT_TIME_BUDGET_SECONDS
    statement_timeout_ms: int | None = None
    poll_seconds: float = 1.0
    chunking: Chunking = field(default_factory=Chunking)
    role: str = "scoring"  # or "training" (TrainingWorker)


def run_worker_process(config: WorkerConfig, parent_pid: int | None = None) -> None:
    """The body of one worker process: its own engine (never one inherited from the parent), until SIGTERM/SIGINT
    or until the parent that started it is gone."""
    db = Database(config.database_url, pool_size=1, max_overflow=2, statement_timeout_ms=config.statement_timeout_ms)
    worker_class = TrainingWorker if config.role == "training" else ScoringWorker
    worker = worker_class(
        db,
        MediaStorage(config.media_root, max_bytes=config.max_bytes),
        MediaStorage(config.private_root, max_bytes=config.max_bytes),
        poll_seconds=config.poll_seconds,
        time_budget=config.time_budget,
        chunking=config.chunking,
    )

    def stop(_signum, _frame) -> None:
        worker._stop.set()
        raise SystemExit(0)  # a chunk being scored is left to its lease: another worker takes it over

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if parent_pid is not None:

        def watch_parent() -> None:
            while not worker._stop.wait(2):
                if os.getppid() != parent_pid:  # the app was killed: do not score on as an orphan
                    os.kill(os.getpid(), signal.SIGTERM)

        threading.Thread(target=watch_parent, name="exact-parent-watch", daemon=True).start()
    try:
        worker.run_forever()
    finally:
        db.dispose()


class ScoringProcesses:
    """``processes`` scoring processes and ``trainers`` training processes (spawned: a fresh interpreter each, so
    no engine or lock crosses a fork), kept running by a supervising thread in this process."""

    def __init__(self, config: WorkerConfig, processes: int, *, trainers: int = 0, check_seconds: float = 2.0):
        if processes < 1:
            raise ValueError("at least one scoring process is needed")
        if trainers < 0:
            raise ValueError("the number of training processes cannot be negative")
        self.config = config
        self.scorers = processes
        self.count = processes + trainers
        self.check_seconds = check_seconds
        self._context = multiprocessing.get_context("spawn")
        self._processes: list[multiprocessing.process.BaseProcess | None] = [None] * self.count
        self._started_at = [0.0] * self.count
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._processes if p is not None and p.pid is not None and p.is_alive()]

    def _start_one(self, index: int) -> None:
        training = index >= self.scorers
        config = dataclasses.replace(self.config, role="training") if training else self.config
        process = self._context.Process(
            target=run_worker_process,
            args=(config, os.getpid()),
            name=f"exact-trainer-{index - self.scorers}" if training else f"exact-scorer-{index}",
            daemon=True,  # ends with this process
        )
        process.start()
        self._processes[index] = process
        self._started_at[index] = time.monotonic()

    def _supervise(self) -> None:
        while not self._stop.wait(self.check_seconds):
            for index, process in enumerate(self._processes):
                if self._stop.is_set():
                    return
                if process is not None and process.is_alive():
                    continue
                if time.monotonic() - self._started_at[index] < _RESTART_PAUSE_SECONDS:
                    continue
                if process is not None:
                    log.warning(
                        "%s (pid %s) ended (exit code %s); starting another",
                        process.name,
                        process.pid,
                        process.exitcode,
                    )
                try:
                    self._start_one(index)
                except OSError:
                    log.exception("could not start a scoring process")

    def start(self) -> ScoringProcesses:
        for index in range(self.count):
            self._start_one(index)
        self._thread = threading.Thread(target=self._supervise, name="exact-scoring-supervisor", daemon=True)
        self._thread.start()
        return self

    def wait(self) -> None:
        """Block until ``stop`` is called (from a signal handler or another thread)."""
        while not self._stop.wait(1.0):
            pass

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for process in self._processes:
            if process is not None and process.is_alive():
                process.terminate()
        deadline = time.monotonic() + timeout
        for process in self._processes:
            if process is not None:
                process.join(max(0.0, deadline - time.monotonic()))
                if process.is_alive():
                    process.kill()
                    process.join(1)

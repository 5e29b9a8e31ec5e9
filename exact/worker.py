"""The background scorer: takes queued submissions (and ones whose worker vanished) and scores them.

It runs as a thread inside the app (started once per server process) or on its own with
``python -m exact worker``. Several may run at once: claims use ``FOR UPDATE SKIP LOCKED`` and a lease, so a
submission is scored by one worker at a time, and one left "running" by a stopped app is picked up again once
its lease expires.
"""

from __future__ import annotations

import logging
import threading

from db.database import Database
from exact.errors import DatabaseUnavailable
from exact.scoring import DEFAULT_TIME_BUDGET_SECONDS, process_submission
from exact.storage import MediaStorage

log = logging.getLogger(__name__)


class ScoringWorker:
    def __init__(
        self,
        db: Database,
        media: MediaStorage,
        private: MediaStorage,
        *,
        poll_seconds: float = 1.0,
        time_budget: float = DEFAULT_TIME_BUDGET_SECONDS,
    ):
        self.db = db
        self.time_budget = time_budget
        self.media = media
        self.private = private
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> bool:
        """Score one waiting submission; False when there was none."""
        return process_submission(self.db, self.media, self.private, time_budget=self.time_budget) is not None

    def run_forever(self) -> None:
        while not self._stop.is_set():
            try:
                if not self.run_once():
                    self._stop.wait(self.poll_seconds)
            except DatabaseUnavailable:
                log.warning("scoring worker: database unavailable, retrying in 5 s")
                self._stop.wait(5)
            except Exception:  # never let the thread die: log and keep serving the queue
                log.exception("scoring worker: unexpected error")
                self._stop.wait(5)

    def start(self) -> ScoringWorker:
        self._thread = threading.Thread(target=self.run_forever, name="exact-scoring-worker", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

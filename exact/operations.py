"""What a load balancer or a monitor asks of a running server: is the database there, how long is the queue."""

from __future__ import annotations

from dataclasses import dataclass

from db import operations as operations_sql
from db.database import Database
from exact.errors import DatabaseUnavailable, QueryTooSlow

THROUGHPUT_WINDOW_S = 3600


@dataclass(frozen=True)
class QueueStatus:
    queued: int
    running: int
    oldest_age_s: float | None  # the oldest waiting or running submission's age; None when the queue is empty
    done_last_hour: int
    failed_last_hour: int

    @property
    def depth(self) -> int:
        return self.queued + self.running


@dataclass(frozen=True)
class Health:
    database_ok: bool
    database_error: str | None  # a short reason for the monitor's log, never a connection string
    queue: QueueStatus | None

    @property
    def ok(self) -> bool:
        return self.database_ok


def queue_status(db: Database) -> QueueStatus:
    with db.connect() as conn:
        row = operations_sql.queue_figures(conn, window_s=THROUGHPUT_WINDOW_S)
    return QueueStatus(
        queued=int(row["queued"]),
        running=int(row["running"]),
        oldest_age_s=None if row["oldest_age_s"] is None else round(float(row["oldest_age_s"]), 3),
        done_last_hour=int(row["done_recently"]),
        failed_last_hour=int(row["failed_recently"]),
    )


def health(db: Database) -> Health:
    """The database answers and the queue's figures; an outage or a slow database is reported, never raised."""
    try:
        return Health(True, None, queue_status(db))
    except DatabaseUnavailable:
        return Health(False, "unreachable", None)
    except QueryTooSlow:
        return Health(False, "took too long", None)

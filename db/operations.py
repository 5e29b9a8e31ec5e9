"""SQL for operations: the scoring queue's depth and age, recent throughput (health checks and /metrics)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection


def queue_figures(conn: Connection, *, window_s: int) -> dict[str, Any]:
    """Queued and running submissions, the oldest one's age, and how many finished (done/failed) in the window.

    Both parts read partial indexes (the queue's and the finished one's), so the cost follows the queue's length
    and the window's throughput, not the number of submissions ever made."""
    row = (
        conn.execute(
            sa.text(
                """
            SELECT
              (SELECT count(*) FILTER (WHERE status = 'queued') FROM exact_submission
                 WHERE status IN ('queued', 'running')) AS queued,
              (SELECT count(*) FILTER (WHERE status = 'running') FROM exact_submission
                 WHERE status IN ('queued', 'running')) AS running,
              (SELECT EXTRACT(EPOCH FROM now() - min(created_at))::float8 FROM exact_submission
                 WHERE status IN ('queued', 'running')) AS oldest_age_s,
              (SELECT count(*) FILTER (WHERE status = 'done') FROM exact_submission
                 WHERE finished_at IS NOT NULL AND finished_at > now() - make_interval(secs => :w)) AS done_recently,
              (SELECT count(*) FILTER (WHERE status = 'failed') FROM exact_submission
                 WHERE finished_at IS NOT NULL AND finished_at > now() - make_interval(secs => :w)) AS failed_recently
            """
            ),
            {"w": window_s},
        )
        .mappings()
        .one()
    )
    return dict(row)

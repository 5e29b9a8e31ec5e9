"""SQL for login throttling (exact_login_failure, exact_login_lock)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection


def active_lock(conn: Connection, key: str) -> datetime | None:
    query = sa.text("SELECT locked_until FROM exact_login_lock WHERE throttle_key = :k AND locked_until > now()")
    return conn.execute(query, {"k": key}).scalar_one_or_none()


def recent_failures(conn: Connection, key: str, *, window_seconds: int) -> int:
    """Failures inside the window that came after the key's last lock ended (a lock is served once)."""
    query = sa.text(
        """
        SELECT count(*) FROM exact_login_failure f
        WHERE f.throttle_key = :k
          AND f.created_at > now() - make_interval(secs => :w)
          AND f.created_at > COALESCE((SELECT locked_until FROM exact_login_lock l WHERE l.throttle_key = :k),
                                      '-infinity')
        """
    )
    return conn.execute(query, {"k": key, "w": window_seconds}).scalar_one()


# Two-int advisory locks live in a key space of their own (apart from the one-bigint locks used elsewhere).
_LOCK_NAMESPACE = 0x45585448  # "EXTH"


def lock_key(conn: Connection, key: str) -> None:
    """Serialise attempts on one throttle key until the transaction ends, so counting and deciding are atomic."""
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:ns, hashtext(:k))"), {"ns": _LOCK_NAMESPACE, "k": key})


def record_failure(conn: Connection, key: str) -> int:
    """Insert an attempt row (a failure until a success deletes it) and return its id."""
    query = sa.text("INSERT INTO exact_login_failure (throttle_key) VALUES (:k) RETURNING id")
    return conn.execute(query, {"k": key}).scalar_one()


def delete_attempts(conn: Connection, ids: list[int]) -> None:
    if ids:
        conn.execute(sa.text("DELETE FROM exact_login_failure WHERE id = ANY(:ids)"), {"ids": ids})


def lock(conn: Connection, key: str, *, seconds: int) -> None:
    conn.execute(
        sa.text(
            """
            INSERT INTO exact_login_lock (throttle_key, locked_until) VALUES (:k, now() + make_interval(secs => :s))
            ON CONFLICT (throttle_key) DO UPDATE SET locked_until = EXCLUDED.locked_until
            """
        ),
        {"k": key, "s": seconds},
    )


def clear_failures(conn: Connection, key: str) -> None:
    conn.execute(sa.text("DELETE FROM exact_login_failure WHERE throttle_key = :k"), {"k": key})


def prune(conn: Connection, *, older_than_seconds: int) -> None:
    conn.execute(
        sa.text("DELETE FROM exact_login_failure WHERE created_at < now() - make_interval(secs => :s)"),
        {"s": older_than_seconds},
    )
    # An ended lock is kept as long as failures are: its locked_until is what stops the burst before it from
    # counting again (a lock is served once), so deleting it at once would let that burst lock the key anew.
    conn.execute(
        sa.text("DELETE FROM exact_login_lock WHERE locked_until < now() - make_interval(secs => :s)"),
        {"s": older_than_seconds},
    )

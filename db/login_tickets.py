"""SQL for exact_login_ticket: one-time, short-lived tickets the browser exchanges at /auth/session for the
HttpOnly session cookie (exact.sessions). Only the SHA-256 of a ticket is stored."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection


def insert(conn: Connection, ticket_hash: str, session_id: str, *, lifetime_s: int) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO exact_login_ticket (ticket_hash, session_id, expires_at) "
            "VALUES (:hash, :sid, now() + make_interval(secs => :life))"
        ),
        {"hash": ticket_hash, "sid": session_id, "life": lifetime_s},
    )


def delete_expired(conn: Connection) -> int:
    """Drop tickets past their lifetime (used or not): an expired ticket can never be redeemed anyway."""
    return conn.execute(sa.text("DELETE FROM exact_login_ticket WHERE expires_at < now()")).rowcount or 0


def redeem(conn: Connection, ticket_hash: str, *, session_days: int) -> dict[str, Any] | None:
    """Spend the ticket (whatever becomes of it: a ticket is good for one attempt) and, when it was unused and
    unexpired, its session live (not revoked, not expired, younger than ``session_days``) and its user active,
    return the session id, the user id and the user's current password hash; else None. One statement.

    One-time even under concurrent redemption: a second UPDATE of the same row waits for the first to commit,
    then re-checks ``used_at IS NULL`` on the new row version (READ COMMITTED) and matches nothing.
    """
    row = (
        conn.execute(
            sa.text(
                "WITH spent AS ("
                "  UPDATE exact_login_ticket SET used_at = now() "
                "  WHERE ticket_hash = :hash AND used_at IS NULL AND expires_at > now() "
                "  RETURNING session_id"
                ") "
                "SELECT s.id AS session_id, u.id AS user_id, u.password "
                "FROM spent JOIN exact_session s ON s.id = spent.session_id JOIN auth_user u ON u.id = s.user_id "
                "WHERE s.revoked_at IS NULL AND s.expires_at > now() "
                "  AND s.created_at > now() - make_interval(days => :days) AND u.is_active"
            ),
            {"hash": ticket_hash, "days": session_days},
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None

"""SQL for exact_api_token: personal access tokens of the HTTP API (only their SHA-256 hashes are stored)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from db.users import USER_COLUMNS

_COLUMNS = "id, user_id, name, prefix, scopes, created_at, expires_at, last_used_at, revoked_at"
# last_used_at is written at most once a minute per token: a scripted client must not turn reads into writes.
LAST_USE_RESOLUTION_S = 60


def insert(
    conn: Connection, *, user_id: int, name: str, token_hash: str, prefix: str, scopes: list[str], expires_at: datetime
) -> dict[str, Any]:
    row = (
        conn.execute(
            sa.text(
                "INSERT INTO exact_api_token (user_id, name, token_hash, prefix, scopes, expires_at) "
                f"VALUES (:uid, :name, :hash, :prefix, :scopes, :exp) RETURNING {_COLUMNS}"
            ),
            {"uid": user_id, "name": name, "hash": token_hash, "prefix": prefix, "scopes": scopes, "exp": expires_at},
        )
        .mappings()
        .one()
    )
    return dict(row)


_TOKENS_LOCK = 0x45585450  # with the user id: serialises "count the live tokens, then add one" per user


def lock_user_tokens(conn: Connection, user_id: int) -> None:
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k, :u)"), {"k": _TOKENS_LOCK, "u": user_id})


def count_live(conn: Connection, user_id: int) -> int:
    return conn.execute(
        sa.text(
            "SELECT count(*) FROM exact_api_token WHERE user_id = :uid AND revoked_at IS NULL AND expires_at > now()"
        ),
        {"uid": user_id},
    ).scalar_one()


def list_for_user(conn: Connection, user_id: int, *, limit: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.text(
            f"SELECT {_COLUMNS} FROM exact_api_token WHERE user_id = :uid "
            "ORDER BY (revoked_at IS NULL AND expires_at > now()) DESC, created_at DESC, id DESC LIMIT :limit"
        ),
        {"uid": user_id, "limit": limit},
    ).mappings()
    return [dict(r) for r in rows]


def revoke(conn: Connection, user_id: int, token_id: int) -> bool:
    """Revoke one of the user's own tokens; False when it is not theirs (or already revoked)."""
    done = conn.execute(
        sa.text(
            "UPDATE exact_api_token SET revoked_at = now() WHERE id = :id AND user_id = :uid AND revoked_at IS NULL"
        ),
        {"id": token_id, "uid": user_id},
    )
    return done.rowcount == 1


def user_of_live_token(conn: Connection, token_hash: str) -> dict[str, Any] | None:
    """The token's user row (with ``token_id``, ``token_scopes``) for a live token, recording its use; one statement.

    Live: not revoked, not expired. Whether the user is active is for the caller to judge (it says why)."""
    from db.users import has_add_challenge_sql

    row = (
        conn.execute(
            sa.text(
                "WITH used AS ("
                "  UPDATE exact_api_token SET last_used_at = now() "
                "  WHERE token_hash = :hash AND revoked_at IS NULL AND expires_at > now() "
                f"   AND (last_used_at IS NULL OR last_used_at < now() - interval '{LAST_USE_RESOLUTION_S} seconds') "
                "  RETURNING id"
                ") "
                f"SELECT {', '.join('u.' + c.strip() for c in USER_COLUMNS.split(','))}, "
                f"{has_add_challenge_sql()} AS can_add_challenge, t.id AS token_id, t.scopes AS token_scopes "
                "FROM exact_api_token t JOIN auth_user u ON u.id = t.user_id "
                "WHERE t.token_hash = :hash AND t.revoked_at IS NULL AND t.expires_at > now()"
            ),
            {"hash": token_hash},
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def revoke_all_for_user(conn: Connection, user_id: int) -> int:
    """Revoke every live token of the user (an administrator reset the password: the account may be compromised)."""
    done = conn.execute(
        sa.text("UPDATE exact_api_token SET revoked_at = now() WHERE user_id = :uid AND revoked_at IS NULL"),
        {"uid": user_id},
    )
    return done.rowcount

"""SQL for auth_user, its groups/permissions and our exact_session table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

USER_COLUMNS = (
    "id, username, password, first_name, last_name, email, is_staff, is_superuser, is_active, last_login, date_joined"
)

# Organisers: staff, superusers, or anyone holding api.add_challenge directly or through a group.
_HAS_ADD_CHALLENGE = """
EXISTS (
    SELECT 1 FROM auth_permission p
    JOIN django_content_type ct ON ct.id = p.content_type_id
    WHERE ct.app_label = 'api' AND p.codename = 'add_challenge'
      AND (
        p.id IN (SELECT permission_id FROM auth_user_user_permissions WHERE user_id = u.id)
        OR p.id IN (
            SELECT gp.permission_id FROM auth_group_permissions gp
            JOIN auth_user_groups ug ON ug.group_id = gp.group_id
            WHERE ug.user_id = u.id
        )
      )
)
"""


# An administrator reset the password and the user has not chosen a new one yet: the reset row still matches the
# stored hash (any other change of the password, e.g. in Django's admin, ends the requirement by itself).
_PENDING_RESET_SQL = """
EXISTS (
    SELECT 1 FROM exact_password_reset r
    WHERE r.user_id = u.id AND r.hash_sha256 = encode(sha256(convert_to(u.password, 'UTF8')), 'hex')
)
"""


def has_add_challenge_sql() -> str:
    """SQL that is true for the user row aliased ``u`` who may add challenges (for queries joining auth_user)."""
    return _HAS_ADD_CHALLENGE


def _select_users(where: str) -> sa.TextClause:
    return sa.text(
        f"SELECT {USER_COLUMNS}, {_HAS_ADD_CHALLENGE} AS can_add_challenge, "
        f"{_PENDING_RESET_SQL} AS must_change_password FROM auth_user u WHERE {where}"
    )


def get_by_id(conn: Connection, user_id: int, *, for_update: bool = False) -> dict[str, Any] | None:
    query = _select_users("u.id = :id")
    if for_update:
        query = sa.text(str(query) + " FOR UPDATE OF u")
    row = conn.execute(query, {"id": user_id}).mappings().first()
    return dict(row) if row else None


def get_by_username(conn: Connection, username: str) -> dict[str, Any] | None:
    row = conn.execute(_select_users("u.username = :username"), {"username": username}).mappings().first()
    return dict(row) if row else None


def lock_username(conn: Connection, username: str) -> None:
    """Serialise concurrent registrations of one name (any case) until the transaction ends."""
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(lower(:u)))"), {"u": username})


def username_taken(conn: Connection, username: str) -> bool:
    """Case-insensitive, so nobody can register 'Alice' beside 'alice' to impersonate them."""
    query = sa.text("SELECT 1 FROM auth_user WHERE lower(username) = lower(:username)")
    return conn.execute(query, {"username": username}).first() is not None


def insert_user(
    conn: Connection,
    *,
    username: str,
    password_hash: str,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
    is_staff: bool = False,
    is_superuser: bool = False,
    is_active: bool = True,
    date_joined: datetime | None = None,
) -> int:
    query = sa.text(
        """
        INSERT INTO auth_user (password, last_login, is_superuser, username, first_name, last_name, email,
                               is_staff, is_active, date_joined)
        VALUES (:password, NULL, :is_superuser, :username, :first_name, :last_name, :email,
                :is_staff, :is_active, COALESCE(:date_joined, now()))
        RETURNING id
        """
    )
    return conn.execute(
        query,
        {
            "password": password_hash,
            "is_superuser": is_superuser,
            "username": username,
            "first_name": first_name,
            "last_name": last_name,
            "email": email,
            "is_staff": is_staff,
            "is_active": is_active,
            "date_joined": date_joined,
        },
    ).scalar_one()


def set_password_hash(conn: Connection, user_id: int, password_hash: str) -> None:
    conn.execute(sa.text("UPDATE auth_user SET password = :p WHERE id = :id"), {"p": password_hash, "id": user_id})


def require_password_change(conn: Connection, user_id: int, *, password_hash: str, set_by: int) -> None:
    """Record that ``password_hash`` (a temporary password) must be replaced at the user's next login."""
    conn.execute(
        sa.text(
            """
            INSERT INTO exact_password_reset (user_id, set_at, set_by, hash_sha256)
            VALUES (:u, now(), :by, encode(sha256(convert_to(:p, 'UTF8')), 'hex'))
            ON CONFLICT (user_id) DO UPDATE SET set_at = EXCLUDED.set_at, set_by = EXCLUDED.set_by,
                hash_sha256 = EXCLUDED.hash_sha256
            """
        ),
        {"u": user_id, "by": set_by, "p": password_hash},
    )


def clear_password_change(conn: Connection, user_id: int) -> None:
    conn.execute(sa.text("DELETE FROM exact_password_reset WHERE user_id = :u"), {"u": user_id})


def touch_last_login(conn: Connection, user_id: int) -> None:
    conn.execute(sa.text("UPDATE auth_user SET last_login = now() WHERE id = :id"), {"id": user_id})


def update_profile(conn: Connection, user_id: int, *, first_name: str, last_name: str, email: str) -> None:
    conn.execute(
        sa.text("UPDATE auth_user SET first_name = :f, last_name = :l, email = :e WHERE id = :id"),
        {"f": first_name, "l": last_name, "e": email, "id": user_id},
    )


def update_flags(conn: Connection, user_id: int, *, is_active: bool, is_staff: bool, is_superuser: bool) -> None:
    conn.execute(
        sa.text("UPDATE auth_user SET is_active = :a, is_staff = :st, is_superuser = :su WHERE id = :id"),
        {"a": is_active, "st": is_staff, "su": is_superuser, "id": user_id},
    )


# Administrators find a user by any part of the username, e-mail or full name, in any case.
_USER_SEARCH = """
(:search = '' OR u.username ILIKE :pattern OR u.email ILIKE :pattern
 OR (u.first_name || ' ' || u.last_name) ILIKE :pattern)
"""


def _like_pattern(text: str) -> str:
    """``text`` matched literally anywhere: its own % _ and \\ are escaped (ILIKE's default escape is \\)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def list_users(conn: Connection, *, search: str = "", limit: int, offset: int = 0) -> list[dict[str, Any]]:
    """One page of users matching ``search``, in id order (the order they joined)."""
    # The page's ids first, so the permission test below runs for the page's rows only, not for every row the
    # offset skips.
    query = sa.text(
        f"""
        SELECT {USER_COLUMNS}, {_HAS_ADD_CHALLENGE} AS can_add_challenge,
               {_PENDING_RESET_SQL} AS must_change_password
        FROM auth_user u
        WHERE u.id IN (
            SELECT u.id FROM auth_user u WHERE {_USER_SEARCH} ORDER BY u.id LIMIT :limit OFFSET :offset
        )
        ORDER BY u.id
        """
    )
    params = {"search": search, "pattern": _like_pattern(search), "limit": limit, "offset": offset}
    return [dict(row) for row in conn.execute(query, params).mappings()]


def count_matching_users(conn: Connection, *, search: str = "") -> int:
    query = sa.text(f"SELECT count(*) FROM auth_user u WHERE {_USER_SEARCH}")
    return conn.execute(query, {"search": search, "pattern": _like_pattern(search)}).scalar_one()


def count_active_superusers(conn: Connection) -> int:
    query = sa.text("SELECT count(*) FROM auth_user WHERE is_superuser AND is_active")
    return conn.execute(query).scalar_one()


def any_superuser(conn: Connection) -> bool:
    """Cheaper than counting: asked on every page view (is this still the first run?)."""
    return conn.execute(sa.text("SELECT EXISTS (SELECT 1 FROM auth_user WHERE is_superuser)")).scalar_one()


def count_users(conn: Connection) -> int:
    return conn.execute(sa.text("SELECT count(*) FROM auth_user")).scalar_one()


# --- sessions (exact_session) -------------------------------------------------------------------------------


def insert_session(conn: Connection, session_id: str, user_id: int, expires_at: datetime) -> None:
    conn.execute(
        sa.text("INSERT INTO exact_session (id, user_id, expires_at) VALUES (:id, :uid, :exp)"),
        {"id": session_id, "uid": user_id, "exp": expires_at},
    )


def get_live_session_user(conn: Connection, session_id: str) -> dict[str, Any] | None:
    """The user of a session that is neither revoked nor expired (one statement: it runs on every page view)."""
    live = "u.id = (SELECT user_id FROM exact_session WHERE id = :id AND revoked_at IS NULL AND expires_at > now())"
    row = conn.execute(_select_users(live), {"id": session_id}).mappings().first()
    return dict(row) if row else None


def revoke_session(conn: Connection, session_id: str) -> None:
    conn.execute(
        sa.text("UPDATE exact_session SET revoked_at = now() WHERE id = :id AND revoked_at IS NULL"),
        {"id": session_id},
    )


def revoke_user_sessions(conn: Connection, user_id: int, *, except_session: str | None = None) -> None:
    conn.execute(
        sa.text(
            "UPDATE exact_session SET revoked_at = now() "
            "WHERE user_id = :uid AND revoked_at IS NULL AND id IS DISTINCT FROM :keep"
        ),
        {"uid": user_id, "keep": except_session},
    )


def delete_expired_sessions(conn: Connection) -> int:
    result = conn.execute(sa.text("DELETE FROM exact_session WHERE expires_at < now() - interval '1 day'"))
    return result.rowcount or 0

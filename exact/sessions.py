"""Login sessions that survive a browser refresh: a signed, expiring cookie naming a row in exact_session.

The cookie carries ``{sid, uid, pwd}`` signed with the secret key (itsdangerous, timestamped). It is honoured
only while the signature and age check out, the row exists un-revoked and unexpired, the user is active and the
password fingerprint still matches: so logout, a password change and deactivation all revoke it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import UTC, datetime, timedelta

from itsdangerous import BadSignature, URLSafeTimedSerializer

from db import users as users_sql
from db.database import Database
from exact.accounts import User

log = logging.getLogger(__name__)

COOKIE_NAME = "exact_session"
_SALT = "exact.session.v1"


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=_SALT)


def _password_fingerprint(secret_key: str, password_hash: str) -> str:
    # Like Django's session auth hash: changes whenever the password does, reveals nothing about it.
    return hmac.new(secret_key.encode(), password_hash.encode(), hashlib.sha256).hexdigest()[:32]


def start_session(db: Database, user_id: int, *, secret_key: str, days: int) -> tuple[str, str]:
    """Create a session row for the user and return ``(session_id, cookie_value)``."""
    session_id = secrets.token_urlsafe(32)
    expires_at = datetime.now(UTC) + timedelta(days=days)
    with db.transaction() as conn:
        row = users_sql.get_by_id(conn, user_id)
        if row is None or not row["is_active"]:
            raise ValueError("cannot start a session for a missing or inactive user")
        users_sql.insert_session(conn, session_id, user_id, expires_at)
        users_sql.delete_expired_sessions(conn)
    token = _serializer(secret_key).dumps(
        {"sid": session_id, "uid": user_id, "pwd": _password_fingerprint(secret_key, row["password"])}
    )
    return session_id, token


def read_session_id(cookie_value: str | None, *, secret_key: str, days: int) -> str | None:
    """The session id of a well-signed, unexpired cookie, without touching the database."""
    payload = _load(cookie_value, secret_key=secret_key, days=days)
    return payload["sid"] if payload else None


def _load(cookie_value: str | None, *, secret_key: str, days: int) -> dict | None:
    if not cookie_value or len(cookie_value) > 1024:
        return None
    try:
        payload = _serializer(secret_key).loads(cookie_value, max_age=days * 86400)
    except BadSignature:  # also covers SignatureExpired
        return None
    if not isinstance(payload, dict) or not {"sid", "uid", "pwd"} <= payload.keys():
        return None
    return payload


def resolve_session(db: Database, cookie_value: str | None, *, secret_key: str, days: int) -> tuple[str, User] | None:
    """``(session_id, user)`` for a cookie that is still honoured, else None."""
    payload = _load(cookie_value, secret_key=secret_key, days=days)
    if payload is None:
        return None
    with db.connect() as conn:
        row = users_sql.get_live_session_user(conn, str(payload["sid"]))
    if row is None or row["id"] != payload["uid"] or not row["is_active"]:
        return None
    if not hmac.compare_digest(str(payload["pwd"]), _password_fingerprint(secret_key, row["password"])):
        return None
    return str(payload["sid"]), User.from_row(row)


def check_live(
    db: Database, session_id: str, user_id: int, *, secret_key: str, fingerprint: str | None
) -> tuple[User, str] | None:
    """For a browser tab that is already logged in: ``(user, password fingerprint)`` while the session row is
    live, the user active and (when ``fingerprint`` is given) the password unchanged, e.g. through Django."""
    with db.connect() as conn:
        row = users_sql.get_live_session_user(conn, session_id)
    if row is None or row["id"] != user_id or not row["is_active"]:
        return None
    current = _password_fingerprint(secret_key, row["password"])
    if fingerprint is not None and not hmac.compare_digest(fingerprint, current):
        return None
    return User.from_row(row), current


def end_session(db: Database, session_id: str | None) -> None:
    if not session_id:
        return
    with db.transaction() as conn:
        users_sql.revoke_session(conn, session_id)

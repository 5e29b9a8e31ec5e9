"""Login sessions that survive a browser refresh: a signed, expiring cookie naming a row in exact_session.

The cookie carries ``{sid, uid, pwd}`` signed with the secret key (itsdangerous, timestamped). It is honoured
only while the signature and age check out, the row exists un-revoked and unexpired, the user is active and the
password fingerprint still matches: so logout, a password change and deactivation all revoke it.

The browser gets the cookie from the server (HttpOnly): the page that logged the user in hands the browser a
one-time login ticket (``issue_ticket``), which the browser posts to /auth/session; that route redeems it
(``redeem_ticket``) for the cookie value and sets it (web/auth_routes.py).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import UTC, datetime, timedelta

from itsdangerous import BadSignature, URLSafeTimedSerializer

from db import login_tickets as tickets_sql
from db import users as users_sql
from db.database import Database
from exact.accounts import User

log = logging.getLogger(__name__)

COOKIE_NAME = "exact_session"
_SALT = "exact.session.v1"
TICKET_LIFETIME_S = 60  # the page posts the ticket as soon as it arrives; a minute covers a slow connection


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
    return session_id, _sign_cookie(secret_key, session_id, user_id, row["password"])


def _sign_cookie(secret_key: str, session_id: str, user_id: int, password_hash: str) -> str:
    """The cookie value for an existing session row (signed and timestamped now)."""
    return _serializer(secret_key).dumps(
        {"sid": session_id, "uid": user_id, "pwd": _password_fingerprint(secret_key, password_hash)}
    )


def _ticket_hash(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()


def _password_tag(token: str, password_hash: str) -> str:
    # Binds a ticket to the password hash at issue, keyed by the ticket's own random part: it tells its holder
    # nothing about the hash, and only the stored SHA-256 of the whole ticket makes it redeemable.
    return hmac.new(token.encode(), password_hash.encode(), hashlib.sha256).hexdigest()[:32]


def issue_ticket(db: Database, session_id: str) -> str:
    """A one-time ticket, good for ``TICKET_LIFETIME_S`` seconds, that ``redeem_ticket`` turns into the cookie
    of this session: ``<32 random bytes, URL-safe base64>.<tag of the user's current password hash>``. Only its
    SHA-256 is stored; expired tickets are deleted on the way."""
    token = secrets.token_urlsafe(32)
    with db.transaction() as conn:
        row = users_sql.get_live_session_user(conn, session_id)
        if row is None:
            raise ValueError("cannot issue a login ticket for a session that is not live")
        ticket = f"{token}.{_password_tag(token, row['password'])}"
        tickets_sql.delete_expired(conn)
        tickets_sql.insert(conn, _ticket_hash(ticket), session_id, lifetime_s=TICKET_LIFETIME_S)
    return ticket


def redeem_ticket(db: Database, ticket: str | None, *, secret_key: str, days: int) -> str | None:
    """The cookie value for the ticket's session, or None. The ticket is spent by the first attempt (even a
    failing one); it yields a cookie only while unexpired, its session live, its user active and the password
    unchanged since the ticket was issued. The password hash is read at redemption: a change in the meantime
    (even through Django, which revokes no session row) ends this login as it ends every other."""
    if not ticket or len(ticket) > 256:
        return None
    token, _, tag = ticket.partition(".")
    with db.transaction() as conn:
        row = tickets_sql.redeem(conn, _ticket_hash(ticket), session_days=days)
    if row is None or not hmac.compare_digest(tag, _password_tag(token, row["password"])):
        return None
    return _sign_cookie(secret_key, str(row["session_id"]), int(row["user_id"]), row["password"])


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

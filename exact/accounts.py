"""Accounts: log in, register, profile, password, user administration and the first administrator.

Every function that changes something takes the acting user's id and re-reads that user from the database,
so a role or an is_active flag changed elsewhere (Django admin, another session) takes effect immediately.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from db import api_tokens as api_tokens_sql
from db import users as users_sql
from db.database import Database
from exact import passwords
from exact.errors import AuthenticationFailed, NotFound, PermissionDenied, ValidationError
from exact.paging import Page
from exact.password_policy import check_password_policy
from exact.throttle import Throttle
from exact.validation import clean_email, clean_text, clean_username

log = logging.getLogger(__name__)

_FIRST_ADMIN_LOCK_KEY = 0x45584144  # serialises "create the first administrator"


@dataclass(frozen=True)
class User:
    id: int
    username: str
    first_name: str
    last_name: str
    email: str
    is_staff: bool
    is_superuser: bool
    is_active: bool
    last_login: datetime | None
    date_joined: datetime
    can_add_challenge: bool = False
    must_change_password: bool = False  # an administrator reset the password; a new one must be chosen first

    @property
    def is_organiser(self) -> bool:
        return self.is_active and (self.is_staff or self.is_superuser or self.can_add_challenge)

    @property
    def can_submit(self) -> bool:
        return self.is_active

    @property
    def is_admin(self) -> bool:
        return self.is_active and self.is_superuser

    @property
    def role(self) -> str:
        if self.is_admin:
            return "administrator"
        if self.is_organiser:
            return "organiser"
        return "participant"

    @property
    def display_name(self) -> str:
        full = f"{self.first_name} {self.last_name}".strip()
        return full or self.username

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> User:
        return cls(
            id=row["id"],
            username=row["username"],
            first_name=row["first_name"],
            last_name=row["last_name"],
            email=row["email"],
            is_staff=row["is_staff"],
            is_superuser=row["is_superuser"],
            is_active=row["is_active"],
            last_login=row["last_login"],
            date_joined=row["date_joined"],
            can_add_challenge=bool(row.get("can_add_challenge")),
            must_change_password=bool(row.get("must_change_password")),
        )


def load_active_user(conn: Connection, user_id: int | None) -> User | None:
    """The user as the database has them now, or None when missing or deactivated."""
    if user_id is None:
        return None
    row = users_sql.get_by_id(conn, user_id)
    if row is None or not row["is_active"]:
        return None
    return User.from_row(row)


def require_user(conn: Connection, actor_id: int | None, action: str) -> User:
    user = load_active_user(conn, actor_id)
    if user is None:
        raise PermissionDenied(f"Please log in to {action}.")
    return user


def get_user(db: Database, user_id: int) -> User | None:
    with db.connect() as conn:
        return load_active_user(conn, user_id)


# --- logging in -----------------------------------------------------------------------------------------------


def authenticate(
    db: Database, username: str, password: str, *, client: str | None = None, throttle: Throttle | None = None
) -> User:
    """Check credentials; unknown user, wrong password and inactive account all fail the same way, as slowly.

    Repeated failures for the account or from the client (its network address) slow down and then lock
    (exact.throttle); a lock is checked, and a slot reserved atomically, before the password is looked at.
    """
    username = (username or "").strip()  # matched exactly, as Django's login does
    password = password or ""
    throttle = throttle or Throttle(db)
    # Reserved before the password is read; an unexpected error leaves the slot counted as a failure (conservative).
    attempt = throttle.reserve(username, client)
    try:
        user = _check_credentials(db, username, password)
    except AuthenticationFailed:
        throttle.failed(attempt)
        raise
    throttle.succeeded(attempt)
    return user


def _check_credentials(db: Database, username: str, password: str) -> User:
    # PBKDF2 (about half a second) runs with no transaction and no pooled connection held: a burst of logins must
    # not pin the pool or keep row locks. So: read, hash with nothing open, then a short transaction that writes
    # only if the row still holds the hash that was checked.
    # PostgreSQL text cannot hold NUL, so such a name exists nowhere (and must not reach the driver).
    plausible = username and len(username) <= 150 and "\x00" not in username
    password = password.replace("\x00", "\ufffd")
    row = None
    if plausible:
        with db.connect() as conn:
            row = users_sql.get_by_username(conn, username)
    db.release_reads()  # PBKDF2 next: hand a page run's read connection back while it runs
    if row is None:
        passwords.burn_time_like_check(password)
        raise AuthenticationFailed()
    checked_hash = row["password"]
    if not passwords.check_password(password, checked_hash) or not row["is_active"]:
        raise AuthenticationFailed()
    # Like Django: upgrade old work factors on a successful login.
    upgraded_hash = passwords.make_password(password) if passwords.needs_rehash(checked_hash) else None
    with db.transaction() as conn:
        current = users_sql.get_by_id(conn, row["id"], for_update=True)
        if current is None or not _unchanged_since_check(current, username, checked_hash):
            # Changed while the password was being checked (new password, deactivated, renamed, deleted):
            # the check no longer applies to the account as it is now.
            raise AuthenticationFailed()
        if upgraded_hash is not None:
            users_sql.set_password_hash(conn, current["id"], upgraded_hash)
        users_sql.touch_last_login(conn, current["id"])
        row = users_sql.get_by_id(conn, current["id"])
    return User.from_row(row)


def _unchanged_since_check(current: dict[str, Any], username: str, checked_hash: str) -> bool:
    return (
        current["is_active"]
        and current["username"] == username
        and hmac.compare_digest(current["password"].encode(), checked_hash.encode())
    )


# --- registration and profile -----------------------------------------------------------------------------------


def register(
    db: Database,
    *,
    username: str,
    password: str,
    password_again: str,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
) -> User:
    username = clean_username(username)
    email = clean_email(email)
    first_name = clean_text(first_name, field="First name", max_length=150, required=False)
    last_name = clean_text(last_name, field="Last name", max_length=150, required=False)
    if password != password_again:
        raise ValidationError("The two passwords do not match.")
    check_password_policy(password, username=username)
    db.release_reads()
    password_hash = passwords.make_password(password)
    try:
        with db.transaction() as conn:
            users_sql.lock_username(conn, username)
            if users_sql.username_taken(conn, username):
                raise ValidationError(f"The username {username!r} is already taken.")
            user_id = users_sql.insert_user(
                conn,
                username=username,
                password_hash=password_hash,
                email=email,
                first_name=first_name,
                last_name=last_name,
            )
            row = users_sql.get_by_id(conn, user_id)
    except IntegrityError:
        # Two people registering the same name at the same moment: the unique index decides.
        raise ValidationError(f"The username {username!r} is already taken.") from None
    return User.from_row(row)


def update_profile(db: Database, actor_id: int | None, *, first_name: str, last_name: str, email: str) -> User:
    first_name = clean_text(first_name, field="First name", max_length=150, required=False)
    last_name = clean_text(last_name, field="Last name", max_length=150, required=False)
    email = clean_email(email)
    with db.transaction() as conn:
        user = require_user(conn, actor_id, "change your profile")
        users_sql.update_profile(conn, user.id, first_name=first_name, last_name=last_name, email=email)
        return User.from_row(users_sql.get_by_id(conn, user.id))


def change_password(
    db: Database,
    actor_id: int | None,
    *,
    current_password: str,
    new_password: str,
    new_password_again: str,
    keep_session: str | None = None,
) -> None:
    """Change the password and revoke every other session of the user (the current one may be kept).

    Both PBKDF2 computations (checking the current password, hashing the new one) run with nothing open; the
    write happens in a short transaction only if the stored hash is still the one that was checked.
    """
    with db.connect() as conn:
        user = require_user(conn, actor_id, "change your password")
        checked_hash = users_sql.get_by_id(conn, user.id)["password"]
    db.release_reads()
    if not passwords.check_password(current_password or "", checked_hash):
        raise ValidationError("Your current password is not correct.")
    if new_password != new_password_again:
        raise ValidationError("The two new passwords do not match.")
    check_password_policy(new_password, username=user.username)
    new_hash = passwords.make_password(new_password)
    with db.transaction() as conn:
        user = require_user(conn, actor_id, "change your password")
        row = users_sql.get_by_id(conn, user.id, for_update=True)
        if not hmac.compare_digest(row["password"].encode(), checked_hash.encode()):
            raise ValidationError(
                "Your password was changed meanwhile (perhaps in another window); nothing was saved. "
                "Please try again with the current password."
            )
        users_sql.set_password_hash(conn, user.id, new_hash)
        users_sql.clear_password_change(conn, user.id)  # a reset's temporary password is replaced
        users_sql.revoke_user_sessions(conn, user.id, except_session=keep_session)


# --- administration ---------------------------------------------------------------------------------------------


def _require_admin(conn: Connection, actor_id: int | None) -> User:
    user = require_user(conn, actor_id, "administer users")
    if not user.is_admin:
        raise PermissionDenied("Only administrators may administer users.")
    return user


USERS_PAGE_SIZE = 50
MAX_USERS_PAGE_SIZE = 200
_MAX_SEARCH_LENGTH = 200


def _storable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def list_users(
    db: Database, actor_id: int | None, *, search: str = "", limit: int = USERS_PAGE_SIZE, offset: int = 0
) -> Page[User]:
    """A page of the users whose username, e-mail or name contains ``search`` (any case), in the order they joined."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_USERS_PAGE_SIZE:
        raise ValidationError(f"A page holds 1 to {MAX_USERS_PAGE_SIZE} users.")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValidationError("The page offset must be a whole number, 0 or more.")
    search = (search or "").strip()[:_MAX_SEARCH_LENGTH]
    with db.connect() as conn:
        _require_admin(conn, actor_id)
        if "\x00" in search or not _storable(search):
            # No stored text can contain NUL or lone surrogates (PostgreSQL refuses them), so nothing matches.
            return Page(items=[], total=0, limit=limit, offset=offset)
        rows = users_sql.list_users(conn, search=search, limit=limit, offset=offset)
        total = users_sql.count_matching_users(conn, search=search)
    return Page(items=[User.from_row(row) for row in rows], total=total, limit=limit, offset=offset)


def set_user_flags(
    db: Database, actor_id: int | None, user_id: int, *, is_active: bool, is_staff: bool, is_superuser: bool
) -> User:
    with db.transaction() as conn:
        admin = _require_admin(conn, actor_id)
        target = users_sql.get_by_id(conn, user_id, for_update=True)
        if target is None:
            raise NotFound("No such user.")
        if target["id"] == admin.id and (not is_active or not is_superuser):
            raise ValidationError("You cannot deactivate yourself or remove your own administrator rights.")
        users_sql.update_flags(conn, user_id, is_active=is_active, is_staff=is_staff, is_superuser=is_superuser)
        if not is_active:
            users_sql.revoke_user_sessions(conn, user_id)
        return User.from_row(users_sql.get_by_id(conn, user_id))


@dataclass(frozen=True)
class TemporaryPassword:
    """What an administrator's password reset hands out: shown once, never stored anywhere but as its hash."""

    user_id: int
    username: str
    password: str


TEMPORARY_PASSWORD_BYTES = 12  # 16 URL-safe characters, 96 random bits


def reset_password(db: Database, actor_id: int | None, user_id: int) -> TemporaryPassword:
    """Give ``user_id`` a random temporary password (returned once, for the administrator to pass on), end all
    their sessions, and require a new password at their next login (exact_password_reset).

    The temporary password is an ordinary Django hash, so it also works wherever Django checks passwords. Refused
    for yourself: change your own password on your profile page, with your current one.
    """
    with db.connect() as conn:
        admin = _require_admin(conn, actor_id)
        valid_id = isinstance(user_id, int) and not isinstance(user_id, bool)
        target = users_sql.get_by_id(conn, user_id) if valid_id else None
        if target is None:
            raise NotFound("No such user.")
        if target["id"] == admin.id:
            raise ValidationError("Change your own password on your profile page, with your current password.")
    db.release_reads()
    password = secrets.token_urlsafe(TEMPORARY_PASSWORD_BYTES)
    password_hash = passwords.make_password(password)  # PBKDF2 with nothing open
    with db.transaction() as conn:
        admin = _require_admin(conn, actor_id)  # re-checked: the rights may have gone while hashing
        target = users_sql.get_by_id(conn, user_id, for_update=True)
        if target is None:
            raise NotFound("No such user.")
        users_sql.set_password_hash(conn, target["id"], password_hash)
        users_sql.require_password_change(conn, target["id"], password_hash=password_hash, set_by=admin.id)
        users_sql.revoke_user_sessions(conn, target["id"])
        api_tokens_sql.revoke_all_for_user(conn, target["id"])  # a reset usually means the account was at risk
    log.info("administrator %s reset the password of user %s", admin.id, target["id"])
    return TemporaryPassword(user_id=target["id"], username=target["username"], password=password)


def create_user(
    db: Database,
    *,
    username: str,
    password: str,
    email: str = "",
    is_staff: bool = False,
    is_superuser: bool = False,
    enforce_policy: bool = True,
) -> User:
    """For the command line and the demo (trusted callers); the web uses ``register`` and ``create_first_admin``."""
    username = clean_username(username)
    email = clean_email(email)
    if enforce_policy:
        check_password_policy(password, username=username)
    db.release_reads()
    password_hash = passwords.make_password(password)  # before the transaction: no connection held while hashing
    try:
        with db.transaction() as conn:
            users_sql.lock_username(conn, username)
            if users_sql.username_taken(conn, username):
                raise ValidationError(f"The username {username!r} is already taken.")
            user_id = users_sql.insert_user(
                conn,
                username=username,
                password_hash=password_hash,
                email=email,
                is_staff=is_staff or is_superuser,
                is_superuser=is_superuser,
            )
            return User.from_row(users_sql.get_by_id(conn, user_id))
    except IntegrityError:
        raise ValidationError(f"The username {username!r} is already taken.") from None


# --- first run --------------------------------------------------------------------------------------------------

# The set-up token lives only in this server process's memory: nothing on disk to protect or to clean up once
# set-up is done, and a restart simply prints a fresh one. A client can only offer a guess to compare.
_setup_token: str | None = None
_setup_token_guard = threading.Lock()


class SetupTokenRefused(PermissionDenied):
    pass


def needs_first_admin(db: Database) -> bool:
    with db.connect() as conn:
        return not users_sql.any_superuser(conn)


def setup_token() -> str:
    """This process's one-time set-up token, created on first use (the UI prints it on the server's console)."""
    global _setup_token
    with _setup_token_guard:
        if _setup_token is None:
            _setup_token = secrets.token_urlsafe(32)
        return _setup_token


def _discard_setup_token() -> None:
    # Used once: should set-up ever reopen (every superuser deleted in Django), a new token is printed.
    global _setup_token
    with _setup_token_guard:
        _setup_token = None


def _require_setup_token(offered: str | None) -> None:
    offered = (offered or "").strip()
    if not offered:
        raise SetupTokenRefused(
            "Enter the set-up token. The server printed it on its console and in its log (a line starting "
            "'Exact set-up token:'); the link on that line fills it in."
        )
    with _setup_token_guard:
        expected = _setup_token
    if expected is None or not hmac.compare_digest(offered.encode(), expected.encode()):
        raise SetupTokenRefused(
            "That set-up token is not valid. Copy the latest one from the server's console or log "
            "(a line starting 'Exact set-up token:'); each server start prints a new one."
        )


def create_first_admin(
    db: Database, *, username: str, password: str, password_again: str, email: str = "", setup_token: str = ""
) -> User:
    """Create the first superuser. Needs this process's set-up token (see ``setup_token``), so only someone who
    can read the server's console or log can claim the administrator; refused for good once any superuser exists
    (checked under a lock)."""
    _require_setup_token(setup_token)  # first: without the token nothing else is looked at
    username = clean_username(username)
    email = clean_email(email)
    if password != password_again:
        raise ValidationError("The two passwords do not match.")
    check_password_policy(password, username=username)
    db.release_reads()
    password_hash = passwords.make_password(password)
    with db.transaction() as conn:
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _FIRST_ADMIN_LOCK_KEY})
        if users_sql.any_superuser(conn):
            raise PermissionDenied("An administrator already exists; set-up is closed.")
        users_sql.lock_username(conn, username)
        if users_sql.username_taken(conn, username):
            raise ValidationError(f"The username {username!r} is already taken.")
        user_id = users_sql.insert_user(
            conn, username=username, password_hash=password_hash, email=email, is_staff=True, is_superuser=True
        )
        admin = User.from_row(users_sql.get_by_id(conn, user_id))
    _discard_setup_token()
    return admin

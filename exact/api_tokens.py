"""Personal access tokens for the HTTP API: created on the profile page, shown once, stored only as a hash.

A token is ``exact_`` followed by 43 random URL-safe characters (256 bits); the database keeps its SHA-256 (a
fast hash is right here: the token is random, not a password that could be guessed from a word list) and its
first characters, so the profile page can tell tokens apart. Scopes: ``read`` (everything a logged-in user may
see) and ``submit`` (scores and attribution uploads). A token works only while it is unrevoked and unexpired and
its user is active, and it always acts as its own user: the API never takes a user name or id from the client.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from db import api_tokens as tokens_sql
from db.database import Database
from exact.accounts import User, require_user
from exact.errors import InvalidToken, PermissionDenied, ValidationError
from exact.validation import clean_text

TOKEN_PREFIX = "exact_"  # noqa: S105 - the public marker of a token, not a secret
SCOPES = ("read", "submit")
EXPIRY_DAYS = (7, 30, 90, 365)  # offered on the profile page; a token never lives longer than a year
MAX_LIVE_TOKENS = 20  # per user
_SHOWN_PREFIX_LENGTH = 12  # "exact_" and six random characters: enough to recognise a token, useless to guess it
_TOKEN_MAX_LENGTH = 200


@dataclass(frozen=True)
class ApiToken:
    """A token as its owner sees it on the profile page: never the token itself."""

    id: int
    name: str
    prefix: str
    scopes: tuple[str, ...]
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def status(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= datetime.now(UTC):
            return "expired"
        return "active"

    @classmethod
    def from_row(cls, row: dict) -> ApiToken:
        return cls(
            id=row["id"],
            name=row["name"],
            prefix=row["prefix"],
            scopes=tuple(row["scopes"]),
            created_at=row["created_at"],
            expires_at=row["expires_at"],
            last_used_at=row["last_used_at"],
            revoked_at=row["revoked_at"],
        )


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    secret: str  # the whole token: shown once, then only its hash exists


@dataclass(frozen=True)
class TokenUser:
    """Who an API request acts as, and what its token allows."""

    user: User
    token_id: int
    scopes: frozenset[str]

    def require(self, scope: str) -> User:
        if scope not in self.scopes:
            raise PermissionDenied(f"This token lacks the {scope!r} scope; create one with it on your profile page.")
        return self.user


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def clean_scopes(scopes: list[str] | tuple[str, ...]) -> list[str]:
    chosen = [s for s in SCOPES if s in set(scopes)]
    unknown = set(scopes) - set(SCOPES)
    if unknown:
        raise ValidationError(f"Unknown scope {sorted(unknown)[0]!r}: choose from {', '.join(SCOPES)}.")
    if not chosen:
        raise ValidationError("Choose at least one scope (read, submit).")
    return chosen


def create_token(
    db: Database, actor_id: int | None, *, name: str, scopes: list[str] | tuple[str, ...], days: int
) -> NewToken:
    """A new token for the logged-in user; the returned secret is the only copy there will ever be."""
    name = clean_text(name, field="Token name", max_length=100)
    chosen = clean_scopes(scopes)
    if isinstance(days, bool) or days not in EXPIRY_DAYS:
        raise ValidationError(f"A token expires after {', '.join(map(str, EXPIRY_DAYS))} days.")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with db.transaction() as conn:
        user = require_user(conn, actor_id, "create an API token")
        if user.must_change_password:
            raise ValidationError("Choose a new password first: an administrator reset yours.")
        tokens_sql.lock_user_tokens(conn, user.id)  # two creates at once must not both pass the count
        if tokens_sql.count_live(conn, user.id) >= MAX_LIVE_TOKENS:
            raise ValidationError(f"You already have {MAX_LIVE_TOKENS} active tokens: revoke one first.")
        row = tokens_sql.insert(
            conn,
            user_id=user.id,
            name=name,
            token_hash=hash_token(secret),
            prefix=secret[:_SHOWN_PREFIX_LENGTH],
            scopes=chosen,
            expires_at=datetime.now(UTC) + timedelta(days=days),
        )
    return NewToken(ApiToken.from_row(row), secret)


def list_tokens(db: Database, actor_id: int | None) -> list[ApiToken]:
    """The user's tokens, the live ones first (at most MAX_LIVE_TOKENS of them, so all are listed), then the newest
    revoked or expired ones."""
    with db.connect() as conn:
        user = require_user(conn, actor_id, "see your API tokens")
        rows = tokens_sql.list_for_user(conn, user.id, limit=MAX_LIVE_TOKENS * 3)
    return [ApiToken.from_row(r) for r in rows]


def revoke_token(db: Database, actor_id: int | None, token_id: int) -> None:
    with db.transaction() as conn:
        user = require_user(conn, actor_id, "revoke an API token")
        if not tokens_sql.revoke(conn, user.id, token_id):
            raise ValidationError("No such active token of yours.")


def authenticate(db: Database, secret: str | None) -> TokenUser:
    """The user a bearer token acts as. Raises InvalidToken for anything but a live token of an active
    user (with one message whatever the reason, so a client cannot probe which tokens once existed)."""
    if not secret or len(secret) > _TOKEN_MAX_LENGTH or not secret.startswith(TOKEN_PREFIX):
        raise InvalidToken()
    with db.transaction() as conn:
        row = tokens_sql.user_of_live_token(conn, hash_token(secret))
    if row is None or not row["is_active"]:
        raise InvalidToken()
    return TokenUser(User.from_row(row), int(row["token_id"]), frozenset(row["token_scopes"]))

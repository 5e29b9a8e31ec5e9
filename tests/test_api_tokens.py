"""Personal access tokens: shown once, stored as a hash, scoped, expiring, revocable, never another user's."""

import hashlib

import pytest
import sqlalchemy as sa

from exact import api_tokens
from exact.errors import InvalidToken, PermissionDenied, ValidationError
from tests.conftest import make_user


def _new(db, user, **kw):
    args = {"name": "laptop", "scopes": ["read", "submit"], "days": 30} | kw
    return api_tokens.create_token(db, user.id, **args)


def test_a_new_token_authenticates_as_its_user_and_only_its_hash_is_stored(db):
    alice = make_user(db, "alice")
    new = _new(db, alice)
    assert new.secret.startswith("exact_") and len(new.secret) == len("exact_") + 43
    who = api_tokens.authenticate(db, new.secret)
    assert who.user.id == alice.id and who.scopes == {"read", "submit"}
    with db.connect() as conn:
        stored = conn.execute(sa.text("SELECT token_hash, prefix FROM exact_api_token")).one()
        dumped = conn.execute(sa.text("SELECT row_to_json(t)::text FROM exact_api_token t")).scalar_one()
    assert stored.token_hash == hashlib.sha256(new.secret.encode()).hexdigest()
    assert new.secret not in dumped and stored.prefix == new.secret[:12]


@pytest.mark.parametrize("secret", [None, "", "exact_", "exact_" + "A" * 43, "ghp_abc", "exact_" + "x" * 500])
def test_unknown_or_malformed_tokens_are_refused(db, secret):
    _new(db, make_user(db, "alice"))
    with pytest.raises(InvalidToken):
        api_tokens.authenticate(db, secret)


def test_revoked_expired_and_inactive_users_tokens_are_refused(db):
    alice, bob = make_user(db, "alice"), make_user(db, "bob")
    revoked, expired, inactive = _new(db, alice), _new(db, alice, name="old"), _new(db, bob)
    api_tokens.revoke_token(db, alice.id, revoked.token.id)
    with db.transaction() as conn:
        conn.execute(
            sa.text("UPDATE exact_api_token SET expires_at = now() - interval '1 second' WHERE id = :i"),
            {"i": expired.token.id},
        )
        conn.execute(sa.text("UPDATE auth_user SET is_active = false WHERE id = :i"), {"i": bob.id})
    for new in (revoked, expired, inactive):
        with pytest.raises(InvalidToken):
            api_tokens.authenticate(db, new.secret)
    statuses = {t.name: t.status for t in api_tokens.list_tokens(db, alice.id)}
    assert statuses == {"laptop": "revoked", "old": "expired"}


def test_a_user_cannot_revoke_or_list_another_users_token(db):
    alice, bob = make_user(db, "alice"), make_user(db, "bob")
    new = _new(db, alice)
    with pytest.raises(ValidationError):
        api_tokens.revoke_token(db, bob.id, new.token.id)
    assert api_tokens.list_tokens(db, bob.id) == []
    assert api_tokens.authenticate(db, new.secret).user.id == alice.id


def test_scopes_are_enforced(db):
    alice = make_user(db, "alice")
    who = api_tokens.authenticate(db, _new(db, alice, scopes=["read"]).secret)
    assert who.require("read").id == alice.id
    with pytest.raises(PermissionDenied, match="submit"):
        who.require("submit")


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"scopes": []}, "at least one scope"),
        ({"scopes": ["admin"]}, "Unknown scope"),
        ({"days": 0}, "expires after"),
        ({"days": 3650}, "expires after"),
        ({"days": True}, "expires after"),
        ({"name": "  "}, "required"),
        ({"name": "x" * 101}, "at most 100"),
    ],
)
def test_bad_token_requests_change_nothing(db, kw, message):
    alice = make_user(db, "alice")
    with pytest.raises(ValidationError, match=message):
        _new(db, alice, **kw)
    assert api_tokens.list_tokens(db, alice.id) == []


def test_live_tokens_per_user_are_bounded(db):
    alice = make_user(db, "alice")
    for n in range(api_tokens.MAX_LIVE_TOKENS):
        _new(db, alice, name=f"t{n}")
    with pytest.raises(ValidationError, match="revoke one first"):
        _new(db, alice, name="one more")
    api_tokens.revoke_token(db, alice.id, api_tokens.list_tokens(db, alice.id)[0].id)
    assert _new(db, alice, name="one more").token.name == "one more"


def test_last_use_is_recorded_but_not_rewritten_on_every_request(db):
    alice = make_user(db, "alice")
    new = _new(db, alice)
    assert api_tokens.list_tokens(db, alice.id)[0].last_used_at is None
    api_tokens.authenticate(db, new.secret)
    first = api_tokens.list_tokens(db, alice.id)[0].last_used_at
    assert first is not None
    api_tokens.authenticate(db, new.secret)
    assert api_tokens.list_tokens(db, alice.id)[0].last_used_at == first  # within the minute: no second write


def test_every_live_token_is_listed_before_many_dead_ones(db):
    alice = make_user(db, "alice")
    oldest_live = _new(db, alice, name="oldest live")
    for n in range(70):
        dead = _new(db, alice, name=f"dead{n}")
        api_tokens.revoke_token(db, alice.id, dead.token.id)
    listed = api_tokens.list_tokens(db, alice.id)
    assert listed[0].id == oldest_live.token.id and listed[0].status == "active"


def test_two_creates_at_once_cannot_pass_the_limit_together(db):
    from concurrent.futures import ThreadPoolExecutor

    alice = make_user(db, "alice")
    for n in range(api_tokens.MAX_LIVE_TOKENS - 1):
        _new(db, alice, name=f"t{n}")

    def create(n):
        try:
            return _new(db, alice, name=f"race{n}")
        except ValidationError:
            return None

    with ThreadPoolExecutor(4) as pool:
        made = [r for r in pool.map(create, range(4)) if r is not None]
    assert len(made) == 1
    assert sum(t.status == "active" for t in api_tokens.list_tokens(db, alice.id)) == api_tokens.MAX_LIVE_TOKENS


def test_a_password_reset_revokes_the_users_tokens_and_new_ones_wait_for_a_new_password(db):
    from exact import accounts

    admin, alice = make_user(db, "root", superuser=True), make_user(db, "alice")
    old = _new(db, alice)
    temporary = accounts.reset_password(db, admin.id, alice.id)
    with pytest.raises(InvalidToken):
        api_tokens.authenticate(db, old.secret)
    with pytest.raises(ValidationError, match="new password first"):
        _new(db, alice, name="after reset")
    new = "a-brand-new-otter-77"
    accounts.change_password(
        db, alice.id, current_password=temporary.password, new_password=new, new_password_again=new
    )
    assert api_tokens.authenticate(db, _new(db, alice, name="after change").secret).user.id == alice.id

"""Signed session cookies: honoured until logout, password change, deactivation, expiry or tampering."""

import pytest
import sqlalchemy as sa
from itsdangerous import URLSafeTimedSerializer

from exact import accounts, sessions
from tests.conftest import make_user

SECRET = "test-secret-" + "x" * 40


def _start(db, user):
    return sessions.start_session(db, user.id, secret_key=SECRET, days=1)


def _resolve(db, cookie, secret=SECRET):
    return sessions.resolve_session(db, cookie, secret_key=secret, days=1)


def test_cookie_resolves_to_its_user(db):
    user = make_user(db, "alice")
    session_id, cookie = _start(db, user)
    assert _resolve(db, cookie) == (session_id, accounts.get_user(db, user.id))


def test_logout_revokes(db):
    user = make_user(db, "alice")
    session_id, cookie = _start(db, user)
    sessions.end_session(db, session_id)
    assert _resolve(db, cookie) is None


def test_password_change_revokes(db):
    user = make_user(db, "alice", password="violet-otter-42-lamp")
    _, cookie = _start(db, user)
    accounts.change_password(
        db,
        user.id,
        current_password="violet-otter-42-lamp",
        new_password="another-otter-43",
        new_password_again="another-otter-43",
    )
    assert _resolve(db, cookie) is None


def test_password_change_elsewhere_revokes_even_if_the_row_survives(db):
    user = make_user(db, "alice")
    _, cookie = _start(db, user)
    with db.transaction() as conn:  # e.g. changed through the Django admin, which knows nothing of our table
        conn.execute(sa.text("UPDATE auth_user SET password = 'pbkdf2_sha256$1$x$y' WHERE id = :i"), {"i": user.id})
    assert _resolve(db, cookie) is None


def test_deactivation_revokes(db):
    user = make_user(db, "alice")
    _, cookie = _start(db, user)
    with db.transaction() as conn:
        conn.execute(sa.text("UPDATE auth_user SET is_active = false WHERE id = :i"), {"i": user.id})
    assert _resolve(db, cookie) is None


def test_tampered_forged_and_foreign_cookies_are_refused(db):
    user = make_user(db, "alice")
    other = make_user(db, "mallory")
    session_id, cookie = _start(db, user)
    assert _resolve(db, cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB")) is None
    assert _resolve(db, cookie, secret="another-secret-" + "y" * 40) is None
    forged = URLSafeTimedSerializer("guessed-secret", salt="exact.session.v1").dumps(
        {"sid": session_id, "uid": user.id, "pwd": "0" * 32}
    )
    assert _resolve(db, forged) is None
    # A validly signed cookie naming someone else's session id cannot switch user.
    _, mallory_cookie = _start(db, other)
    swapped = URLSafeTimedSerializer(SECRET, salt="exact.session.v1").dumps(
        {"sid": session_id, "uid": other.id, "pwd": "0" * 32}
    )
    assert _resolve(db, swapped) is None
    assert _resolve(db, mallory_cookie)[1].username == "mallory"
    for junk in [None, "", "x" * 5000, "not.a.cookie"]:
        assert _resolve(db, junk) is None


def test_expired_rows_are_refused(db):
    user = make_user(db, "alice")
    session_id, cookie = _start(db, user)
    with db.transaction() as conn:
        conn.execute(
            sa.text("UPDATE exact_session SET expires_at = now() - interval '1 second' WHERE id = :i"),
            {"i": session_id},
        )
    assert _resolve(db, cookie) is None


def test_expired_signature_is_refused(db, monkeypatch):
    import time

    from itsdangerous.timed import TimestampSigner

    user = make_user(db, "alice")
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: int(time.time()) - 2 * 86400)
    _, cookie = _start(db, user)
    monkeypatch.undo()
    assert _resolve(db, cookie) is None  # signed two days ago, honoured for one


def test_inactive_users_get_no_session(db):
    user = make_user(db, "sleepy", active=False)
    with pytest.raises(ValueError):
        _start(db, user)

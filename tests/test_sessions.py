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


# --- login tickets: what the browser trades at /auth/session for the HttpOnly cookie ----------------------------


def _redeem(db, ticket, secret=SECRET):
    return sessions.redeem_ticket(db, ticket, secret_key=secret, days=1)


def test_a_ticket_yields_the_sessions_cookie_once(db):
    user = make_user(db, "alice")
    session_id, _ = _start(db, user)
    ticket = sessions.issue_ticket(db, session_id)
    cookie = _redeem(db, ticket)
    assert cookie is not None
    assert _resolve(db, cookie) == (session_id, accounts.get_user(db, user.id))
    assert _redeem(db, ticket) is None  # one-time
    assert _redeem(db, sessions.issue_ticket(db, session_id)) is not None  # a new ticket is a new chance


def test_unknown_and_junk_tickets_yield_nothing(db):
    user = make_user(db, "alice")
    session_id, _ = _start(db, user)
    ticket = sessions.issue_ticket(db, session_id)
    for junk in [None, "", ticket[:-1], ticket + "A", "x" * 5000, "' OR 1=1 --"]:
        assert _redeem(db, junk) is None
    assert _redeem(db, ticket) is not None  # the junk did not spend the real one


def test_an_expired_ticket_yields_nothing(db):
    user = make_user(db, "alice")
    session_id, _ = _start(db, user)
    ticket = sessions.issue_ticket(db, session_id)
    with db.transaction() as conn:
        conn.execute(sa.text("UPDATE exact_login_ticket SET expires_at = now() - interval '1 second'"))
    assert _redeem(db, ticket) is None


def test_issuing_a_ticket_deletes_expired_ones(db):
    user = make_user(db, "alice")
    session_id, _ = _start(db, user)
    sessions.issue_ticket(db, session_id)
    with db.transaction() as conn:
        conn.execute(sa.text("UPDATE exact_login_ticket SET expires_at = now() - interval '1 second'"))
    sessions.issue_ticket(db, session_id)
    with db.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM exact_login_ticket")).scalar_one() == 1


def test_a_ticket_lives_about_a_minute(db):
    user = make_user(db, "alice")
    session_id, _ = _start(db, user)
    sessions.issue_ticket(db, session_id)
    with db.connect() as conn:
        life = conn.execute(sa.text("SELECT extract(epoch FROM expires_at - now()) FROM exact_login_ticket")).scalar()
    assert 0 < life <= sessions.TICKET_LIFETIME_S <= 120


def test_the_ticket_of_a_revoked_session_yields_nothing(db):
    user = make_user(db, "alice")
    session_id, _ = _start(db, user)
    ticket = sessions.issue_ticket(db, session_id)
    sessions.end_session(db, session_id)
    assert _redeem(db, ticket) is None


def test_the_ticket_of_an_expired_session_yields_nothing(db):
    user = make_user(db, "alice")
    session_id, _ = _start(db, user)
    ticket = sessions.issue_ticket(db, session_id)
    with db.transaction() as conn:
        conn.execute(
            sa.text("UPDATE exact_session SET expires_at = now() - interval '1 second' WHERE id = :i"),
            {"i": session_id},
        )
    assert _redeem(db, ticket) is None


def test_the_ticket_of_an_inactive_user_yields_nothing(db):
    user = make_user(db, "alice")
    session_id, _ = _start(db, user)
    ticket = sessions.issue_ticket(db, session_id)
    with db.transaction() as conn:
        conn.execute(sa.text("UPDATE auth_user SET is_active = false WHERE id = :i"), {"i": user.id})
    assert _redeem(db, ticket) is None
    with db.transaction() as conn:  # reactivated: the ticket was spent by the attempt all the same
        conn.execute(sa.text("UPDATE auth_user SET is_active = true WHERE id = :i"), {"i": user.id})
    assert _redeem(db, ticket) is None


def test_a_password_changed_before_redemption_ends_the_login(db):
    user = make_user(db, "alice")
    session_id, _ = _start(db, user)
    ticket = sessions.issue_ticket(db, session_id)
    with db.transaction() as conn:  # changed elsewhere (Django), which leaves our session row alone
        conn.execute(sa.text("UPDATE auth_user SET password = 'pbkdf2_sha256$1$x$y' WHERE id = :i"), {"i": user.id})
    assert _redeem(db, ticket) is None
    # A ticket issued after the change works, and its cookie follows the current hash as every cookie does.
    cookie = _redeem(db, sessions.issue_ticket(db, session_id))
    assert _resolve(db, cookie) == (session_id, accounts.get_user(db, user.id))
    with db.transaction() as conn:
        conn.execute(sa.text("UPDATE auth_user SET password = 'pbkdf2_sha256$1$x$z' WHERE id = :i"), {"i": user.id})
    assert _resolve(db, cookie) is None


def test_a_ticket_cannot_be_bent_to_another_password_tag(db):
    user = make_user(db, "alice")
    session_id, _ = _start(db, user)
    ticket = sessions.issue_ticket(db, session_id)
    token, _, tag = ticket.partition(".")
    assert token and len(tag) == 32
    assert _redeem(db, token) is None  # the stored hash covers the whole ticket
    assert _redeem(db, f"{token}.{'0' * 32}") is None


def test_no_ticket_for_a_session_that_is_not_live(db):
    user = make_user(db, "alice")
    session_id, _ = _start(db, user)
    sessions.end_session(db, session_id)
    with pytest.raises(ValueError):
        sessions.issue_ticket(db, session_id)
    with pytest.raises(ValueError):
        sessions.issue_ticket(db, "no-such-session")


def test_only_the_hash_of_a_ticket_is_stored(db):
    import hashlib

    user = make_user(db, "alice")
    session_id, _ = _start(db, user)
    ticket = sessions.issue_ticket(db, session_id)
    with db.connect() as conn:
        stored = conn.execute(sa.text("SELECT ticket_hash, session_id FROM exact_login_ticket")).one()
        dump = str(conn.execute(sa.text("SELECT t::text FROM exact_login_ticket t")).scalar_one())
    assert tuple(stored) == (hashlib.sha256(ticket.encode()).hexdigest(), session_id)
    assert ticket not in dump
    assert len(ticket) >= 43  # 32 random bytes, URL-safe base64


def test_two_threads_redeeming_one_ticket_get_exactly_one_cookie(db):
    """Both redemptions are made to arrive together: a third connection holds the ticket's row lock until both
    are waiting for it (seen in pg_locks), then lets go. A check-then-update would hand out two cookies."""
    import threading
    import time

    user = make_user(db, "alice")
    session_id, _ = _start(db, user)
    ticket = sessions.issue_ticket(db, session_id)
    results: list[str | None] = []
    errors: list[BaseException] = []

    def redeem() -> None:
        try:
            results.append(_redeem(db, ticket))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    with db.transaction() as holder:
        holder.execute(sa.text("SELECT 1 FROM exact_login_ticket FOR UPDATE"))
        threads = [threading.Thread(target=redeem) for _ in range(2)]
        for thread in threads:
            thread.start()
        waiting = 0
        for _ in range(600):  # until both wait, behind the holder or each other (bounded; no timing claim)
            with db.connect() as conn:
                waiting = conn.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND cardinality(pg_blocking_pids(pid)) > 0"
                    )
                ).scalar_one()
            if waiting == 2:
                break
            time.sleep(0.05)
        assert waiting == 2, "both redemptions should be waiting for the ticket's row"
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert len(results) == 2
    assert sum(cookie is not None for cookie in results) == 1, results
    assert _redeem(db, ticket) is None

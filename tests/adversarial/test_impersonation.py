"""Acting as somebody else: every write path called by the wrong identity, forged sessions and forged cookies.

Every service takes the acting user's id and re-reads that user inside its transaction. Here each write path is
called as a visitor (None), a deactivated organiser, a deleted organiser, an id that never existed, a participant
and (for challenges) another organiser; each call must be refused with a clear message and change nothing: no row
and no file (a snapshot of every table and of the whole temporary folder is compared).
"""

from __future__ import annotations

import inspect
import time

import itsdangerous
import numpy as np
import pytest
import sqlalchemy as sa
from itsdangerous import URLSafeTimedSerializer

from exact import accounts, evaluation_sets, intake, results, sessions
from exact.challenges import ChallengeForm, create_challenge, delete_challenge, update_challenge
from exact.errors import NotFound, PermissionDenied, ValidationError
from exact.scores import submit_score
from exact.storage import UploadedFile
from tests.adversarial.conftest import PASSWORD, H, N, W, good_files, npy
from tests.pages_helpers import SECRET_KEY, VISITOR_PAGES, log_in_state, offered_pages, run, scalar

WRITE_PAGES = ["app_pages/submit.py", "app_pages/profile.py", "app_pages/manage_challenge.py", "app_pages/users.py"]


def _refused(snapshot, call, exc_type, message, what):
    before = snapshot()
    with pytest.raises(exc_type) as info:
        call()
    assert message in str(info.value), (what, str(info.value))
    before.assert_unchanged(what)


# --- challenges ---------------------------------------------------------------------------------------------------


def test_create_challenge_is_refused_to_everyone_but_organisers(db, storage, snapshot, cast):
    def create(actor_id):
        return lambda: create_challenge(db, storage, actor_id, ChallengeForm("Hijack", "text", "hijack"), good_files())

    for name, actor_id in cast.strangers.items():
        _refused(snapshot, create(actor_id), PermissionDenied, "Please log in to create a challenge.", name)
    _refused(
        snapshot, create(cast.participant.id), PermissionDenied, "Only organisers may create or edit challenges.", "pat"
    )
    assert create(cast.rival.id)().challenge_id == "hijack"  # the same call works for an organiser


def test_another_organiser_can_neither_edit_nor_delete_a_challenge(db, storage, private, snapshot, world):
    cast = world.cast
    owned = scalar(db, "SELECT title FROM api_challenge WHERE challenge_id = 'owned'")

    def edit(actor_id):
        return lambda: update_challenge(
            db,
            storage,
            actor_id,
            "owned",
            ChallengeForm("Hijacked", "pwned", ""),
            {"dataset": UploadedFile("evil.csv", b"x\n")},
            remove=frozenset({"model"}),
        )

    def delete(actor_id):
        return lambda: delete_challenge(db, storage, private, actor_id, "owned", confirmation="owned")

    not_owner = "Only the organiser who created this challenge (or an administrator) may change it."
    for action, call in (("edit", edit), ("delete", delete)):
        for name, actor_id in cast.strangers.items():
            _refused(snapshot, call(actor_id), PermissionDenied, f"Please log in to {action} a challenge.", name)
        _refused(snapshot, call(cast.participant.id), PermissionDenied, "Only organisers may", f"pat {action}s")
        _refused(snapshot, call(cast.rival.id), PermissionDenied, not_owner, f"rival {action}s")
    assert scalar(db, "SELECT title FROM api_challenge WHERE challenge_id = 'owned'") == owned

    # A delete of a challenge that does not exist says so, and touches nothing either.
    _refused(
        snapshot,
        lambda: delete_challenge(db, storage, private, cast.owner.id, "nope", confirmation="nope"),
        NotFound,
        "There is no challenge 'nope'.",
        "missing",
    )
    # The owner must type the id to confirm.
    _refused(
        snapshot,
        lambda: delete_challenge(db, storage, private, cast.owner.id, "owned", confirmation="Owned"),
        ValidationError,
        "Type the challenge id exactly",
        "bad confirmation",
    )
    # An administrator may edit and delete any challenge.
    assert edit(cast.admin.id)().title == "Hijacked"
    counts = delete(cast.admin.id)()
    assert counts["api_challenge"] == 1 and counts["api_score"] == 1
    assert not (storage.root / "challenges" / "owned").exists()


def test_a_demoted_owner_is_refused(db, storage, snapshot, world):
    owner = world.cast.owner
    with db.transaction() as conn:  # demoted in the Django admin: still active, no longer staff
        conn.execute(sa.text("UPDATE auth_user SET is_staff = false WHERE id = :i"), {"i": owner.id})
    _refused(
        snapshot,
        lambda: update_challenge(db, storage, owner.id, "owned", ChallengeForm("Mine", "still mine?", ""), {}),
        PermissionDenied,
        "Only organisers may",
        "demoted owner",
    )


# --- scores and attributions -------------------------------------------------------------------------------------


def test_submit_score_is_refused_to_nobodies_and_stored_under_the_real_username(db, snapshot, world):
    cast = world.cast
    for name, actor_id in cast.strangers.items():
        _refused(
            snapshot,
            lambda a=actor_id: submit_score(db, a, "owned", "0.99"),
            PermissionDenied,
            "Please log in to submit a score.",
            name,
        )
    result = submit_score(db, cast.other.id, "owned", "0.75", request_key="quinn-form")
    assert result.username == "quinn"
    assert scalar(db, "SELECT username FROM api_score WHERE id = :i", i=result.score_id) == "quinn"
    # Replaying somebody else's form key neither stores a row nor reveals their result.
    _refused(
        snapshot,
        lambda: submit_score(db, cast.participant.id, "owned", "0.75", request_key="quinn-form"),
        ValidationError,
        "This form was already used",
        "replayed key",
    )


def test_no_submission_api_accepts_a_username(db, storage, world):
    for service in (submit_score, intake.submit_attributions):
        parameters = set(inspect.signature(service).parameters)
        assert not parameters & {"username", "user", "submitter", "user_name"}, service.__name__
    with pytest.raises(TypeError):
        submit_score(db, world.cast.other.id, "owned", 0.9, username="pat")  # type: ignore[call-arg]
    assert scalar(db, "SELECT count(*) FROM api_score WHERE username = 'quinn'") == 0


def test_submit_attributions_is_refused_to_nobodies(db, storage, snapshot, world):
    data = npy(np.ones((N, H, W)))
    for name, actor_id in world.cast.strangers.items():
        _refused(
            snapshot,
            lambda a=actor_id: intake.submit_attributions(
                db, storage, a, "gt", UploadedFile("a.npy", data), method_name="m"
            ),
            PermissionDenied,
            "Please log in to submit attributions.",
            name,
        )
    mine = intake.submit_attributions(
        db, storage, world.cast.other.id, "gt", UploadedFile("a.npy", data), method_name="m", request_key="k1"
    )
    assert (mine.username, mine.user_id) == ("quinn", world.cast.other.id)
    _refused(
        snapshot,
        lambda: intake.submit_attributions(
            db,
            storage,
            world.cast.participant.id,
            "gt",
            UploadedFile("a.npy", data),
            method_name="m",
            request_key="k1",
        ),
        ValidationError,
        "This form was already used",
        "replayed key",
    )


def test_results_and_ground_truth_stay_with_submitter_and_organisers(db, storage, private, world):
    cast, sid = world.cast, world.submission_id
    outsiders = {**cast.strangers, "other participant": cast.other.id, "rival organiser": cast.rival.id}
    for actor_id in outsiders.values():
        with pytest.raises(PermissionDenied, match="Only the submitter and the challenge's organisers"):
            results.view_submission(db, actor_id, sid)
        with pytest.raises(PermissionDenied):
            results.gallery(db, storage, private, actor_id, sid)
        with pytest.raises(PermissionDenied, match="Only the challenge's organisers"):
            results.ground_truth_statistics(db, private, actor_id, "gt")
    with pytest.raises(PermissionDenied, match="Only the challenge's organisers"):
        results.ground_truth_statistics(db, private, cast.participant.id, "gt")
    for viewer in (cast.participant.id, cast.owner.id, cast.admin.id):
        assert results.view_submission(db, viewer, sid).submission.id == sid
    with pytest.raises(PermissionDenied):
        intake.my_submissions(db, None)


def _pair(db, sid):
    submission = intake.get_submission_row(db, sid)
    return submission, evaluation_sets.get_evaluation(db, submission.challenge_id)


# --- accounts -----------------------------------------------------------------------------------------------------


def test_profile_and_password_changes_are_refused_to_nobodies(db, snapshot, cast):
    for name, actor_id in cast.strangers.items():
        _refused(
            snapshot,
            lambda a=actor_id: accounts.update_profile(
                db, a, first_name="Eve", last_name="Il", email="eve@evil.example"
            ),
            PermissionDenied,
            "Please log in to change your profile.",
            name,
        )
        _refused(
            snapshot,
            lambda a=actor_id: accounts.change_password(
                db, a, current_password=PASSWORD, new_password="brand new secret", new_password_again="brand new secret"
            ),
            PermissionDenied,
            "Please log in to change your password.",
            name,
        )
    # Knowing the actor id is not enough: the current password is checked.
    _refused(
        snapshot,
        lambda: accounts.change_password(
            db,
            cast.participant.id,
            current_password="guess",
            new_password="brand new secret",
            new_password_again="brand new secret",
        ),
        ValidationError,
        "Your current password is not correct.",
        "wrong current password",
    )


def test_user_administration_is_refused_to_everyone_but_active_administrators(db, snapshot, cast):
    with db.transaction() as conn:  # a second, deactivated superuser
        conn.execute(sa.text("UPDATE auth_user SET is_superuser = true WHERE id = :i"), {"i": cast.inactive.id})
    pat = cast.participant

    def promote(actor_id, target=pat.id):
        return lambda: accounts.set_user_flags(db, actor_id, target, is_active=True, is_staff=True, is_superuser=True)

    for name, actor_id in cast.strangers.items():
        _refused(snapshot, promote(actor_id), PermissionDenied, "Please log in to administer users.", name)
        with pytest.raises(PermissionDenied):
            accounts.list_users(db, actor_id)
    for name, user in (("participant", pat), ("organiser", cast.owner)):
        _refused(snapshot, promote(user.id), PermissionDenied, "Only administrators may administer users.", name)
        _refused(snapshot, promote(user.id, target=user.id), PermissionDenied, "Only administrators", f"{name} on self")
        with pytest.raises(PermissionDenied):
            accounts.list_users(db, user.id)
    _refused(snapshot, promote(cast.admin.id, target=cast.deleted_id), NotFound, "No such user.", "deleted target")
    _refused(
        snapshot,
        lambda: accounts.set_user_flags(
            db, cast.admin.id, cast.admin.id, is_active=False, is_staff=True, is_superuser=True
        ),
        ValidationError,
        "You cannot deactivate yourself",
        "self-deactivation",
    )
    assert accounts.set_user_flags(
        db, cast.admin.id, pat.id, is_active=True, is_staff=True, is_superuser=False
    ).role == ("organiser")


def test_first_admin_set_up_stays_closed(db, snapshot, cast):
    for existing in ("active admin", "only an inactive admin"):
        if existing == "only an inactive admin":
            with db.transaction() as conn:
                conn.execute(sa.text("UPDATE auth_user SET is_active = false WHERE id = :i"), {"i": cast.admin.id})
        _refused(
            snapshot,
            lambda: accounts.create_first_admin(
                db,
                username="usurper",
                password="a long enough password",
                password_again="a long enough password",
                setup_token=accounts.setup_token(),  # even with the token
            ),
            PermissionDenied,
            "An administrator already exists; set-up is closed.",
            existing,
        )


def test_registration_cannot_claim_roles_or_an_existing_name(db, snapshot, cast):
    parameters = set(inspect.signature(accounts.register).parameters)
    assert not parameters & {"is_staff", "is_superuser", "is_active"}
    for taken in ("pat", "PAT", "Pat", " pat "):
        _refused(
            snapshot,
            lambda name=taken: accounts.register(
                db, username=name, password="a long enough password", password_again="a long enough password"
            ),
            ValidationError,
            "is already taken",
            taken,
        )


def test_compatibility_look_alike_usernames_are_refused(db, snapshot, cast):
    """Django stores usernames NFKC-normalised: fullwidth 'ｐａｔ' is 'pat'. A look-alike must not sit beside 'pat'."""
    for look_alike in ("ｐａｔ", "ＰＡＴ", "pａt"):
        before = snapshot()
        try:
            user = accounts.register(
                db, username=look_alike, password="a long enough password", password_again="a long enough password"
            )
        except ValidationError as exc:
            assert "already taken" in str(exc) or "may contain only" in str(exc), str(exc)
            before.assert_unchanged(look_alike)
        else:
            pytest.fail(f"registered {user.username!r}, a look-alike of 'pat'")


# --- forged and stale sessions in the app (AppTest) -----------------------------------------------------------------


def _assert_visitor(at):
    assert offered_pages(at) == VISITOR_PAGES
    assert at.session_state["current_user"] is None
    assert "auth_user_id" not in at.session_state and "auth_session_id" not in at.session_state
    assert [c.value for c in at.sidebar.caption] == ["Browsing as a visitor. Log in to submit."]
    for page in WRITE_PAGES:
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page(page)


@pytest.mark.parametrize("forgery", ["random session id", "another user's session id", "no such user"])
def test_forged_session_state_is_a_visitor(app, db, cast, forgery):
    at = app()
    target = cast.admin.id
    if forgery == "random session id":
        session_id = "forged-" + "A" * 36
    elif forgery == "another user's session id":
        session_id = log_in_state(app(), db, cast.participant.id)  # a real, live session, but pat's
    else:
        session_id, _ = sessions.start_session(db, cast.participant.id, secret_key=SECRET_KEY, days=1)
        target = 987_654_321
    at.session_state["auth_user_id"] = target
    at.session_state["auth_session_id"] = session_id
    run(at)
    _assert_visitor(at)


@pytest.mark.parametrize(
    "stale",
    ["logged out", "password changed here", "password changed in Django", "deactivated", "deleted", "expired"],
)
def test_stale_session_state_falls_back_to_visitor(app, db, cast, stale):
    pat = cast.participant
    at = app()
    session_id = log_in_state(at, db, pat.id)
    run(at)
    assert offered_pages(at) != VISITOR_PAGES  # logged in before the change
    if stale == "logged out":
        sessions.end_session(db, session_id)
    elif stale == "password changed here":  # from another browser: that one keeps its session, this one not
        other = log_in_state(app(), db, pat.id)
        accounts.change_password(
            db,
            pat.id,
            current_password=PASSWORD,
            new_password="brand new secret",
            new_password_again="brand new secret",
            keep_session=other,
        )
    else:
        statement = {
            # Django knows nothing of exact_session: the row stays live, only the hash changes.
            "password changed in Django": "UPDATE auth_user SET password = 'pbkdf2_sha256$1000$s$h' WHERE id = :u",
            "deactivated": "UPDATE auth_user SET is_active = false WHERE id = :u",
            "deleted": "DELETE FROM auth_user WHERE id = :u",
            "expired": "UPDATE exact_session SET expires_at = now() - interval '1 second' WHERE id = :s",
        }[stale]
        with db.transaction() as conn:
            conn.execute(sa.text(statement), {"u": pat.id, "s": session_id})
    run(at)
    _assert_visitor(at)


# --- forged cookies (exact.sessions.resolve_session) ----------------------------------------------------------------

DAYS = 1


def _resolve(db, cookie, key=SECRET_KEY):
    return sessions.resolve_session(db, cookie, secret_key=key, days=DAYS)


def _sign(payload, key=SECRET_KEY):
    return URLSafeTimedSerializer(key, salt="exact.session.v1").dumps(payload)


def test_tampered_cookies_are_ignored(db, cast):
    pat, admin = cast.participant, cast.admin
    session_id, cookie = sessions.start_session(db, pat.id, secret_key=SECRET_KEY, days=DAYS)
    assert _resolve(db, cookie)[1].id == pat.id  # the genuine cookie works: the attacks below are meaningful
    admin_session, admin_cookie = sessions.start_session(db, admin.id, secret_key=SECRET_KEY, days=DAYS)
    body, _, signature = cookie.rpartition(".")
    # The first character, not the last: the last base64 character of a signature carries padding bits, so
    # changing it can leave the decoded signature as it was (seen: this test accepted such a "forgery").
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    payload = URLSafeTimedSerializer(SECRET_KEY, salt="exact.session.v1").loads(cookie)
    fingerprint = payload["pwd"]

    forged = {
        "flipped signature": f"{body}.{flipped}",
        "no signature": body,
        "signed with another key": sessions.start_session(db, pat.id, secret_key="x" * 48, days=DAYS)[1],
        "uid swapped in the payload, old signature": _sign({**payload, "uid": admin.id}).rpartition(".")[0]
        + "."
        + signature,
        "truncated": cookie[:-7],
        "only the payload part": cookie.split(".")[0],
        "empty": "",
        "none": None,
        "huge": cookie + "A" * 5000,
        "one megabyte": "A" * 1_000_000,
        "not base64": "!!!.%%%.???",
        "unicode": "é" * 100,
        "NUL": "\x00" * 10,
        # Validly signed (the key leaked) but still naming things that do not fit together:
        "my session, admin's uid": _sign({"sid": session_id, "uid": admin.id, "pwd": fingerprint}),
        "admin's session, my uid": _sign({"sid": admin_session, "uid": pat.id, "pwd": fingerprint}),
        "admin's session and uid, my fingerprint": _sign({"sid": admin_session, "uid": admin.id, "pwd": fingerprint}),
        "wrong fingerprint": _sign({**payload, "pwd": "0" * 32}),
        "uid as text": _sign({**payload, "uid": str(pat.id)}),
        "sid as a dict": _sign({**payload, "sid": {"$ne": None}}),
        "missing keys": _sign({"sid": session_id, "uid": pat.id}),
        "a list": _sign([session_id, pat.id, fingerprint]),
        "a string": _sign("admin"),
    }
    for name, value in forged.items():
        assert _resolve(db, value) is None, name
    assert _resolve(db, cookie, key="y" * 48) is None  # the server's key changed: everyone is logged out
    assert _resolve(db, admin_cookie)[1].id == admin.id


def test_expired_and_future_dated_cookies_are_ignored(db, cast, monkeypatch):
    pat = cast.participant
    real = itsdangerous.timed.TimestampSigner.get_timestamp
    for name, shift in (("expired", -(DAYS * 86400 + 60)), ("just alive", -(DAYS * 86400 - 60)), ("future", 3600)):
        monkeypatch.setattr(
            itsdangerous.timed.TimestampSigner, "get_timestamp", lambda self, s=shift: int(time.time()) + s
        )
        _, cookie = sessions.start_session(db, pat.id, secret_key=SECRET_KEY, days=DAYS)
        monkeypatch.setattr(itsdangerous.timed.TimestampSigner, "get_timestamp", real)
        resolved = _resolve(db, cookie)
        if name == "just alive":
            assert resolved is not None and resolved[1].id == pat.id
        else:
            assert resolved is None, name


def test_cookies_die_with_logout_password_change_deactivation_and_deletion(db, cast):
    pat = cast.participant

    def fresh():
        return sessions.start_session(db, pat.id, secret_key=SECRET_KEY, days=DAYS)

    session_id, cookie = fresh()
    sessions.end_session(db, session_id)
    assert _resolve(db, cookie) is None, "logged out"

    _, cookie = fresh()
    accounts.change_password(
        db, pat.id, current_password=PASSWORD, new_password="brand new secret", new_password_again="brand new secret"
    )
    assert _resolve(db, cookie) is None, "password changed"

    session_id, cookie = fresh()
    with db.transaction() as conn:  # Django changes the password and leaves our row alone
        conn.execute(sa.text("UPDATE auth_user SET password = 'pbkdf2_sha256$1000$s$h' WHERE id = :i"), {"i": pat.id})
    assert scalar(db, "SELECT revoked_at IS NULL FROM exact_session WHERE id = :s", s=session_id)
    assert _resolve(db, cookie) is None, "password changed in Django"

    other = cast.other
    _, cookie = sessions.start_session(db, other.id, secret_key=SECRET_KEY, days=DAYS)
    with db.transaction() as conn:
        conn.execute(sa.text("UPDATE auth_user SET is_active = false WHERE id = :i"), {"i": other.id})
    assert _resolve(db, cookie) is None, "deactivated"
    with db.transaction() as conn:
        conn.execute(sa.text("UPDATE auth_user SET is_active = true WHERE id = :i"), {"i": other.id})
    assert _resolve(db, cookie) is not None  # the same cookie again once reactivated: the check is live
    with db.transaction() as conn:
        conn.execute(sa.text("DELETE FROM auth_user WHERE id = :i"), {"i": other.id})
    assert _resolve(db, cookie) is None, "deleted"

    with pytest.raises(ValueError):
        sessions.start_session(db, cast.inactive.id, secret_key=SECRET_KEY, days=DAYS)
    with pytest.raises(ValueError):
        sessions.start_session(db, cast.deleted_id, secret_key=SECRET_KEY, days=DAYS)

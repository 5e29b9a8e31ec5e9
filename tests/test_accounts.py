"""Accounts service: login, registration, profile, password change, administration, first administrator."""

import pytest
import sqlalchemy as sa

from exact import accounts, passwords
from exact.errors import AuthenticationFailed, PermissionDenied, ValidationError
from tests.conftest import make_user

GOOD = "violet-otter-42-lamp"


def _register(db, username="alice", password=GOOD, **extra):
    return accounts.register(db, username=username, password=password, password_again=password, **extra)


def test_register_then_login_updates_last_login(db):
    user = _register(db, email="alice@example.org", first_name="Alice")
    assert user.last_login is None and user.role == "participant"
    logged_in = accounts.authenticate(db, "alice", GOOD)
    assert logged_in.id == user.id and logged_in.last_login is not None
    with db.connect() as conn:
        stored = conn.execute(sa.text("SELECT password FROM auth_user WHERE id = :i"), {"i": user.id}).scalar_one()
    assert stored.startswith("pbkdf2_sha256$") and GOOD not in stored


@pytest.mark.parametrize(("username", "password"), [("alice", "wrong-password-1"), ("nobody", GOOD), ("", "")])
def test_login_failures_all_look_the_same(db, username, password):
    _register(db)
    with pytest.raises(AuthenticationFailed) as info:
        accounts.authenticate(db, username, password)
    assert str(info.value) == "Unknown username or wrong password."


def test_inactive_users_cannot_log_in(db):
    make_user(db, "sleepy", active=False, password=GOOD)
    with pytest.raises(AuthenticationFailed):
        accounts.authenticate(db, "sleepy", GOOD)


def test_login_upgrades_old_work_factor(db):
    old = passwords.make_password(GOOD, iterations=600)
    with db.transaction() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff,"
                " is_active, date_joined) VALUES (:p, false, 'legacy', '', '', '', false, true, now())"
            ),
            {"p": old},
        )
    accounts.authenticate(db, "legacy", GOOD)
    with db.connect() as conn:
        new = conn.execute(sa.text("SELECT password FROM auth_user WHERE username='legacy'")).scalar_one()
    assert new != old and new.split("$")[1] == str(passwords.DEFAULT_ITERATIONS)


def test_register_rejects_duplicates_case_insensitively(db):
    _register(db)
    with pytest.raises(ValidationError, match="already taken"):
        _register(db, username="ALICE")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"username": "bad name"}, "Username"),
        ({"username": "x" * 151}, "at most 150"),
        ({"email": "nope"}, "Email"),
        ({"first_name": "f" * 151}, "at most 150"),
        ({"password": "short"}, "at least 8"),
    ],
)
def test_register_rejects_bad_input_and_writes_nothing(db, fields, message):
    args = {"username": "bob", "password": GOOD, **fields}
    with pytest.raises(ValidationError, match=message):
        accounts.register(
            db, username=args.pop("username"), password=args["password"], password_again=args.pop("password"), **args
        )
    with db.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM auth_user")).scalar_one() == 0


def test_mismatched_passwords(db):
    with pytest.raises(ValidationError, match="do not match"):
        accounts.register(db, username="bob", password=GOOD, password_again=GOOD + "x")


def test_update_profile_and_limits(db):
    user = _register(db)
    updated = accounts.update_profile(db, user.id, first_name="Al", last_name="Ice", email="al@ice.org")
    assert (updated.first_name, updated.last_name, updated.email) == ("Al", "Ice", "al@ice.org")
    with pytest.raises(ValidationError):
        accounts.update_profile(db, user.id, first_name="x" * 151, last_name="", email="")
    with pytest.raises(PermissionDenied):
        accounts.update_profile(db, None, first_name="Eve", last_name="", email="")


def test_change_password_requires_the_current_one(db):
    user = _register(db)
    with pytest.raises(ValidationError, match="current password"):
        accounts.change_password(
            db,
            user.id,
            current_password="nope",
            new_password="new-violet-otter-9",
            new_password_again="new-violet-otter-9",
        )
    accounts.change_password(
        db, user.id, current_password=GOOD, new_password="new-violet-otter-9", new_password_again="new-violet-otter-9"
    )
    with pytest.raises(AuthenticationFailed):
        accounts.authenticate(db, "alice", GOOD)
    assert accounts.authenticate(db, "alice", "new-violet-otter-9").id == user.id


def test_only_admins_administer_users(db):
    admin = make_user(db, "root", superuser=True)
    organiser = make_user(db, "org", staff=True)
    target = make_user(db, "target")
    for actor in (None, organiser.id, target.id):
        with pytest.raises(PermissionDenied):
            accounts.set_user_flags(db, actor, target.id, is_active=False, is_staff=True, is_superuser=True)
        with pytest.raises(PermissionDenied):
            accounts.list_users(db, actor)
    updated = accounts.set_user_flags(db, admin.id, target.id, is_active=True, is_staff=True, is_superuser=False)
    assert updated.is_organiser and not updated.is_admin
    assert [u.username for u in accounts.list_users(db, admin.id)] == ["root", "org", "target"]


def test_admin_cannot_lock_themselves_out(db):
    admin = make_user(db, "root", superuser=True)
    with pytest.raises(ValidationError):
        accounts.set_user_flags(db, admin.id, admin.id, is_active=False, is_staff=True, is_superuser=True)


def test_group_permission_makes_an_organiser(db):
    user = make_user(db, "grouped")
    assert not user.is_organiser
    with db.transaction() as conn:
        group_id = conn.execute(sa.text("INSERT INTO auth_group (name) VALUES ('organisers') RETURNING id")).scalar()
        conn.execute(
            sa.text(
                "INSERT INTO auth_group_permissions (group_id, permission_id) SELECT :g, p.id FROM auth_permission p"
                " JOIN django_content_type ct ON ct.id = p.content_type_id"
                " WHERE ct.app_label = 'api' AND p.codename = 'add_challenge'"
            ),
            {"g": group_id},
        )
        conn.execute(
            sa.text("INSERT INTO auth_user_groups (user_id, group_id) VALUES (:u, :g)"), {"u": user.id, "g": group_id}
        )
    assert accounts.get_user(db, user.id).is_organiser


def test_first_admin_only_once(db):
    assert accounts.needs_first_admin(db)
    token = accounts.setup_token()  # what the server printed on its console
    admin = accounts.create_first_admin(db, username="boss", password=GOOD, password_again=GOOD, setup_token=token)
    assert admin.is_superuser and admin.is_staff and not accounts.needs_first_admin(db)
    with pytest.raises(PermissionDenied, match="already exists"):
        accounts.create_first_admin(
            db, username="boss2", password=GOOD, password_again=GOOD, setup_token=accounts.setup_token()
        )


# --- password reset by an administrator ------------------------------------------------------------------------


def _hash_of(db, user_id: int) -> str:
    with db.connect() as conn:
        return conn.execute(sa.text("SELECT password FROM auth_user WHERE id = :i"), {"i": user_id}).scalar_one()


def test_reset_password_hands_out_a_working_temporary_password_and_requires_a_new_one(db):
    from exact.sessions import start_session

    admin = make_user(db, "root", superuser=True)
    pat = make_user(db, "pat", password=GOOD)
    session_id, _ = start_session(db, pat.id, secret_key="k" * 48, days=1)
    temporary = accounts.reset_password(db, admin.id, pat.id)
    assert temporary.username == "pat" and len(temporary.password) >= 16
    stored = _hash_of(db, pat.id)
    assert stored.startswith("pbkdf2_sha256$") and temporary.password not in stored  # a Django hash like any other
    assert passwords.check_password(temporary.password, stored)
    with pytest.raises(AuthenticationFailed):
        accounts.authenticate(db, "pat", GOOD)  # the old password is gone
    logged_in = accounts.authenticate(db, "pat", temporary.password)
    assert logged_in.must_change_password and accounts.get_user(db, pat.id).must_change_password
    with db.connect() as conn:
        revoked = conn.execute(sa.text("SELECT revoked_at FROM exact_session WHERE id = :s"), {"s": session_id})
        assert revoked.scalar_one() is not None  # logged out everywhere

    accounts.change_password(
        db, pat.id, current_password=temporary.password, new_password=GOOD + "x", new_password_again=GOOD + "x"
    )
    assert not accounts.get_user(db, pat.id).must_change_password
    with db.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM exact_password_reset")).scalar_one() == 0


def test_a_password_changed_elsewhere_ends_the_requirement(db):
    """E.g. in Django's admin: the reset row no longer matches the stored hash, so nothing is forced any more."""
    admin = make_user(db, "root", superuser=True)
    pat = make_user(db, "pat")
    accounts.reset_password(db, admin.id, pat.id)
    assert accounts.get_user(db, pat.id).must_change_password
    with db.transaction() as conn:
        conn.execute(
            sa.text("UPDATE auth_user SET password = :p WHERE id = :i"),
            {"p": passwords.make_password("set-in-django-1"), "i": pat.id},
        )
    assert not accounts.get_user(db, pat.id).must_change_password


def test_only_administrators_reset_passwords_and_never_their_own(db):
    admin = make_user(db, "root", superuser=True)
    organiser = make_user(db, "olivia", staff=True)
    pat = make_user(db, "pat", password=GOOD)
    before = _hash_of(db, pat.id)
    for actor in (None, organiser.id, pat.id):
        with pytest.raises(PermissionDenied):
            accounts.reset_password(db, actor, pat.id)
    with pytest.raises(ValidationError, match="your profile page"):
        accounts.reset_password(db, admin.id, admin.id)
    for missing in (987654, True, "1"):
        with pytest.raises(accounts.NotFound):
            accounts.reset_password(db, admin.id, missing)
    assert _hash_of(db, pat.id) == before
    accounts.authenticate(db, "pat", GOOD)
    with db.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM exact_password_reset")).scalar_one() == 0


def test_two_resets_leave_only_the_latest_temporary_password(db):
    admin = make_user(db, "root", superuser=True)
    pat = make_user(db, "pat")
    first = accounts.reset_password(db, admin.id, pat.id)
    second = accounts.reset_password(db, admin.id, pat.id)
    assert first.password != second.password
    with pytest.raises(AuthenticationFailed):
        accounts.authenticate(db, "pat", first.password)
    assert accounts.authenticate(db, "pat", second.password).must_change_password

"""schema.sql against Django itself: same structure, same seed, adoption both ways, idempotency.

Django runs in subprocesses (tests/django_project/run_django.py) so its global setup never enters pytest.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from db.database import Database
from db.schema import SCHEMA_FILE, apply_schema

RUN_DJANGO = Path(__file__).resolve().parent / "django_project" / "run_django.py"

DJANGO_TABLES = (
    "api_challenge",
    "api_score",
    "auth_group",
    "auth_group_permissions",
    "auth_permission",
    "auth_user",
    "auth_user_groups",
    "auth_user_user_permissions",
    "django_admin_log",
    "django_content_type",
    "django_migrations",
    "django_session",
)
OUR_TABLES = (
    "exact_challenge_owner",
    "exact_competition",
    "exact_evaluation",
    "exact_evaluation_split",
    "exact_evaluation_rules",
    "exact_final_choice",
    "exact_login_failure",
    "exact_login_lock",
    "exact_moderation",
    "exact_session",
    "exact_submission",
    "exact_submission_request",
    "exact_submission_summary",
    # read models (db/read_models.sql)
    "exact_challenge_stats",
    "exact_participant",
    "exact_read_model_state",
    "exact_score_best",
    "exact_score_record",
    "exact_site_count",
    "exact_scoring_chunk",  # parallel scoring (schema.sql, issue 8)
    "exact_api_token",  # the HTTP API's personal access tokens (issue 10)
    "exact_login_ticket",  # the login cookie's one-time hand-over (issue 10)
    "exact_password_reset",  # a password an administrator reset must be changed (docs/journeys.md)
    "exact_model",  # models a challenge ships to be explained (docs/models.md, issue 12)
)
OUR_SCORE_INDEXES = ("exact_score_challenge_score_idx", "exact_score_challenge_user_idx", "exact_score_created_idx")

# ---------------------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------------------


def run_django(url: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "EXACT_DJANGO_DB_URL": url, "DJANGO_SETTINGS_MODULE": "settings", "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(
        [sys.executable, str(RUN_DJANGO), *args], env=env, capture_output=True, text=True, timeout=180
    )
    if check and result.returncode != 0:
        pytest.fail(f"django {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


@contextmanager
def connect(url: str) -> Iterator[Connection]:
    database = Database(url, pool_size=1, max_overflow=1)
    try:
        with database.transaction() as conn:
            yield conn
    finally:
        database.dispose()


def apply(url: str) -> None:
    database = Database(url, pool_size=1, max_overflow=1)
    try:
        apply_schema(database)
    finally:
        database.dispose()


def structure(conn: Connection, tables: tuple[str, ...]) -> dict[str, object]:
    """Catalog facts of ``tables`` that Django (or our queries) could depend on, in comparable form."""
    params = {"tables": list(tables)}
    columns = conn.execute(
        sa.text(
            """
            SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                   CASE WHEN a.attidentity <> '' OR pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%'
                        THEN 'auto:' || coalesce(pg_get_serial_sequence(quote_ident(c.relname), a.attname), '?')
                        ELSE pg_get_expr(d.adbin, d.adrelid) END AS default_kind,
                   information_schema._pg_char_max_length(a.atttypid, a.atttypmod) AS char_length
            FROM pg_attribute a
            JOIN pg_class c ON c.oid = a.attrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema()
            LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
            WHERE c.relname = ANY(:tables) AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY c.relname, a.attnum
            """
        ),
        params,
    ).all()
    constraints = conn.execute(
        sa.text(
            """
            SELECT c.relname, con.conname, con.contype, pg_get_constraintdef(con.oid),
                   con.condeferrable, con.condeferred
            FROM pg_constraint con
            JOIN pg_class c ON c.oid = con.conrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema()
            WHERE c.relname = ANY(:tables) AND con.contype <> 'n'  -- PG 18 NOT NULL entries: see columns
            ORDER BY 1, 2
            """
        ),
        params,
    ).all()
    indexes = conn.execute(
        sa.text(
            """
            SELECT c.relname, i.relname, pg_get_indexdef(i.oid)
            FROM pg_index x
            JOIN pg_class c ON c.oid = x.indrelid
            JOIN pg_class i ON i.oid = x.indexrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema()
            WHERE c.relname = ANY(:tables) AND i.relname NOT LIKE 'exact\\_%'
            ORDER BY 1, 2
            """
        ),
        params,
    ).all()
    existing = conn.execute(
        sa.text(
            "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind = 'r' ORDER BY 1"
        )
    ).scalars()
    return {
        "tables": sorted(t for t in existing if t in tables),
        "columns": [tuple(row) for row in columns],
        "constraints": [tuple(row) for row in constraints],
        "indexes": [tuple(row) for row in indexes],
    }


def seed(conn: Connection, *, with_ids: bool = False) -> dict[str, list[tuple[object, ...]]]:
    id_ct = "ct.id, " if with_ids else ""
    id_p = "p.id, " if with_ids else ""
    id_m = "id, " if with_ids else ""
    return {
        "content_types": [
            tuple(r)
            for r in conn.execute(sa.text(f"SELECT {id_ct}app_label, model FROM django_content_type ct ORDER BY 1, 2"))
        ],
        "permissions": [
            tuple(r)
            for r in conn.execute(
                sa.text(
                    f"SELECT {id_p}ct.app_label, ct.model, p.codename, p.name FROM auth_permission p "
                    "JOIN django_content_type ct ON ct.id = p.content_type_id ORDER BY 1, 2, 3, 4"
                )
            )
        ],
        "migrations": [
            tuple(r) for r in conn.execute(sa.text(f"SELECT {id_m}app, name FROM django_migrations ORDER BY 1, 2"))
        ],
    }


def all_rows(conn: Connection) -> dict[str, list[str]]:
    """Every row of the 12 Django tables, as JSON text, to prove nothing was touched."""
    return {
        table: list(conn.execute(sa.text(f"SELECT to_jsonb(t)::text AS j FROM {table} t ORDER BY 1")).scalars())
        for table in DJANGO_TABLES
    }


def sequences(conn: Connection) -> dict[str, object]:
    rows = conn.execute(
        sa.text("SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = current_schema()")
    )
    return dict(rows.tuples().all())


# ---------------------------------------------------------------------------------------------------------------
# fixtures: one Django-migrated reference database and one schema.sql database for the whole module
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def django_url(scratch_databases) -> str:
    url = scratch_databases.create("exact_django_ref")
    run_django(url, "migrate", "--no-input", "-v", "0")
    return url


@pytest.fixture(scope="module")
def ours_url(scratch_databases) -> str:
    url = scratch_databases.create("exact_schema_sql")
    apply(url)
    return url


# ---------------------------------------------------------------------------------------------------------------
# schema.sql on its own
# ---------------------------------------------------------------------------------------------------------------


def test_schema_sql_only_creates_when_missing_and_inserts() -> None:
    """No ALTER/DROP/UPDATE/DELETE may ever reach a Django-created table: only CREATE ... IF NOT EXISTS and INSERT."""
    text = re.sub(r"--[^\n]*", "", SCHEMA_FILE.read_text())
    statements = [s.strip() for s in text.split(";") if s.strip()]
    assert len(statements) > 30
    for statement in statements:
        assert re.match(r"(CREATE\s+(TABLE|(UNIQUE\s+)?INDEX)\s+IF\s+NOT\s+EXISTS|INSERT\s+INTO)\s", statement, re.I), (
            statement
        )


def test_apply_twice_is_idempotent(empty_db_url: str) -> None:
    apply(empty_db_url)
    with connect(empty_db_url) as conn:
        first = (structure(conn, DJANGO_TABLES + OUR_TABLES), seed(conn, with_ids=True), sequences(conn))
    apply(empty_db_url)
    with connect(empty_db_url) as conn:
        second = (structure(conn, DJANGO_TABLES + OUR_TABLES), seed(conn, with_ids=True), sequences(conn))
        indexes = set(conn.execute(sa.text("SELECT indexname FROM pg_indexes WHERE tablename = 'api_score'")).scalars())
    assert second == first
    tables, seeded = first[0]["tables"], first[1]
    assert tables == sorted(DJANGO_TABLES + OUR_TABLES)
    assert len(seeded["content_types"]) == 8
    assert len(seeded["permissions"]) == 32
    assert len(seeded["migrations"]) == 19
    assert len({(app, name) for _, app, name in seeded["migrations"]}) == 19
    assert set(OUR_SCORE_INDEXES) <= indexes


def test_admin_log_check_constraint_rejects_negative_action_flag(db: Database) -> None:
    with db.transaction() as conn:
        user_id = conn.execute(
            sa.text(
                "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff, "
                "is_active, date_joined) VALUES ('!', false, 'admin', '', '', '', true, true, now()) RETURNING id"
            )
        ).scalar_one()
    insert = sa.text(
        "INSERT INTO django_admin_log (action_time, object_repr, action_flag, change_message, user_id) "
        "VALUES (now(), 'x', :flag, '[]', :uid)"
    )
    with db.transaction() as conn:
        conn.execute(insert, {"flag": 0, "uid": user_id})
        conn.execute(insert, {"flag": 3, "uid": user_id})
    with pytest.raises(IntegrityError, match="django_admin_log_action_flag_check"), db.transaction() as conn:
        conn.execute(insert, {"flag": -1, "uid": user_id})
    with db.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM django_admin_log")).scalar_one() == 2


def test_foreign_keys_are_deferred(db: Database) -> None:
    """Django's FKs are DEFERRABLE INITIALLY DEFERRED: a dangling reference fails at commit, not at insert."""
    fk = "auth_user_groups_user_id_6a12ed8b_fk_auth_user_id"
    with pytest.raises(IntegrityError, match=fk), db.transaction() as conn:
        conn.execute(sa.text("INSERT INTO auth_group (name) VALUES ('g')"))
        conn.execute(sa.text("INSERT INTO auth_user_groups (user_id, group_id) SELECT 999999, id FROM auth_group"))
        # Still no error here: the check runs at commit.
        assert conn.execute(sa.text("SELECT count(*) FROM auth_user_groups")).scalar_one() == 1


# ---------------------------------------------------------------------------------------------------------------
# against Django
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.django
def test_structure_equals_django_migrate(django_url: str, ours_url: str) -> None:
    with connect(django_url) as conn:
        theirs = structure(conn, DJANGO_TABLES)
    with connect(ours_url) as conn:
        ours = structure(conn, DJANGO_TABLES)
    assert theirs["tables"] == sorted(DJANGO_TABLES)
    assert ours["tables"] == theirs["tables"]
    for key in ("columns", "constraints", "indexes"):
        missing = sorted(set(theirs[key]) - set(ours[key]))
        extra = sorted(set(ours[key]) - set(theirs[key]))
        assert not missing and not extra, f"{key}: missing {missing}, extra {extra}"
        assert ours[key] == theirs[key], f"{key}: same entries, different order"
    # Not vacuous: the contract's counts.
    assert len(theirs["columns"]) == 57
    assert len(theirs["indexes"]) == 34
    assert sum(1 for c in theirs["constraints"] if c[2] == "f") == 9
    assert all(c[4] and c[5] for c in theirs["constraints"] if c[2] == "f")
    assert (
        "django_admin_log",
        "django_admin_log_action_flag_check",
        "c",
        "CHECK ((action_flag >= 0))",
        False,
        False,
    ) in (theirs["constraints"])


@pytest.mark.django
def test_seed_equals_django_migrate(django_url: str, ours_url: str) -> None:
    with connect(django_url) as conn:
        theirs = seed(conn, with_ids=True)
    with connect(ours_url) as conn:
        ours = seed(conn, with_ids=True)
    assert ours["content_types"] == theirs["content_types"]
    assert ours["permissions"] == theirs["permissions"]
    # Applied-at times differ, and so may the order; Django only cares about the (app, name) set.
    assert sorted(m[1:] for m in ours["migrations"]) == sorted(m[1:] for m in theirs["migrations"])
    assert ("api", "0001_initial") in {m[1:] for m in ours["migrations"]}


@pytest.mark.django
def test_django_adopts_schema_sql_database(ours_url: str) -> None:
    with connect(ours_url) as conn:
        before = (structure(conn, DJANGO_TABLES + OUR_TABLES), seed(conn, with_ids=True), all_rows(conn))

    run_django(ours_url, "migrate", "--check", "--no-input")  # exit 1 if anything is unapplied
    plan = run_django(ours_url, "showmigrations", "--plan").stdout
    assert "[X]" in plan and "[ ]" not in plan, plan
    made = run_django(ours_url, "makemigrations", "--check", "--dry-run", "api")
    assert "No changes detected" in made.stdout
    migrated = run_django(ours_url, "migrate", "--no-input")
    assert "No migrations to apply." in migrated.stdout

    # `migrate` ran Django's post_migrate handlers too: they found every content type and permission present.
    with connect(ours_url) as conn:
        after = (structure(conn, DJANGO_TABLES + OUR_TABLES), seed(conn, with_ids=True), all_rows(conn))
    assert after == before


DJANGO_DATA = """
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from django.contrib.sessions.backends.db import SessionStore
from api.models import Challenge, Score

alice = User.objects.create_user("alice", "alice@example.org", "correct horse battery staple")
User.objects.create_superuser("root", "root@example.org", "another long passphrase")
creators = Group.objects.create(name="challenge creators")
creators.permissions.add(Permission.objects.get(codename="add_challenge"))
alice.groups.add(creators)
alice.user_permissions.add(Permission.objects.get(codename="view_score"))
challenge = Challenge.objects.create(
    challenge_id="c0ffee", title="Saliency", description="Explain it.",
    mlmodel="challenges/c0ffee/model/m.pt", dataset="challenges/c0ffee/dataset/d.csv",
    xaimethod="challenges/c0ffee/xai/x.py",
)
Score.objects.create(username="alice", challenge_id="c0ffee", score=0.75)
Score.objects.create(username="alice", challenge_id="c0ffee", score=0.5)
LogEntry.objects.create(
    user=alice, content_type=ContentType.objects.get_for_model(Challenge), object_id=str(challenge.pk),
    object_repr="Saliency", action_flag=ADDITION, change_message="[]",
)
store = SessionStore()
store["_auth_user_id"] = str(alice.pk)
store.create()
"""


@pytest.mark.django
def test_apply_schema_on_django_database_with_data(scratch_databases) -> None:
    url = scratch_databases.create("exact_django_data")
    run_django(url, "migrate", "--no-input", "-v", "0")
    run_django(url, "shell", "-c", DJANGO_DATA)

    with connect(url) as conn:
        before_structure = structure(conn, DJANGO_TABLES)
        before_seed = seed(conn, with_ids=True)
        before_rows = all_rows(conn)
        max_ids = {
            t: conn.execute(sa.text(f"SELECT max(id) FROM {t}")).scalar_one() for t in ("auth_user", "api_score")
        }
    assert len(before_rows["auth_user"]) == 2 and len(before_rows["api_score"]) == 2
    assert len(before_rows["django_session"]) == 1 and len(before_rows["django_admin_log"]) == 1

    apply(url)
    apply(url)

    with connect(url) as conn:
        assert structure(conn, DJANGO_TABLES) == before_structure
        assert seed(conn, with_ids=True) == before_seed
        assert all_rows(conn) == before_rows
        present = set(conn.execute(sa.text("SELECT tablename FROM pg_tables WHERE tablename LIKE 'exact%'")).scalars())
        assert present == set(OUR_TABLES)
        score_indexes = set(
            conn.execute(sa.text("SELECT indexname FROM pg_indexes WHERE tablename = 'api_score'")).scalars()
        )
        assert set(OUR_SCORE_INDEXES) <= score_indexes
        # The read models were filled from Django's rows on the first application.
        assert _best_scores(conn) == _best_scores_from_api_score(conn) and _best_scores(conn)
        # Ids continue after Django's rows: our plain INSERTs (no id) never collide with them.
        new_score = conn.execute(
            sa.text(
                "INSERT INTO api_score (username, challenge_id, score, created_at) "
                "VALUES ('alice', 'c0ffee', 0.9, now()) RETURNING id"
            )
        ).scalar_one()
        assert new_score > max_ids["api_score"]
        new_user = conn.execute(
            sa.text(
                "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff, "
                "is_active, date_joined) VALUES ('!', false, 'bob', '', '', '', false, true, now()) RETURNING id"
            )
        ).scalar_one()
        assert new_user > max_ids["auth_user"]
        conn.execute(
            sa.text("INSERT INTO exact_session (id, user_id, expires_at) VALUES ('tok', :u, now() + interval '1 day')"),
            {"u": new_user},
        )

    run_django(url, "migrate", "--check", "--no-input")
    migrated = run_django(url, "migrate", "--no-input")
    assert "No migrations to apply." in migrated.stdout
    # Django still reads what it wrote and what we wrote.
    check = run_django(
        url,
        "shell",
        "-c",
        "from django.contrib.auth.models import User; from api.models import Score; "
        "u = User.objects.get(username='alice'); assert u.check_password('correct horse battery staple'); "
        "assert u.has_perm('api.add_challenge') and u.has_perm('api.view_score'); "
        "print('COUNTS', Score.objects.count(), User.objects.count())",
    )
    # (Django 5.2's shell also prints how many objects it auto-imported; only our line counts.)
    assert [line.split()[1:] for line in check.stdout.splitlines() if line.startswith("COUNTS")] == [["3", "3"]]
    with connect(url) as conn:
        assert seed(conn, with_ids=True) == before_seed
    # Django's own writes (ORM insert, delete, update) keep the read models correct through the triggers.
    run_django(
        url,
        "shell",
        "-c",
        "from django.utils import timezone; from api.models import Score; "
        "Score.objects.create(username='carol', challenge_id='c0ffee', score=0.99, created_at=timezone.now()); "
        "Score.objects.filter(username='alice').delete(); "
        "Score.objects.filter(username='carol').update(score=0.42)",
    )
    with connect(url) as conn:
        best = _best_scores(conn)
        assert best == _best_scores_from_api_score(conn)
        assert ("c0ffee", "carol", 0.42) in best and not any(user == "alice" for _, user, _ in best)


def _best_scores(conn: Connection) -> set[tuple]:
    query = "SELECT challenge_id, username, best_high FROM exact_score_best"
    return {tuple(r) for r in conn.execute(sa.text(query))}


def _best_scores_from_api_score(conn: Connection) -> set[tuple]:
    query = "SELECT challenge_id, username, max(score) FROM api_score GROUP BY challenge_id, username"
    return {tuple(r) for r in conn.execute(sa.text(query))}


@pytest.mark.django
def test_django_works_on_our_database_login_and_flush(db_url: str) -> None:
    """Users created here log into Django; Django's own maintenance commands still run on our database."""
    from exact.accounts import create_user
    from exact.sessions import start_session

    db = Database(db_url)
    user = create_user(db, username="made-here", password="violet-otter-42-lamp", is_superuser=True)
    start_session(db, user.id, secret_key="k" * 40, days=1)
    db.dispose()
    check = run_django(
        db_url,
        "shell",
        "-c",
        "from django.contrib.auth import authenticate; u = authenticate(username='made-here', "
        "password='violet-otter-42-lamp'); print('AUTH', u is not None and u.is_superuser and u.is_staff)",
    )
    assert [line for line in check.stdout.splitlines() if line.startswith("AUTH")] == ["AUTH True"]
    run_django(db_url, "flush", "--no-input")  # truncates auth_user: our tables must not block it
    with connect(db_url) as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM auth_user")).scalar_one() == 0

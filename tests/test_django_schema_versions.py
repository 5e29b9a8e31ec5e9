"""Each upstream schema version two ways: Django's own migrations of that version, and our SQL
(db/django_schemas/<version>.sql, then schema.sql, through apply_schema). Same Django tables, and Django of that
version finds nothing to migrate and reads what we wrote.

Django runs in subprocesses (tests/upstream_versions.py -> tests/django_project/run_django.py).
"""

from __future__ import annotations

import json
import re

import pytest
import sqlalchemy as sa

from db.database import Database
from db.schema import apply_schema
from tests.test_schema import connect, seed, structure
from tests.upstream_versions import (
    TABLES,
    UPSTREAM_VERSIONS,
    VERSIONS,
    django_migrate,
    django_shell,
    run_django,
    schema_file,
)

pytestmark = pytest.mark.django

_VARCHAR = "character varying"
_TS = "timestamp with time zone"
_FLOAT = "double precision"
# (column, type, NOT NULL) of the tables that differ between versions, in column order.
_SPEC_CHALLENGE = [
    ("id", "bigint", True),
    ("challenge_id", f"{_VARCHAR}(100)", True),
    ("title", f"{_VARCHAR}(100)", True),
    ("description", "text", True),
    ("created_at", _TS, True),
]
EXPECTED_COLUMNS = {
    "spec": {
        "api_challenge": [
            *_SPEC_CHALLENGE,
            ("mlmodel", f"{_VARCHAR}(100)", True),
            ("dataset", f"{_VARCHAR}(100)", True),
            ("xaimethod", f"{_VARCHAR}(100)", True),
        ],
        "api_score": [
            ("id", "bigint", True),
            ("username", f"{_VARCHAR}(150)", True),
            ("challenge_id", f"{_VARCHAR}(100)", True),
            ("score", _FLOAT, True),
            ("created_at", _TS, True),
        ],
    },
    "2025-07": {
        "api_challenge": [
            *_SPEC_CHALLENGE,
            ("created_by", f"{_VARCHAR}(150)", True),
            ("closes_on", _TS, False),
            ("dataset", f"{_VARCHAR}(100)", False),
            ("mlmodel", f"{_VARCHAR}(100)", False),
            ("xaimethod", f"{_VARCHAR}(100)", False),
        ],
        "api_score": [
            ("id", "bigint", True),
            ("username", f"{_VARCHAR}(150)", True),
            ("challenge_id", f"{_VARCHAR}(100)", True),
            ("score", _FLOAT, False),
            ("emd_score", _FLOAT, False),
            ("emd_std", _FLOAT, False),
            ("ima_score", _FLOAT, False),
            ("ima_std", _FLOAT, False),
            ("method_name", f"{_VARCHAR}(100)", False),
            ("created_at", _TS, True),
            ("status", f"{_VARCHAR}(20)", True),
            ("error_message", "text", False),
        ],
        "user_api_company": [
            ("id", "bigint", True),
            ("name", f"{_VARCHAR}(200)", True),
            ("description", "text", False),
            ("website", f"{_VARCHAR}(200)", False),
            ("created_at", _TS, True),
            ("user_id", "integer", True),
        ],
    },
    "2026-05": {
        "api_challenge": [
            *_SPEC_CHALLENGE,
            ("dataset", f"{_VARCHAR}(100)", False),
            ("mlmodel", f"{_VARCHAR}(100)", False),
            ("xaimethod", f"{_VARCHAR}(100)", False),
            ("creator", f"{_VARCHAR}(150)", False),
        ],
        "api_score": [
            ("id", "bigint", True),
            ("username", f"{_VARCHAR}(150)", True),
            ("challenge_id", f"{_VARCHAR}(100)", True),
            ("score", _FLOAT, False),
            ("method_name", f"{_VARCHAR}(100)", False),
            ("created_at", _TS, True),
            ("emd_score", _FLOAT, False),
            ("emd_std", _FLOAT, False),
            ("error_message", "text", False),
            ("ima_score", _FLOAT, False),
            ("ima_std", _FLOAT, False),
            ("status", f"{_VARCHAR}(20)", True),
            ("plot_base64", "text", False),
        ],
    },
}
# Beyond schema.sql's 19 rows (built-in apps + api.0001_initial).
EXTRA_MIGRATIONS = {
    "spec": set(),
    "2025-07": {("user_api", "0001_initial")},
    "2026-05": {
        ("api", "0002_auto_20260325_2147"),
        ("api", "0003_challenge_creator"),
        ("api", "0004_score_plot_base64"),
    },
}


def apply(url: str, version: str) -> None:
    database = Database(url, pool_size=1, max_overflow=1)
    try:
        apply_schema(database, django_schema=version)
    finally:
        database.dispose()


def migrations(url: str) -> list[tuple[str, str]]:
    with connect(url) as conn:
        return [tuple(r) for r in conn.execute(sa.text("SELECT app, name FROM django_migrations ORDER BY id"))]


# ---------------------------------------------------------------------------------------------------------------
# fixtures: per version, one database built by Django's migrations and one by our SQL
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=VERSIONS)
def version(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def django_url(version: str, scratch_databases) -> str:
    url = scratch_databases.create("exact_django_" + version.replace("-", "_"))
    django_migrate(url, version)
    return url


@pytest.fixture(scope="module")
def ours_url(version: str, scratch_databases) -> str:
    url = scratch_databases.create("exact_ours_" + version.replace("-", "_"))
    apply(url, version)
    return url


# ---------------------------------------------------------------------------------------------------------------
# the SQL files on their own
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("upstream", UPSTREAM_VERSIONS)
def test_schema_file_only_creates_when_missing_and_inserts_when_missing(upstream: str) -> None:
    text = schema_file(upstream).read_text()
    assert text.startswith("-- Exact: the Django tables as upstream's " + upstream)
    statements = [s.strip() for s in re.sub(r"--[^\n]*", "", text).split(";") if s.strip()]
    assert len(statements) >= 5
    for statement in statements:
        assert re.match(r"(CREATE\s+(TABLE|INDEX)\s+IF\s+NOT\s+EXISTS|INSERT\s+INTO)\s", statement, re.I), statement
        if statement.upper().startswith("INSERT"):
            assert re.search(r"WHERE\s+NOT\s+EXISTS", statement, re.I), statement
    assert not re.search(r"\b(ALTER|DROP|UPDATE|DELETE|TRUNCATE)\b", re.sub(r"--[^\n]*", "", text), re.I)


# ---------------------------------------------------------------------------------------------------------------
# against Django of the same version
# ---------------------------------------------------------------------------------------------------------------


def test_structure_equals_django_migrate(version: str, django_url: str, ours_url: str) -> None:
    tables = TABLES[version]
    with connect(django_url) as conn:
        theirs = structure(conn, tables)
    with connect(ours_url) as conn:
        ours = structure(conn, tables)
    assert theirs["tables"] == sorted(tables)
    assert ours["tables"] == theirs["tables"]
    for key in ("columns", "constraints", "indexes"):
        missing = sorted(set(theirs[key]) - set(ours[key]))
        extra = sorted(set(ours[key]) - set(theirs[key]))
        assert not missing and not extra, f"{version} {key}: missing {missing}, extra {extra}"
        assert ours[key] == theirs[key], f"{version} {key}: same entries, different order"
    # Not vacuous: Django's tables are the ones the version note describes, column by column.
    for table, expected in EXPECTED_COLUMNS[version].items():
        columns = [c for c in theirs["columns"] if c[0] == table]
        assert [(c[1], c[2], c[3]) for c in columns] == expected, table
        # Django-side defaults (status 'completed', created_by 'admin') are not database defaults.
        assert [c[1] for c in columns if c[4] is not None] == ["id"], table
        assert columns[0][4].startswith("auto:"), table
    assert all(c[4] and c[5] for c in theirs["constraints"] if c[2] == "f")
    if version == "2025-07":
        company = [c[1:] for c in theirs["constraints"] if c[0] == "user_api_company"]
        assert ("user_api_company_user_id_key", "u", "UNIQUE (user_id)", False, False) in company
        assert ("user_api_company_pkey", "p", "PRIMARY KEY (id)", False, False) in company
        assert [c[0] for c in company if c[1] == "f"] == ["user_api_company_user_id_9d08c347_fk_auth_user_id"]


def test_migrations_recorded_as_django_records_them(version: str, django_url: str, ours_url: str) -> None:
    theirs, ours = migrations(django_url), migrations(ours_url)
    assert len(set(ours)) == len(ours)
    # Same rows in the same (id) order: a fresh database's history looks like the one `migrate` writes.
    assert ours == theirs
    assert len(ours) == 19 + len(EXTRA_MIGRATIONS[version])
    assert EXTRA_MIGRATIONS[version] <= set(ours)


def test_django_has_nothing_to_do_on_our_database(version: str, ours_url: str) -> None:
    run_django(ours_url, version, "migrate", "--check", "--no-input")  # exit 1 if anything is unapplied
    plan = run_django(ours_url, version, "showmigrations", "--plan").stdout
    assert "[X]" in plan and "[ ]" not in plan, plan
    for app, name in EXTRA_MIGRATIONS[version]:
        assert f"[X]  {app}.{name}" in plan, plan
    # The models of that version match its migrations (and the history recorded here is consistent).
    made = run_django(ours_url, version, "makemigrations", "--check", "--dry-run")
    assert "No changes detected" in made.stdout, made.stdout


def test_seed_matches_django_migrate(version: str, django_url: str, ours_url: str) -> None:
    """Content types and permissions: schema.sql seeds the built-in apps' and api's with the ids Django gives them;
    those of an app it does not know (2025-07's user_api) Django's post_migrate adds when it first migrates our
    database, with the same ids as on Django's own. (Runs after the checks above: it lets Django migrate.)"""
    with connect(django_url) as conn:
        theirs = seed(conn, with_ids=True)
    with connect(ours_url) as conn:
        ours = seed(conn, with_ids=True)
    for key in ("content_types", "permissions"):
        assert set(ours[key]) <= set(theirs[key]), key
        assert {row[1] for row in set(theirs[key]) - set(ours[key])} <= {"user_api"}, key
    if version == "2025-07":
        assert ("user_api", "company") not in {row[1:] for row in ours["content_types"]}  # until Django migrates

    migrated = run_django(ours_url, version, "migrate", "--no-input")
    assert "No migrations to apply." in migrated.stdout
    with connect(ours_url) as conn:
        after = seed(conn, with_ids=True)
    assert after["content_types"] == theirs["content_types"]
    assert after["permissions"] == theirs["permissions"]
    assert len(theirs["content_types"]) == 8 + (version == "2025-07")
    assert len(theirs["permissions"]) == 4 * len(theirs["content_types"])


# Inserted with plain SQL, then read through that version's models (Django's ORM).
SQL_ROWS = {
    "spec": [
        "INSERT INTO api_challenge (challenge_id, title, description, created_at, mlmodel, dataset, xaimethod) "
        "VALUES ('c0ffee', 'Saliency', 'Explain it.', '2026-01-02 03:04:05+00', 'challenges/c0ffee/model/m.pt', "
        "'challenges/c0ffee/dataset/d.csv', '')",
        "INSERT INTO api_score (username, challenge_id, score, created_at) "
        "VALUES ('alice', 'c0ffee', 0.75, '2026-01-03 00:00:00+00')",
    ],
    "2025-07": [
        "INSERT INTO api_challenge (challenge_id, title, description, created_at, created_by, closes_on, dataset, "
        "mlmodel, xaimethod) VALUES ('c0ffee', 'Saliency', 'Explain it.', '2026-01-02 03:04:05+00', 'alice', "
        "'2030-01-01 00:00:00+00', 'challenges/c0ffee/dataset/d.csv', NULL, '')",
        "INSERT INTO api_score (username, challenge_id, score, emd_score, emd_std, ima_score, ima_std, method_name, "
        "created_at, status, error_message) VALUES ('alice', 'c0ffee', 0.75, 0.75, 0.01, 0.5, 0.02, 'saliency', "
        "'2026-01-03 00:00:00+00', 'completed', NULL)",
        "INSERT INTO api_score (username, challenge_id, score, emd_score, emd_std, ima_score, ima_std, method_name, "
        "created_at, status, error_message) VALUES ('bob', 'c0ffee', NULL, NULL, NULL, NULL, NULL, NULL, "
        "'2026-01-04 00:00:00+00', 'failed', 'boom')",
        "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff, "
        "is_active, date_joined) VALUES ('!', false, 'alice', '', '', '', false, true, '2026-01-01 00:00:00+00')",
        "INSERT INTO user_api_company (name, description, website, created_at, user_id) "
        "SELECT 'ACME', NULL, 'https://acme.example', '2026-01-05 00:00:00+00', id FROM auth_user "
        "WHERE username = 'alice'",
    ],
    "2026-05": [
        "INSERT INTO api_challenge (challenge_id, title, description, created_at, dataset, mlmodel, xaimethod, "
        "creator) VALUES ('c0ffee', 'Saliency', 'Explain it.', '2026-01-02 03:04:05+00', "
        "'challenges/c0ffee/dataset/d.csv', NULL, '', 'alice')",
        "INSERT INTO api_score (username, challenge_id, score, method_name, created_at, emd_score, emd_std, "
        "error_message, ima_score, ima_std, status, plot_base64) VALUES ('alice', 'c0ffee', 0.75, 'saliency', "
        "'2026-01-03 00:00:00+00', 0.75, 0.01, NULL, 0.5, 0.02, 'completed', 'iVBORw0KGgo=')",
        "INSERT INTO api_score (username, challenge_id, score, method_name, created_at, emd_score, emd_std, "
        "error_message, ima_score, ima_std, status, plot_base64) VALUES ('bob', 'c0ffee', NULL, NULL, "
        "'2026-01-04 00:00:00+00', NULL, NULL, 'boom', NULL, NULL, 'failed', NULL)",
    ],
}

ORM_READ = """
import datetime, json
from django.db.models.fields.files import FieldFile
from api.models import Challenge, Score

def row(obj):
    out = {}
    for field in obj._meta.concrete_fields:
        value = getattr(obj, field.attname)
        if isinstance(value, FieldFile):
            value = value.name
        elif isinstance(value, datetime.datetime):
            value = value.isoformat()
        out[field.attname] = value
    out.pop("id")
    return out

models = [Challenge, Score]
try:
    from user_api.models import Company
    models.append(Company)
except ImportError:
    pass
for model in models:
    print("RESULT", model.__name__, json.dumps([row(o) for o in model.objects.order_by("id")], sort_keys=True))
for s in Score.objects.order_by("id"):
    print("PRIMARY", getattr(s, "primary_score", s.score), s.get_status_display() if hasattr(s, "status") else "")
"""

_CHALLENGE_BASE = {
    "challenge_id": "c0ffee",
    "title": "Saliency",
    "description": "Explain it.",
    "created_at": "2026-01-02T03:04:05+00:00",
}
_SCORE_BASE = {"username": "alice", "challenge_id": "c0ffee", "score": 0.75, "created_at": "2026-01-03T00:00:00+00:00"}
_UPSTREAM_SCORES = [
    {
        **_SCORE_BASE,
        "emd_score": 0.75,
        "emd_std": 0.01,
        "ima_score": 0.5,
        "ima_std": 0.02,
        "method_name": "saliency",
        "status": "completed",
        "error_message": None,
    },
    {
        "username": "bob",
        "challenge_id": "c0ffee",
        "score": None,
        "created_at": "2026-01-04T00:00:00+00:00",
        "emd_score": None,
        "emd_std": None,
        "ima_score": None,
        "ima_std": None,
        "method_name": None,
        "status": "failed",
        "error_message": "boom",
    },
]
ORM_EXPECTED = {
    "spec": {
        "Challenge": [
            {
                **_CHALLENGE_BASE,
                "mlmodel": "challenges/c0ffee/model/m.pt",
                "dataset": "challenges/c0ffee/dataset/d.csv",
                "xaimethod": "",
            }
        ],
        "Score": [_SCORE_BASE],
    },
    "2025-07": {
        "Challenge": [
            {
                **_CHALLENGE_BASE,
                "created_by": "alice",
                "closes_on": "2030-01-01T00:00:00+00:00",
                "dataset": "challenges/c0ffee/dataset/d.csv",
                "mlmodel": None,
                "xaimethod": "",
            }
        ],
        "Score": _UPSTREAM_SCORES,
        "Company": [
            {
                "name": "ACME",
                "description": None,
                "website": "https://acme.example",
                "created_at": "2026-01-05T00:00:00+00:00",
                "user_id": 1,
            }
        ],
    },
    "2026-05": {
        "Challenge": [
            {
                **_CHALLENGE_BASE,
                "dataset": "challenges/c0ffee/dataset/d.csv",
                "mlmodel": None,
                "xaimethod": "",
                "creator": "alice",
            }
        ],
        "Score": [
            {**_UPSTREAM_SCORES[0], "plot_base64": "iVBORw0KGgo="},
            {**_UPSTREAM_SCORES[1], "plot_base64": None},
        ],
    },
}


def test_orm_reads_rows_written_with_sql(version: str, ours_url: str) -> None:
    with connect(ours_url) as conn:
        for statement in SQL_ROWS[version]:
            conn.execute(sa.text(statement))
    out = run_django(ours_url, version, "shell", "-c", ORM_READ).stdout.splitlines()
    # (Django 5.2's shell also prints how many objects it auto-imported; only our marked lines count.)
    lines = [line.removeprefix("RESULT ") for line in out if line.startswith("RESULT ")]
    read = {name: json.loads(rows) for name, rows in (line.split(" ", 1) for line in lines)}
    assert read == ORM_EXPECTED[version]
    primary = [line.removeprefix("PRIMARY").strip() for line in out if line.startswith("PRIMARY")]
    if version == "spec":
        assert primary == ["0.75"]
    else:
        # Upstream's primary value (emd_score, else score) and its status choices.
        assert primary == ["0.75 Completed", "None Failed"]


ORM_WRITE = """
from api.models import Challenge, Score
challenge = Challenge.objects.create(title="Made by Django", description="d")
Score.objects.create(username="carol", challenge_id=challenge.challenge_id, score=0.25)
print("RESULT", challenge.challenge_id)
"""


@pytest.mark.parametrize("upstream", UPSTREAM_VERSIONS)
def test_orm_writes_fill_django_side_defaults(upstream: str, scratch_databases) -> None:
    """What Django of that version writes into our tables: its own defaults, upstream's id and score rules."""
    url = scratch_databases.create("exact_orm_write")
    apply(url, upstream)
    [challenge_id] = django_shell(url, upstream, ORM_WRITE)
    assert re.fullmatch(r"[0-9a-f]{32}", challenge_id)
    with connect(url) as conn:
        challenge = conn.execute(
            sa.text("SELECT to_jsonb(c) AS j FROM api_challenge c WHERE challenge_id = :c"), {"c": challenge_id}
        ).scalar_one()
        score = conn.execute(sa.text("SELECT to_jsonb(s) AS j FROM api_score s WHERE username = 'carol'")).scalar_one()
    # A FileField without a file is saved as '' even when the column is nullable.
    assert (challenge["dataset"], challenge["mlmodel"], challenge["xaimethod"]) == ("", "", "")
    if upstream == "2025-07":
        assert challenge["created_by"] == "admin" and challenge["closes_on"] is None
    else:
        assert challenge["creator"] is None
    assert (score["score"], score["emd_score"], score["status"]) == (0.25, 0.25, "completed")


# ---------------------------------------------------------------------------------------------------------------
# our SQL on databases Django already made
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("made_by_django", "applied"),
    [("2025-07", "2025-07"), ("2026-05", "2026-05"), ("spec", "2026-05")],
)
def test_apply_on_django_database_changes_nothing(made_by_django: str, applied: str, scratch_databases) -> None:
    """Existing Django tables stay as they are, and no migration is recorded whose effect is not there (a spec
    database given the 2026-05 file does not learn api.0002..0004)."""
    url = scratch_databases.create("exact_django_adopt")
    django_migrate(url, made_by_django)
    tables = TABLES[made_by_django]
    with connect(url) as conn:
        before = (structure(conn, tables), seed(conn, with_ids=True))
    apply(url, applied)
    apply(url, applied)
    with connect(url) as conn:
        after = (structure(conn, tables), seed(conn, with_ids=True))
    assert after == before
    run_django(url, made_by_django, "migrate", "--check", "--no-input")


@pytest.mark.parametrize("upstream", UPSTREAM_VERSIONS)
def test_apply_twice_is_idempotent(upstream: str, empty_db_url: str) -> None:
    apply(empty_db_url, upstream)
    with connect(empty_db_url) as conn:
        first = (structure(conn, TABLES[upstream]), seed(conn, with_ids=True))
    apply(empty_db_url, upstream)
    with connect(empty_db_url) as conn:
        second = (structure(conn, TABLES[upstream]), seed(conn, with_ids=True))
    assert second == first

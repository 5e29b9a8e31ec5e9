"""The user listing at 50,000 users: searched and paged in the database, a bounded page, a bounded number of queries."""

from __future__ import annotations

import math

import pytest
import sqlalchemy as sa

from db import users as users_sql
from db.database import Database
from db.schema import apply_schema
from exact import accounts
from exact.errors import PermissionDenied, ValidationError
from tests.conftest import make_user
from tests.pages_helpers import click, goto, log_in_state, one, rows, run, values

MANY = 50_000
# Not a valid hash (nobody logs in as these users); PBKDF2 for 50,000 rows would take hours.
CHEAP_HASH = "pbkdf2_sha256$1$salt$notarealhash"
PAGE = accounts.USERS_PAGE_SIZE


def _insert_many(db) -> None:
    with db.transaction() as conn:
        conn.execute(
            sa.text(
                """
                INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email,
                                       is_staff, is_active, date_joined)
                SELECT :hash, false, 'user' || lpad(i::text, 5, '0'), 'First' || i, 'Last' || i,
                       'user' || i || '@' || (CASE WHEN i % 2 = 0 THEN 'Even.example.org' ELSE 'odd.example.org' END),
                       false, i % 10 <> 0, now()
                FROM generate_series(1, :n) AS i
                ORDER BY i
                """
            ),
            {"hash": CHEAP_HASH, "n": MANY},
        )


def _expected_people() -> list[dict[str, str]]:
    """The generated users as plain data, in insertion (id) order, written independently of the SQL above."""
    return [
        {
            "username": f"user{i:05d}",
            "name": f"First{i} Last{i}",
            "email": f"user{i}@{'Even' if i % 2 == 0 else 'odd'}.example.org",
        }
        for i in range(1, MANY + 1)
    ]


def _matches(people: list[dict[str, str]], search: str) -> list[str]:
    needle = search.lower()
    return [p["username"] for p in people if any(needle in p[field].lower() for field in ("username", "name", "email"))]


def _populate(db) -> tuple[accounts.User, list[dict[str, str]]]:
    """An administrator, two users with LIKE's special characters in their names, then 50,000 users."""
    with db.transaction() as conn:
        admin_id = users_sql.insert_user(
            conn, username="root", password_hash=CHEAP_HASH, is_staff=True, is_superuser=True
        )
        for username in ("percent%sign", "under_score"):
            users_sql.insert_user(conn, username=username, password_hash=CHEAP_HASH)
    _insert_many(db)
    people = [
        {"username": "root", "name": "", "email": ""},
        {"username": "percent%sign", "name": "", "email": ""},
        {"username": "under_score", "name": "", "email": ""},
        *_expected_people(),
    ]
    return accounts.get_user(db, admin_id), people


@pytest.fixture(scope="module")
def crowded(scratch_databases):
    """One database of 50,003 users shared by the tests that only read it (built once: a few seconds)."""
    database = Database(scratch_databases.create(), pool_size=2, max_overflow=2)
    apply_schema(database)
    admin, people = _populate(database)
    yield database, admin, people
    database.dispose()


@pytest.fixture
def crowd(db):
    """The same users in this test's own database (for the page tests, which write)."""
    return _populate(db)


def _all_pages(db, admin_id, search, limit=PAGE):
    names, offset = [], 0
    while True:
        page = accounts.list_users(db, admin_id, search=search, limit=limit, offset=offset)
        names.extend(u.username for u in page.items)
        if not page.items:
            return names, page.total
        offset += limit


def test_the_first_page_and_the_total(crowded):
    db, admin, people = crowded
    page = accounts.list_users(db, admin.id)
    assert page.total == len(people) == MANY + 3
    assert [u.username for u in page.items] == [p["username"] for p in people[:PAGE]]
    assert page.limit == PAGE and page.offset == 0


def test_paging_reaches_the_last_user_and_past_the_end_is_empty(crowded):
    db, admin, people = crowded
    last_offset = (len(people) - 1) // PAGE * PAGE
    last = accounts.list_users(db, admin.id, offset=last_offset)
    assert [u.username for u in last.items] == [p["username"] for p in people[last_offset:]]
    assert last.items[-1].username == "user50000"
    beyond = accounts.list_users(db, admin.id, offset=last_offset + PAGE)
    assert beyond.items == [] and beyond.total == len(people)


@pytest.mark.parametrize(
    "search",
    [
        "user4242",  # a username prefix and an e-mail address
        "USER00042",  # any case
        "t777 l",  # across first and last name
        "  user12345  ",  # surrounding spaces ignored
    ],
)
def test_search_finds_exactly_the_matching_users_across_pages(crowded, search):
    db, admin, people = crowded
    expected = _matches(people, search.strip())
    found, total = _all_pages(db, admin.id, search, limit=accounts.MAX_USERS_PAGE_SIZE)
    assert found == expected and total == len(expected) and total > 0


def test_a_search_with_25000_matches_pages_to_its_last_match(crowded):
    db, admin, people = crowded
    expected = _matches(people, "even.example")  # part of every even user's e-mail address
    assert len(expected) == MANY // 2
    first = accounts.list_users(db, admin.id, search="EVEN.example")
    assert [u.username for u in first.items] == expected[:PAGE] and first.total == len(expected)
    last_offset = (len(expected) - 1) // PAGE * PAGE
    last = accounts.list_users(db, admin.id, search="EVEN.example", offset=last_offset)
    assert [u.username for u in last.items] == expected[last_offset:] and last.total == len(expected)


@pytest.mark.parametrize(("search", "expected"), [("%", ["percent%sign"]), ("_", ["under_score"]), ("\\", [])])
def test_search_treats_like_wildcards_literally(crowded, search, expected):
    db, admin, _ = crowded
    page = accounts.list_users(db, admin.id, search=search)
    assert [u.username for u in page.items] == expected and page.total == len(expected)


def test_impossible_searches_match_nothing(crowded):
    db, admin, _ = crowded
    for search in ("a\x00b", "\ud800", "no such person at all"):
        page = accounts.list_users(db, admin.id, search=search)
        assert page.items == [] and page.total == 0


@pytest.mark.parametrize(
    ("limit", "offset"), [(0, 0), (accounts.MAX_USERS_PAGE_SIZE + 1, 0), (10, -1), (True, 0), (10, 1.5)]
)
def test_page_bounds_are_checked(crowded, limit, offset):
    db, admin, _ = crowded
    with pytest.raises(ValidationError):
        accounts.list_users(db, admin.id, limit=limit, offset=offset)


def test_only_administrators_list_users(db):
    organiser = make_user(db, "org", staff=True)
    for actor in (None, organiser.id):
        with pytest.raises(PermissionDenied):
            accounts.list_users(db, actor, search="user")


def test_a_page_fetches_a_bounded_number_of_rows(crowded):
    db, admin, _ = crowded
    fetched: list[int] = []

    def count_rows(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT"):
            fetched.append(max(cursor.rowcount, 0))

    sa.event.listen(db.engine, "after_cursor_execute", count_rows)
    try:
        accounts.list_users(db, admin.id, offset=40_000)
    finally:
        sa.event.remove(db.engine, "after_cursor_execute", count_rows)
    # The administrator check (1 row), the page (50 rows), the count (1 row): nothing else.
    assert sorted(fetched) == [1, 1, PAGE]


# --- the page ---------------------------------------------------------------------------------------------------


def _users_page(app, db, admin):
    at = app()
    log_in_state(at, db, admin.id)
    run(at)
    return goto(at, "app_pages/users.py")


def test_the_page_shows_one_bounded_page_the_total_and_reaches_the_last_user(app, db, crowd):
    admin, people = crowd
    at = _users_page(app, db, admin)
    table = at.dataframe[0].value
    assert len(table) == PAGE
    assert list(table["username"]) == [p["username"] for p in people[:PAGE]]
    pages = math.ceil(len(people) / PAGE)
    caption = values(at.caption)
    assert f"{len(people):,} users; showing 1 to {PAGE:,} (page 1 of {pages:,})." in caption
    assert len(one(at.selectbox, "User (from this page)").options) == PAGE  # no dropdown of everyone

    at.number_input(key="users_page").set_value(pages)
    run(at)
    last_offset = (pages - 1) * PAGE
    assert list(at.dataframe[0].value["username"]) == [p["username"] for p in people[last_offset:]]
    assert at.dataframe[0].value["username"].iloc[-1] == "user50000"


def test_searching_on_the_page_and_changing_a_found_user(app, db, crowd):
    admin, people = crowd
    at = _users_page(app, db, admin)
    at.number_input(key="users_page").set_value(7)
    run(at)
    one(at.text_input, "Search users").input("user4242")
    run(at)
    expected = _matches(people, "user4242")
    assert list(at.dataframe[0].value["username"]) == expected  # and back on page 1
    assert at.number_input(key="users_page").value == 1
    assert f"{len(expected)} users match your search; showing 1 to {len(expected)} (page 1 of 1)." in values(at.caption)

    target = rows(db, "SELECT id FROM auth_user WHERE username = 'user42425'")[0]["id"]
    at.selectbox(key="users_pick").set_value(target)
    run(at)
    one(at.checkbox, "Staff: organiser, may create and edit challenges").check()
    click(at, "Save")
    assert values(at.success) == ["Saved user42425: organiser, active."]
    assert rows(db, "SELECT is_staff FROM auth_user WHERE username = 'user42425'") == [{"is_staff": True}]

    one(at.text_input, "Search users").input("nobody by this name")
    run(at)
    assert values(at.info) == ["No user matches your search."] and not at.dataframe


def test_one_run_of_the_page_issues_as_many_statements_at_50000_users_as_at_three(app, db):
    from ui.runtime import get_db

    admin = make_user(db, "root", superuser=True)
    make_user(db, "pat")
    make_user(db, "olivia")
    at = _users_page(app, db, admin)
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    engine = get_db().engine  # the app's own engine (AppTest runs the script in this process)
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        run(at)
        few = len(statements)
        assert len(at.dataframe[0].value) == 3
        _insert_many(db)
        statements.clear()
        run(at)
        many = len(statements)
        assert len(at.dataframe[0].value) == PAGE
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    assert few > 0 and many == few

"""No silent limits at realistic size: 1,001 challenges, 1,001 ranked users, the full CSV (issue 8).

Expected values are computed here in Python from the rows inserted, never by the code under test.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from db.database import Database
from exact import scores
from exact.challenges import SORT_LABELS, list_challenges
from tests.conftest import make_user
from tests.pages_helpers import log_in_state, messages, run, title

N = 1001
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def _execute(db: Database, query: str, **params) -> None:
    with db.transaction() as conn:
        conn.execute(sa.text(query), params)


def _many_challenges(db: Database) -> list[dict]:
    """1,001 challenges in one INSERT ... SELECT; ch-0000 is the oldest. Returns what was inserted."""
    _execute(
        db,
        "INSERT INTO api_challenge (challenge_id, title, description, created_at, mlmodel, dataset, xaimethod) "
        "SELECT 'ch-' || lpad(i::text, 4, '0'), 'Challenge ' || ((i * 37) % 1009), 'about ' || i, "
        ":t + i * interval '1 hour', '', '', '' FROM generate_series(0, :n - 1) AS i",
        t=T0,
        n=N,
    )
    # A few scores so the statistics sorts have something to order by (and ties to break).
    _execute(
        db,
        "INSERT INTO api_score (username, challenge_id, score, created_at) "
        "SELECT 'u' || (i % 7), 'ch-' || lpad((i % 97)::text, 4, '0'), (i % 13) / 10.0, :t "
        "FROM generate_series(0, 499) AS i",
        t=T0,
    )
    return [
        {"challenge_id": f"ch-{i:04d}", "title": f"Challenge {(i * 37) % 1009}", "description": f"about {i}"}
        for i in range(N)
    ]


@pytest.fixture
def site(db):
    """An administrator exists, so the app shows its pages instead of the first-run set-up."""
    return make_user(db, "admin", superuser=True)


def _page_through(db: Database, **kwargs) -> list[str]:
    ids, offset = [], 0
    while True:
        page = list_challenges(db, limit=100, offset=offset, **kwargs)
        assert page.total == page.total  # stable within the walk
        ids += [c.challenge_id for c in page.items]
        if not page.items:
            return ids
        offset += 100


@pytest.mark.parametrize("sort", list(SORT_LABELS))
def test_every_one_of_1001_challenges_is_reachable_in_every_sort(db, sort):
    made = _many_challenges(db)
    ids = _page_through(db, sort=sort)
    assert len(ids) == N and set(ids) == {c["challenge_id"] for c in made}  # no row skipped or repeated
    by_age = [c["challenge_id"] for c in made]  # inserted oldest first
    if sort == "newest":
        assert ids == by_age[::-1]
    if sort == "oldest":
        assert ids == by_age
    if sort == "title":
        assert ids == [c["challenge_id"] for c in sorted(made, key=lambda c: (c["title"].lower(), c["challenge_id"]))]
    assert list_challenges(db, sort=sort, limit=10).total == N


def test_search_pages_over_every_match(db):
    made = _many_challenges(db)
    expected = {c["challenge_id"] for c in made if "ch-01" in c["challenge_id"]}
    assert len(expected) == 100
    assert set(_page_through(db, search="ch-01")) == expected
    assert list_challenges(db, search="ch-01").total == 100
    assert [c.challenge_id for c in list_challenges(db, search="ch-0000")] == ["ch-0000"]  # the oldest
    assert [c.challenge_id for c in list_challenges(db, search="about 1000")] == ["ch-1000"]


def test_a_deep_link_opens_the_oldest_of_1001_challenges(app, db, site):
    made = _many_challenges(db)
    at = app()
    at.query_params["challenge"] = "ch-0000"
    run(at.switch_page("app_pages/challenge.py"))
    assert title(at) == made[0]["title"]
    assert at.selectbox(key="challenge_page_pick").value == "ch-0000"


def test_a_deep_link_to_an_unknown_challenge_says_so(app, db, site):
    _many_challenges(db)
    at = app()
    at.query_params["challenge"] = "no-such-challenge"
    run(at.switch_page("app_pages/leaderboard.py"))
    assert any("no-such-challenge" in m for m in messages(at)["error"])
    assert not at.dataframe  # no other challenge's leaderboard shown instead


def test_the_picker_pages_and_searches(app, db, site):
    _many_challenges(db)
    at = app()
    run(at.switch_page("app_pages/leaderboard.py"))
    assert len(at.selectbox(key="leaderboard_pick").options) == 50
    at.number_input(key="leaderboard_pick_page").set_value(21)  # the last page: the oldest challenge
    run(at)
    assert at.selectbox(key="leaderboard_pick").options[-1].endswith("(ch-0000)")
    at.text_input(key="leaderboard_pick_search").set_value("about 7")
    run(at)
    options = at.selectbox(key="leaderboard_pick").options
    # 50 of the 111 matches, and first the current choice (the newest, picked on arrival), kept while searching.
    assert len(options) == 51 and options[0].endswith("(ch-1000)")


# --- 1,001 ranked users -------------------------------------------------------------------------------------------


def _many_users(db: Database, cid: str, *, higher_is_better: bool) -> list[tuple[str, float, int]]:
    """1,001 users with two submissions each; many equal best scores. Returns every (user, score, id)."""
    _execute(
        db,
        "INSERT INTO api_challenge (challenge_id, title, description, created_at, mlmodel, dataset, xaimethod) "
        "VALUES (:c, 'Crowded', 'd', now(), '', '', '')",
        c=cid,
    )
    _execute(
        db, "INSERT INTO exact_competition (challenge_id, higher_is_better) VALUES (:c, :h)", c=cid, h=higher_is_better
    )
    _execute(
        db,
        "INSERT INTO api_score (username, challenge_id, score, created_at) "
        "SELECT 'user' || lpad(i::text, 4, '0'), :c, ((i * 7919) % 113) / 8.0 + k, "
        ":t + ((i * 31) % 1001) * interval '1 minute' + k * interval '1 day' "
        "FROM generate_series(0, :n - 1) AS i, generate_series(0, 1) AS k",
        c=cid,
        t=T0,
        n=N,
    )
    with db.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text("SELECT username, score, created_at, id FROM api_score"))]


def _expected_ranking(rows, *, higher_is_better: bool, best_only: bool) -> list[tuple[int, str, float]]:
    def key(row):
        return (-row[1] if higher_is_better else row[1], row[2], row[3])

    if best_only:
        best = {}
        for row in rows:
            if row[0] not in best or key(row) < key(best[row[0]]):
                best[row[0]] = row
        rows = list(best.values())
    ordered = sorted(rows, key=key)
    ranking = []
    for position, row in enumerate(ordered):
        rank = position + 1 if position == 0 or row[1] != ordered[position - 1][1] else ranking[-1][0]
        ranking.append((rank, row[0], row[1]))
    return ranking


def _all_pages(db, cid, *, show_all: bool, limit: int) -> list[tuple[int, str, float]]:
    got, offset = [], 0
    first = scores.leaderboard(db, cid, show_all=show_all, limit=limit)
    for page in range(first.pages):
        board = scores.leaderboard(db, cid, show_all=show_all, limit=limit, offset=page * limit, charts=False)
        got += list(board.table[["rank", "username", "score"]].itertuples(index=False, name=None))
        offset += limit
    assert len(got) == first.total
    return got


@pytest.mark.parametrize("higher_is_better", [True, False])
def test_paging_through_1001_users_gives_the_whole_ranking(db, higher_is_better):
    rows = _many_users(db, "crowd", higher_is_better=higher_is_better)
    expected = _expected_ranking(rows, higher_is_better=higher_is_better, best_only=True)
    assert len(expected) == N and len({r[0] for r in expected}) < N  # ties exist
    assert _all_pages(db, "crowd", show_all=False, limit=50) == expected
    assert _all_pages(db, "crowd", show_all=False, limit=7) == expected  # ties across many page boundaries


def test_paging_through_every_submission(db):
    rows = _many_users(db, "crowd", higher_is_better=False)
    expected = _expected_ranking(rows, higher_is_better=False, best_only=False)
    assert len(expected) == 2 * N
    assert _all_pages(db, "crowd", show_all=True, limit=50) == expected


def test_jump_to_my_row_lands_on_the_right_page(db):
    rows = _many_users(db, "crowd", higher_is_better=True)
    expected = _expected_ranking(rows, higher_is_better=True, best_only=True)
    for username in ("user0000", "user0500", "user1000", expected[-1][1], expected[0][1]):
        position = [r[1] for r in expected].index(username)
        assert scores.leaderboard_position(db, "crowd", username) == position
        board = scores.leaderboard(db, "crowd", offset=position // 50 * 50)
        assert username in set(board.table.username)
    assert scores.leaderboard_position(db, "crowd", "nobody") is None


def test_jump_to_my_row_in_the_page(app, db, site):
    rows = _many_users(db, "crowd", higher_is_better=True)
    expected = _expected_ranking(rows, higher_is_better=True, best_only=True)
    me = make_user(db, "user0777")
    page = [r[1] for r in expected].index("user0777") // 50 + 1
    at = app()
    log_in_state(at, db, me.id)
    at.query_params["challenge"] = "crowd"
    run(at.switch_page("app_pages/leaderboard.py"))
    [jump] = [b for b in at.button if b.label == "Jump to my row"]
    jump.click()
    run(at)
    assert at.number_input(key="leaderboard_page_crowd_False").value == page
    assert "user0777" in set(at.dataframe[0].value.username)


@pytest.mark.parametrize("show_all", [False, True])
def test_the_csv_holds_the_whole_ranking(db, show_all):
    rows = _many_users(db, "crowd", higher_is_better=True)
    expected = _expected_ranking(rows, higher_is_better=True, best_only=not show_all)
    text = scores.leaderboard_csv(db, scores.leaderboard(db, "crowd", show_all=show_all)).decode()
    table = list(csv.reader(io.StringIO(text)))
    assert table[0][:3] == ["rank", "username", "score"]
    assert len(table) == len(expected) + 1
    assert [(int(r[0]), r[1], float(r[2])) for r in table[1:]] == expected


def test_a_leaderboard_call_costs_the_same_number_of_queries_at_any_size(db):
    _many_users(db, "crowd", higher_is_better=True)  # 1,001 users, 2,002 rows
    _execute(
        db,
        "INSERT INTO api_challenge (challenge_id, title, description, created_at, mlmodel, dataset, xaimethod) "
        "VALUES ('small', 'Small', 'd', now(), '', '', '')",
    )
    _execute(
        db,
        "INSERT INTO api_score (username, challenge_id, score, created_at) "
        "SELECT 'p' || i, 'small', i % 5, now() FROM generate_series(1, 60) AS i",
    )
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        counts = {}
        for cid, offset, show_all in [
            ("small", 50, False), ("crowd", 950, False), ("small", 50, True), ("crowd", 1950, True),
        ]:  # fmt: skip
            statements.clear()
            board = scores.leaderboard(db, cid, offset=offset, show_all=show_all)
            assert not board.table.empty
            counts[(cid, show_all)] = len(statements)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
    assert counts[("small", False)] == counts[("crowd", False)], counts
    assert counts[("small", True)] == counts[("crowd", True)], counts


def test_the_challenge_page_shows_the_top_ten_of_1001(app, db, site):
    rows = _many_users(db, "crowd", higher_is_better=True)
    expected = _expected_ranking(rows, higher_is_better=True, best_only=True)
    at = app()
    at.query_params["challenge"] = "crowd"
    run(at.switch_page("app_pages/challenge.py"))
    table = at.dataframe[0].value
    assert list(zip(table["rank"], table["username"], table["score"], strict=True)) == expected[:10]

"""Read models (db/read_models.sql): kept correct by triggers whoever writes api_score / exact_moderation.

Every test writes with raw SQL behind the app's back (as Django or psql would) and compares the read models with
an independent reference computed in Python from the raw rows.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from db.database import Database
from db.schema import apply_schema
from exact import scores
from exact.challenges import get_challenge, list_challenges
from tests.conftest import make_user

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def _execute(db: Database, query: str, **params) -> None:
    with db.transaction() as conn:
        conn.execute(sa.text(query), params)


def _challenge(db: Database, cid: str, *, higher_is_better: bool | None = None) -> None:
    _execute(
        db,
        "INSERT INTO api_challenge (challenge_id, title, description, created_at, mlmodel, dataset, xaimethod) "
        "VALUES (:c, :c, 'd', now(), '', '', '')",
        c=cid,
    )
    if higher_is_better is not None:
        _execute(
            db,
            "INSERT INTO exact_competition (challenge_id, higher_is_better) VALUES (:c, :h)",
            c=cid,
            h=higher_is_better,
        )


def _insert(db: Database, cid: str, rows) -> list[int]:
    """Rows (username, score, minutes after T0) in one multi-row INSERT statement, as a bulk writer would."""
    values = ", ".join(f"(:u{i}, :c, :s{i}, :t{i})" for i in range(len(rows)))
    params = {"c": cid}
    for i, (username, score, minutes) in enumerate(rows):
        params |= {f"u{i}": username, f"s{i}": score, f"t{i}": T0 + timedelta(minutes=minutes)}
    with db.transaction() as conn:
        query = f"INSERT INTO api_score (username, challenge_id, score, created_at) VALUES {values} RETURNING id"
        return [r[0] for r in conn.execute(sa.text(query), params)]


def _fetch(db: Database, query: str, **params):
    with db.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(query), params)]


def _reference(db: Database) -> dict[str, set]:
    """The read models recomputed in Python from api_score and exact_moderation (never from the read models)."""
    raw = _fetch(db, "SELECT id, challenge_id, username, score, created_at FROM api_score")
    hidden = {r[0] for r in _fetch(db, "SELECT score_id FROM exact_moderation")}
    ranked = [r for r in raw if r[0] not in hidden]
    best: dict[tuple[str, str], list] = {}
    for row in ranked:
        best.setdefault((row[1], row[2]), []).append(row)
    bests, stats, participants, records = set(), {}, {}, set()
    for (cid, user), rows in best.items():
        high = min(rows, key=lambda r: (-r[3], r[4], r[0]))
        low = min(rows, key=lambda r: (r[3], r[4], r[0]))
        last = max(r[4] for r in rows)
        bests.add((cid, user, high[3], high[0], low[3], low[0], len(rows), last))
        s = stats.setdefault(cid, [0, 0, None, None, None])
        s[0] += len(rows)
        s[1] += 1
        s[2] = high[3] if s[2] is None else max(s[2], high[3])
        s[3] = low[3] if s[3] is None else min(s[3], low[3])
        s[4] = last if s[4] is None else max(s[4], last)
        participants[user] = participants.get(user, 0) + 1
    for cid in {r[1] for r in ranked}:
        in_time = sorted((r for r in ranked if r[1] == cid), key=lambda r: (r[4], r[0]))
        for direction in (True, False):
            record = None
            for r in in_time:
                if record is None or (r[3] > record if direction else r[3] < record):
                    record = r[3]
                    records.add((cid, direction, r[0], r[3]))
    active_users = sum(1 for (active,) in _fetch(db, "SELECT is_active FROM auth_user") if active)
    return {
        "best": bests,
        "stats": {(cid, *values) for cid, values in stats.items()},
        "participants": set(participants.items()),
        "records": records,
        "site": {("active_users", active_users)},
    }


def _read_models(db: Database) -> dict[str, set]:
    return {
        "best": set(
            _fetch(
                db,
                "SELECT challenge_id, username, best_high, best_high_id, best_low, best_low_id, submissions, "
                "last_submission_at FROM exact_score_best",
            )
        ),
        "stats": set(
            _fetch(
                db,
                "SELECT challenge_id, submissions, participants, highest, lowest, last_submission_at "
                "FROM exact_challenge_stats",
            )
        ),
        "participants": set(_fetch(db, "SELECT username, challenges FROM exact_participant")),
        "records": set(_fetch(db, "SELECT challenge_id, higher_is_better, score_id, score FROM exact_score_record")),
        "site": set(_fetch(db, "SELECT name, value FROM exact_site_count")),
    }


def _assert_consistent(db: Database) -> None:
    assert _read_models(db) == _reference(db)


def test_inserts_updates_and_deletes_behind_the_apps_back(db):
    _challenge(db, "c1")
    _challenge(db, "c2")
    ids = _insert(db, "c1", [("ann", 0.5, 0), ("ann", 0.9, 1), ("bob", 0.9, 2), ("cat", 0.1, 3)])
    _insert(db, "c2", [("ann", 3.0, 0)])
    _assert_consistent(db)
    _insert(db, "c1", [("bob", 0.95, 4)])  # a single row, as Django's save() does
    _insert(db, "c1", [("dan", 2.0, -10)])  # backdated: it becomes the first record, later ones are not
    _assert_consistent(db)
    _execute(db, "UPDATE api_score SET score = 0.05 WHERE id = :i", i=ids[1])  # an admin edit
    _execute(db, "UPDATE api_score SET username = 'eve' WHERE id = :i", i=ids[3])  # moved to another user
    _assert_consistent(db)
    _execute(db, "DELETE FROM api_score WHERE id = :i", i=ids[2])
    _assert_consistent(db)
    _execute(db, "DELETE FROM api_score WHERE challenge_id = 'c2'")
    _assert_consistent(db)
    assert ("ann", 1) in _read_models(db)["participants"]
    board = scores.leaderboard(db, "c1")
    assert list(board.table.username) == ["dan", "bob", "ann", "eve"]
    assert board.total == 4


def test_moderation_takes_scores_off_and_restoring_puts_them_back(db):
    _challenge(db, "m")
    ids = _insert(db, "m", [("ann", 0.9, 0), ("ann", 0.2, 1), ("bob", 0.5, 2), ("bob", 0.95, 3)])
    moderator = make_user(db, "mod", staff=True)
    _execute(
        db,
        "INSERT INTO exact_moderation (score_id, challenge_id, action, user_id) VALUES (:a, 'm', 'hidden', :u), "
        "(:b, 'm', 'disqualified', :u)",
        a=ids[0], b=ids[3], u=moderator.id,
    )  # fmt: skip
    _assert_consistent(db)
    stats = get_challenge(db, "m")
    assert (stats.participants, stats.submissions, stats.best_score) == (2, 2, 0.5)
    assert list(scores.leaderboard(db, "m").table.score) == [0.5, 0.2]
    _execute(db, "UPDATE exact_moderation SET action = 'withdrawn' WHERE score_id = :a", a=ids[0])
    _assert_consistent(db)
    _execute(db, "DELETE FROM exact_moderation WHERE score_id = :b", b=ids[3])  # restored
    _assert_consistent(db)
    assert list(scores.leaderboard(db, "m").table.score) == [0.95, 0.2]
    _execute(db, "TRUNCATE exact_moderation")
    _assert_consistent(db)


@pytest.mark.parametrize("higher_is_better", [True, False])
def test_both_ranking_directions(db, higher_is_better):
    _challenge(db, "d", higher_is_better=higher_is_better)
    rows = [("ann", 0.3, 0), ("bob", 0.3, 1), ("cat", 0.7, 2), ("ann", 0.1, 3), ("dan", 0.9, 4)]
    _insert(db, "d", rows)
    _assert_consistent(db)
    board = scores.leaderboard(db, "d")
    best = {}
    for user, score, minutes in rows:
        key = (-score if higher_is_better else score, minutes)
        best[user] = min(best.get(user, key), key)
    ordered = sorted(best.items(), key=lambda item: item[1])
    assert list(board.table.username) == [user for user, _ in ordered]
    expected_best = 0.9 if higher_is_better else 0.1
    assert get_challenge(db, "d").best_score == expected_best
    assert board.progression.best_score.tolist() == ([0.3, 0.7, 0.9] if higher_is_better else [0.3, 0.1])


def test_truncate_empties_the_read_models(db):
    _challenge(db, "t")
    _insert(db, "t", [("ann", 1.0, 0)])
    _execute(db, "TRUNCATE api_score")
    assert _read_models(db) == {
        "best": set(),
        "stats": set(),
        "participants": set(),
        "records": set(),
        "site": {("active_users", 0)},
    }


def test_a_bulk_insert_into_one_challenge_is_merged_set_based(db):
    _challenge(db, "bulk")
    _insert(db, "bulk", [("ann", 0.5, 0)])
    _execute(
        db,
        "INSERT INTO api_score (username, challenge_id, score, created_at) "
        "SELECT 'u' || (i % 37), 'bulk', (i * 7919 % 1000) / 1000.0, :t + i * interval '1 second' "
        "FROM generate_series(1, 1001) AS i",
        t=T0,
    )
    _assert_consistent(db)
    assert scores.site_totals(db)["participants"] == 38


def test_first_application_fills_the_read_models_of_an_existing_database(db):
    """An adopted database (rows written before our triggers existed) gets correct read models on first start."""
    _challenge(db, "old")
    _insert(db, "old", [("ann", 0.4, 0), ("bob", 0.8, 1), ("ann", 0.6, 2)])
    # Simulate a database that had api_score rows before the read models existed.
    _execute(db, "DELETE FROM exact_read_model_state")
    _execute(db, "ALTER TABLE api_score DISABLE TRIGGER USER")
    _execute(db, "DELETE FROM exact_score_best; DELETE FROM exact_challenge_stats")
    _insert(db, "old", [("cat", 0.9, 3)])
    _execute(db, "ALTER TABLE api_score ENABLE TRIGGER USER")
    apply_schema(db)
    _assert_consistent(db)
    apply_schema(db)  # idempotent: nothing refilled or duplicated
    _assert_consistent(db)
    assert _fetch(db, "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'exact_%_read_models'") == [(8,)]


def _user(db: Database, username: str, *, active: bool = True) -> None:
    _execute(
        db,
        "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff, "
        "is_active, date_joined) VALUES ('!', false, :u, '', '', '', false, :a, now())",
        u=username,
        a=active,
    )


def test_site_counts_follow_users_written_behind_the_apps_back(db):
    """Home's user and participant counts come from exact_site_count; raw SQL on auth_user keeps them right."""
    _user(db, "u0000", active=False)
    _user(db, "u0001")
    _user(db, "u0002")
    _execute(
        db,
        "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff, "
        "is_active, date_joined) SELECT '!', false, 'bulk' || i, '', '', '', false, i % 7 <> 0, now() "
        "FROM generate_series(1, 1001) AS i",
    )
    _assert_consistent(db)
    assert scores.site_totals(db)["users"] == 2 + 1001 - 143  # u0000 and every 7th bulk user are inactive
    _execute(db, "UPDATE auth_user SET is_active = NOT is_active WHERE username LIKE 'bulk1%'")
    _execute(db, "UPDATE auth_user SET last_login = now()")  # changes no count
    _execute(db, "DELETE FROM auth_user WHERE username LIKE 'bulk2%' OR username = 'u0001'")
    _assert_consistent(db)
    _challenge(db, "c")
    _insert(db, "c", [("ann", 0.5, 0), ("bob", 0.7, 1), ("ann", 0.9, 2)])
    _execute(db, "DELETE FROM api_score WHERE username = 'bob'")
    _assert_consistent(db)
    assert scores.site_totals(db)["participants"] == 1
    _execute(db, "TRUNCATE auth_user CASCADE")
    _assert_consistent(db)
    assert scores.site_totals(db)["users"] == 0


def test_site_counts_are_counted_once_when_first_applied(db):
    _user(db, "ann")
    _user(db, "bob", active=False)
    _challenge(db, "c")
    _insert(db, "c", [("ann", 0.5, 0)])
    # A database from before the site counts: rows written while our triggers did not exist.
    _execute(db, "DELETE FROM exact_read_model_state WHERE name = 'site_counts'")
    _execute(db, "ALTER TABLE auth_user DISABLE TRIGGER USER")
    _user(db, "cat")
    _execute(db, "ALTER TABLE auth_user ENABLE TRIGGER USER")
    _execute(db, "DELETE FROM exact_site_count")
    apply_schema(db)
    _assert_consistent(db)
    apply_schema(db)  # idempotent
    _assert_consistent(db)
    assert (scores.site_totals(db)["users"], scores.site_totals(db)["participants"]) == (2, 1)
    # A bulk load with triggers off (as bench/scale.py does in replica mode), then a rebuild: recounted.
    _execute(db, "ALTER TABLE auth_user DISABLE TRIGGER USER")
    _user(db, "dan")
    _execute(db, "ALTER TABLE auth_user ENABLE TRIGGER USER")
    _execute(db, "SELECT exact_rebuild_read_models()")
    _assert_consistent(db)
    assert scores.site_totals(db)["users"] == 3


def test_challenge_list_and_home_read_the_models(db):
    _challenge(db, "a")
    _challenge(db, "b", higher_is_better=False)
    _insert(db, "a", [("ann", 0.5, 0), ("bob", 0.7, 1)])
    _insert(db, "b", [("ann", 5.0, 0), ("ann", 2.0, 1)])
    page = list_challenges(db, sort="best_score")
    assert [(c.challenge_id, c.best_score, c.participants, c.submissions) for c in page] == [
        ("b", 2.0, 1, 2),
        ("a", 0.7, 2, 2),
    ]
    assert page.total == 2
    totals = scores.site_totals(db)
    assert (totals["challenges"], totals["submissions"], totals["participants"]) == (2, 4, 2)


def test_records_survive_deleting_and_hiding_record_rows_one_by_one(db):
    """Records are repaired locally when a record row goes: compared with a full recomputation after each step."""
    _challenge(db, "r")
    rows = [(f"u{i % 9}", ((i * 7919) % 101) / 10.0, (i * 37) % 200) for i in range(80)]
    ids = _insert(db, "r", rows[:40])
    for row in rows[40:]:
        ids += _insert(db, "r", [row])  # one by one: the incremental path
    _assert_consistent(db)
    moderator = make_user(db, "mod", staff=True)
    for step in range(12):
        order = "DESC" if step % 4 < 2 else "ASC"  # the latest record, or the first one
        [(score_id,)] = _fetch(
            db,
            f"SELECT score_id FROM exact_score_record WHERE higher_is_better = :h ORDER BY created_at {order} LIMIT 1",
            h=step % 2 == 0,
        )
        if step % 3 == 0:
            _execute(
                db,
                "INSERT INTO exact_moderation (score_id, challenge_id, action, user_id) VALUES (:i, 'r', 'hidden', :u)",
                i=score_id,
                u=moderator.id,
            )
        else:
            _execute(db, "DELETE FROM api_score WHERE id = :i", i=score_id)
        _assert_consistent(db)
    _execute(db, "DELETE FROM api_score WHERE id = ANY(:ids)", ids=ids[::3])  # many at once, records among them
    _assert_consistent(db)

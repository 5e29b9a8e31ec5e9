"""Scores service: validation, submitter identity, idempotency and rankings computed in SQL."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from exact import scores
from exact.errors import NotFound, PermissionDenied, ValidationError
from tests.conftest import make_user

T0 = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture
def challenge(db):
    with db.transaction() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO api_challenge (challenge_id, title, description, created_at, mlmodel, dataset, xaimethod)"
                " VALUES ('c1', 'C1', 'd', now(), '', '', '')"
            )
        )
    return "c1"


def _insert(db, rows):
    with db.transaction() as conn:
        for username, score, minutes in rows:
            conn.execute(
                sa.text("INSERT INTO api_score (username, challenge_id, score, created_at) VALUES (:u,'c1',:s,:t)"),
                {"u": username, "s": score, "t": T0 + timedelta(minutes=minutes)},
            )


def _count(db):
    with db.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM api_score")).scalar_one()


def test_submit_stores_the_logged_in_username(db, challenge):
    alice = make_user(db, "alice")
    result = scores.submit_score(db, alice.id, challenge, "0.75")
    assert (result.username, result.score, result.rank, result.ranked_users) == ("alice", 0.75, 1, 1)
    with db.connect() as conn:
        assert conn.execute(sa.text("SELECT username, score FROM api_score")).one() == ("alice", 0.75)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "abc", "", "1e400"])
def test_bad_scores_store_nothing(db, challenge, value):
    alice = make_user(db, "alice")
    with pytest.raises(ValidationError):
        scores.submit_score(db, alice.id, challenge, value)
    assert _count(db) == 0


def test_anonymous_and_inactive_cannot_submit(db, challenge):
    sleepy = make_user(db, "sleepy", active=False)
    for actor in (None, sleepy.id, 999999):
        with pytest.raises(PermissionDenied):
            scores.submit_score(db, actor, challenge, "0.5")
    assert _count(db) == 0


def test_unknown_challenge(db):
    alice = make_user(db, "alice")
    with pytest.raises(NotFound):
        scores.submit_score(db, alice.id, "nope", "0.5")


def test_same_request_key_stores_once(db, challenge):
    alice = make_user(db, "alice")
    first = scores.submit_score(db, alice.id, challenge, "0.5", request_key="form-1")
    again = scores.submit_score(db, alice.id, challenge, "0.5", request_key="form-1")
    assert again.repeated and again.score_id == first.score_id and _count(db) == 1


def test_request_key_of_another_user_is_refused(db, challenge):
    alice, bob = make_user(db, "alice"), make_user(db, "bob")
    scores.submit_score(db, alice.id, challenge, "0.5", request_key="shared")
    with pytest.raises(ValidationError):
        scores.submit_score(db, bob.id, challenge, "0.9", request_key="shared")
    assert _count(db) == 1


def test_concurrent_double_submit_is_idempotent(db, challenge):
    alice = make_user(db, "alice")
    barrier, results = threading.Barrier(5), []

    def click():
        barrier.wait()
        results.append(scores.submit_score(db, alice.id, challenge, "0.5", request_key="double-click"))

    threads = [threading.Thread(target=click) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 5 and len({r.score_id for r in results}) == 1 and _count(db) == 1


def _expected_best_ranking(rows):
    """Independent reference: plain Python over the raw rows."""
    best = {}
    for username, score, minutes in rows:
        if (
            username not in best
            or score > best[username][0]
            or (score == best[username][0] and minutes < best[username][1])
        ):
            best[username] = (score, minutes)
    ordered = sorted(best.items(), key=lambda item: (-item[1][0], item[1][1]))
    ranking = []
    for position, (username, (score, _)) in enumerate(ordered):
        rank = position + 1 if position == 0 or score != ordered[position - 1][1][0] else ranking[-1][0]
        ranking.append((rank, username, score))
    return ranking


def test_best_per_user_ranking_with_ties(db, challenge):
    rows = [("ann", 0.9, 5), ("bob", 0.9, 1), ("cat", 0.8, 0), ("ann", 0.5, 0), ("dan", 0.95, 9), ("bob", 0.2, 7)]
    _insert(db, rows)
    board = scores.leaderboard(db, challenge)
    got = list(board.table[["rank", "username", "score"]].itertuples(index=False, name=None))
    assert got == _expected_best_ranking(rows)
    assert got[:3] == [(1, "dan", 0.95), (2, "bob", 0.9), (2, "ann", 0.9)]
    assert dict(zip(board.table.username, board.table.submissions, strict=True))["ann"] == 2


def test_show_all_ranks_every_submission(db, challenge):
    _insert(db, [("ann", 0.9, 5), ("ann", 0.9, 1), ("bob", 0.1, 0)])
    board = scores.leaderboard(db, challenge, show_all=True)
    assert list(board.table["rank"]) == [1, 1, 3] and len(board.table) == 3


def test_progression_and_histogram(db, challenge):
    _insert(db, [("a", 0.1, 0), ("b", 0.5, 1), ("a", 0.3, 2), ("c", 0.7, 3), ("b", 0.7, 4)])
    board = scores.leaderboard(db, challenge, bins=3)
    assert list(board.progression.best_score) == [0.1, 0.5, 0.7]
    # The distribution is over each participant's best score (a 0.3, b 0.7, c 0.7), bounded by participants.
    assert board.histogram["count"].sum() == 3
    assert board.histogram["bin_start"].min() == pytest.approx(0.3)
    assert board.histogram["bin_end"].max() == pytest.approx(0.7)


@pytest.mark.parametrize("higher_is_better", [True, False])
def test_histogram_of_1001_participants_matches_numpy(db, challenge, higher_is_better):
    """Cross-checked against numpy.histogram over each participant's best (its last bin is closed, as ours)."""
    import numpy as np

    rng = np.random.default_rng(7)
    values = rng.normal(0.6, 0.15, size=(1001, 3))
    with db.transaction() as conn:
        conn.execute(
            sa.text("INSERT INTO exact_competition (challenge_id, higher_is_better) VALUES ('c1', :h)"),
            {"h": higher_is_better},
        )
        conn.execute(
            sa.text(
                "INSERT INTO api_score (username, challenge_id, score, created_at) "
                "SELECT 'u' || i, 'c1', v, now() "
                "FROM unnest(CAST(:users AS int[]), CAST(:values AS float8[])) AS t(i, v)"
            ),
            {"users": [i for i in range(1001) for _ in range(3)], "values": values.ravel().tolist()},
        )
    bests = values.max(axis=1) if higher_is_better else values.min(axis=1)
    expected, edges = np.histogram(bests, bins=30, range=(bests.min(), bests.max()))
    board = scores.leaderboard(db, challenge, bins=30)
    shown = dict(zip(board.histogram["bin_start"].round(9), board.histogram["count"], strict=True))
    assert {round(e, 9): int(n) for e, n in zip(edges[:-1], expected, strict=True) if n} == shown
    assert board.histogram["bin_end"].max() == pytest.approx(bests.max())


def test_histogram_single_value(db, challenge):
    _insert(db, [("a", 0.4, 0), ("b", 0.4, 1)])
    board = scores.leaderboard(db, challenge)
    assert board.histogram["count"].tolist() == [2]


def test_csv_matches_table_and_defuses_formulas(db, challenge):
    _insert(db, [("+cmd", 0.9, 0), ("bob", 0.5, 1)])
    csv_text = scores.leaderboard_csv(db, scores.leaderboard(db, challenge)).decode()
    lines = csv_text.strip().splitlines()
    assert lines[0] == "rank,username,score,created_at,submissions"
    assert lines[1].startswith("1,'+cmd,0.9,") and lines[2].startswith("2,bob,0.5,")


def test_unknown_challenge_leaderboard(db):
    with pytest.raises(NotFound):
        scores.leaderboard(db, "nope")

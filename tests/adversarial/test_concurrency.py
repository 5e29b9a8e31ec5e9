"""Concurrency: many submitters at once, double submits racing each other, two organisers taking the same challenge
id, set-up raced, and two scoring workers sharing one queue. Threads start together behind a Barrier.

Each test opens its own connection pool on the test database (bounded, so a shared PostgreSQL is not exhausted).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from db.database import Database
from exact import accounts, intake
from exact.challenges import ChallengeForm, create_challenge
from exact.errors import PermissionDenied, ValidationError
from exact.scores import leaderboard, submit_score
from exact.storage import UploadedFile
from exact.worker import ScoringWorker
from tests.adversarial.conftest import H, N, W, files, npy
from tests.conftest import make_user
from tests.pages_helpers import rows, scalar

USERS = 50


@pytest.fixture
def pool(db):
    database = Database(db.url, pool_size=20, max_overflow=20)
    yield database
    database.dispose()


def _all_at_once(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run every call in its own thread, released together; each result is the value or the exception raised."""
    barrier = threading.Barrier(len(calls))

    def run(call):
        barrier.wait(timeout=30)
        try:
            return call()
        except Exception as exc:  # noqa: BLE001 - collected and checked by the test
            return exc

    with ThreadPoolExecutor(max_workers=len(calls)) as executor:
        return list(executor.map(run, calls))


def _racers(db, count=USERS, prefix="racer"):
    return [make_user(db, f"{prefix}{i:02d}") for i in range(count)]


def test_fifty_users_submitting_at_once_are_each_stored_once_and_ranked_consistently(db, pool, storage, cast):
    create_challenge(db, storage, cast.owner.id, ChallengeForm("Race", "d", "race"), {})
    racers = _racers(db)
    rng = np.random.default_rng(11)
    values = [round(float(v), 2) for v in rng.uniform(0, 1, USERS)]
    values[1] = values[2] = values[3]  # ties must share a rank
    results = _all_at_once(
        [lambda u=u, v=v: submit_score(pool, u.id, "race", str(v)) for u, v in zip(racers, values, strict=True)]
    )
    assert not [r for r in results if isinstance(r, Exception)], results
    assert [r.username for r in results] == [u.username for u in racers]
    assert len({r.score_id for r in results}) == USERS

    stored = rows(db, "SELECT id, username, score, created_at FROM api_score WHERE challenge_id = 'race'")
    assert len(stored) == USERS
    assert Counter(r["username"] for r in stored) == Counter(u.username for u in racers)
    assert {r["username"]: r["score"] for r in stored} == {u.username: v for u, v in zip(racers, values, strict=True)}

    # An independent ranking: one score each, rank = 1 + how many scored strictly higher, ties by time then id.
    expected = sorted(stored, key=lambda r: (-r["score"], r["created_at"], r["id"]))
    board = leaderboard(db, "race").table
    assert list(board["username"]) == [r["username"] for r in expected]
    assert list(board["score"]) == [r["score"] for r in expected]
    assert list(board["rank"]) == [1 + sum(o["score"] > r["score"] for o in stored) for r in expected]
    assert list(board["submissions"]) == [1] * USERS


def test_fifty_double_submits_store_fifty_rows(db, pool, storage, cast):
    create_challenge(db, storage, cast.owner.id, ChallengeForm("Double", "d", "double"), {})
    racers = _racers(db)
    calls = []
    for index, user in enumerate(racers):  # the same form sent twice, at the same moment
        for _ in range(2):
            calls.append(lambda u=user, i=index: submit_score(pool, u.id, "double", f"0.{i:02d}", request_key=f"f{i}"))
    results = _all_at_once(calls)
    assert not [r for r in results if isinstance(r, Exception)], results
    for index in range(USERS):
        first, second = results[2 * index], results[2 * index + 1]
        assert first.score_id == second.score_id
        assert sorted([first.repeated, second.repeated]) == [False, True]
    assert scalar(db, "SELECT count(*) FROM api_score WHERE challenge_id = 'double'") == USERS
    assert scalar(db, "SELECT count(DISTINCT username) FROM api_score WHERE challenge_id = 'double'") == USERS
    assert scalar(db, "SELECT count(*) FROM exact_submission_request") == USERS


def test_two_organisers_taking_the_same_challenge_id_at_once(db, pool, storage, media_root, cast):
    for round_ in range(8):
        challenge_id = f"contested{round_}"
        contenders = [cast.owner, cast.rival]
        results = _all_at_once(
            [
                lambda u=u, c=challenge_id, r=round_: create_challenge(
                    pool,
                    storage,
                    u.id,
                    ChallengeForm(f"By {u.username}", "d", c),
                    {"dataset": UploadedFile("data.csv", f"made,by\n{u.username},{r}\n".encode())},
                )
                for u in contenders
            ]
        )
        winners = [r for r in results if not isinstance(r, Exception)]
        losers = [r for r in results if isinstance(r, Exception)]
        assert len(winners) == 1 and len(losers) == 1, results
        assert isinstance(losers[0], ValidationError), repr(losers[0])
        assert str(losers[0]) == f"The challenge id '{challenge_id}' is already taken; choose another."
        winner = contenders[results.index(winners[0])]
        assert scalar(db, "SELECT count(*) FROM api_challenge WHERE challenge_id = :c", c=challenge_id) == 1
        assert scalar(db, "SELECT user_id FROM exact_challenge_owner WHERE challenge_id = :c", c=challenge_id) == (
            winner.id
        )
        stored = [f for f in files(media_root) if f.startswith(f"challenges/{challenge_id}/")]
        assert stored == [winners[0].files["dataset"]], stored  # the loser's file is gone, no orphan
        assert (media_root / stored[0]).read_text().splitlines()[1].startswith(winner.username)


def test_racing_to_create_the_first_administrator_has_one_winner(db, pool):
    token = accounts.setup_token()
    results = _all_at_once(
        [
            lambda i=i: accounts.create_first_admin(
                pool,
                username=f"boss{i}",
                password="a long enough password",
                password_again="a long enough password",
                setup_token=token,
            )
            for i in range(6)
        ]
    )
    assert sum(not isinstance(r, Exception) for r in results) == 1, results
    assert all(isinstance(r, PermissionDenied) for r in results if isinstance(r, Exception)), results
    assert scalar(db, "SELECT count(*) FROM auth_user WHERE is_superuser") == 1


def test_racing_registrations_of_one_name_in_different_cases_have_one_winner(db, pool):
    """Usernames are unique case-insensitively ('Alice' cannot sit beside 'alice'), also when registered at once."""
    results = _all_at_once(
        [
            lambda name=name: accounts.register(
                pool, username=name, password="a long enough password", password_again="a long enough password"
            )
            for name in ("Twin", "twin", "TWIN", "twin")
        ]
    )
    assert sum(not isinstance(r, Exception) for r in results) == 1, results
    assert all(
        isinstance(r, ValidationError) and "already taken" in str(r) for r in results if isinstance(r, Exception)
    )
    assert scalar(db, "SELECT count(*) FROM auth_user WHERE lower(username) = 'twin'") == 1


def test_twenty_attribution_submissions_at_once_are_each_scored_once_by_two_workers(db, pool, storage, private, world):
    racers = _racers(db, 20, prefix="explainer")
    rng = np.random.default_rng(12)
    uploads = [npy(rng.normal(size=(N, H, W))) for _ in racers]
    results = _all_at_once(
        [
            lambda u=u, data=data: intake.submit_attributions(
                pool, storage, u.id, "gt", UploadedFile("a.npy", data), method_name=f"method of {u.username}"
            )
            for u, data in zip(racers, uploads, strict=True)
        ]
    )
    assert not [r for r in results if isinstance(r, Exception)], results
    assert {r.status for r in results} == {"queued"}

    workers = [ScoringWorker(pool, storage, private) for _ in range(2)]
    scored = Counter()

    def drain(index):
        while workers[index].run_once():
            scored[index] += 1

    _all_at_once([lambda i=i: drain(i) for i in range(2)])
    assert sum(scored.values()) == 20, scored

    submissions = rows(
        db,
        "SELECT id, username, status, attempts, score_id FROM exact_submission "
        "WHERE kind = 'participant' AND username LIKE 'explainer%'",
    )
    assert len(submissions) == 20
    assert {s["status"] for s in submissions} == {"done"}
    assert {s["attempts"] for s in submissions} == {1}, "a submission was claimed twice"
    assert len({s["score_id"] for s in submissions}) == 20
    scores = rows(db, "SELECT id, username FROM api_score WHERE challenge_id = 'gt' AND username LIKE 'explainer%'")
    assert Counter(s["username"] for s in scores) == Counter(u.username for u in racers)
    assert {s["id"] for s in scores} == {s["score_id"] for s in submissions}


@pytest.mark.parametrize("forms", [10, intake.DEFAULT_MAX_WAITING])
def test_the_same_attribution_form_sent_twice_at_once_is_stored_once(db, pool, storage, world, forms):
    """Each form sent twice at once: one row per form, both sends answered with it. With 10 forms the queue limit
    is raised to fit them; with as many forms as the default limit allows, the last replays must still be answered
    with their stored submission, not refused because the queue is now full."""
    data = npy(np.random.default_rng(13).normal(size=(N, H, W)))
    user = world.cast.other
    calls = []
    for index in range(forms):
        for _ in range(2):
            calls.append(
                lambda i=index: intake.submit_attributions(
                    pool,
                    storage,
                    user.id,
                    "gt",
                    UploadedFile("a.npy", data),
                    method_name="m",
                    request_key=f"a{i}",
                    max_waiting=max(forms, intake.DEFAULT_MAX_WAITING),
                )
            )
    results = _all_at_once(calls)
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, [f"{type(e).__name__}: {str(e)[:120]}" for e in errors]
    for index in range(forms):
        assert results[2 * index].id == results[2 * index + 1].id
    assert scalar(db, "SELECT count(*) FROM exact_submission WHERE user_id = :u", u=user.id) == forms
    assert len([f for f in files(storage.root) if f.startswith(f"submissions/gt/{user.id}/")]) == forms

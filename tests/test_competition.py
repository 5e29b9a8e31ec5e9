"""Competition rules (exact/competition.py), final submissions, the private board, rankings at size, splits."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from exact import competition, evaluation_sets, intake, scoring, splits
from exact.challenges import ChallengeForm, EvaluationChoice, create_challenge
from exact.competition import Rules, choose_finals, clean_rules, publish_private_board, update_rules
from exact.errors import PermissionDenied, ValidationError
from exact.scores import leaderboard, submit_score
from exact.storage import MediaStorage, UploadedFile
from exact.xaitris import BenchmarkSpec
from tests.adversarial.conftest import npy
from tests.conftest import make_user
from tests.pages_helpers import rows

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
T1 = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
TICK = timedelta(microseconds=1)


# --- phases ---------------------------------------------------------------------------------------------------


def test_phase_and_reveal_at_the_boundaries():
    rules = Rules(starts_at=T0, ends_at=T1)
    assert rules.phase(T0 - TICK) == "upcoming"
    assert rules.phase(T0) == "open"
    assert rules.phase(T1 - TICK) == "open"
    assert rules.phase(T1) == "closed"
    assert not rules.private_revealed(T1 - TICK)
    assert rules.private_revealed(T1)
    manual = replace(rules, reveal="manual")
    assert not manual.private_revealed(T1) and not manual.private_revealed(T1 + timedelta(days=365))
    assert replace(manual, revealed_at=T1).private_revealed(T1)
    assert not replace(manual, revealed_at=T1).private_revealed(T1 - TICK)  # never before the end
    assert Rules().phase(T0) == "open" and not Rules().private_revealed(T1)  # no rules: open forever
    # A time zone other than UTC denotes the same instant.
    assert rules.phase(T1.astimezone(timezone(timedelta(hours=5)))) == "closed"
    with pytest.raises(ValidationError, match="opens for submissions on 2026-03-01 12:00 UTC"):
        rules.check_accepting(T0 - TICK)
    with pytest.raises(ValidationError, match="closed on 2026-03-15 12:00 UTC"):
        rules.check_accepting(T1)
    rules.check_accepting(T0)


@pytest.fixture
def owner(db):
    return make_user(db, "olivia", staff=True)


@pytest.fixture
def private(private_root):
    return MediaStorage(private_root, max_bytes=1024 * 1024)


def gt_challenge(db, storage, private, owner, cid, rules=None, *, primary="mass"):
    prepared = evaluation_sets.prepare_benchmark(
        BenchmarkSpec("rigid", n_samples=400, seed=evaluation_sets.secret_seed())
    )
    create_challenge(
        db, storage, owner.id, ChallengeForm(cid, "d", cid), {},
        evaluation=EvaluationChoice(prepared=prepared, private=private, primary_metric=primary),
        rules=rules or Rules(),
    )  # fmt: skip
    scoring.score_waiting_baselines(db, storage, private, cid)
    return prepared


def send(db, storage, user, cid, array, name="m"):
    return intake.submit_attributions(db, storage, user.id, cid, UploadedFile("a.npy", npy(array)), method_name=name)


def test_submissions_are_refused_before_the_start_and_after_the_end(db, storage, private, owner):
    user = make_user(db, "pat")
    now = datetime.now(UTC)
    future = Rules(starts_at=now + timedelta(days=1), ends_at=now + timedelta(days=2))
    past = Rules(starts_at=now - timedelta(days=2), ends_at=now - timedelta(days=1))
    create_challenge(db, storage, owner.id, ChallengeForm("Soon", "d", "soon"), {}, rules=future)
    create_challenge(db, storage, owner.id, ChallengeForm("Over", "d", "over"), {}, rules=past)
    with pytest.raises(ValidationError, match="opens for submissions"):
        submit_score(db, user.id, "soon", 0.5)
    with pytest.raises(ValidationError, match="no longer accepted"):
        submit_score(db, user.id, "over", 0.5)
    gt_challenge(db, storage, private, owner, "gt-soon", future)
    gt_challenge(db, storage, private, owner, "gt-over", past)
    attributions = np.random.default_rng(0).normal(size=(60, 8, 8))
    with pytest.raises(ValidationError, match="opens for submissions"):
        send(db, storage, user, "gt-soon", attributions)
    with pytest.raises(ValidationError, match="no longer accepted"):
        send(db, storage, user, "gt-over", attributions)
    assert rows(db, "SELECT id FROM api_score") == []
    assert rows(db, "SELECT id FROM exact_submission WHERE kind = 'participant'") == []


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (Rules(starts_at=datetime(2026, 1, 1)), "time zone"),
        (Rules(ends_at=datetime(2026, 1, 1)), "time zone"),
        (Rules(starts_at=T1, ends_at=T0), "end must come after the start"),
        (Rules(starts_at=T0, ends_at=T0), "end must come after the start"),
        (Rules(reveal="sometimes"), "automatically at the end or manually"),
        (Rules(final_count=0), "between 1 and 20"),
        (Rules(final_count=21), "between 1 and 20"),
        (Rules(final_count=True), "between 1 and 20"),
        (Rules(daily_limit=-1), "Submissions per day"),
        (Rules(daily_limit=10_001), "Submissions per day"),
        (Rules(daily_limit=2.5), "Submissions per day"),
        (Rules(total_limit=True), "Submissions in total"),
        (Rules(min_value=1, max_value=1), "lowest valid score must be below"),
        (Rules(min_value=2, max_value=1), "lowest valid score must be below"),
        (Rules(min_value=math.nan), "finite number"),
        (Rules(max_value=math.inf), "finite number"),
        (Rules(metric_name="x" * 101), "Metric name"),
    ],
)
def test_clean_rules_refuses_mistakes(rules, message):
    with pytest.raises(ValidationError, match=message):
        clean_rules(rules)


def test_clean_rules_normalises_empty_limits():
    cleaned = clean_rules(Rules(daily_limit=0, total_limit=None, min_value="", metric_name=""))
    assert (cleaned.daily_limit, cleaned.total_limit, cleaned.min_value, cleaned.metric_name) == (
        None,
        None,
        None,
        "Score",
    )


# --- final submissions and the private board ------------------------------------------------------------------


def _end_now(db, owner, cid, reveal="auto"):
    now = datetime.now(UTC)
    update_rules(db, owner.id, cid, Rules(starts_at=now - timedelta(days=3), ends_at=now - TICK, reveal=reveal))


def test_choose_finals_and_the_private_board(db, storage, private, owner):
    pat, quinn = make_user(db, "pat"), make_user(db, "quinn")
    prepared = gt_challenge(db, storage, private, owner, "finals", Rules(final_count=2))
    perfect, noisy = prepared.masks, np.random.default_rng(1).normal(size=(60, 8, 8))
    ids = {}
    for user, name, array in ((pat, "perfect", perfect), (pat, "noisy", noisy), (pat, "half", perfect + noisy),
                              (quinn, "q-perfect", perfect), (quinn, "q-noisy", noisy)):  # fmt: skip
        sub = send(db, storage, user, "finals", array, name)
        assert scoring.process_submission(db, storage, private, sub.id).status == "done"
        ids[name] = sub.id

    with pytest.raises(ValidationError, match="at most 2"):
        choose_finals(db, pat.id, "finals", [ids["perfect"], ids["noisy"], ids["half"]])
    with pytest.raises(ValidationError, match="Only your own"):
        choose_finals(db, pat.id, "finals", [ids["q-noisy"]])
    with pytest.raises(PermissionDenied):
        choose_finals(db, None, "finals", [ids["noisy"]])
    assert choose_finals(db, pat.id, "finals", [ids["noisy"]]) == [ids["noisy"]]
    assert competition.final_choices(db, pat.id, "finals") == [ids["noisy"]]

    _end_now(db, owner, "finals")
    with pytest.raises(ValidationError, match="ended"):
        choose_finals(db, pat.id, "finals", [ids["perfect"]])
    board = leaderboard(db, "finals")
    assert board.board == "private" and board.final_available
    by_user = dict(zip(board.table["username"], board.table["submission_id"], strict=True))
    assert by_user == {"pat": ids["noisy"], "quinn": ids["q-perfect"]}  # pat's choice; quinn's best public
    assert list(board.table["username"]) == ["quinn", "pat"]
    public = leaderboard(db, "finals", board="public")
    assert dict(zip(public.table["username"], public.table["submission_id"], strict=True)) == {
        "pat": ids["perfect"], "quinn": ids["q-perfect"],
    }  # fmt: skip


def test_publish_private_board_manually_only_after_the_end(db, storage, private, owner):
    pat = make_user(db, "pat")
    prepared = gt_challenge(db, storage, private, owner, "manual", Rules(reveal="manual"))
    sub = send(db, storage, pat, "manual", prepared.masks)
    scoring.process_submission(db, storage, private, sub.id)
    with pytest.raises(ValidationError, match="once the challenge has ended"):
        publish_private_board(db, owner.id, "manual")
    with pytest.raises(PermissionDenied):
        publish_private_board(db, pat.id, "manual")
    _end_now(db, owner, "manual", reveal="manual")
    assert leaderboard(db, "manual").board == "public"
    with pytest.raises(ValidationError):
        leaderboard(db, "manual", board="private")
    rules = publish_private_board(db, owner.id, "manual")
    assert rules.revealed_at is not None and rules.private_revealed()
    board = leaderboard(db, "manual")
    assert board.board == "private" and list(board.table["submission_id"]) == [sub.id]


# --- rankings at realistic size -------------------------------------------------------------------------------


def _expected_board(stored, higher_is_better):
    sign = -1 if higher_is_better else 1
    best = {}
    for r in sorted(stored, key=lambda r: (sign * r["score"], r["created_at"], r["id"])):
        best.setdefault(r["username"], r)
    ordered = sorted(best.values(), key=lambda r: (sign * r["score"], r["created_at"], r["id"]))
    ranks, previous = [], None
    for position, r in enumerate(ordered, start=1):
        ranks.append(ranks[-1] if previous == r["score"] else position)
        previous = r["score"]
    return [(rank, r["username"], r["score"]) for rank, r in zip(ranks, ordered, strict=True)]


def test_leaderboard_of_1001_users_ranks_like_an_independent_sort(db, storage, owner):
    for cid, higher in (("up", True), ("down", False)):
        rules = Rules(higher_is_better=higher)
        create_challenge(db, storage, owner.id, ChallengeForm(cid, "d", cid), {}, rules=rules)
        with db.transaction() as conn:
            conn.execute(
                sa.text(
                    """
                    INSERT INTO api_score (username, challenge_id, score, created_at)
                    SELECT 'user' || (g % 1001), :c, ((g * 7919) % 500) / 500.0,
                           timestamptz '2026-01-01 00:00+00' + g * interval '1 second'
                    FROM generate_series(1, 3003) AS g
                    """
                ),
                {"c": cid},
            )
        stored = rows(db, "SELECT id, username, score, created_at FROM api_score WHERE challenge_id = :c", c=cid)
        expected = _expected_board(stored, higher)
        assert len(expected) == 1001
        assert len({r[0] for r in expected}) < 1001  # ties exist
        first = leaderboard(db, cid)
        pages = [leaderboard(db, cid, offset=page * first.limit).table for page in range(first.pages)]
        table = pd.concat(pages, ignore_index=True)
        assert first.total == len(table) == 1001  # every row reachable by paging
        assert list(zip(table["rank"], table["username"], table["score"], strict=True)) == expected
        assert set(table["submissions"]) == {3}


def test_daily_limit_window_resets_at_midnight_utc(db, storage, owner):
    pat = make_user(db, "pat")
    create_challenge(db, storage, owner.id, ChallengeForm("Day", "d", "day"), {}, rules=Rules(daily_limit=2))
    day = datetime(2026, 5, 4, tzinfo=UTC)
    with db.transaction() as conn:
        for moment in (day + timedelta(hours=10), day + timedelta(days=1) - TICK):
            conn.execute(
                sa.text(
                    "INSERT INTO api_score (username, challenge_id, score, created_at) VALUES ('pat', 'day', 1, :t)"
                ),
                {"t": moment},
            )
    with db.connect() as conn:
        rules = competition.rules_in(conn, "day")
        late = competition.allowance_in(conn, rules, pat, now=day + timedelta(days=1) - TICK)
        midnight = competition.allowance_in(conn, rules, pat, now=day + timedelta(days=1))
        # 01:30 at UTC+2 is still 23:30 UTC of the same day.
        elsewhere = competition.allowance_in(
            conn, rules, pat, now=(day + timedelta(hours=23, minutes=30)).astimezone(timezone(timedelta(hours=2)))
        )
    assert (late.today_left, late.may_submit, late.resets_at) == (0, False, day + timedelta(days=1))
    assert (elsewhere.today_left, elsewhere.resets_at) == (0, day + timedelta(days=1))
    assert (midnight.today_left, midnight.may_submit, midnight.resets_at) == (2, True, day + timedelta(days=2))


# --- splits ---------------------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(min_value=1, max_value=5000),
    parts=st.tuples(st.integers(0, 1000), st.integers(0, 1000), st.integers(0, 1000)).filter(lambda p: sum(p) > 0),
)
def test_split_sizes_property(n, parts):
    fractions = tuple(p / sum(parts) for p in parts)
    shares = [n * f for f in fractions]
    try:
        sizes = splits.split_sizes(n, fractions)
    except ValidationError:
        assert shares[1] < 1 or shares[2] < 1  # refused only when public or private could get nothing
        return
    counts = (sizes.development, sizes.public, sizes.private)
    assert sum(counts) == n == sizes.total
    assert all(abs(c - s) < 1 for c, s in zip(counts, shares, strict=True))
    assert sizes.public >= 1 and sizes.private >= 1


def test_organisers_list_and_restore_moderated_scores_and_only_they_can(db, storage, owner):
    from exact import moderation

    create_challenge(db, storage, owner.id, ChallengeForm("Mod", "d", "mod"), {})
    quinn, rival = make_user(db, "quinn"), make_user(db, "rival", staff=True)
    hidden = submit_score(db, quinn.id, "mod", 0.9)
    kept = submit_score(db, quinn.id, "mod", 0.5)
    moderation.moderate(db, owner.id, hidden.score_id, "hidden", "copied")
    assert [m["score_id"] for m in moderation.moderated(db, owner.id, "mod")] == [hidden.score_id]
    assert leaderboard(db, "mod").table["score"].tolist() == [0.5]
    for outsider in (quinn.id, rival.id, None):
        with pytest.raises(PermissionDenied):
            moderation.moderated(db, outsider, "mod")
        with pytest.raises(PermissionDenied):
            moderation.restore(db, outsider, hidden.score_id)
    moderation.restore(db, owner.id, hidden.score_id)
    assert moderation.moderated(db, owner.id, "mod") == []
    assert leaderboard(db, "mod").table["score"].tolist() == [0.9]
    with pytest.raises(ValidationError, match="not hidden"):
        moderation.restore(db, owner.id, kept.score_id)
    messages = [m for (m,) in rows_of(db, "SELECT change_message FROM django_admin_log ORDER BY id")]
    assert messages == ["Hidden on Exact: copied", "Restored on Exact."]


def rows_of(db, query):
    with db.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(query))]

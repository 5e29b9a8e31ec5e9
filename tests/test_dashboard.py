"""The organiser's challenge dashboard: who may see it, what it counts, its pages and its export (exact/dashboard.py,
db/dashboard.py), and the page for every role (AppTest on app.py)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from db import scores as scores_sql
from exact import accounts, dashboard
from exact.challenges import ChallengeForm, create_challenge
from exact.errors import NotFound, PermissionDenied, ValidationError
from exact.moderation import moderate
from tests.conftest import make_user
from tests.pages_helpers import log_in_state, run, title, values

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def people(db):
    return {
        "admin": make_user(db, "root", superuser=True),
        "organiser": make_user(db, "olivia", staff=True),
        "other_organiser": make_user(db, "oscar", staff=True),
        "participant": make_user(db, "pat"),
    }


def _submission(db, challenge_id, username, *, status, created_at, error=None, user_id=None, score=None):
    """A participant's attribution submission row in the given state (trusted set-up, as the scorer leaves it)."""
    with db.transaction() as conn:
        score_id = None
        if score is not None:
            score_id = scores_sql.insert(
                conn, username=username, challenge_id=challenge_id, score=score, created_at=created_at
            )["id"]
        return conn.execute(
            sa.text(
                """
                INSERT INTO exact_submission (challenge_id, kind, user_id, username, method_name, status, error,
                                              primary_metric, primary_value, score_id, created_at, finished_at)
                VALUES (:c, 'participant', :u, :n, :m, :s, :e, 'emd', :v, :sid, :t, :t)
                RETURNING id
                """
            ),
            {
                "c": challenge_id,
                "u": user_id,
                "n": username,
                "m": f"{username}'s method",
                "s": status,
                "e": error,
                "v": score,
                "sid": score_id,
                "t": created_at,
            },  # fmt: skip
        ).scalar_one()


@pytest.fixture
def board(db, storage, people):
    """'own' (olivia's): typed-in scores over three days, a Django-written row, and submissions in every state;
    'theirs' (oscar's) with one score."""
    organiser = people["organiser"].id
    create_challenge(db, storage, organiser, ChallengeForm("Own challenge", "Mine.", "own"), {})
    create_challenge(
        db, storage, people["other_organiser"].id, ChallengeForm("Their challenge", "Theirs.", "theirs"), {}
    )
    with db.transaction() as conn:
        for username, score, days_ago in (("alice", 0.5, 2), ("alice", 0.7, 1), ("=HYPERLINK(1)", 0.6, 1)):
            scores_sql.insert(
                conn, username=username, challenge_id="own", score=score, created_at=NOW - timedelta(days=days_ago)
            )
        scores_sql.insert(conn, username="bob", challenge_id="theirs", score=0.1, created_at=NOW)
    # Submissions (as a server-scored challenge has them): done with its score, failed twice, one waiting.
    _submission(db, "own", "carol", status="done", score=0.9, created_at=NOW - timedelta(hours=3))
    _submission(db, "own", "carol", status="failed", error="+The array has shape (3, 8); expected (4, 8, 8).",
                created_at=NOW - timedelta(hours=2))  # fmt: skip
    _submission(db, "own", "dave", status="failed", error="Scoring took longer than this server's budget.",
                created_at=NOW - timedelta(hours=1))  # fmt: skip
    _submission(db, "own", "dave", status="queued", created_at=NOW - timedelta(minutes=5))
    with db.transaction() as conn:  # a baseline is the organiser's reference, not a submission
        conn.execute(
            sa.text(
                "INSERT INTO exact_submission (challenge_id, kind, username, method_name, status, primary_metric, "
                "created_at) VALUES ('own', 'baseline', 'baseline', 'Random', 'done', 'emd', :t)"
            ),
            {"t": NOW},
        )
    return people


# --- who may see it ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["organiser", "admin"])
def test_the_challenges_organiser_and_administrators_see_its_dashboard(db, board, role):
    summary = dashboard.overview(db, board[role].id, "own", now=NOW)
    assert (summary.participants, summary.submissions, summary.failed, summary.waiting) == (4, 7, 2, 1)


@pytest.mark.parametrize("role", ["other_organiser", "participant", None])
def test_nobody_else_sees_it(db, board, role):
    actor = board[role].id if role else None
    for call in (
        lambda: dashboard.overview(db, actor, "own"),
        lambda: dashboard.participants(db, actor, "own"),
        lambda: dashboard.failed_submissions(db, actor, "own"),
        lambda: dashboard.export(db, actor, "own"),
    ):
        with pytest.raises(PermissionDenied):
            call()


def test_rights_are_read_again_at_every_call_even_the_export(db, board):
    olivia = board["organiser"]
    chunks = dashboard.iter_export(db, olivia.id, "own")
    accounts.set_user_flags(db, board["admin"].id, olivia.id, is_active=True, is_staff=False, is_superuser=False)
    with pytest.raises(PermissionDenied):
        next(chunks)  # the export's button was drawn while she was an organiser; it runs after
    with pytest.raises(PermissionDenied):
        dashboard.overview(db, olivia.id, "own")


def test_a_challenge_without_a_recorded_owner_is_any_organisers(db, board):
    with db.transaction() as conn:
        conn.execute(sa.text("DELETE FROM exact_challenge_owner WHERE challenge_id = 'own'"))
    assert dashboard.overview(db, board["other_organiser"].id, "own").submissions == 7
    with pytest.raises(PermissionDenied):
        dashboard.overview(db, board["participant"].id, "own")


@pytest.mark.parametrize("challenge_id", ["nope", "", "x" * 101])
def test_an_unknown_challenge_is_not_found(db, board, challenge_id):
    with pytest.raises(NotFound):
        dashboard.overview(db, board["admin"].id, challenge_id)


@pytest.mark.parametrize(
    "call",
    [
        lambda db, a: dashboard.overview(db, a, "own", days=7),
        lambda db, a: dashboard.participants(db, a, "own", limit=0),
        lambda db, a: dashboard.participants(db, a, "own", limit=dashboard.MAX_PAGE_SIZE + 1),
        lambda db, a: dashboard.failed_submissions(db, a, "own", offset=-1),
        lambda db, a: dashboard.failed_submissions(db, a, "own", limit=True),
        lambda db, a: dashboard.export(db, a, "own", fmt="xlsx"),
        lambda db, a: dashboard.export(db, a, "own", part=0),
    ],
)
def test_bad_requests_are_refused_with_a_message(db, board, call):
    with pytest.raises(ValidationError):
        call(db, board["admin"].id)


# --- what it shows -----------------------------------------------------------------------------------------------


def test_submissions_per_day_cover_every_day_of_the_period_in_utc(db, board):
    summary = dashboard.overview(db, board["organiser"].id, "own", days=30, now=NOW)
    assert len(summary.per_day) == 30
    assert summary.per_day[0].day == (NOW - timedelta(days=29)).date() and summary.per_day[-1].day == NOW.date()
    by_day = {
        d.day: (d.scored, d.failed, d.waiting) for d in summary.per_day if (d.scored, d.failed, d.waiting) != (0, 0, 0)
    }
    assert by_day == {
        (NOW - timedelta(days=2)).date(): (1, 0, 0),
        (NOW - timedelta(days=1)).date(): (2, 0, 0),
        NOW.date(): (1, 2, 1),
    }
    assert sum(d.scored + d.failed + d.waiting for d in summary.per_day) == summary.submissions


def test_participants_page_through_without_overlap(db, board):
    everyone, offset = [], 0
    while True:
        page = dashboard.participants(db, board["organiser"].id, "own", limit=3, offset=offset)
        assert page.total == 4 and len(page.items) <= 3
        if not page.items:
            break
        everyone += page.items
        offset += 3
    # Most recently active first; alice and "=HYPERLINK(1)" last submitted at the same moment: the name decides.
    assert [p.username for p in everyone] == ["dave", "carol", "=HYPERLINK(1)", "alice"]
    assert [(p.submissions, p.failed) for p in everyone] == [(2, 1), (2, 1), (1, 0), (2, 0)]
    alice = everyone[3]
    assert (alice.first_at, alice.last_at) == (NOW - timedelta(days=2), NOW - timedelta(days=1))


def test_failed_submissions_with_their_reasons_newest_first(db, board):
    page = dashboard.failed_submissions(db, board["organiser"].id, "own")
    assert page.total == 2
    assert [(f.username, f.error) for f in page.items] == [
        ("dave", "Scoring took longer than this server's budget."),
        ("carol", "+The array has shape (3, 8); expected (4, 8, 8)."),
    ]
    assert (
        dashboard.failed_submissions(db, board["organiser"].id, "own", limit=1, offset=1).items[0].username == "carol"
    )


# --- the export --------------------------------------------------------------------------------------------------


def _csv_rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


def test_the_csv_export_has_every_submission_in_time_order_with_formulas_defused(db, board):
    olivia = board["organiser"]
    with db.connect() as conn:
        score_id = conn.execute(sa.text("SELECT id FROM api_score WHERE username = 'alice' AND score = 0.7")).scalar()
    moderate(db, olivia.id, score_id, "hidden", "=looks wrong")
    exported = _csv_rows(dashboard.export(db, olivia.id, "own", fmt="csv"))
    assert [r["username"] for r in exported] == ["alice", "alice", "'=HYPERLINK(1)", "carol", "carol", "dave", "dave"]
    assert [r["status"] for r in exported] == ["done", "done", "done", "done", "failed", "failed", "queued"]
    assert exported[4]["error"] == "'+The array has shape (3, 8); expected (4, 8, 8)."  # defused like a formula
    hidden = next(r for r in exported if r["score"] == "0.7")
    assert (hidden["moderation"], hidden["moderation_reason"]) == ("hidden", "'=looks wrong")
    assert exported[6]["score"] == "" and exported[6]["finished_at"]  # empty cells are empty
    assert tuple(exported[0]) == dashboard.EXPORT_COLUMNS
    assert all(r["username"] != "bob" for r in exported) and all(r["method_name"] != "Random" for r in exported)


def test_the_json_export_is_the_same_rows_as_plain_values(db, board):
    olivia = board["organiser"]
    records = json.loads(dashboard.export(db, olivia.id, "own", fmt="json"))
    assert [r["username"] for r in records] == ["alice", "alice", "=HYPERLINK(1)", "carol", "carol", "dave", "dave"]
    assert records[3]["score"] == 0.9 and records[6]["score"] is None and records[0]["submission_id"] is None
    assert datetime.fromisoformat(records[0]["created_at"]) == NOW - timedelta(days=2)
    assert set(records[0]) == set(dashboard.EXPORT_COLUMNS)


def test_a_large_export_comes_in_parts_that_together_hold_every_row_once(db, board, monkeypatch):
    monkeypatch.setattr(dashboard, "EXPORT_PART_ROWS", 3)
    olivia = board["organiser"]
    assert dashboard.overview(db, olivia.id, "own").export_parts == 3
    parts = [_csv_rows(dashboard.export(db, olivia.id, "own", part=n)) for n in (1, 2, 3, 4)]
    assert [len(p) for p in parts] == [3, 3, 1, 0]
    monkeypatch.setattr(dashboard, "EXPORT_PART_ROWS", 50)
    assert [r for p in parts for r in p] == _csv_rows(dashboard.export(db, olivia.id, "own"))
    assert json.loads(dashboard.export(db, olivia.id, "own", fmt="json", part=9)) == []


def test_the_dashboard_issues_the_same_statements_for_a_big_challenge(db, board):
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    def one_view():
        statements.clear()
        dashboard.overview(db, board["organiser"].id, "own", days=90)
        dashboard.participants(db, board["organiser"].id, "own", offset=0)
        dashboard.failed_submissions(db, board["organiser"].id, "own")
        return len(statements)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        few = one_view()
        with db.transaction() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO api_score (username, challenge_id, score, created_at) "
                    "SELECT 'user' || (i % 700), 'own', i / 5000.0, now() - (i % 90) * interval '1 day' "
                    "FROM generate_series(1, 5000) AS i"
                )
            )
        many = one_view()
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
    assert few > 0 and many == few
    assert dashboard.participants(db, board["organiser"].id, "own").total == 4 + 700
    assert len(dashboard.participants(db, board["organiser"].id, "own").items) == dashboard.PAGE_SIZE


# --- the page ----------------------------------------------------------------------------------------------------


def _page(app, db, user, **query):
    at = app()
    log_in_state(at, db, user.id)
    run(at)
    at.query_params.clear()
    for name, value in query.items():
        at.query_params[name] = value
    return run(at.switch_page("app_pages/dashboard.py"))


def test_the_page_shows_an_organiser_their_challenge(app, db, board):
    at = _page(app, db, board["organiser"], challenge="own")
    assert title(at) == "Challenge dashboard" and not at.error, values(at.error)
    assert {m.label: m.value for m in at.metric} == {
        "Participants": "4", "Submissions": "7", "Failed": "2", "Waiting to be scored": "1",
    }  # fmt: skip
    people, failures = (df.value for df in at.dataframe)
    assert list(people["username"]) == ["dave", "carol", "=HYPERLINK(1)", "alice"]
    assert list(failures["reason"]) == [
        "Scoring took longer than this server's budget.",
        "+The array has shape (3, 8); expected (4, 8, 8).",
    ]
    assert all(df.proto.placeholder == "" for df in at.dataframe)
    assert [b.proto.label for b in at.get("download_button")] == ["Download CSV", "Download JSON"]
    assert at.selectbox(key="dashboard_pick").options == ["Own challenge (own)"]  # only what she organises


def test_the_page_offers_another_organiser_only_their_own(app, db, board):
    at = _page(app, db, board["other_organiser"])
    assert at.selectbox(key="dashboard_pick").value == "theirs"
    assert {m.label: m.value for m in at.metric}["Submissions"] == "1"
    linked = _page(app, db, board["other_organiser"], challenge="own")  # a link to someone else's dashboard
    assert values(linked.error) == ["Only this challenge's organisers (and administrators) may see its dashboard."]
    assert not linked.metric and not linked.dataframe and not linked.get("download_button")


def test_an_organiser_with_no_challenge_and_an_administrator(app, db, board):
    permitted = make_user(db, "perry", staff=True)
    at = _page(app, db, permitted)
    assert values(at.info) == ["You organise no challenge yet."] and not at.metric
    admin = _page(app, db, board["admin"])
    assert set(admin.selectbox(key="dashboard_pick").options) == {"Own challenge (own)", "Their challenge (theirs)"}


def test_participants_and_visitors_never_get_the_page(app, db, board):
    at = app()  # a deep link: the dashboard's address, first request of this session
    log_in_state(at, db, board["participant"].id)
    at.query_params["challenge"] = "own"
    run(at.switch_page("app_pages/dashboard.py"))
    assert title(at) == "Not available" and not at.metric
    assert values(at.warning) == [
        "**Challenge dashboard** is for organisers. You are logged in as **pat** (participant)."
    ]
    visitor = app()
    visitor.query_params["challenge"] = "own"
    run(visitor.switch_page("app_pages/dashboard.py"))
    assert title(visitor) == "Log in" and not visitor.metric


def test_pages_of_participants_on_the_page(app, db, board):
    with db.transaction() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO api_score (username, challenge_id, score, created_at) "
                "SELECT 'user' || lpad(i::text, 3, '0'), 'own', 0.1, now() - i * interval '1 minute' "
                "FROM generate_series(1, 120) AS i"
            )
        )
    at = _page(app, db, board["organiser"], challenge="own")
    assert len(at.dataframe[0].value) == dashboard.PAGE_SIZE
    at.number_input(key="dashboard_people_own").set_value(3)
    run(at)
    assert len(at.dataframe[0].value) == 124 - 2 * dashboard.PAGE_SIZE


def test_the_sidebars_dashboard_link_carries_only_a_challenge_the_organiser_organises(app, db, board):
    def dashboard_link(challenge_id):
        at = app()
        log_in_state(at, db, board["organiser"].id)
        at.query_params["challenge"] = challenge_id
        run(at.switch_page("app_pages/challenge.py"))
        links = {link.label: link.proto.query_string for link in at.sidebar.get("page_link")}
        assert links["Leaderboard"] == f"challenge={challenge_id}"
        return links["Challenge dashboard"]

    assert dashboard_link("own") == "challenge=own"
    assert dashboard_link("theirs") == ""  # the dashboard opens one of her own instead of a refusal

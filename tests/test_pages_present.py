"""The presentation view (app_pages/present.py) through AppTest running app.py against a real scratch database:
for every role, top N, anonymous names (no username anywhere in what the page sends), unknown challenges, several
challenges side by side, highlights after a new score between two runs, and the join link's QR code."""

from __future__ import annotations

import html
import json
import re

import pytest

from exact.challenges import ChallengeForm, create_challenge
from exact.presentation import CHANGE_COLOURS, join_url, qr_data_uri
from exact.scores import submit_score
from exact.storage import MediaStorage
from tests.conftest import make_user
from tests.pages_helpers import open_page, run, title, values

PAGE = "app_pages/present.py"
BOARD_ROW = re.compile(
    r'<tr class="(?P<change>\w+)"><td class="rank">(?P<rank>\d+)</td><td class="name">(?P<name>.*?)</td>'
    r'(?:<td class="bar">.*?</td>)?<td class="score">(?P<score>.*?)</td></tr>'
)
BADGE = re.compile(r'<span class="badge \w+">(.*?)</span>')


@pytest.fixture
def people(db):
    """The superuser closes first-run set-up; olivia organises; pat takes part (and is on no board)."""
    return {
        "superuser": make_user(db, "root", superuser=True),
        "organiser": make_user(db, "olivia", staff=True),
        "participant": make_user(db, "pat"),
    }


@pytest.fixture
def boards(db, media_root, people):
    """Two score-only challenges: tris (alice, bob, carol) and credit (erin, frank)."""
    storage = MediaStorage(media_root, max_bytes=1024 * 1024)
    organiser = people["organiser"].id
    create_challenge(db, storage, organiser, ChallengeForm("XAI-TRIS linear", "Find the tetromino.", "tris"), {})
    create_challenge(db, storage, organiser, ChallengeForm("Credit attribution", "Tabular data.", "credit"), {})
    users = {name: make_user(db, name) for name in ("alice", "bob", "carol", "erin", "frank")}
    for name, challenge, score in (
        ("alice", "tris", 0.5),
        ("alice", "tris", 0.9),
        ("bob", "tris", 0.7),
        ("carol", "tris", 0.95),
        ("erin", "credit", 0.61),
        ("frank", "credit", 0.64),
    ):
        submit_score(db, users[name].id, challenge, score)
    return users


def _open(app, db, user, **query: str):
    """A fresh browser session of ``user`` (None: a visitor) on the presentation page with this query string."""
    return open_page(app, db, user, PAGE, **query)


def _html(at) -> list[str]:
    return [element.value for element in at.get("html")]


def _tables(at) -> list[str]:
    return [body for body in _html(at) if 'class="exact-board' in body]


def _rows(table: str) -> list[tuple[int, str, str, str, str]]:
    """(rank, visible name, badge, score, row class) per row of a board table."""
    rows = []
    for match in BOARD_ROW.finditer(table):
        cell = match["name"]
        badge = BADGE.search(cell)
        name = html.unescape(re.sub(r"<[^>]+>", "", BADGE.sub("", cell.split('<div class="method">')[0])))
        rows.append(
            (int(match["rank"]), name, html.unescape(badge[1]) if badge else "", match["score"], match["change"])
        )
    return rows


def _charts(at) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def _everything_sent(at) -> bytes:
    """Every element and block the run produced (main, sidebar, event container), as the bytes sent."""
    sent = []

    def walk(node) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None and hasattr(proto, "SerializeToString"):
            sent.append(proto.SerializeToString())
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return b"\n".join(sent)


# --- every role ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["visitor", "participant", "organiser"])
def test_every_role_sees_the_presentation(app, db, boards, people, role):
    at = _open(app, db, None if role == "visitor" else people[role], challenge="tris")
    assert title(at) == "XAI-TRIS linear"
    assert not at.error and not at.exception
    [table] = _tables(at)
    assert _rows(table) == [
        (1, "carol", "", "0.95", "same"),
        (2, "alice", "", "0.9", "same"),
        (3, "bob", "", "0.7", "same"),
    ]
    [chart] = _charts(at)
    assert chart["data"][0]["y"] == ["#1 carol", "#2 alice", "#3 bob"]
    assert chart["layout"]["font"]["size"] >= 20
    styles = [body for body in _html(at) if body.startswith("<style>")]
    assert len(styles) == 1 and '[data-testid="stSidebar"]' in styles[0] and "display: none" in styles[0]
    assert any("Open · no closing date · top 3 of 3" in body for body in _html(at))


def test_top_n_shows_that_many_rows_and_no_more(app, db, boards):
    for i in range(9):
        submit_score(db, make_user(db, f"extra{i}").id, "tris", 0.1 + i / 100)
    at = _open(app, db, None, challenge="tris", top="4")
    [table] = _tables(at)
    assert [row[:2] for row in _rows(table)] == [(1, "carol"), (2, "alice"), (3, "bob"), (4, "extra8")]
    assert _charts(at)[0]["data"][0]["y"] == ["#1 carol", "#2 alice", "#3 bob", "#4 extra8"]
    assert any("top 4 of 12" in body for body in _html(at))
    assert b"extra7" not in _everything_sent(at)


# --- anonymous names ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["visitor", "organiser"])
def test_anonymous_mode_sends_no_username_anywhere(app, db, boards, people, role):
    at = _open(app, db, None if role == "visitor" else people[role], challenge="tris", anonymous="1")
    [table] = _tables(at)
    assert [row[:2] for row in _rows(table)] == [(1, "Participant 1"), (2, "Participant 2"), (3, "Participant 3")]
    assert _charts(at)[0]["data"][0]["y"] == ["#1 Participant 1", "#2 Participant 2", "#3 Participant 3"]
    sent = _everything_sent(at)
    for name in ("alice", "bob", "carol"):
        assert name.encode() not in sent, name

    # A newcomer takes the lead: a new label; the others keep theirs (carol is still Participant 1).
    submit_score(db, make_user(db, "dave").id, "tris", 0.99)
    run(at)
    [table] = _tables(at)
    assert [row[:3] for row in _rows(table)] == [
        (1, "Participant 4", "NEW"),
        (2, "Participant 1", "▼1"),
        (3, "Participant 2", "▼1"),
        (4, "Participant 3", "▼1"),
    ]
    sent = _everything_sent(at)
    for name in ("alice", "bob", "carol", "dave"):
        assert name.encode() not in sent, name


def test_without_anonymous_the_usernames_are_what_the_checks_above_would_find(app, db, boards):
    # The check above can fail: the same walk finds the names when the view is not anonymous.
    sent = _everything_sent(_open(app, db, None, challenge="tris"))
    assert all(name.encode() in sent for name in ("alice", "bob", "carol"))


# --- unknown challenges, several side by side ------------------------------------------------------------------------


def test_an_unknown_challenge_says_so_and_links_to_the_list(app, db, boards):
    at = _open(app, db, None, challenge="nope")
    assert title(at) == "Presentation"
    assert values(at.error) == ["There is no challenge 'nope'."]
    assert [link.value for link in at.main.get("page_link")] == ["Choose a challenge from the list"]
    assert not _tables(at) and not _charts(at)


def test_one_unknown_among_several_still_shows_the_others(app, db, boards):
    at = _open(app, db, None, challenges="tris,nope")
    assert values(at.error) == ["There is no challenge 'nope'."]
    [table] = _tables(at)
    assert [row[1] for row in _rows(table)] == ["carol", "alice", "bob"]


def test_no_challenge_explains_the_deep_link(app, db, boards):
    at = _open(app, db, None)
    assert title(at) == "Presentation"
    assert "present?challenge=ID" in at.info[0].value
    assert [link.value for link in at.main.get("page_link")] == ["Choose a challenge from the list"]


def test_several_challenges_side_by_side(app, db, boards, people):
    at = _open(app, db, people["participant"], challenges="tris,credit")
    assert [h.value for h in at.header] == ["XAI-TRIS linear", "Credit attribution"]
    tris, credit = _tables(at)
    assert [row[:2] for row in _rows(tris)] == [(1, "carol"), (2, "alice"), (3, "bob")]
    assert [row[:2] for row in _rows(credit)] == [(1, "frank"), (2, "erin")]
    assert 'data-challenge="tris"' in tris and 'data-challenge="credit"' in credit
    assert 'class="bar"' in tris  # side by side, the rows carry score bars instead of a chart beside them
    assert not _charts(at)
    joins = [body for body in _html(at) if 'class="exact-join' in body]
    assert len(joins) == 2
    for body, challenge_id in zip(joins, ("tris", "credit"), strict=True):
        assert qr_data_uri(join_url(None, challenge_id)) in body


def test_more_challenges_than_fit_are_refused(app, db, boards):
    at = _open(app, db, None, challenges="a,b,c,d,e")
    assert title(at) == "Presentation"
    assert values(at.error) == ["A presentation shows up to 4 challenges side by side; this link names 5."]


# --- highlights between two runs ------------------------------------------------------------------------------------


def test_a_new_score_between_two_runs_is_highlighted(app, db, boards):
    at = _open(app, db, None, challenge="tris")
    [table] = _tables(at)
    assert {row[2] for row in _rows(table)} == {""}

    submit_score(db, boards["alice"].id, "tris", 0.99)  # alice overtakes carol
    submit_score(db, make_user(db, "dave").id, "tris", 0.8)  # a newcomer in third place
    run(at)
    [table] = _tables(at)
    assert _rows(table) == [
        (1, "alice", "▲1", "0.99", "up"),
        (2, "carol", "▼1", "0.95", "down"),
        (3, "dave", "NEW", "0.8", "new"),
        (4, "bob", "▼1", "0.7", "down"),
    ]
    [chart] = _charts(at)
    assert chart["data"][0]["marker"]["color"] == [
        CHANGE_COLOURS["up"],
        CHANGE_COLOURS["down"],
        CHANGE_COLOURS["new"],
        CHANGE_COLOURS["down"],
    ]


def test_the_first_view_of_each_session_marks_nothing(app, db, boards):
    _open(app, db, None, challenge="tris")
    submit_score(db, make_user(db, "dave").id, "tris", 0.99)
    at = _open(app, db, None, challenge="tris")  # another session opened after the score: nothing is "new" to it
    [table] = _tables(at)
    assert [row[1:3] for row in _rows(table)] == [("dave", ""), ("carol", ""), ("alice", ""), ("bob", "")]


# --- the join link -------------------------------------------------------------------------------------------------


def test_the_qr_code_and_link_use_the_address_the_browser_used(app, db, boards):
    at = app()
    at.context = {"url": "http://192.168.1.20:8501/present"}
    run(at)
    at.query_params["challenge"] = "tris"
    run(at.switch_page(PAGE))
    [join] = [body for body in _html(at) if 'class="exact-join' in body]
    url = "http://192.168.1.20:8501/challenge?challenge=tris"
    assert f'src="{qr_data_uri(url)}"' in join
    assert f'<a href="{url}">192.168.1.20:8501/challenge?challenge=tris</a>' in join.replace("<wbr>", "")
    assert "works on this computer only" not in join


def test_a_loopback_address_is_flagged(app, db, boards):
    at = _open(app, db, None, challenge="tris")  # AppTest sends no URL: the fallback, 127.0.0.1:8501
    [join] = [body for body in _html(at) if 'class="exact-join' in body]
    assert qr_data_uri("http://127.0.0.1:8501/challenge?challenge=tris") in join
    assert "works on this computer only" in join

"""The presentation view's service (exact/presentation.py): the deep link, what changed between two refreshes,
anonymous labels, the chart specification, the join link and its QR code. Boards are read from a real database."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import segno
import sqlalchemy as sa

from exact.challenges import ChallengeForm, create_challenge
from exact.competition import Rules
from exact.errors import NotFound, ValidationError
from exact.presentation import (
    CHANGE_COLOURS,
    DEFAULT_REFRESH_SECONDS,
    DEFAULT_TOP,
    FALLBACK_BASE_URL,
    HIGHLIGHT_SECONDS,
    MAX_CHALLENGES,
    MAX_TOP,
    MIN_TOP,
    Snapshot,
    Standing,
    ViewMemory,
    is_loopback,
    join_url,
    parse_request,
    present,
    qr_data_uri,
    qr_svg,
    ranking_chart,
    score_bars,
    short_link,
    site_base,
    snapshot,
)
from exact.scores import submit_score
from tests.conftest import make_user

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _snap(*rows: tuple[int, str, float], challenge_id: str = "c", ground_truth: bool = False, methods=None):
    methods = methods or {}
    return Snapshot(
        challenge_id=challenge_id,
        title="A challenge",
        metric="Score",
        higher_is_better=True,
        ground_truth=ground_truth,
        rules=Rules(challenge_id=challenge_id),
        board="public",
        participants=len(rows),
        standings=tuple(Standing(rank, name, methods.get(name), score) for rank, name, score in rows),
    )


def _shown(board) -> list[tuple[int, str, str | None, int]]:
    return [(e.rank, e.name, e.change, e.moved) for e in board.entries]


# --- the deep link ----------------------------------------------------------------------------------------------


def test_parse_request_reads_one_or_several_challenges_in_order_without_duplicates():
    assert parse_request({"challenge": "a"}).challenge_ids == ("a",)
    assert parse_request({"challenges": " b, a ,,b"}).challenge_ids == ("b", "a")
    assert parse_request({"challenge": "a", "challenges": "b,a", "present": "1"}).challenge_ids == ("a", "b")
    assert parse_request({}).challenge_ids == ()
    request = parse_request({"challenge": "a"})
    assert (request.top, request.anonymous, request.refresh_seconds) == (
        DEFAULT_TOP,
        False,
        DEFAULT_REFRESH_SECONDS,
    )


def test_parse_request_refuses_more_challenges_than_fit_side_by_side():
    names = ",".join(f"c{i}" for i in range(MAX_CHALLENGES + 1))
    with pytest.raises(ValidationError, match=f"up to {MAX_CHALLENGES} challenges"):
        parse_request({"challenges": names})
    assert len(parse_request({"challenges": names.rsplit(",", 1)[0]}).challenge_ids) == MAX_CHALLENGES


@pytest.mark.parametrize(
    ("text", "expected"),
    [("7", 7), ("1", MIN_TOP), ("500", MAX_TOP), ("ten", DEFAULT_TOP), ("", DEFAULT_TOP), (" 12 ", 12)],
)
def test_top_is_brought_into_range(text, expected):
    assert parse_request({"challenge": "a", "top": text}).top == expected


@pytest.mark.parametrize(("text", "expected"), [("1", True), ("true", True), ("Yes", True), ("0", False), ("", False)])
def test_anonymous_flag(text, expected):
    assert parse_request({"challenge": "a", "anonymous": text}).anonymous is expected


def test_refresh_is_brought_into_range():
    assert parse_request({"challenge": "a", "refresh": "0"}).refresh_seconds == 2
    assert parse_request({"challenge": "a", "refresh": "3600"}).refresh_seconds == 60
    assert parse_request({"challenge": "a", "refresh": "10"}).refresh_seconds == 10


# --- changes between refreshes ----------------------------------------------------------------------------------


def test_the_first_refresh_marks_nothing_then_new_entries_and_rank_changes_are_marked():
    memory = ViewMemory()
    first = present(_snap((1, "carol", 0.95), (2, "alice", 0.9), (3, "bob", 0.7)), memory, anonymous=False, now=T0)
    assert _shown(first) == [(1, "carol", None, 0), (2, "alice", None, 0), (3, "bob", None, 0)]

    second = present(
        _snap((1, "alice", 0.99), (2, "carol", 0.95), (3, "dave", 0.8), (4, "bob", 0.7)),
        memory,
        anonymous=False,
        now=T0 + timedelta(seconds=5),
    )
    assert _shown(second) == [
        (1, "alice", "up", 1),
        (2, "carol", "down", 1),
        (3, "dave", "new", 0),
        (4, "bob", "down", 1),
    ]


def test_a_better_score_at_the_same_rank_is_marked():
    memory = ViewMemory()
    present(_snap((1, "carol", 0.95), (2, "alice", 0.9)), memory, anonymous=False, now=T0)
    board = present(_snap((1, "carol", 0.97), (2, "alice", 0.9)), memory, anonymous=False, now=T0)
    assert _shown(board) == [(1, "carol", "better", 0), (2, "alice", None, 0)]


def test_marks_last_highlight_seconds_and_a_later_change_replaces_them():
    memory = ViewMemory()
    present(_snap((1, "carol", 0.95)), memory, anonymous=False, now=T0)
    rows = ((1, "alice", 0.99), (2, "carol", 0.95))
    assert _shown(present(_snap(*rows), memory, anonymous=False, now=T0))[0] == (1, "alice", "new", 0)
    still = T0 + timedelta(seconds=HIGHLIGHT_SECONDS - 1)
    assert _shown(present(_snap(*rows), memory, anonymous=False, now=still))[0] == (1, "alice", "new", 0)
    gone = T0 + timedelta(seconds=HIGHLIGHT_SECONDS)
    assert _shown(present(_snap(*rows), memory, anonymous=False, now=gone)) == [
        (1, "alice", None, 0),
        (2, "carol", None, 0),
    ]
    swapped = present(_snap((1, "carol", 1.0), (2, "alice", 0.99)), memory, anonymous=False, now=gone)
    assert _shown(swapped) == [(1, "carol", "up", 1), (2, "alice", "down", 1)]


def test_a_row_that_left_the_board_and_returns_is_new_again():
    memory = ViewMemory()
    present(_snap((1, "a", 3.0), (2, "b", 2.0)), memory, anonymous=False, now=T0)
    present(_snap((1, "a", 3.0), (2, "c", 2.5)), memory, anonymous=False, now=T0)
    back = present(_snap((1, "a", 3.0), (2, "b", 2.7)), memory, anonymous=False, now=T0)
    assert _shown(back) == [(1, "a", None, 0), (2, "b", "new", 0)]


def test_each_board_of_a_view_has_its_own_memory():
    memory = ViewMemory()
    present(_snap((1, "a", 1.0), challenge_id="x"), memory, anonymous=False, now=T0)
    first_of_y = present(_snap((1, "a", 1.0), challenge_id="y"), memory, anonymous=False, now=T0)
    assert _shown(first_of_y) == [(1, "a", None, 0)]  # y's first refresh: nothing is new there


# --- anonymous labels -------------------------------------------------------------------------------------------


def test_anonymous_labels_follow_their_person_and_never_carry_the_name():
    memory = ViewMemory()
    methods = {"carol": "carol's SHAP", "alice": "Integrated gradients"}
    first = present(
        _snap((1, "carol", 0.95), (2, "alice", 0.9), (3, "bob", 0.7), methods=methods, ground_truth=True),
        memory,
        anonymous=True,
        now=T0,
    )
    assert [(e.rank, e.name, e.method) for e in first.entries] == [
        (1, "Participant 1", None),
        (2, "Participant 2", None),
        (3, "Participant 3", None),
    ]
    second = present(
        _snap((1, "alice", 0.99), (2, "dave", 0.96), (3, "carol", 0.95), (4, "bob", 0.7), ground_truth=True),
        memory,
        anonymous=True,
        now=T0,
    )
    assert [(e.name, e.change) for e in second.entries] == [
        ("Participant 2", "up"),
        ("Participant 4", "new"),
        ("Participant 1", "down"),
        ("Participant 3", "down"),
    ]
    everything = repr(second) + json.dumps(ranking_chart(second))
    for name in ("alice", "bob", "carol", "dave", "SHAP", "Integrated"):
        assert name not in everything


def test_row_keys_are_keyed_hashes_that_differ_between_views():
    one, other = ViewMemory(), ViewMemory()
    assert one.key("alice") == one.key("alice") != other.key("alice")
    assert "alice" not in one.key("alice") and re.fullmatch(r"[0-9a-f]{16}", one.key("alice"))


def test_names_and_methods_are_shown_when_not_anonymous():
    board = present(
        _snap((1, "alice", 0.8123), methods={"alice": "LRP"}, ground_truth=True), ViewMemory(), anonymous=False, now=T0
    )
    assert [(e.name, e.method, e.score_text) for e in board.entries] == [("alice", "LRP", "0.8123")]
    score_only = present(_snap((1, "alice", 0.123456789)), ViewMemory(), anonymous=False, now=T0)
    assert score_only.entries[0].score_text == "0.123457"  # as the leaderboard: 6 significant digits


# --- chart and bars -------------------------------------------------------------------------------------------------


def test_the_chart_shows_the_rows_in_large_type_with_highlight_colours():
    memory = ViewMemory()
    present(_snap((1, "carol", 0.95), (2, "alice", 0.9)), memory, anonymous=False, now=T0)
    board = present(_snap((1, "alice", 0.99), (2, "dave", 0.96), (3, "carol", 0.95)), memory, anonymous=False, now=T0)
    chart = ranking_chart(board)
    [bar] = chart["data"]
    assert bar["y"] == ["#1 alice", "#2 dave", "#3 carol"]
    assert bar["x"] == [0.99, 0.96, 0.95] and bar["text"] == ["0.99", "0.96", "0.95"]
    assert bar["marker"]["color"] == [CHANGE_COLOURS["up"], CHANGE_COLOURS["new"], CHANGE_COLOURS["down"]]
    assert CHANGE_COLOURS["up"] != CHANGE_COLOURS[None] != CHANGE_COLOURS["new"]
    layout = chart["layout"]
    assert layout["font"]["size"] >= 20 and layout["uniformtext"]["minsize"] >= 20
    assert "template" not in layout  # Streamlit's theme applies, as for exact/charts.py
    assert layout["yaxis"]["autorange"] == "reversed"


def test_score_bars():
    assert score_bars([0.8, 0.4, None], higher_is_better=True) == [1.0, 0.5, 0.0]
    assert score_bars([1.0, 2.0, 5.0], higher_is_better=False) == [1.0, pytest.approx(0.15 + 0.85 * 3 / 4), 0.15]
    assert score_bars([-1.0, -3.0], higher_is_better=True) == [1.0, 0.15]
    assert score_bars([2.0, 2.0], higher_is_better=False) == [1.0, 1.0]
    assert score_bars([], higher_is_better=True) == []


# --- the join link and its QR code --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("page_url", "base"),
    [
        ("http://192.168.1.20:8501/present", "http://192.168.1.20:8501"),
        ("https://Exact.Example.org/present", "https://exact.example.org"),
        ("https://exact.example.org:8443/workshop/present", "https://exact.example.org:8443/workshop"),
        ("http://[::1]:8501/present", "http://[::1]:8501"),
        ("http://alice:secret@host.lan:8501/present", "http://host.lan:8501"),
        ("http://host.lan:8501", "http://host.lan:8501"),
        (None, FALLBACK_BASE_URL),
        ("", FALLBACK_BASE_URL),
        (42, FALLBACK_BASE_URL),
        ("javascript:alert(1)", FALLBACK_BASE_URL),
        ("ftp://host.lan/present", FALLBACK_BASE_URL),
        ("http://host.lan:99999/present", FALLBACK_BASE_URL),
        ("http://host.lan:abc/present", FALLBACK_BASE_URL),
        ('http://ho"st<x>/present', FALLBACK_BASE_URL),
        ("http:///present", FALLBACK_BASE_URL),
        ("http://host.lan/a'b/present", "http://host.lan"),
    ],
)
def test_site_base_accepts_only_plain_http_urls(page_url, base):
    assert site_base(page_url) == base


def test_join_url_short_link_and_loopback():
    url = join_url("http://192.168.1.20:8501/present", "tris linear/8x8")
    assert url == "http://192.168.1.20:8501/challenge?challenge=tris%20linear%2F8x8"
    assert short_link(url) == "192.168.1.20:8501/challenge?challenge=tris%20linear%2F8x8"
    assert not is_loopback(url)
    for local in ("http://127.0.0.1:8501/x", "http://localhost:8501/x", "http://[::1]:8501/x"):
        assert is_loopback(local)
    assert join_url(None, "tris") == f"{FALLBACK_BASE_URL}/challenge?challenge=tris"


def _svg_matrix(svg: str, border: int) -> list[list[int]]:
    """The dark modules of segno's SVG path ("M x y" then "h n" dark runs and "m dx dy" moves), without border."""
    path = re.search(r'<path class="qrline"[^>]* d="([^"]+)"', svg).group(1)
    size = int(re.search(r'viewBox="0 0 (\d+) \d+"', svg).group(1))
    grid = [[0] * size for _ in range(size)]
    x = y = 0.0
    for command, a, b in re.findall(r"([MmHh])(-?[\d.]+)(?: (-?[\d.]+))?", path):
        if command == "M":
            x, y = float(a), float(b)
        elif command == "m":
            x, y = x + float(a), y + float(b)
        else:
            run = int(float(a))
            for column in range(int(x), int(x) + run):
                grid[int(y)][column] = 1
            x += run
    return [row[border : size - border] for row in grid[border : size - border]]


def test_the_qr_code_encodes_the_join_url():
    url = "http://192.168.1.20:8501/challenge?challenge=xai-tris-linear-8x8"
    svg = base64.b64decode(qr_data_uri(url).removeprefix("data:image/svg+xml;base64,")).decode()
    assert svg == qr_svg(url) and svg.startswith('<svg xmlns="http://www.w3.org/2000/svg"')
    expected = [list(row) for row in segno.make(url, micro=False).matrix]
    assert _svg_matrix(svg, border=4) == expected
    assert _svg_matrix(qr_svg(url + "x"), border=4) != expected


def test_a_qr_decoder_reads_the_join_url_from_the_embedded_svg():
    import cv2  # OpenCV's QR decoder, an independent reader; installed with quantus (requirements-dev.txt)

    url = "http://192.168.1.20:8501/challenge?challenge=xai-tris-linear-8x8"
    svg = base64.b64decode(qr_data_uri(url).removeprefix("data:image/svg+xml;base64,")).decode()
    modules = np.array(_svg_matrix(svg, border=0), dtype=np.uint8)  # with its quiet zone, as drawn
    image = np.kron(1 - modules, np.ones((8, 8), dtype=np.uint8)) * 255  # dark modules black, 8 px each
    text, _points, _ = cv2.QRCodeDetector().detectAndDecode(image)
    assert text == url


# --- reading a board from the database ------------------------------------------------------------------------------


@pytest.fixture
def challenge(db, storage):
    organiser = make_user(db, "olivia", staff=True)
    return create_challenge(db, storage, organiser.id, ChallengeForm("Tris", "d", "tris"), {})


def test_snapshot_reads_the_leaderboard_top(db, challenge):
    for name, score in (("alice", 0.9), ("bob", 0.7), ("carol", 0.95), ("dave", 0.5)):
        submit_score(db, make_user(db, name).id, "tris", score)
    submit_score(db, make_user(db, "erin").id, "tris", 0.7)  # ties bob: same rank, listed after him
    snap = snapshot(db, "tris", top=4)
    assert [(s.rank, s.username, s.score) for s in snap.standings] == [
        (1, "carol", 0.95),
        (2, "alice", 0.9),
        (3, "bob", 0.7),
        (3, "erin", 0.7),
    ]
    assert (snap.title, snap.metric, snap.participants, snap.ground_truth) == ("Tris", "Score", 5, False)
    with pytest.raises(NotFound):
        snapshot(db, "nope")


def test_a_refresh_runs_the_same_number_of_queries_whatever_the_number_of_scores(db, challenge):
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    users = [make_user(db, f"user{i:02d}") for i in range(40)]
    counts = []
    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        for batch in (users[:3], users[3:]):
            for i, user in enumerate(batch):
                submit_score(db, user.id, "tris", 0.5 + i / 100)
            statements.clear()
            snapshot(db, "tris", top=10)
            counts.append(len(statements))
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
    assert counts[0] == counts[1] <= 8, counts  # 6 today: the challenge, its rules, the board

"""The workshop presentation view: the top of one or more leaderboards, for a projector (docs/workshop.md).

Plain Python: the page (app_pages/present.py with ui/presentation.py) renders what this returns.

* ``parse_request`` reads the deep link (``?challenge=ID`` or ``?challenges=a,b``, ``top``, ``anonymous``,
  ``refresh``); ``snapshot`` reads one challenge's top rows through the leaderboard service, so the ranking,
  moderation and the rounding of server-scored aggregates are exactly the leaderboard's.
* ``present`` turns a snapshot into what is shown, against what the same view showed at its previous refresh
  (``ViewMemory``, kept by the page in the session): new entries, rank changes and improved scores are marked
  for ``HIGHLIGHT_SECONDS``. With ``anonymous`` every name is a label ("Participant 3"), numbered in the order
  this view first saw each participant, so a label follows its person within the view. Usernames stay here: a
  ``PresentedBoard`` holds only labels and an opaque key (a keyed hash) per row, so nothing built from it, the
  table or the chart's JSON, can carry a real name in anonymous mode.
* ``join_url`` / ``short_link`` / ``qr_svg`` / ``qr_data_uri``: where the audience joins (the challenge page),
  as text and as a QR code (segno, SVG).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import math
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import segno

from db.database import Database
from exact.challenges import get_challenge
from exact.competition import Rules
from exact.errors import ValidationError
from exact.scores import leaderboard

MAX_CHALLENGES = 4  # side by side on one screen; more would not be readable from the back of a room
DEFAULT_TOP = 10
MIN_TOP, MAX_TOP = 3, 25
DEFAULT_REFRESH_SECONDS = 5
MIN_REFRESH_SECONDS, MAX_REFRESH_SECONDS = 2, 60
HIGHLIGHT_SECONDS = 30  # a few refreshes: long enough for a room to notice, short enough to mean "just now"
FALLBACK_BASE_URL = "http://127.0.0.1:8501"  # Streamlit's default address, when the page's own URL is unknown
_TRUE = frozenset({"1", "true", "yes", "on"})
_HOST_RE = re.compile(r"[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]")
_PATH_RE = re.compile(r"[A-Za-z0-9/._~-]*")

Change = Literal["new", "up", "down", "better"]
CHANGE_COLOURS: dict[str | None, str] = {
    None: "#4C78A8",
    "down": "#4C78A8",  # dropping a place is shown by its arrow, not by colour: it is somebody else's news
    "new": "#F58518",
    "up": "#54A24B",
    "better": "#54A24B",
}


# --- the deep link ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PresentationRequest:
    challenge_ids: tuple[str, ...]
    top: int = DEFAULT_TOP
    anonymous: bool = False
    refresh_seconds: int = DEFAULT_REFRESH_SECONDS


def _bounded_int(text: str | None, default: int, low: int, high: int) -> int:
    # A projector link is typed by hand: a number out of range is brought into it rather than refused.
    try:
        value = int(str(text).strip()) if text is not None else default
    except ValueError:
        value = default
    return min(high, max(low, value))


def parse_request(params: Mapping[str, str]) -> PresentationRequest:
    """The view's query string: ``challenge`` and/or ``challenges`` (comma-separated, up to MAX_CHALLENGES,
    duplicates dropped, order kept), ``top``, ``anonymous`` (1/true/yes/on) and ``refresh`` (seconds)."""
    names: list[str] = []
    for part in [params.get("challenge") or "", *(params.get("challenges") or "").split(",")]:
        name = part.strip()
        if name and name not in names:
            names.append(name[:100])  # the column's width; get_challenge reports anything longer as unknown
    if len(names) > MAX_CHALLENGES:
        raise ValidationError(
            f"A presentation shows up to {MAX_CHALLENGES} challenges side by side; this link names {len(names)}."
        )
    return PresentationRequest(
        challenge_ids=tuple(names),
        top=_bounded_int(params.get("top"), DEFAULT_TOP, MIN_TOP, MAX_TOP),
        anonymous=str(params.get("anonymous") or "").strip().lower() in _TRUE,
        refresh_seconds=_bounded_int(
            params.get("refresh"), DEFAULT_REFRESH_SECONDS, MIN_REFRESH_SECONDS, MAX_REFRESH_SECONDS
        ),
    )


# --- reading a board ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Standing:
    """One ranked row as the leaderboard service returns it. Holds the username: never leaves this module."""

    rank: int
    username: str
    method: str | None
    score: float | None


@dataclass(frozen=True)
class Snapshot:
    challenge_id: str
    title: str
    metric: str
    higher_is_better: bool
    ground_truth: bool  # scored on the server: rounded aggregates, shown with 4 decimals
    rules: Rules
    board: str  # "public" or "private" (the final board, once revealed)
    participants: int
    standings: tuple[Standing, ...]


def snapshot(db: Database, challenge_id: str, *, top: int = DEFAULT_TOP) -> Snapshot:
    """The challenge's top ``top`` rows, as its leaderboard ranks them (the final board once it is revealed).

    Raises NotFound for an unknown challenge. A bounded number of queries, whatever the number of scores."""
    challenge = get_challenge(db, challenge_id)
    board = leaderboard(db, challenge.challenge_id, limit=top, charts=False)
    if board.primary_metric is not None:
        from exact.metrics import METRICS

        metric = METRICS[board.primary_metric].label
    else:
        metric = board.rules.metric_name
    table = board.table
    methods = table["method"] if "method" in table.columns else [None] * len(table)
    standings = tuple(
        Standing(rank=int(rank), username=str(username), method=_text_or_none(method), score=_number_or_none(score))
        for rank, username, method, score in zip(table["rank"], table["username"], methods, table["score"], strict=True)
    )
    return Snapshot(
        challenge_id=challenge.challenge_id,
        title=challenge.title,
        metric=metric,
        higher_is_better=board.rules.higher_is_better,
        ground_truth=board.primary_metric is not None,
        rules=board.rules,
        board=board.board,
        participants=board.total,
        standings=standings,
    )


def _number_or_none(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _text_or_none(value: Any) -> str | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


# --- what the view shows, against what it showed before -----------------------------------------------------------


@dataclass(frozen=True)
class Mark:
    change: Change
    moved: int  # places gained ("up") or lost ("down"); 0 otherwise
    since: datetime


@dataclass
class BoardMemory:
    """What one view showed of one board at its last refresh (keys are ``ViewMemory.key`` hashes)."""

    ranks: dict[str, int] | None = None  # None: not shown yet, so nothing counts as new on the first refresh
    scores: dict[str, float | None] = field(default_factory=dict)
    numbers: dict[str, int] = field(default_factory=dict)  # anonymous labels, in order of first appearance
    marks: dict[str, Mark] = field(default_factory=dict)


@dataclass
class ViewMemory:
    """One browser session's presentation view: a random key for its row keys, and each board's last state."""

    salt: bytes = field(default_factory=lambda: secrets.token_bytes(16))
    boards: dict[str, BoardMemory] = field(default_factory=dict)

    def key(self, username: str) -> str:
        # A keyed hash, not the name: rows are told apart and followed across refreshes by it, and it means
        # nothing outside this session.
        return hmac.new(self.salt, username.encode("utf-8"), hashlib.sha256).hexdigest()[:16]


@dataclass(frozen=True)
class Entry:
    key: str  # opaque and stable within the view
    rank: int
    name: str  # the username, or "Participant N" in anonymous mode
    method: str | None  # server-scored challenges, not in anonymous mode (a method name may say whose it is)
    score: float | None
    score_text: str
    change: Change | None
    moved: int
    bar: float = 0.0  # length of the row's score bar, 0..1 (the best row is 1), for the side-by-side tables


@dataclass(frozen=True)
class PresentedBoard:
    challenge_id: str
    title: str
    metric: str
    higher_is_better: bool
    rules: Rules
    board: str
    participants: int
    anonymous: bool
    entries: tuple[Entry, ...]


def score_text(value: float | None, *, ground_truth: bool) -> str:
    """As the leaderboard shows it: 4 decimals for the server's rounded aggregates, 6 significant digits else."""
    if value is None:
        return "–"
    return f"{value:.4f}" if ground_truth else f"{value:.6g}"


def present(snap: Snapshot, memory: ViewMemory, *, anonymous: bool, now: datetime) -> PresentedBoard:
    """What the view shows of ``snap``, marking what changed since the view's previous refresh; updates
    ``memory``. A row that was not on the board before is "new" (a first score, or a climb into the top N)."""
    state = memory.boards.setdefault(snap.challenge_id, BoardMemory())
    keys = [memory.key(s.username) for s in snap.standings]
    previous = state.ranks
    if previous is not None:
        for key, standing in zip(keys, snap.standings, strict=True):
            mark = _change(previous.get(key), state.scores.get(key), standing, now)
            if mark is not None:
                state.marks[key] = mark
    cutoff = now - timedelta(seconds=HIGHLIGHT_SECONDS)
    state.marks = {k: m for k, m in state.marks.items() if k in keys and m.since > cutoff}
    if anonymous:
        for key in keys:
            state.numbers.setdefault(key, len(state.numbers) + 1)
    state.ranks = {key: s.rank for key, s in zip(keys, snap.standings, strict=True)}
    state.scores = {key: s.score for key, s in zip(keys, snap.standings, strict=True)}
    bars = score_bars([s.score for s in snap.standings], higher_is_better=snap.higher_is_better)
    entries = []
    for key, s, bar in zip(keys, snap.standings, bars, strict=True):
        mark = state.marks.get(key)
        entries.append(
            Entry(
                key=key,
                rank=s.rank,
                name=f"Participant {state.numbers[key]}" if anonymous else s.username,
                method=None if anonymous else s.method,
                score=s.score,
                score_text=score_text(s.score, ground_truth=snap.ground_truth),
                change=mark.change if mark else None,
                moved=mark.moved if mark else 0,
                bar=bar,
            )
        )
    return PresentedBoard(
        challenge_id=snap.challenge_id,
        title=snap.title,
        metric=snap.metric,
        higher_is_better=snap.higher_is_better,
        rules=snap.rules,
        board=snap.board,
        participants=snap.participants,
        anonymous=anonymous,
        entries=tuple(entries),
    )


def score_bars(scores: list[float | None], *, higher_is_better: bool) -> list[float]:
    """Bar lengths (0..1) for the rows' scores: proportional to the score when higher is better and no score is
    negative (the usual 0..1 metrics), else spread between the worst shown score (0.15, still visible) and the
    best (1). A missing score gets no bar."""
    known = [v for v in scores if v is not None]
    if not known:
        return [0.0] * len(scores)
    best, worst = (max(known), min(known)) if higher_is_better else (min(known), max(known))
    if higher_is_better and worst >= 0 and best > 0:
        return [0.0 if v is None else v / best for v in scores]
    if best == worst:
        return [0.0 if v is None else 1.0 for v in scores]
    return [0.0 if v is None else 0.15 + 0.85 * (v - worst) / (best - worst) for v in scores]


def _change(rank_before: int | None, score_before: float | None, now_: Standing, at: datetime) -> Mark | None:
    if rank_before is None:
        return Mark("new", 0, at)
    if now_.rank < rank_before:
        return Mark("up", rank_before - now_.rank, at)
    if now_.rank > rank_before:
        return Mark("down", now_.rank - rank_before, at)
    if now_.score != score_before:  # a better best at the same place (a leader raising their own record)
        return Mark("better", 0, at)
    return None


# --- the chart ----------------------------------------------------------------------------------------------------


def ranking_chart(board: PresentedBoard, *, font_size: int = 24) -> dict[str, Any]:
    """A horizontal bar chart of the shown rows, in large type: a plain Plotly specification without a template
    (as exact/charts.py builds them), made only of what the table shows (labels, never usernames, when anonymous).
    New and improved rows get their highlight colour."""
    labels = [f"#{e.rank} {e.name}" for e in board.entries]
    bar = {
        "type": "bar",
        "orientation": "h",
        "x": [e.score for e in board.entries],
        "y": labels,
        "text": [e.score_text for e in board.entries],
        "textposition": "inside",
        "insidetextanchor": "end",
        "textangle": 0,  # Plotly's "auto" turns a label that does not fit sideways, e.g. while a new bar grows
        "textfont": {"size": font_size, "color": "#fff"},
        "marker": {"color": [CHANGE_COLOURS[e.change] for e in board.entries]},
        "hovertemplate": "%{y}: %{text}<extra></extra>",
        "cliponaxis": False,
    }
    layout = {
        # About the table's row height at 1280x720, so the chart beside the top 10 fits that screen too.
        "height": 70 + 40 * max(1, len(board.entries)),
        "margin": {"l": 10, "r": 20, "t": 44, "b": 36},
        "font": {"size": font_size},
        "title": {
            "text": f"{board.metric} ({'higher' if board.higher_is_better else 'lower'} is better)",
            "font": {"size": font_size},
        },
        "uniformtext": {"mode": "show", "minsize": font_size},  # never shrink a bar's label to fit
        "yaxis": {"autorange": "reversed", "automargin": True, "tickfont": {"size": font_size}},
        "xaxis": {"automargin": True, "tickfont": {"size": font_size - 4}},
        "showlegend": False,
        "bargap": 0.25,
    }
    return {"data": [bar], "layout": layout}


# --- joining: link and QR code -----------------------------------------------------------------------------------


def site_base(page_url: object) -> str:
    """``scheme://host[:port][/prefix]`` of the app as the browser reached it, from the page's URL (Streamlit's
    ``st.context.url``); FALLBACK_BASE_URL for anything that is not a plain http(s) URL. The prefix is the path
    before the page's own name, so an app served under a base path links inside it."""
    if not isinstance(page_url, str) or len(page_url) > 2000:
        return FALLBACK_BASE_URL
    try:
        parts = urlsplit(page_url.strip())
        port = parts.port
    except ValueError:  # a port that is not a number, brackets that do not close
        return FALLBACK_BASE_URL
    netloc = parts.netloc.rsplit("@", 1)[-1]  # never copy credentials into a link shown on a wall
    host = netloc[: netloc.rindex(":")] if port is not None else netloc
    if parts.scheme not in ("http", "https") or not host or not _HOST_RE.fullmatch(host):
        return FALLBACK_BASE_URL
    prefix = parts.path.rsplit("/", 1)[0] if "/" in parts.path else ""
    if not _PATH_RE.fullmatch(prefix) or "//" in prefix or ".." in prefix:
        prefix = ""
    return f"{parts.scheme}://{host.lower()}{f':{port}' if port is not None else ''}{prefix.rstrip('/')}"


def join_url(page_url: object, challenge_id: str) -> str:
    """The challenge page, where the audience reads the task, registers and submits."""
    return f"{site_base(page_url)}/challenge?challenge={quote(challenge_id, safe='')}"


def is_loopback(url: str) -> bool:
    """The link names this computer itself (127.0.0.1, localhost, ::1): useless to anybody else in the room."""
    host = (urlsplit(url).hostname or "").lower()
    return host == "localhost" or host == "::1" or host.startswith("127.")


def short_link(url: str) -> str:
    """The link as it is read out or typed from the screen: without the scheme."""
    return url.split("://", 1)[-1]


def qr_svg(url: str) -> str:
    """An inline SVG QR code of ``url`` (segno): black on white with the 4-module quiet zone the standard asks
    for, and no fixed size (CSS sizes it)."""
    out = io.BytesIO()
    # svgns: an SVG shown through <img> (see qr_data_uri) is drawn only with its namespace declared.
    segno.make(url, micro=False).save(
        out, kind="svg", xmldecl=False, svgns=True, nl=False, omitsize=True, border=4, dark="#000", light="#fff"
    )
    return out.getvalue().decode("utf-8")


def qr_data_uri(url: str) -> str:
    """``qr_svg`` as a data: URI for an <img>: st.html sanitises its HTML with the HTML profile only, which
    removes inline SVG but keeps images with data: sources."""
    return "data:image/svg+xml;base64," + base64.b64encode(qr_svg(url).encode("utf-8")).decode("ascii")

"""The presentation view's Streamlit glue: projector styling, the big-type board, the join box, the auto-refresh.

Everything shown comes from exact.presentation; this module only lays it out. The table is HTML (Streamlit's
data grid draws on a canvas whose type cannot be enlarged), built from escaped text only; the chart is the
service's plain Plotly specification.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import streamlit as st

from db.database import Database
from exact.challenges import Challenge
from exact.errors import DatabaseUnavailable, NotFound, QueryTooSlow
from exact.presentation import (
    PresentationRequest,
    PresentedBoard,
    ViewMemory,
    is_loopback,
    join_url,
    present,
    qr_data_uri,
    ranking_chart,
    short_link,
    snapshot,
)
from ui.competition import status_line
from ui.feedback import show_unexpected

MEMORY_KEY = "present_memory"

# No sidebar, no Streamlit header or toolbar, the full width, and type sized by the viewport (vw for width, vh so
# that the top 10 fit a 720-pixel-high projector), never below what a back row reads. Style-only st.html goes to
# Streamlit's event container, so it takes no room on the page. Secondary text is dimmed with opacity, not a fixed
# grey, so both the light and the dark theme stay readable.
_CSS = """<style>
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], [data-testid="stExpandSidebarButton"],
[data-testid="stHeader"], [data-testid="stAppHeader"], [data-testid="stToolbar"] { display: none !important; }
[data-testid="stMainBlockContainer"] { max-width: none; padding: 1rem 2.2rem 1rem 2.2rem; }
[data-testid="stMain"] h1 { font-size: clamp(30px, min(3.2vw, 6vh), 64px); line-height: 1.15; padding: 0; }
[data-testid="stMain"] h2 { font-size: clamp(24px, min(2.2vw, 4.4vh), 48px); line-height: 1.15; padding: 0; }
.exact-status { font-size: clamp(16px, min(1.35vw, 2.6vh), 28px); opacity: 0.75; margin: 0.1em 0 0.3em 0; }
.exact-board { width: 100%; border-collapse: collapse; font-size: clamp(22px, min(2.1vw, 3.7vh), 46px);
  line-height: 1.35; font-variant-numeric: tabular-nums; }
.exact-board.compact { font-size: clamp(20px, min(1.45vw, 3.1vh), 36px); }
.exact-board th { text-align: left; font-size: 0.7em; opacity: 0.75; font-weight: 600;
  border-bottom: 2px solid rgba(128, 128, 128, 0.45); padding: 0 0.35em 0.1em 0.35em; }
.exact-board td { padding: 0.08em 0.35em; border-bottom: 1px solid rgba(128, 128, 128, 0.25);
  vertical-align: baseline; }
.exact-board .rank { width: 2.4em; text-align: right; font-weight: 700; }
.exact-board .name { overflow-wrap: anywhere; }
.exact-board .score { text-align: right; white-space: nowrap; font-weight: 600; }
.exact-board th.score { text-align: right; }
.exact-board td.bar { width: 30%; }
.exact-board td.bar span { display: block; height: 0.8em; background: #4C78A8; border-radius: 0.1em; }
.exact-board tr.new td.bar span { background: #F58518; }
.exact-board tr.up td.bar span, .exact-board tr.better td.bar span { background: #54A24B; }
.exact-board .method { font-size: 0.62em; opacity: 0.7; }
.exact-board tr.new td { background: #fde7cf; color: #111; }
.exact-board tr.up td, .exact-board tr.better td { background: #dcf0d9; color: #111; }
.exact-board .badge { display: inline-block; font-size: 0.6em; font-weight: 700; padding: 0.05em 0.4em;
  margin-left: 0.4em; border-radius: 0.4em; vertical-align: 0.15em; }
.exact-board .badge.new { background: #F58518; color: #fff; }
.exact-board .badge.up, .exact-board .badge.better { background: #3b8a34; color: #fff; }
.exact-board .badge.down { background: rgba(128, 128, 128, 0.2); }
.exact-empty { font-size: clamp(22px, min(2.1vw, 3.7vh), 46px); opacity: 0.75; }
.exact-join { display: flex; flex-direction: row; align-items: center; justify-content: flex-end; gap: 0.8em; }
.exact-join .qr { width: clamp(110px, min(11vw, 20vh), 240px); height: auto; display: block; flex: none; }
.exact-join .text { font-size: clamp(16px, min(1.4vw, 2.8vh), 30px); max-width: 14em; overflow-wrap: break-word; }
.exact-join .text b { display: block; }
.exact-join .warning { font-size: 0.75em; color: #c33; margin-top: 0.3em; }
.exact-join.compact { justify-content: flex-start; }
.exact-join.compact .qr { width: clamp(90px, min(7vw, 14vh), 200px); }
.exact-join.compact .text { font-size: clamp(14px, min(1.1vw, 2.2vh), 24px); max-width: 20em; }
</style>"""

_BADGES = {"new": "NEW", "better": "★ best"}


def hide_chrome() -> None:
    """Projector styling for this page only (the CSS leaves with the page)."""
    st.html(_CSS)


def _badge(change: str | None, moved: int) -> str:
    if change is None:
        return ""
    text = _BADGES.get(change) or f"{'▲' if change == 'up' else '▼'}{moved}"
    return f'<span class="badge {change}">{html.escape(text)}</span>'


def board_html(board: PresentedBoard, *, compact: bool = False) -> str:
    """The shown rows as an HTML table; every text is escaped, only fixed class names are unescaped."""
    if not board.entries:
        return '<p class="exact-empty">No scores yet: the first submission takes the top spot.</p>'
    rows = []
    for entry in board.entries:
        method = f'<div class="method">{html.escape(entry.method)}</div>' if entry.method else ""
        rows.append(
            f'<tr class="{entry.change or "same"}"><td class="rank">{entry.rank}</td>'
            f'<td class="name">{html.escape(entry.name)}{_badge(entry.change, entry.moved)}{method}</td>'
            + (f'<td class="bar"><span style="width: {100 * entry.bar:.1f}%"></span></td>' if compact else "")
            + f'<td class="score">{html.escape(entry.score_text)}</td></tr>'
        )
    head = "Participant" if board.anonymous else "User"
    return (
        f'<table class="exact-board{" compact" if compact else ""}" data-challenge="{html.escape(board.challenge_id)}">'
        f'<thead><tr><th class="rank">#</th><th class="name">{head}</th>{"<th></th>" if compact else ""}'
        f'<th class="score">{html.escape(board.metric)}</th></tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )


def join_box(challenge_id: str, *, compact: bool = False) -> None:
    """QR code and short link to the challenge page, from the address this browser used to reach the app."""
    url = join_url(st.context.url, challenge_id)
    warning = (
        '<div class="warning">This address works on this computer only: open this view through the address the '
        "audience uses.</div>"
        if is_loopback(url)
        else ""
    )
    # Break the link's text after a "/" or before the "?" rather than inside a word.
    text = html.escape(short_link(url)).replace("/", "/<wbr>").replace("?", "<wbr>?")
    link = f'<a href="{html.escape(url)}">{text}</a>'
    st.html(
        f'<div class="exact-join{" compact" if compact else ""}">'
        f'<img class="qr" alt="QR code of {html.escape(url)}" src="{qr_data_uri(url)}">'
        f'<div class="text"><b>Join the challenge</b>{link}{warning}</div></div>'
    )


def _clock() -> str:
    """The time of this refresh in the viewer's time zone (UTC if the browser did not say)."""
    now = datetime.now(UTC)
    try:
        zone = ZoneInfo(st.context.timezone) if st.context.timezone else None
    except (ZoneInfoNotFoundError, ValueError):
        zone = None
    return now.astimezone(zone).strftime("%H:%M:%S") if zone else now.strftime("%H:%M:%S UTC")


def _status(board: PresentedBoard, refresh_seconds: int) -> str:
    parts = [status_line(board.rules)]
    if board.board == "private":
        parts.append("final ranking")
    parts.append(f"top {len(board.entries)} of {board.participants:,}")
    parts.append(f"updated {_clock()}, every {refresh_seconds} s")
    return f'<p class="exact-status">{html.escape(" · ".join(parts))}</p>'


def _board(db: Database, challenge: Challenge, request: PresentationRequest, memory: ViewMemory, *, compact: bool):
    try:
        snap = snapshot(db, challenge.challenge_id, top=request.top)
    except NotFound:  # deleted while on the screen
        st.error(f"The challenge {challenge.challenge_id!r} no longer exists.")
        return
    board = present(snap, memory, anonymous=request.anonymous, now=datetime.now(UTC))
    st.html(_status(board, request.refresh_seconds))
    if compact:  # no room for a chart beside the table: the rows carry score bars instead
        st.html(board_html(board, compact=True))
        return
    table, chart = st.columns([9, 11], gap="large")
    with table:
        st.html(board_html(board))
    if board.entries:
        with chart:
            st.plotly_chart(ranking_chart(board), key=f"present_chart_{challenge.challenge_id}")


def live_boards(db: Database, challenges: Sequence[Challenge], request: PresentationRequest) -> None:
    """The boards, rerun on their own every ``refresh_seconds`` (st.fragment): no page reload, the scroll position
    and everything outside stay as they are. A failed refresh says so and the next one tries again."""
    memory = st.session_state.get(MEMORY_KEY)
    if memory is None:  # this session's first view: nothing it shows counts as changed
        memory = st.session_state[MEMORY_KEY] = ViewMemory()
    try:
        with db.shared_reads():  # one connection per refresh, as app.py does for a whole page run
            if len(challenges) == 1:
                _board(db, challenges[0], request, memory, compact=False)
                return
            for column, challenge in zip(st.columns(len(challenges), gap="large"), challenges, strict=True):
                with column:
                    _board(db, challenge, request, memory, compact=True)
    except (DatabaseUnavailable, QueryTooSlow):
        st.warning(f"The leaderboard could not be refreshed just now; trying again in {request.refresh_seconds} s.")
    except Exception as exc:  # a fragment rerun is outside app.py's handler: apologise here, keep refreshing
        show_unexpected(exc, where="presentation refresh")


def show(db: Database, challenges: Sequence[Challenge], request: PresentationRequest) -> None:
    """Headings and join boxes (static), then the auto-refreshing boards beneath them."""
    if len(challenges) == 1:
        heading, join = st.columns([3, 2], vertical_alignment="center")
        with heading:
            st.title(challenges[0].title, anchor=False)
        with join:
            join_box(challenges[0].challenge_id)
    else:
        for column, challenge in zip(st.columns(len(challenges), gap="large"), challenges, strict=True):
            with column:
                st.header(challenge.title, anchor=False)
                join_box(challenge.challenge_id, compact=True)
    st.fragment(live_boards, run_every=request.refresh_seconds)(db, challenges, request)

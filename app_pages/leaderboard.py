"""Leaderboard: best score per user (or every submission), paged, with "jump to my row", charts and the CSV."""

import streamlit as st

from exact import charts
from exact.scores import PAGE_SIZE, leaderboard, leaderboard_csv, leaderboard_position
from ui.auth import current_user
from ui.board import leaderboard_table
from ui.competition import status_line
from ui.runtime import get_db
from ui.widgets import challenge_picker

db = get_db()
st.title("Leaderboard")
challenge = challenge_picker(db, key="leaderboard_pick")
if challenge is None:
    st.stop()

show_all = st.toggle(
    "Show all submissions",
    key="leaderboard_show_all",
    help="Off: each user's best score, ranked. On: every submission, ranked.",
)
# One page number per challenge and view, so switching either starts at the top.
page_key = f"leaderboard_page_{challenge.challenge_id}_{show_all}"
page_no = int(st.session_state.get(page_key, 1))
offset = (page_no - 1) * PAGE_SIZE
board = leaderboard(db, challenge.challenge_id, show_all=show_all, offset=offset)
if board.final_available:
    which = st.radio(
        "Leaderboard",
        ["private", "public"],
        format_func={"private": "Final (private samples)", "public": "Public samples"}.get,
        horizontal=True,
        key="leaderboard_board",
    )
    if which != board.board:
        board = leaderboard(db, challenge.challenge_id, show_all=show_all, board=which, offset=offset)
st.caption(status_line(board.rules))
if board.primary_metric is not None:
    st.caption(
        "Final ranking on the private samples: each participant's chosen final submissions (else their best "
        "public one)."
        if board.board == "private"
        else "Ranked on the public samples while the challenge runs; the private samples decide the final ranking."
    )
if board.is_empty:
    st.info("No submissions yet for this challenge.")
    leaderboard_table(board)  # a ground-truth challenge still shows its baselines
    st.stop()
if page_no > board.pages:  # fewer rows than when the page number was chosen
    st.session_state[page_key] = 1
    st.rerun()

viewer = current_user()
position = None
if viewer is not None:
    position = leaderboard_position(db, challenge.challenge_id, viewer.username, show_all=show_all, board=board.board)


def _jump_to_my_row() -> None:
    st.session_state[page_key] = position // PAGE_SIZE + 1


nav = st.columns([1, 1, 2])
if board.pages > 1:
    nav[0].number_input(f"Page (of {board.pages:,})", min_value=1, max_value=board.pages, step=1, key=page_key)
if position is not None:
    nav[1].button("Jump to my row", on_click=_jump_to_my_row, icon=":material/person_pin:")
first = board.offset + 1
nav[2].caption(f"Rows {first:,}–{board.offset + len(board.table):,} of {board.total:,}.")
leaderboard_table(board)
st.download_button(
    "Download CSV",
    data=lambda: leaderboard_csv(db, board),  # the whole ranking, generated only when clicked
    file_name=f"leaderboard-{challenge.challenge_id}{'-all' if show_all else ''}.csv",
    mime="text/csv",
    icon=":material/download:",
    on_click="ignore",
)

ranking_tab, time_tab, distribution_tab = st.tabs(["Ranking", "Best score over time", "Score distribution"])
with ranking_tab:
    st.plotly_chart(charts.ranking_bar(board.table, baselines=board.baselines), key="chart_ranking")
with time_tab:
    st.plotly_chart(charts.best_over_time(board.progression), key="chart_progress")
with distribution_tab:
    st.caption("Each participant's best score.")
    st.plotly_chart(charts.score_distribution(board.histogram), key="chart_distribution")

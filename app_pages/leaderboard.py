"""Leaderboard: best score per user (or every submission), ranking chart, progress over time, distribution, CSV."""

import streamlit as st

from exact import charts
from exact.scores import leaderboard, leaderboard_csv
from ui.competition import status_line
from ui.runtime import get_db
from ui.widgets import challenge_picker, leaderboard_table

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
board = leaderboard(db, challenge.challenge_id, show_all=show_all)
if board.final_available:
    which = st.radio(
        "Leaderboard",
        ["private", "public"],
        format_func={"private": "Final (private samples)", "public": "Public samples"}.get,
        horizontal=True,
        key="leaderboard_board",
    )
    if which != board.board:
        board = leaderboard(db, challenge.challenge_id, show_all=show_all, board=which)
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

leaderboard_table(board)
st.download_button(
    "Download CSV",
    data=leaderboard_csv(board),
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
    st.plotly_chart(charts.score_distribution(board.histogram), key="chart_distribution")

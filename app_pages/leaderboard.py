"""Leaderboard: best score per user (or every submission), paged, with "jump to my row", statistics, method cards,
charts and the CSV. ``?present=1`` hands over to the presentation view with the same query string."""

import streamlit as st

from exact import charts
from exact.metrics import METRICS
from exact.scores import PAGE_SIZE, leaderboard, leaderboard_csv, leaderboard_position
from exact.statistics import board_statistics
from ui.auth import current_user
from ui.board import SCALE_LABELS, leaderboard_table, method_cards
from ui.competition import status_line
from ui.runtime import get_db
from ui.widgets import challenge_picker

if st.query_params.get("present") == "1":  # the presentation view of the same board (its own page)
    st.switch_page(
        "app_pages/present.py",
        query_params={name: value for name, value in st.query_params.to_dict().items() if name != "present"},
    )

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
viewer = current_user()
details = board_statistics(db, viewer.id if viewer else None, board)
if board.is_empty:
    st.info("No submissions yet for this challenge.")
    leaderboard_table(board, details=details)  # a ground-truth challenge still shows its baselines
    method_cards(details, challenge_id=challenge.challenge_id, key=f"leaderboard_card_{challenge.challenge_id}")
    st.stop()
if page_no > board.pages:  # fewer rows than when the page number was chosen
    st.session_state[page_key] = 1
    st.rerun()

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

scale = "raw"
if details.normalisable:
    scale = (
        st.segmented_control(
            "Values",
            list(SCALE_LABELS),
            format_func=SCALE_LABELS.get,
            default="raw",
            key="leaderboard_scale",
            help="Normalised: each metric rescaled so that the random baseline is 0 and the ground truth is 1.",
        )
        or "raw"
    )
leaderboard_table(board, details=details, scale=scale)
if details.available:
    n_pairs = max(details.rows_with_statistics - 1, 0)
    st.caption(
        f"95 % CI: BCa bootstrap of the mean over each row's {details.split} samples ({details.resamples:,} "
        f"resamples). Tied ranks and p next: paired Wilcoxon signed-rank test against the next row on the samples "
        f"both were scored on, Holm-corrected over this page's {n_pairs} neighbour pairs (α = {details.alpha:g}). "
        "Computed on the server from per-sample values; only these aggregates, rounded to 4 decimals, are shown."
    )
elif details.note:
    st.caption(details.note)
st.download_button(
    "Download CSV",
    data=lambda: leaderboard_csv(db, board),  # the whole ranking, generated only when clicked
    file_name=f"leaderboard-{challenge.challenge_id}{'-all' if show_all else ''}.csv",
    mime="text/csv",
    icon=":material/download:",
    on_click="ignore",
)
method_cards(details, challenge_id=challenge.challenge_id, key=f"leaderboard_card_{challenge.challenge_id}")

shown_table, shown_baselines = details.table, details.baselines
if scale == "normalised":
    shown_table = shown_table.assign(
        score=shown_table["norm_score"], ci_low=shown_table["norm_ci_low"], ci_high=shown_table["norm_ci_high"]
    )
    shown_baselines = shown_baselines.assign(
        score=shown_baselines["norm_score"], ci_low=shown_baselines["norm_ci_low"],
        ci_high=shown_baselines["norm_ci_high"],
    )  # fmt: skip
if board.primary_metric is None:
    score_label = board.rules.metric_name
else:
    score_label = METRICS[board.primary_metric].label + (" (normalised)" if scale == "normalised" else "")
names = ["Ranking"] + (["Critical difference"] if details.critical_difference else [])
names += ["Best score over time", "Score distribution"]
tabs = dict(zip(names, st.tabs(names), strict=True))
with tabs["Ranking"]:
    st.plotly_chart(
        charts.ranking_bar(
            shown_table,
            baselines=shown_baselines,
            highlight=viewer.username if viewer else None,
            value_format=".4f" if board.primary_metric else ".4g",
            score_label=score_label,
        ),
        key="chart_ranking",
    )
if details.critical_difference:
    with tabs["Critical difference"]:
        cd = details.critical_difference
        friedman = (
            f" Friedman test: χ² = {cd.friedman_statistic:.2f}, p = {cd.friedman_p:.4f}."
            if cd.friedman_p is not None
            else ""
        )
        st.caption(
            f"Average rank of each method over the {len(cd.blocks)} metrics ({', '.join(cd.blocks)}), the page's "
            f"first rows and the baselines. Whiskers are half the Nemenyi critical difference (α = {details.alpha:g}"
            f"): methods whose whiskers overlap are not significantly different.{friedman}"
        )
        st.plotly_chart(charts.critical_difference_chart(cd), key="chart_critical_difference")
with tabs["Best score over time"]:
    st.plotly_chart(charts.best_over_time(board.progression), key="chart_progress")
with tabs["Score distribution"]:
    st.caption("Each participant's best score.")
    st.plotly_chart(charts.score_distribution(board.histogram), key="chart_distribution")

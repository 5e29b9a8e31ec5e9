"""The leaderboard table as the leaderboard and challenge pages show it (and its baselines), and method cards."""

from __future__ import annotations

import re
from typing import Literal

import pandas as pd
import streamlit as st

from exact.metrics import METRICS
from exact.statistics import GROUP_HELP, BoardStatistics, MethodCard, board_statistics
from ui.auth import current_user
from ui.runtime import get_db

Scale = Literal["raw", "normalised"]
SCALE_LABELS = {"raw": "Raw", "normalised": "Normalised (random = 0, ground truth = 1)"}
# Header labels short enough that the whole table fits a 1400 px window; the full name is the column's help.
SHORT_LABELS = {"emd": "EMD", "mass": "Mass", "precision": "Precision", "auc": "AUC"}
_ROW_PX = 35  # st.dataframe's row height: the table is as tall as its rows, never a 10-row scroll box
_METRIC_WIDTHS = {"precision": 85, "auc": 65, "mass": 70, "emd": 65}  # the header (name and arrow) fits
_YOU = "background-color: rgba(245, 133, 24, 0.18); font-weight: 600"


def arrow(metric: str) -> str:
    return "↑" if METRICS[metric].higher_is_better else "↓"


def metric_header(metric: str) -> str:
    return f"{SHORT_LABELS.get(metric, METRICS[metric].label)} {arrow(metric)}"


def leaderboard_table(
    board, *, details: BoardStatistics | None = None, limit: int | None = None, scale: Scale = "raw"
) -> BoardStatistics:
    """The ranking table (and, for ground-truth challenges, the baselines), as both pages show it. Returns the
    statistics it showed (computed here when the page did not pass them)."""
    viewer = current_user()
    if details is None:
        details = board_statistics(get_db(), viewer.id if viewer else None, board)
    table = details.table if limit is None else details.table.head(limit)
    normalised = scale == "normalised" and details.normalisable
    columns = _column_config(board, details, normalised)
    if not table.empty:
        shown = _shown(table, board, normalised)
        mine = viewer is not None and "username" in shown.columns and (shown["username"] == viewer.username).any()
        data = shown.style.apply(_highlight(viewer.username), axis=1) if mine else shown
        st.dataframe(
            data,
            hide_index=True,
            column_config=columns,
            height=_ROW_PX * (len(shown) + 1) + 3,
            placeholder="",  # a missing figure is an empty cell, never the text "None"
        )
        if mine:
            st.caption("Your row is highlighted.")
    if details.baselines is not None and not details.baselines.empty:
        st.caption("Baselines: reference methods computed by the server when the challenge was created.")
        baselines = _shown(details.baselines, board, normalised, baseline=True)
        st.dataframe(
            baselines,
            hide_index=True,
            column_config={
                **columns,
                "method": st.column_config.TextColumn("Baseline", width=190),
                "status": st.column_config.TextColumn("Status", width=70),
            },  # fmt: skip
            height=_ROW_PX * (len(baselines) + 1) + 3,
            placeholder="",
        )
    return details


def _highlight(username: str):
    def style(row: pd.Series) -> list[str]:
        return [_YOU if row.get("username") == username else ""] * len(row)

    return style


def _interval_text(low, high) -> str | None:
    if low is None or high is None or pd.isna(low) or pd.isna(high):
        return None
    return f"{low:.4f}–{high:.4f}"


def _shown(frame: pd.DataFrame, board, normalised: bool, *, baseline: bool = False) -> pd.DataFrame:
    """The columns a person reads, in one order for rows and baselines (the result link last in both)."""
    frame = frame.copy()
    ground_truth = board.primary_metric is not None
    if normalised:
        for column in ("score", *board.shown_metrics):
            frame[column] = frame[f"norm_{column}"]
        low, high = frame["norm_ci_low"], frame["norm_ci_high"]
    else:
        low, high = frame.get("ci_low"), frame.get("ci_high")
    if ground_truth and low is not None:
        frame["ci"] = [_interval_text(lo, hi) for lo, hi in zip(low, high, strict=True)]
    if "result_id" in frame.columns and frame["result_id"].notna().any():  # no column of empty cells
        frame["result"] = [None if pd.isna(i) else f"result?submission={int(i)}" for i in frame["result_id"]]
    if baseline:
        order = ["method", "score", "ci", *([] if normalised else ["vs_random"]), *board.shown_metrics, "status",
                 "result"]  # fmt: skip
    elif ground_truth:
        # "vs random" and "p next" are in the method card and the chart's hover: with them the table would not fit
        # a 1400 px window, and the normalised view shows each figure's distance from random anyway.
        # The score right after the user: on a phone it is on screen before the table scrolls.
        order = ["rank", "group", "username", "score", "ci", "method", *board.shown_metrics, "created_at",
                 "submissions", "result"]  # fmt: skip
    else:
        order = ["rank", "username", "score", "created_at", "submissions"]
    return frame[[c for c in order if c in frame.columns]]


def _column_config(board, details: BoardStatistics, normalised: bool) -> dict:
    ground_truth = board.primary_metric is not None
    figure = "%.4f" if ground_truth else "%.6g"
    scale_note = " (normalised: random = 0, ground truth = 1)" if normalised else ""
    if ground_truth:
        score_label = metric_header(board.primary_metric)
        score_help = f"{METRICS[board.primary_metric].label}, mean over the {details.split} samples{scale_note}"
    else:
        direction = "↑" if board.rules.higher_is_better else "↓"
        score_label = f"{board.rules.metric_name if board.show_all else 'Best ' + board.rules.metric_name.lower()}"
        score_label = f"{score_label} {direction}"
        score_help = "Higher is better" if board.rules.higher_is_better else "Lower is better"
    columns = {
        "rank": st.column_config.NumberColumn(
            "Rank", help="Equal scores share a rank; the earlier submission is listed first.", width=50
        ),
        "group": st.column_config.TextColumn("Tied", help=GROUP_HELP, width=45),
        "username": st.column_config.TextColumn("User", width=95),
        "method": st.column_config.TextColumn("Method", width=125),
        "score": st.column_config.NumberColumn(score_label, format=figure, help=score_help, width=75),
        "ci": st.column_config.TextColumn(
            "95 % CI",
            help=f"Bootstrap confidence interval of the mean (BCa, {details.resamples:,} resamples over the samples)",
            width=110,
        ),
        "p_next": st.column_config.NumberColumn(
            "p next",
            format="%.4f",
            width=65,
            help="Holm-adjusted p-value of the paired Wilcoxon signed-rank test against the next row",
        ),  # fmt: skip
        "vs_random": st.column_config.NumberColumn(
            "vs random", format="%+.4f", help="Score minus the random baseline's", width=80
        ),
        "created_at": st.column_config.DatetimeColumn("Submitted", format="YYYY-MM-DD", width=90),
        "submissions": st.column_config.NumberColumn("Subm.", help="Submissions of this user", width=55),
        "result": st.column_config.LinkColumn(
            "Result",
            display_text="details",
            width=65,
            help="The full result page: for your own submissions, the baselines, and the challenge's organisers",
        ),  # fmt: skip
    }
    for name in board.shown_metrics:
        columns[name] = st.column_config.NumberColumn(
            metric_header(name),
            format="%.4f",
            width=_METRIC_WIDTHS.get(name, 75),
            help=f"{METRICS[name].label}{scale_note}",
        )
    return columns


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$])")


def plain(text: str) -> str:
    """User text inside Markdown, shown as typed (no links, emphasis or HTML)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def card_label(card: MethodCard) -> str:
    if card.is_baseline:
        return f"Baseline · {card.method}"
    rank = f"#{card.rank} " if card.rank is not None else ""
    return f"{rank}{card.username} · {card.method}"


def method_card(card: MethodCard, *, challenge_id: str, compare_link: bool = True, figures: str | None = None) -> None:
    """A method's public card: name, submitter, description, paper/code link, and links that lead somewhere."""
    with st.container(border=True):
        st.markdown(f"**{plain(card.method)}**")
        if card.is_baseline:
            st.caption("Baseline computed by the server")
        else:
            when = f" · submitted {card.created_at:%Y-%m-%d}" if card.created_at else ""
            st.caption(f"by {plain(card.username or '')}{when}")
        if card.description:
            st.text(card.description)  # plain text: never rendered as Markdown
        else:
            st.caption("No description given.")
        if figures:
            st.caption(figures)
        links = st.columns(3)
        if card.url:
            links[0].link_button("Paper / code", card.url, icon=":material/open_in_new:")
        if card.result_id is not None:
            links[1].page_link(
                "app_pages/result.py", label="Full result", query_params={"submission": str(card.result_id)}
            )
        if compare_link:
            links[2].page_link(
                "app_pages/compare.py",
                label="Compare with another method",
                icon=":material/compare_arrows:",
                query_params={"challenge": challenge_id, "a": str(card.submission_id)},
            )


def method_cards(details: BoardStatistics, *, challenge_id: str, key: str) -> None:
    """Pick a row of the shown page (or a baseline) and read its method card."""
    if not details.cards:
        return
    cards = details.cards
    viewer = current_user()
    ids = list(cards)
    mine = next((i for i in ids if viewer is not None and cards[i].username == viewer.username), None)
    if st.session_state.get(key) not in ids:
        st.session_state[key] = mine if mine is not None else ids[0]
    chosen = st.selectbox("Method card", ids, format_func=lambda i: card_label(cards[i]), key=key)
    if chosen is not None:
        method_card(cards[chosen], challenge_id=challenge_id, figures=_figures_line(details, chosen))


def _figures_line(details: BoardStatistics, submission_id: int) -> str | None:
    """The row's figures for its card: score with interval, distance from random, tied group, p vs the next row."""
    for frame in (details.table, details.baselines):
        if frame is None or "submission_id" not in frame.columns:
            continue
        found = frame[frame["submission_id"] == submission_id]
        if found.empty:
            continue
        row = found.iloc[0]
        parts = []
        if pd.notna(row.get("score")):
            interval = _interval_text(row.get("ci_low"), row.get("ci_high"))
            label = metric_header(details.metric) if details.metric else "Score"
            parts.append(f"{label} {row['score']:.4f}" + (f" (95 % CI {interval})" if interval else ""))
        if pd.notna(row.get("vs_random")):
            parts.append(f"vs random {row['vs_random']:+.4f}")
        if row.get("group") is not None and pd.notna(row.get("group")):
            parts.append(f"tied ranks {row['group']}")
        if pd.notna(row.get("p_next", None)):
            parts.append(f"p vs next row {row['p_next']:.4f} (Wilcoxon, Holm)")
        return " · ".join(parts) or None
    return None

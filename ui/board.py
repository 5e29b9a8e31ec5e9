"""The leaderboard table as the leaderboard and challenge pages show it (and its baselines)."""

from __future__ import annotations

import pandas as pd
import streamlit as st


def leaderboard_table(board, *, limit: int | None = None) -> None:
    """The ranking table (and, for ground-truth challenges, the baselines), as both pages show it."""
    from exact.metrics import METRICS

    table = board.table if limit is None else board.table.head(limit)
    table = _with_result_links(table)
    metric_columns = {
        name: st.column_config.NumberColumn(METRICS[name].label, format="%.4f") for name in board.shown_metrics
    }
    columns = {
        "rank": st.column_config.NumberColumn(
            "Rank", help="Equal scores share a rank; the earlier submission is listed first."
        ),
        "username": "User",
        "method": "Method",
        "score": st.column_config.NumberColumn(
            METRICS[board.primary_metric].label
            if board.primary_metric
            else (board.rules.metric_name if board.show_all else f"Best {board.rules.metric_name.lower()}"),
            format="%.4f" if board.primary_metric else "%.6g",
        ),
        "vs_random": st.column_config.NumberColumn(
            "vs random", format="%+.4f", help="Score minus the random baseline's"
        ),
        "created_at": st.column_config.DatetimeColumn("Submitted", format="YYYY-MM-DD HH:mm"),
        "submissions": "Submissions",
        "result": st.column_config.LinkColumn("Result", display_text="details"),
        **metric_columns,
    }
    if not table.empty:
        st.dataframe(table.drop(columns=["score_id"]), hide_index=True, column_config=columns)
    if board.baselines is not None and not board.baselines.empty:
        st.caption("Baselines: reference methods computed by the server when the challenge was created.")
        st.dataframe(
            _with_result_links(board.baselines, first=True),
            hide_index=True,
            column_config={
                **columns,
                "method": "Baseline",
                "status": "Status",
                "score": st.column_config.NumberColumn(columns["score"].get("label", "Score"), format="%.4f"),
            },
        )


def _with_result_links(table, *, first: bool = False):
    """The result page's link in place of the submission id (services return ids, pages build links)."""
    if "submission_id" not in table.columns:
        return table
    links = [None if pd.isna(sid) else f"result?submission={int(sid)}" for sid in table["submission_id"]]
    table = table.drop(columns=["submission_id"])
    table.insert(0 if first else len(table.columns), "result", links)
    return table

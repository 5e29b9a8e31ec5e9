"""Small building blocks several pages share."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from db.database import Database
from exact.challenges import Challenge, list_challenges


def challenge_picker(db: Database, *, key: str, label: str = "Challenge") -> Challenge | None:
    """A select box of challenges, preselecting ``?challenge=`` and keeping the choice in the URL for sharing."""
    challenges = list_challenges(db, sort="newest")
    if not challenges:
        st.info("There are no challenges yet.")
        return None
    by_id = {c.challenge_id: c for c in challenges}
    wanted = st.query_params.get("challenge")
    # Widget state is dropped when a page is left, so arriving from a link always honours ?challenge=.
    if st.session_state.get(key) not in by_id:
        st.session_state[key] = wanted if wanted in by_id else challenges[0].challenge_id
    chosen = st.selectbox(
        label,
        options=list(by_id),
        format_func=lambda cid: f"{by_id[cid].title} ({cid})",
        key=key,
    )
    st.query_params["challenge"] = chosen
    return by_id[chosen]


def format_score(value: float | None) -> str:
    return "–" if value is None else f"{value:.6g}"


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

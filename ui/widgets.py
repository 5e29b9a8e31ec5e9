"""Small building blocks several pages share."""

from __future__ import annotations

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

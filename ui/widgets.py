"""Small building blocks several pages share."""

from __future__ import annotations

import streamlit as st

from db.database import Database
from exact.challenges import Challenge, get_challenge, list_challenges
from exact.errors import NotFound

PICKER_PAGE_SIZE = 50


def challenge_picker(db: Database, *, key: str, label: str = "Challenge") -> Challenge | None:
    """Search and page through the challenges; preselects ``?challenge=`` (any challenge, however old) and keeps
    the choice in the URL for sharing. An unknown id is reported, never replaced by another challenge."""
    wanted = st.query_params.get("challenge")
    linked = None
    if wanted:
        try:
            linked = get_challenge(db, wanted)
        except NotFound:
            st.error(f"There is no challenge {wanted!r}. Search for one below.")
    search_key, page_key = f"{key}_search", f"{key}_page"
    search = st.session_state.get(search_key, "")
    page_no = int(st.session_state.get(page_key, 1))
    found = list_challenges(db, search=search, limit=PICKER_PAGE_SIZE, offset=(page_no - 1) * PICKER_PAGE_SIZE)
    pages = max(1, -(-found.total // PICKER_PAGE_SIZE))
    if page_no > pages:  # the search narrowed: back to its first page
        st.session_state[page_key] = 1
        found = list_challenges(db, search=search, limit=PICKER_PAGE_SIZE)
    if found.total == 0 and not search and linked is None:
        st.info("There are no challenges yet.")
        return None
    search_col, page_col = st.columns([3, 1])
    search_col.text_input("Find a challenge", key=search_key, placeholder="title, id or description")
    if pages > 1:
        page_col.number_input(f"Page (of {pages})", min_value=1, max_value=pages, step=1, key=page_key)
    by_id = {c.challenge_id: c for c in found.items}
    if linked is not None and linked.challenge_id not in by_id:
        by_id = {linked.challenge_id: linked, **by_id}
    if not by_id:
        st.info("No challenge matches your search.")
        return None
    # Widget state is dropped when a page is left, so arriving from a link always honours ?challenge=.
    options: dict = {}
    if st.session_state.get(key) not in by_id:
        default = linked.challenge_id if linked is not None else (None if wanted else next(iter(by_id)))
        if default is None:
            st.session_state.pop(key, None)
            options = {"index": None, "placeholder": "Choose a challenge"}
        else:
            st.session_state[key] = default
    if pages > 1:
        st.caption(f"{found.total:,} challenge(s){' match' if search else ''}; {len(found.items)} on this page.")
    chosen = st.selectbox(
        label, options=list(by_id), format_func=lambda cid: f"{by_id[cid].title} ({cid})", key=key, **options
    )
    if chosen is None:
        return None
    st.query_params["challenge"] = chosen
    return by_id[chosen]


def format_score(value: float | None) -> str:
    return "–" if value is None else f"{value:.6g}"

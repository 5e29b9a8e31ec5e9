"""Challenges: searchable, sortable list with participants, submissions, best score and creation date."""

import pandas as pd
import streamlit as st

from exact.challenges import PAGE_SIZE, SORT_LABELS, list_challenges
from ui.runtime import get_db

st.title("Challenges")
search_col, sort_col = st.columns([3, 1])
search = search_col.text_input("Search", placeholder="title, id or description", key="challenges_search")
sort = sort_col.selectbox("Sort by", options=list(SORT_LABELS), format_func=SORT_LABELS.get, key="challenges_sort")

page_key = "challenges_page"
page_no = int(st.session_state.get(page_key, 1))
found = list_challenges(get_db(), search=search, sort=sort, offset=(page_no - 1) * PAGE_SIZE)
pages = max(1, -(-found.total // PAGE_SIZE))
if page_no > pages:  # the search narrowed: back to its first page
    st.session_state[page_key] = 1
    st.rerun()
challenges = found.items
if not challenges:
    st.info("No challenge matches your search." if search else "There are no challenges yet.")
    st.stop()

table = pd.DataFrame(
    {
        "title": [c.title for c in challenges],
        "challenge_id": [c.challenge_id for c in challenges],
        "participants": [c.participants for c in challenges],
        "submissions": [c.submissions for c in challenges],
        "best_score": [c.best_score for c in challenges],
        "created_at": [c.created_at for c in challenges],
    }
)
if pages > 1:
    st.number_input(f"Page (of {pages:,})", min_value=1, max_value=pages, step=1, key=page_key)
first = found.offset + 1
st.caption(
    f"{found.total:,} challenge(s); {first:,}–{found.offset + len(challenges):,} shown. Select a row to open its page."
)
selection = st.dataframe(
    table,
    hide_index=True,
    on_select="rerun",
    selection_mode="single-row",
    key="challenges_table",
    column_config={
        "title": st.column_config.TextColumn("Challenge", width="large"),
        "challenge_id": "Id",
        "participants": st.column_config.NumberColumn("Participants"),
        "submissions": st.column_config.NumberColumn("Submissions"),
        "best_score": st.column_config.NumberColumn("Best score", format="%.4g"),
        "created_at": st.column_config.DatetimeColumn("Created", format="YYYY-MM-DD"),
    },
)
rows = selection.selection.rows if selection else []
if rows:
    st.switch_page("app_pages/challenge.py", query_params={"challenge": challenges[rows[0]].challenge_id})

"""Challenges: a searchable, sortable list, one page at a time. Each challenge is a real link (open it in a new tab
if you like) with its type, where its competition stands, participants, submissions, best score and its date."""

import streamlit as st

from exact.challenges import PAGE_SIZE, SORT_LABELS, list_challenge_summaries
from ui.runtime import get_db
from ui.widgets import format_score, plural

st.title("Challenges")
search_col, sort_col = st.columns([3, 1])
search = search_col.text_input("Search", placeholder="title, id or description", key="challenges_search")
sort = sort_col.selectbox("Sort by", options=list(SORT_LABELS), format_func=SORT_LABELS.get, key="challenges_sort")

page_key = "challenges_page"
page_no = int(st.session_state.get(page_key, 1))
found = list_challenge_summaries(get_db(), search=search, sort=sort, offset=(page_no - 1) * PAGE_SIZE)
pages = max(1, -(-found.total // PAGE_SIZE))
if page_no > pages:  # the search narrowed: back to its first page
    st.session_state[page_key] = 1
    st.rerun()
if not found.items:
    st.info("No challenge matches your search." if search else "There are no challenges yet.")
    st.stop()

if pages > 1:
    st.number_input(f"Page (of {pages:,})", min_value=1, max_value=pages, step=1, key=page_key)
first, last = found.offset + 1, found.offset + len(found.items)
st.caption(f"{plural(found.total, 'challenge')}{' found' if search else ''}; {first:,}–{last:,} shown.")

for summary in found.items:
    challenge = summary.challenge
    with st.container(border=True, key=f"challenge_row_{challenge.id}"):
        st.page_link(
            "app_pages/challenge.py",
            label=challenge.title,
            query_params={"challenge": challenge.challenge_id},
            icon=":material/emoji_events:",
        )
        facts = [
            summary.kind,
            summary.status,
            plural(challenge.participants, "participant"),
            plural(challenge.submissions, "submission"),
        ]
        if challenge.best_score is not None:
            facts.append(f"best {format_score(challenge.best_score)}")
        facts.append(f"created {challenge.created_at:%Y-%m-%d}")
        st.caption(f"`{challenge.challenge_id}` · " + " · ".join(facts))

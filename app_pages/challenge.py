"""One challenge (deep link ``?challenge=<challenge_id>``): description, files, leaderboard, how to submit."""

import streamlit as st

from exact.challenges import FILE_KINDS, file_for_download
from exact.scores import leaderboard
from ui.auth import current_user
from ui.runtime import get_db, get_storage
from ui.widgets import challenge_picker, format_score

db = get_db()
challenge = challenge_picker(db, key="challenge_page_pick")
if challenge is None:
    st.stop()

st.title(challenge.title)
st.caption(f"Id `{challenge.challenge_id}` · created {challenge.created_at:%Y-%m-%d}")
stats = st.columns(3)
stats[0].metric("Participants", challenge.participants)
stats[1].metric("Submissions", challenge.submissions)
stats[2].metric("Best score", format_score(challenge.best_score))

# Streamlit's Markdown never renders raw HTML unless asked to, so descriptions cannot inject scripts.
st.markdown(challenge.description)

st.subheader("Files")
storage = get_storage()
file_columns = st.columns(len(FILE_KINDS))
for column, (kind, (label, _, _)) in zip(file_columns, FILE_KINDS.items(), strict=True):
    path = file_for_download(storage, challenge, kind)
    with column:
        if path is None:
            st.button(f"{label}: not provided", disabled=True, key=f"download_{kind}_none")
        else:
            st.download_button(
                f"Download {label[0].lower() + label[1:] if label[1:2].islower() else label}",
                data=path.read_bytes,  # read only when clicked
                file_name=path.name,
                key=f"download_{kind}",
                icon=":material/download:",
                on_click="ignore",
            )
            st.caption(f"{path.name} · {path.stat().st_size / 1024:,.1f} KB")

st.subheader("Leaderboard")
board = leaderboard(db, challenge.challenge_id)
if board.is_empty:
    st.caption("No submissions yet: be the first.")
else:
    st.dataframe(
        board.table.head(10).drop(columns=["score_id"]),
        hide_index=True,
        column_config={
            "rank": "Rank",
            "username": "User",
            "score": st.column_config.NumberColumn("Best score", format="%.6g"),
            "created_at": st.column_config.DatetimeColumn("Submitted", format="YYYY-MM-DD HH:mm"),
            "submissions": "Submissions",
        },
    )
st.page_link(
    "app_pages/leaderboard.py",
    label="Full leaderboard and charts →",
    query_params={"challenge": challenge.challenge_id},
)

st.subheader("How to submit")
st.markdown(
    "1. Download the dataset, the model and the XAI-method template above.\n"
    "2. Implement your explanation method from the template and evaluate it on the dataset.\n"
    "3. Submit the resulting score (higher is better) while logged in; your best score counts for the ranking."
)
user = current_user()
if user is None:
    st.page_link("app_pages/login.py", label="Log in to submit", icon=":material/login:")
else:
    st.page_link(
        "app_pages/submit.py",
        label="Submit a score",
        icon=":material/upload:",
        query_params={"challenge": challenge.challenge_id},
    )
    if user.is_organiser:
        st.page_link(
            "app_pages/manage_challenge.py",
            label="Edit this challenge",
            icon=":material/edit:",
            query_params={"challenge": challenge.challenge_id},
        )

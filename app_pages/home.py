"""Home: what Exact is, how it works, live counts, latest challenges and recent submissions."""

import streamlit as st

from exact.challenges import list_challenges
from exact.scores import recent_submissions, site_totals
from ui.runtime import get_db
from ui.widgets import plural

if st.query_params.get("challenge"):  # a shared deep link to the site root goes to the challenge page
    st.switch_page("app_pages/challenge.py", query_params={"challenge": st.query_params["challenge"]})

db = get_db()
st.title("Exact")
st.markdown(
    "**Benchmark challenges for explainable AI.** Organisers publish a dataset, a trained model and an XAI-method "
    "template; researchers explain the model and submit their scores; everyone follows the leaderboards."
)

steps = st.columns(3)
steps[0].markdown("#### 1. Pick a challenge\nBrowse the challenges and download the dataset, model and template.")
steps[1].markdown("#### 2. Explain and evaluate\nRun your XAI method on the model at home and compute your score.")
steps[2].markdown("#### 3. Submit and compare\nSubmit your score and see where you rank on the charted leaderboard.")

totals = site_totals(db)
counts = st.columns(4)
counts[0].metric("Challenges", totals["challenges"])
counts[1].metric("Submissions", totals["submissions"])
counts[2].metric("Participants", totals["participants"])
counts[3].metric("Registered users", totals["users"])

latest, recent = st.columns(2)
with latest:
    st.subheader("Latest challenges")
    challenges = list_challenges(db, sort="newest", limit=5).items
    if not challenges:
        st.caption("No challenges yet.")
    for challenge in challenges:
        st.page_link(
            "app_pages/challenge.py",
            label=f"{challenge.title} · {plural(challenge.participants, 'participant')}",
            query_params={"challenge": challenge.challenge_id},
            icon=":material/emoji_events:",
        )
    st.page_link("app_pages/challenges.py", label="All challenges →")
with recent:
    st.subheader("Recent submissions")
    submissions = recent_submissions(db, limit=8)
    if submissions.empty:
        st.caption("No submissions yet.")
    else:
        # A score whose challenge is gone (Django has no foreign keys) shows its id, never the text "None".
        submissions["title"] = submissions["title"].fillna(submissions["challenge_id"])
        st.dataframe(
            submissions[["created_at", "username", "title", "score"]],
            hide_index=True,
            placeholder="",
            column_config={
                "created_at": st.column_config.DatetimeColumn("When", format="distance"),
                "username": "Who",
                "title": "Challenge",
                "score": st.column_config.NumberColumn("Score", format="%.4g"),
            },
        )

"""Submit a score for a challenge, as the logged-in user; shows the updated rank."""

import hashlib
import uuid

import streamlit as st

from exact.competition import allowance, get_rules
from exact.evaluation_sets import get_evaluation
from exact.scores import submit_score
from ui.attribution_form import attribution_submission
from ui.auth import require_login
from ui.competition import allowance_line, status_line
from ui.feedback import user_errors
from ui.runtime import get_db
from ui.widgets import challenge_picker, format_score

user = require_login("submit a score")
db = get_db()
st.title("Submit a score")
challenge = challenge_picker(db, key="submit_pick")
if challenge is None:
    st.stop()
evaluation = get_evaluation(db, challenge.challenge_id)
if evaluation is not None:  # scored on the server: attributions, never a typed-in number
    attribution_submission(db, user, challenge, evaluation)
    st.stop()

# One key per filled-in form: a double click (or a retry) re-sends the same key and stores one row only.
if "submit_request_key" not in st.session_state:
    st.session_state.submit_request_key = uuid.uuid4().hex

rules = get_rules(db, challenge.challenge_id)
left = allowance(db, user.id, challenge.challenge_id)
st.info(status_line(rules))
if left is not None:
    st.caption(allowance_line(left))
with st.form("submit_form"):
    better = "Higher" if rules.higher_is_better else "Lower"
    valid = ""
    if rules.min_value is not None and rules.max_value is not None:
        valid = f" Valid: {rules.min_value:g} to {rules.max_value:g}."
    st.caption(
        f"Submitting as **{user.username}**. {rules.metric_name}: {better.lower()} is better; your best score "
        f"is ranked.{valid}"
    )
    score_text = st.text_input(rules.metric_name, placeholder="e.g. 0.8731", key="submit_score")
    confirmed = st.checkbox(
        "I confirm this score is the result of my own method on this challenge.", key="submit_confirm"
    )
    submitted = st.form_submit_button("Submit score", type="primary", disabled=left is not None and not left.may_submit)

if submitted:
    # This attempt's outcome replaces the last one's: an earlier success never stays under a new error.
    st.session_state.pop("submit_last_result", None)
    if not confirmed:
        st.warning("Please tick the confirmation box first.")
    else:
        with user_errors("submit score"):
            # Same form, same values: same key. Changing the value (or "Submit another") makes a new submission.
            digest = hashlib.sha256(f"{challenge.challenge_id}\n{score_text.strip()}".encode()).hexdigest()[:16]
            result = submit_score(
                db,
                user.id,
                challenge.challenge_id,
                score_text,
                request_key=f"{st.session_state.submit_request_key}:{digest}",
            )
            st.session_state.submit_last_result = result
            if result.repeated:
                st.info("This score was already submitted; it was stored once.")
            else:
                # Run the page again so the remaining submissions (and the button) reflect the new one.
                st.session_state.submit_toast = f"Score {format_score(result.score)} submitted: you are #{result.rank}."
                st.rerun()

if toast := st.session_state.pop("submit_toast", None):
    st.toast(toast, icon=":material/check_circle:")

result = st.session_state.get("submit_last_result")
if result is not None and result.challenge_id == challenge.challenge_id:
    st.success(
        f"Stored score **{format_score(result.score)}** for **{challenge.title}**. "
        f"Your best is {format_score(result.best_score)}, rank **#{result.rank}** of {result.ranked_users}."
    )
    cols = st.columns(2)
    with cols[0]:
        st.page_link(
            "app_pages/leaderboard.py",
            label="See the leaderboard",
            icon=":material/leaderboard:",
            query_params={"challenge": challenge.challenge_id},
        )

    def _start_over() -> None:
        st.session_state.submit_request_key = uuid.uuid4().hex
        st.session_state.pop("submit_last_result", None)
        st.session_state.submit_score = ""
        st.session_state.submit_confirm = False

    cols[1].button("Submit another score", key="submit_another", on_click=_start_over)

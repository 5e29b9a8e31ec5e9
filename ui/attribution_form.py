"""Submitting attribution maps for a ground-truth challenge, and following their scoring."""

from __future__ import annotations

import hashlib
import uuid

import pandas as pd
import streamlit as st

from db.database import Database
from exact.accounts import User
from exact.challenges import Challenge
from exact.competition import allowance, choose_finals, final_choices, get_rules
from exact.evaluation_sets import EvaluationSet
from exact.intake import my_submissions, submit_attributions
from exact.metrics import METRICS
from exact.moderation import ACTION_LABELS, moderate
from exact.scoring import process_submission
from exact.scoring import progress as scoring_progress
from exact.storage import UploadedFile
from ui.competition import allowance_line, status_line
from ui.feedback import user_errors
from ui.runtime import get_private_storage, get_settings, get_storage
from ui.widgets import format_score

STATUS_LABELS = {"queued": "waiting to be scored", "running": "being scored", "done": "scored", "failed": "failed"}


def attribution_submission(db: Database, user: User, challenge: Challenge, evaluation: EvaluationSet) -> None:
    n, h, w = evaluation.n_samples, evaluation.height, evaluation.width
    st.markdown(
        f"This challenge is **scored on the server**: run your XAI method on the {n} evaluation inputs (download "
        f"them from the challenge page) and upload the attribution maps as a `.npy` array of shape `({n}, {h}, {w})` "
        f"or `({n}, {h * w})`, or a `.npz` with key `attributions`. Ranked by "
        f"**{METRICS[evaluation.primary_metric].label}**."
    )
    rules = get_rules(db, challenge.challenge_id)
    left = allowance(db, user.id, challenge.challenge_id)
    st.info(status_line(rules))
    allowance_slot = st.empty()  # refilled after a submit, so the count shown is never one behind
    if left is not None:
        allowance_slot.caption(allowance_line(left))
    if "attr_request_key" not in st.session_state:
        st.session_state.attr_request_key = uuid.uuid4().hex
    with st.form("attribution_form"):
        upload = st.file_uploader(
            "Attribution file", type=["npy", "npz"], key="attr_file", max_upload_size=get_settings().max_upload_mb
        )
        method = st.text_input("Method name", max_chars=100, key="attr_method", placeholder="e.g. Integrated Gradients")
        description = st.text_area("Description (optional)", max_chars=5000, key="attr_description")
        url = st.text_input("Paper or code URL (optional)", max_chars=500, key="attr_url")
        confirmed = st.checkbox("I confirm these attributions come from my own method.", key="attr_confirm")
        submitted = st.form_submit_button(
            "Upload and score", type="primary", disabled=left is not None and not left.may_submit
        )
    if submitted:
        if not confirmed:
            st.warning("Please tick the confirmation box first.")
        elif upload is None:
            st.warning("Choose an attribution file first.")
        else:
            with user_errors("submit attributions"):
                data = upload.getvalue()
                digest = hashlib.sha256(data).hexdigest()[:16]
                submission = submit_attributions(
                    db,
                    get_storage(),
                    user.id,
                    challenge.challenge_id,
                    UploadedFile(upload.name, data),
                    method_name=method,
                    description=description,
                    url=url,
                    request_key=f"{st.session_state.attr_request_key}:{digest}",
                    max_waiting=get_settings().max_queued_per_user,
                )
                if evaluation.scored_inline and submission.status == "queued":
                    bar = st.progress(0.0, text="Scoring…")
                    finished = process_submission(
                        db,
                        get_storage(),
                        get_private_storage(),
                        submission.id,
                        progress=lambda done, total: bar.progress(
                            done / max(total, 1), text=f"Scored {done} of {total}"
                        ),
                        time_budget=get_settings().scoring_seconds,
                    )
                    submission = finished or submission
                _report(submission)
                allowance_slot.caption(allowance_line(allowance(db, user.id, challenge.challenge_id)))
    _my_submissions(db, user, challenge)
    _finals_and_withdrawal(db, user, challenge, rules)


def _report(submission) -> None:
    if submission.status == "done":
        st.toast(f"Scored: {format_score(submission.primary_value)}", icon=":material/check_circle:")
        st.success(
            f"**{submission.method_name}** scored **{format_score(submission.primary_value)}** "
            f"({METRICS[submission.primary_metric].label})."
        )
    elif submission.status == "failed":
        st.error(f"Scoring failed: {submission.error}")
    else:
        st.info("Your submission is queued for scoring; this page shows its progress below.")
    st.page_link("app_pages/result.py", label="Open the result page →", query_params={"submission": submission.id})


def _state(submission) -> str:
    if submission.moderation:
        reason = f": {submission.moderation_reason}" if submission.moderation_reason else ""
        return f"{ACTION_LABELS[submission.moderation]}{reason}"
    return STATUS_LABELS.get(submission.status, submission.status)


@st.fragment(run_every=3)
def _my_submissions(db: Database, user: User, challenge: Challenge) -> None:
    mine = my_submissions(db, user.id, challenge.challenge_id)
    if not mine:
        return
    st.subheader("Your submissions to this challenge")
    # Samples done of N for the ones still being scored: refreshed with this fragment, every few seconds.
    waiting = {s.id: scoring_progress(db, user.id, s.id) for s in mine if s.status in {"queued", "running"}}
    for s in mine:
        if s.id in waiting:
            done, total = waiting[s.id]
            st.progress(
                done / max(total, 1),
                text=f"{done:,} of {total:,} samples scored (submitted {s.created_at:%Y-%m-%d %H:%M})",
            )
    st.dataframe(
        pd.DataFrame(
            {
                "result": [f"result?submission={s.id}" for s in mine],
                "method": [s.method_name for s in mine],
                "status": [_state(s) for s in mine],
                "progress": [
                    f"{waiting[s.id][0]:,} of {waiting[s.id][1]:,} samples" if s.id in waiting else "" for s in mine
                ],
                "score": [s.public_value for s in mine],
                "submitted": [s.created_at for s in mine],
                "error": [s.error or "" for s in mine],
            }
        ),
        hide_index=True,
        placeholder="",  # a submission not scored yet has an empty score cell, not the text "None"
        column_config={
            "result": st.column_config.LinkColumn("Result", display_text="open"),
            "score": st.column_config.NumberColumn("Public score", format="%.4f"),
            "submitted": st.column_config.DatetimeColumn("Submitted", format="YYYY-MM-DD HH:mm"),
        },
    )


def _finals_and_withdrawal(db: Database, user: User, challenge: Challenge, rules) -> None:
    """Choose the submissions that count for the final ranking; withdraw one of your own."""
    scored = [s for s in my_submissions(db, user.id, challenge.challenge_id) if s.status == "done" and s.score_id]
    rankable = [s for s in scored if not s.moderation]
    if not rankable:
        return
    labels = {
        s.id: f"{s.method_name} · {format_score(s.public_value)} · {s.created_at:%Y-%m-%d %H:%M}" for s in rankable
    }
    st.subheader("Final submissions")
    st.caption(
        f"Up to {rules.final_count} of your submissions count for the final (private) ranking. Without a choice, "
        "your best public submission counts."
    )
    if rules.phase() != "closed":
        current = [sid for sid in final_choices(db, user.id, challenge.challenge_id) if sid in labels]
        with st.form("finals_form"):
            chosen = st.multiselect(
                "Final submissions", list(labels), default=current, format_func=labels.get,
                max_selections=rules.final_count,
            )  # fmt: skip
            if st.form_submit_button("Save final submissions"):
                with user_errors("final submissions"):
                    saved = choose_finals(db, user.id, challenge.challenge_id, chosen)
                    st.success(f"{len(saved)} final submission{'s' if len(saved) != 1 else ''} saved.")
        with st.expander("Withdraw a submission"):
            target = st.selectbox("Submission", list(labels), format_func=labels.get, key="withdraw_pick")
            if st.button("Withdraw it from the leaderboard", key="withdraw_button"):
                with user_errors("withdraw"):
                    moderate(db, user.id, next(s.score_id for s in rankable if s.id == target), "withdrawn")
                    st.success("Withdrawn: it no longer counts for any ranking.")

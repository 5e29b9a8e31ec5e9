"""One submission's result (``?submission=<id>``): metrics with standard deviations, per-sample distribution,
and a gallery of a few samples (input, ground-truth mask for those allowed, the submitted attribution)."""

import streamlit as st

from exact import charts
from exact.evaluation import gallery, per_sample_frame, summary_frame, view_submission
from exact.metrics import METRICS
from ui.attribution_form import STATUS_LABELS
from ui.auth import current_user
from ui.runtime import get_db, get_private_storage, get_storage
from ui.widgets import format_score

db = get_db()
user = current_user()
raw_id = st.query_params.get("submission", "")
if not (raw_id.isascii() and raw_id.isdigit()):  # str.isdigit() also accepts "²" and other scripts' digits
    st.title("Submission result")
    st.info("Open a result from the leaderboard or from your submissions.")
    st.stop()
submission, evaluation = view_submission(db, user.id if user else None, int(raw_id))

st.title(f"{submission.method_name}")
who = "Baseline" if submission.kind == "baseline" else f"by **{submission.username}**"
st.caption(
    f"{who} · challenge `{submission.challenge_id}` · {STATUS_LABELS.get(submission.status)} · "
    f"submitted {submission.created_at:%Y-%m-%d %H:%M}"
)
st.page_link(
    "app_pages/leaderboard.py", label="Back to the leaderboard", query_params={"challenge": submission.challenge_id}
)
if submission.description:
    st.markdown(submission.description)
if submission.url:
    st.markdown(f"Paper / code: {submission.url}")

if submission.status == "failed":
    st.error(f"Scoring failed: {submission.error}")
    st.stop()
if submission.status != "done":
    st.info("This submission is still being scored. This page updates when you reload it.")
    st.stop()

st.metric(METRICS[submission.primary_metric].label, format_score(submission.primary_value))
summary = summary_frame(submission)
st.dataframe(
    summary.drop(columns=["key"]),
    hide_index=True,
    column_config={
        "mean": st.column_config.NumberColumn("Mean", format="%.4f"),
        "std": st.column_config.NumberColumn("Std", format="%.4f"),
        "scored": "Samples scored",
        "not scorable": st.column_config.NumberColumn("Not scorable", help="All-zero attribution or empty mask"),
    },
)
details = []
if submission.file_size is not None:
    details.append(f"file {submission.file_size / 1024:,.1f} KB, SHA-256 `{submission.file_sha256}`")
if submission.seconds is not None:
    details.append(f"scored in {submission.seconds:.2f} s")
if details:
    st.caption(" · ".join(details))

st.plotly_chart(charts.per_sample_violin(per_sample_frame(submission)), key="result_violin")

st.subheader("Samples")
samples = gallery(db, get_storage(), get_private_storage(), user.id if user else None, submission.id)
if samples:
    rows = [
        [(f"input #{s['index']}", s["input"]) for s in samples],
        [(f"ground truth #{s['index']}", s["mask"]) for s in samples] if samples[0]["mask"] is not None else None,
        [(f"attribution #{s['index']}", s["attribution"]) for s in samples],
    ]
    st.plotly_chart(charts.image_grid([row for row in rows if row is not None]), key="result_gallery")
    if samples[0]["mask"] is None:
        st.caption("Ground-truth masks are shown only to the submitter and the challenge's organisers.")

"""One submission's result (``?submission=<id>``): aggregates per split, and per-sample detail and a gallery on the
samples the viewer may see (exact.permissions: organisers everything, others the development samples only)."""

import streamlit as st

from exact import charts
from exact.errors import NotFound
from exact.metrics import METRICS
from exact.results import SPLIT_LABELS, gallery, view_submission
from ui.attribution_form import STATUS_LABELS
from ui.auth import current_user
from ui.runtime import get_db, get_private_storage, get_storage
from ui.widgets import format_score, remember_challenge


def _nothing_to_show(message: str | None) -> None:
    st.title("Submission result")
    if message is None:
        st.info("Open a result from the leaderboard or from your submissions.")
    else:
        st.error(message)
    st.page_link("app_pages/challenges.py", label="See all challenges", icon=":material/list:")
    st.stop()


db = get_db()
user = current_user()
raw_id = st.query_params.get("submission", "")
if not raw_id.strip():
    _nothing_to_show(None)
# str.isdigit() also accepts "²" and other scripts' digits; ids are bigint, so at most 18 digits here.
if not (raw_id.isascii() and raw_id.isdigit() and len(raw_id) <= 18):
    _nothing_to_show(f"There is no submission {raw_id!r}. Check the link, or open a result from a leaderboard.")
try:
    view = view_submission(db, user.id if user else None, int(raw_id))
except NotFound as exc:
    _nothing_to_show(str(exc))
submission = view.submission
# The sidebar's Leaderboard then opens this submission's challenge.
remember_challenge(submission.challenge_id, in_address=False)

st.set_page_config(page_title=f"{submission.method_name} · Exact")
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
    st.text(submission.description)  # plain text: a description is never rendered as Markdown
if submission.url:
    st.link_button("Paper / code", submission.url)  # one URL, shown as a plain link

if submission.status == "failed":
    st.error(f"Scoring failed: {submission.error}")
    st.stop()
if submission.status != "done":
    st.info("This submission is still being scored. This page updates when you reload it.")
    st.stop()

st.metric(f"{METRICS[submission.primary_metric].label} (public samples)", format_score(submission.primary_value))
st.dataframe(
    view.summary.drop(columns=["key"]),
    hide_index=True,
    placeholder="",  # a metric no sample could be scored on has no mean: an empty cell, not "None"
    column_config={
        "split": "Samples",
        "metric": "Metric",
        "mean": st.column_config.NumberColumn("Mean", format="%.4f"),
        "std": st.column_config.NumberColumn("Std", format="%.4f"),
        "scored": "Samples scored",
        "not scorable": st.column_config.NumberColumn("Not scorable", help="All-zero attribution or empty mask"),
    },
)
if not view.access.is_organiser:
    st.caption(
        "Figures are aggregates rounded to 4 decimals. Per-sample results are shown for the development samples "
        "only; the private samples' figures appear when the challenge has ended."
    )
details = []
if submission.file_size is not None:
    details.append(
        f"stored array {submission.file_size / 1024:,.1f} KB, SHA-256 of the upload `{submission.file_sha256}`"
    )
if submission.seconds is not None:
    details.append(f"scored in {submission.seconds:.2f} s")
if details:
    st.caption(" · ".join(details))

if not view.per_sample.empty:
    shown = ", ".join(SPLIT_LABELS[s].lower() for s in view.access.per_sample_splits)
    st.subheader(f"Per-sample scores ({shown} samples)")
    st.plotly_chart(charts.per_sample_violin(view.per_sample), key="result_violin")

samples = gallery(db, get_storage(), get_private_storage(), user.id if user else None, submission.id)
if samples:
    st.subheader("Samples")
    rows = [
        [(f"input #{s['index']}", s["input"]) for s in samples],
        [(f"ground truth #{s['index']}", s["mask"]) for s in samples],
        [(f"attribution #{s['index']}", s["attribution"]) for s in samples],
    ]
    st.plotly_chart(charts.image_grid(rows), key="result_gallery")

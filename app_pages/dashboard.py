"""Challenge dashboard (the challenge's organisers and administrators): participants, submissions per day, failed
submissions with their reasons, and an export of every submission as CSV or JSON. Rules: exact/dashboard.py."""

import pandas as pd
import streamlit as st

from exact import dashboard
from ui.auth import require_login
from ui.runtime import get_db
from ui.widgets import challenge_picker, plural

user = require_login("see challenge dashboards")
if not user.is_organiser:
    st.error("Only organisers may see challenge dashboards.")
    st.stop()

db = get_db()
st.title("Challenge dashboard")
challenge = challenge_picker(db, key="dashboard_pick", organised_by=user.id)  # the challenges this user organises
if challenge is None:
    st.stop()
st.set_page_config(page_title=f"Dashboard: {challenge.title} · Exact")
cid = challenge.challenge_id
# Each call below checks that this user organises the challenge (or administers the site); a refusal is shown by
# app.py as its message, and nothing of the challenge is drawn.

days = st.radio(
    "Period", dashboard.DAY_CHOICES, format_func=lambda d: f"Last {d} days", horizontal=True, key="dashboard_days"
)
summary = dashboard.overview(db, user.id, cid, days=days)
counts = st.columns(4)
counts[0].metric("Participants", f"{summary.participants:,}")
counts[1].metric("Submissions", f"{summary.submissions:,}")
counts[2].metric("Failed", f"{summary.failed:,}")
counts[3].metric("Waiting to be scored", f"{summary.waiting:,}")

st.subheader("Submissions per day")
st.caption(f"UTC days; the last {days} days.")
per_day = pd.DataFrame(
    {
        "day": [d.day for d in summary.per_day],
        "scored": [d.scored for d in summary.per_day],
        "failed": [d.failed for d in summary.per_day],
        "waiting": [d.waiting for d in summary.per_day],
    }
).set_index("day")
if per_day.to_numpy().sum() == 0:
    st.caption("No submissions in this period.")
else:
    st.bar_chart(per_day, y_label="submissions", color=["#2e7d32", "#c62828", "#9e9e9e"])


def _pager(label: str, total: int, key: str) -> int:
    """The offset of the page chosen with a page number (shown only when there is more than one page)."""
    pages = max(1, -(-total // dashboard.PAGE_SIZE))
    if int(st.session_state.get(key, 1)) > pages:  # fewer rows than when the page was chosen
        st.session_state[key] = pages
    if pages > 1:
        st.number_input(f"{label}, page (of {pages:,})", min_value=1, max_value=pages, step=1, key=key)
    return (int(st.session_state.get(key, 1)) - 1) * dashboard.PAGE_SIZE


st.subheader("Participants")
offset = _pager("Participants", summary.participants, f"dashboard_people_{cid}")
people = dashboard.participants(db, user.id, cid, offset=offset)
if not people.items:
    st.caption("Nobody has submitted yet.")
else:
    st.caption(f"{plural(people.total, 'participant')}, most recently active first.")
    st.dataframe(
        pd.DataFrame(
            {
                "username": [p.username for p in people],
                "submissions": [p.submissions for p in people],
                "failed": [p.failed for p in people],
                "first": [p.first_at for p in people],
                "last": [p.last_at for p in people],
            }
        ),
        hide_index=True,
        placeholder="",
        column_config={
            "username": "Participant",
            "submissions": st.column_config.NumberColumn("Submissions"),
            "failed": st.column_config.NumberColumn("Failed"),
            "first": st.column_config.DatetimeColumn("First submission", format="YYYY-MM-DD HH:mm"),
            "last": st.column_config.DatetimeColumn("Last submission", format="YYYY-MM-DD HH:mm"),
        },
        key="dashboard_people_table",
    )

st.subheader("Failed submissions")
offset = _pager("Failed submissions", summary.failed, f"dashboard_failed_{cid}")
failures = dashboard.failed_submissions(db, user.id, cid, offset=offset)
if not failures.items:
    st.caption("No submission has failed.")
else:
    st.caption(f"{plural(failures.total, 'failed submission')}, newest first, with the reason scoring gave.")
    st.dataframe(
        pd.DataFrame(
            {
                "when": [f.created_at for f in failures],
                "username": [f.username for f in failures],
                "method": [f.method_name for f in failures],
                "reason": [f.error for f in failures],
                "result": [f"result?submission={f.submission_id}" for f in failures],
            }
        ),
        hide_index=True,
        placeholder="",
        column_config={
            "when": st.column_config.DatetimeColumn("Submitted", format="YYYY-MM-DD HH:mm"),
            "username": "Participant",
            "method": "Method",
            "reason": st.column_config.TextColumn("Reason", width="large"),
            "result": st.column_config.LinkColumn("Result", display_text="open"),
        },
        key="dashboard_failed_table",
    )

st.subheader("Export every submission")
parts = summary.export_parts
st.caption(
    f"Every submission of this challenge in time order, whatever its state, with its score and any moderation. "
    f"Parts of up to {dashboard.EXPORT_PART_ROWS:,} rows; CSV cells that a spreadsheet would run as a formula "
    "are prefixed with an apostrophe."
)
export_cols = st.columns([1, 1, 2])
part = 1
if parts > 1:
    part = int(export_cols[0].number_input(f"Part (of {parts:,})", 1, parts, 1, key=f"dashboard_part_{cid}"))
suffix = f"-part{part}" if parts > 1 else ""
for column, fmt, mime in ((export_cols[1], "csv", "text/csv"), (export_cols[2], "json", "application/json")):
    column.download_button(
        f"Download {fmt.upper()}",
        # Generated only when clicked, and the permission is checked again then.
        data=lambda fmt=fmt: dashboard.export(db, user.id, cid, fmt=fmt, part=part),
        file_name=f"submissions-{cid}{suffix}.{fmt}",
        mime=mime,
        icon=":material/download:",
        on_click="ignore",
        key=f"dashboard_export_{fmt}",
    )

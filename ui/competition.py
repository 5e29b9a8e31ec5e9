"""Competition widgets: the rules form (phases, limits, finals, score range), the status line, moderation."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from db.database import Database
from exact.accounts import User
from exact.competition import DEFAULT_DAILY_LIMIT, MAX_FINAL_COUNT, Allowance, Rules, countdown
from exact.errors import ValidationError
from exact.moderation import ACTION_LABELS, moderate, moderated, restore
from exact.scores import PAGE_SIZE, leaderboard
from ui.feedback import user_errors

TIME_FORMAT = "%Y-%m-%d %H:%M"


def _format_time(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(UTC).strftime(TIME_FORMAT)


def parse_time(text: str, label: str) -> datetime | None:
    """'YYYY-MM-DD HH:MM' in UTC (or just a date: 00:00 UTC); empty means none."""
    text = (text or "").strip()
    if not text:
        return None
    for pattern in (TIME_FORMAT, "%Y-%m-%d"):
        try:
            return datetime.strptime(text, pattern).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise ValidationError(f"{label}: write the time as YYYY-MM-DD HH:MM (UTC), e.g. 2026-12-24 18:00.")


def _parse_number(text: str, label: str) -> float | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise ValidationError(f"{label} must be a number (or empty).") from None


def rules_inputs(current: Rules | None, *, key: str, scored_on_server: bool) -> Callable[[], Rules]:
    """Inputs for the rules inside a form; returns a function building the Rules at submit time."""
    rules = current or Rules(daily_limit=DEFAULT_DAILY_LIMIT)
    st.markdown("**Competition rules** (times in UTC)")
    cols = st.columns(2)
    starts = cols[0].text_input(
        "Opens at", value=_format_time(rules.starts_at), key=f"{key}_starts", placeholder="empty: open now"
    )
    ends = cols[1].text_input(
        "Closes at", value=_format_time(rules.ends_at), key=f"{key}_ends", placeholder="empty: never closes"
    )
    cols = st.columns(3)
    daily = cols[0].number_input(
        "Submissions per day (0: no limit)", 0, 10_000, rules.daily_limit or 0, key=f"{key}_daily"
    )
    total = cols[1].number_input(
        "Submissions in total (0: no limit)", 0, 10_000, rules.total_limit or 0, key=f"{key}_total"
    )
    finals = rules.final_count
    if scored_on_server:
        finals = cols[2].number_input(
            "Final submissions per participant",
            1,
            MAX_FINAL_COUNT,
            rules.final_count,
            key=f"{key}_finals",
            help="They count for the private ranking; without a choice, a participant's best public one counts.",
        )
    reveal = st.radio(
        "Final (private) leaderboard",
        ["auto", "manual"],
        index=0 if rules.reveal == "auto" else 1,
        format_func={"auto": "Revealed automatically at the end", "manual": "Revealed when I publish it"}.get,
        key=f"{key}_reveal",
        horizontal=True,
    )
    metric_name, higher, low, high = rules.metric_name, rules.higher_is_better, "", ""
    if not scored_on_server:
        cols = st.columns(4)
        metric_name = cols[0].text_input("Metric", value=rules.metric_name, max_chars=100, key=f"{key}_metric")
        higher = cols[1].radio(
            "Better is", [True, False], index=0 if rules.higher_is_better else 1,
            format_func={True: "higher", False: "lower"}.get, key=f"{key}_direction",
        )  # fmt: skip
        low = cols[2].text_input(
            "Lowest valid score", value="" if rules.min_value is None else f"{rules.min_value:g}", key=f"{key}_min"
        )
        high = cols[3].text_input(
            "Highest valid score", value="" if rules.max_value is None else f"{rules.max_value:g}", key=f"{key}_max"
        )

    def build() -> Rules:
        return Rules(
            starts_at=parse_time(starts, "Opens at"),
            ends_at=parse_time(ends, "Closes at"),
            reveal=reveal,
            daily_limit=int(daily) or None,
            total_limit=int(total) or None,
            final_count=int(finals),
            metric_name=metric_name,
            higher_is_better=bool(higher),
            min_value=_parse_number(low, "Lowest valid score"),
            max_value=_parse_number(high, "Highest valid score"),
        )

    return build


def status_line(rules: Rules) -> str:
    """'Open · closes 2026-12-24 18:00 UTC (in 3 days 4 hours)' and the like."""
    phase = rules.phase()
    if phase == "upcoming":
        return f"Opens {_format_time(rules.starts_at)} UTC (in {countdown(rules.starts_at)})"
    if phase == "closed":
        revealed = "final leaderboard revealed" if rules.private_revealed() else "final leaderboard not yet published"
        return f"Closed {_format_time(rules.ends_at)} UTC · {revealed}"
    if rules.ends_at is None:
        return "Open · no closing date"
    return f"Open · closes {_format_time(rules.ends_at)} UTC (in {countdown(rules.ends_at)})"


def allowance_line(allowance: Allowance) -> str:
    if allowance.phase != "open":
        return "Submissions are not accepted now."
    parts = []
    if allowance.today_left is not None:
        parts.append(f"{allowance.today_left} left today (resets {_format_time(allowance.resets_at)} UTC)")
    if allowance.total_left is not None:
        parts.append(f"{allowance.total_left} left in total")
    return "Submissions: " + (" · ".join(parts) if parts else "no limit")


def moderation_section(db: Database, user: User, challenge_id: str) -> None:
    """For the challenge's organisers: hide, disqualify or restore a ranked submission, with a reason."""
    page_key = f"moderate_page_{challenge_id}"
    page_no = int(st.session_state.get(page_key, 1))
    board = leaderboard(db, challenge_id, show_all=True, board="public", offset=(page_no - 1) * PAGE_SIZE, charts=False)
    st.subheader("Moderation")
    if board.is_empty:
        st.caption("No ranked submissions yet.")
        return
    if page_no > board.pages:  # submissions were taken off since the page was chosen
        st.session_state[page_key] = page_no = board.pages
        board = leaderboard(
            db, challenge_id, show_all=True, board="public", offset=(page_no - 1) * PAGE_SIZE, charts=False
        )
    if board.pages > 1:
        st.number_input(
            f"Ranked submissions, page (of {board.pages:,})", min_value=1, max_value=board.pages, key=page_key
        )
    rows = board.table
    options = [int(s) for s in rows["score_id"] if pd.notna(s)]
    by_score = {int(r["score_id"]): r for _, r in rows.iterrows() if pd.notna(r["score_id"])}
    chosen = st.selectbox(
        "Submission",
        options,
        format_func=lambda sid: (
            f"#{by_score[sid]['rank']} {by_score[sid]['username']} · "
            f"{by_score[sid].get('method') or by_score[sid]['score']} · {by_score[sid]['created_at']:%Y-%m-%d %H:%M}"
        ),
        key=f"moderate_pick_{challenge_id}",
    )
    with st.form(f"moderate_form_{challenge_id}"):
        action = st.radio("Action", ["hidden", "disqualified"], format_func=ACTION_LABELS.get, horizontal=True)
        reason = st.text_input("Reason (the submitter sees it)", max_chars=1000)
        if st.form_submit_button("Apply"):
            with user_errors("moderation"):
                moderate(db, user.id, chosen, action, reason)
                st.success("Done: the submission is off the leaderboard.")
    taken_off = moderated(db, user.id, challenge_id)
    if taken_off:
        with st.expander(f"Moderated submissions ({len(taken_off)})"):
            labels = {
                m["score_id"]: f"{m['username']} · {m['score']:.6g} · {ACTION_LABELS[m['action']]}"
                + (f": {m['reason']}" if m["reason"] else "")
                for m in taken_off
            }
            target = st.selectbox(
                "Submission", list(labels), format_func=labels.get, key=f"restore_pick_{challenge_id}"
            )
            if st.button("Put it back on the leaderboard", key=f"restore_{challenge_id}"):
                with user_errors("restore"):
                    restore(db, user.id, int(target))
                    st.success("Restored.")

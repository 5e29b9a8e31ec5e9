"""Compare two methods (``?challenge=<id>&a=<submission id>&b=<submission id>``): per metric the paired difference
with its interval, the win rate and a Wilcoxon test over the same samples (aggregates only), and per-sample pairs
where exact.permissions allows them (development samples; every part for the challenge's organisers)."""

import pandas as pd
import streamlit as st

from exact import charts
from exact.errors import NotFound
from exact.metrics import METRICS
from exact.permissions import MIN_STATISTIC_SAMPLES
from exact.statistics import BOARD_LABELS, SCORE_ONLY_NOTE, compare, comparison_candidates, method_card
from ui.auth import current_user
from ui.board import card_label, metric_header
from ui.board import method_card as show_card
from ui.runtime import get_db
from ui.widgets import challenge_picker

db = get_db()
st.title("Compare methods")
challenge = challenge_picker(db, key="compare_pick")
if challenge is None:
    st.stop()
viewer = current_user()
viewer_id = viewer.id if viewer else None
cid = challenge.challenge_id

candidates = comparison_candidates(db, cid)
if not candidates.scored_on_server:
    st.info(SCORE_ONLY_NOTE)
    st.stop()
if candidates.final_available:
    which = st.radio(
        "Samples", ["private", "public"], format_func=BOARD_LABELS.get, horizontal=True, key="compare_board"
    )
    if which != candidates.board:
        candidates = comparison_candidates(db, cid, board=which)

labels = {c.submission_id: c.label for c in candidates.options}
options = list(labels)


def _linked(name: str) -> int | None:
    """A submission id from the query string (?a=, ?b=), added to the options when it is a leaderboard row."""
    raw = st.query_params.get(name, "")
    if not (raw.isascii() and raw.isdigit()):
        return None
    sid = int(raw)
    if sid not in labels:
        try:
            labels[sid] = card_label(method_card(db, viewer_id, cid, sid))
        except NotFound as exc:
            st.error(str(exc))
            return None
        options.append(sid)
    return sid


linked = {"a": _linked("a"), "b": _linked("b")}
if len(options) < 2:
    st.info("Two methods on the leaderboard (or baselines) are needed for a comparison.")
    st.stop()
if candidates.more:
    st.caption(
        f"Offering the first {len([c for c in candidates.options if not c.is_baseline]):,} leaderboard rows; any "
        "other row can be compared from its method card."
    )

# Arriving from a link honours ?a= and ?b=; afterwards the choice is kept in the URL for sharing.
defaults = {"a": linked["a"] if linked["a"] is not None else options[0]}
defaults["b"] = linked["b"] if linked["b"] is not None else next(o for o in options if o != defaults["a"])
left, right = st.columns(2)
chosen = {}
for side, column, label in (("a", left, "Method A"), ("b", right, "Method B")):
    key = f"compare_{side}"
    if st.session_state.get(key) not in options:
        st.session_state[key] = defaults[side]
    chosen[side] = column.selectbox(label, options, format_func=labels.get, key=key)
    st.query_params[side] = str(chosen[side])
if chosen["a"] == chosen["b"]:
    st.warning("Choose two different methods to compare.")
    st.stop()

comparison = compare(db, viewer_id, cid, chosen["a"], chosen["b"], board=candidates.board)
with left:
    show_card(comparison.a, challenge_id=cid, compare_link=False)
with right:
    show_card(comparison.b, challenge_id=cid, compare_link=False)

part = BOARD_LABELS[comparison.board].lower()
st.subheader(f"Paired differences ({part})")
frame = comparison.metrics
shown = pd.DataFrame(
    {
        "metric": [metric_header(m) for m in frame["metric"]],
        "difference": frame["difference"],
        "ci": [
            None if pd.isna(lo) or pd.isna(hi) else f"{lo:+.4f}–{hi:+.4f}"
            for lo, hi in zip(frame["ci_low"], frame["ci_high"], strict=True)
        ],
        "win_rate": frame["win_rate"],
        "p_value": frame["p_value"],
        "n": frame["n"],
        "mean_a": frame["mean_a"],
        "mean_b": frame["mean_b"],
    }
)
st.dataframe(
    shown,
    hide_index=True,
    placeholder="",
    column_config={
        "metric": st.column_config.TextColumn("Metric", help="↑ higher is better"),
        "n": st.column_config.NumberColumn("Samples", help="Samples both methods were scored on"),
        "mean_a": st.column_config.NumberColumn("Mean A", format="%.4f"),
        "mean_b": st.column_config.NumberColumn("Mean B", format="%.4f"),
        "difference": st.column_config.NumberColumn("A − B", format="%+.4f", help="Mean of the paired differences"),
        "ci": st.column_config.TextColumn(
            "95 % CI", help=f"BCa bootstrap interval of the mean difference ({comparison.resamples:,} resamples)"
        ),
        "win_rate": st.column_config.NumberColumn(
            "A wins", format="percent", help="Share of the samples where A is better (ties count half)"
        ),
        "p_value": st.column_config.NumberColumn(
            "p (Wilcoxon)", format="%.4f", help="Two-sided Wilcoxon signed-rank test of the paired differences"
        ),
    },
)
st.caption(
    f"Over the {part} both methods were scored on, computed on the server from the per-sample values; only these "
    f"aggregates (rounded to 4 decimals) leave it. Fewer than {MIN_STATISTIC_SAMPLES} paired samples show no figures."
)
if frame["difference"].notna().any():
    st.plotly_chart(
        charts.paired_differences(frame),
        key="compare_differences",
    )

pairs = comparison.per_sample
if pairs.empty:
    st.caption("Per-sample scores are shown on the development samples only, and this evaluation set has none.")
else:
    parts = ", ".join(sorted(set(pairs["split"]), key=["development", "public", "private"].index))
    st.subheader(f"Per-sample scores ({parts} samples)")
    present = [m for m in METRICS if m in set(pairs["metric"])]
    metric = st.selectbox("Metric", present, format_func=lambda m: METRICS[m].label, key="compare_metric")
    st.plotly_chart(
        charts.paired_scatter(
            pairs[pairs["metric"] == metric], metric_label=METRICS[metric].label, a_label=comparison.a.method,
            b_label=comparison.b.method,
        ),
        key="compare_scatter",
        width=640,  # about square: the diagonal at 45° on wide screens too (narrower screens shrink it)
    )  # fmt: skip
    if not comparison.access.is_organiser:
        st.caption(
            "Development samples only: their masks are published with the evaluation inputs. The public and private "
            "samples reach you only as the aggregates above."
        )

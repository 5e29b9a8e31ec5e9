"""The chart specifications (exact/charts.py): what a person can read in them, and that they carry only rounded
figures (a chart's JSON leaves the server like any other figure)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exact import charts
from exact.statistics import CriticalDifference, critical_difference

FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def board(scores: list[float], *, ci: float | None = 0.01, groups: list[str] | None = None) -> pd.DataFrame:
    n = len(scores)
    frame = pd.DataFrame(
        {
            "rank": list(range(1, n + 1)),
            "username": [f"user{i:02d}" for i in range(n)],
            "method": [f"Method number {i}" for i in range(n)],
            "score": scores,
        }
    )
    if ci is not None:
        frame["ci_low"] = [round(s - ci, 4) for s in scores]
        frame["ci_high"] = [round(s + ci, 4) for s in scores]
        frame["p_next"] = [0.0123] * (n - 1) + [None]
    if groups is not None:
        frame["group"] = groups
    return frame


def references(random: float = 0.6, ceiling: float = 1.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "method": ["Ground truth (ceiling)", "Sobel edges of the input", "Random attributions"],
            "score": [ceiling, 0.7, random],
            "ci_low": [ceiling, 0.69, round(random - 0.01, 4)],
            "ci_high": [ceiling, 0.71, round(random + 0.01, 4)],
        }
    )


def numbers(node) -> list[float]:
    """Every number in a (part of a) figure specification."""
    if isinstance(node, bool):
        return []
    if isinstance(node, int | float):
        return [float(node)]
    if isinstance(node, dict):
        return [v for value in node.values() for v in numbers(value)]
    if isinstance(node, list | tuple):
        return [v for value in node for v in numbers(value)]
    return []


def annotations(spec, name_prefix: str) -> list[dict]:
    return [a for a in spec["layout"]["annotations"] if a.get("name", "").startswith(name_prefix)]


def test_the_axis_is_on_the_datas_range_not_from_zero():
    spec = charts.ranking_bar(board([0.92, 0.88, 0.85, 0.81]), baselines=references(random=0.6))
    low, high = spec["layout"]["xaxis"]["range"]
    assert 0.75 < low < 0.80 and 0.93 < high < 0.96  # 0.80–0.93 with a margin: differences of 0.01 are visible
    go.Figure(spec)  # a valid plotly figure


def test_every_name_is_on_its_own_line_with_25_or_more_rows():
    scores = [round(0.9 - 0.002 * i, 4) for i in range(40)]
    spec = charts.ranking_bar(board(scores))
    yaxis = spec["layout"]["yaxis"]
    assert yaxis["tickvals"] == list(range(40)) and len(yaxis["ticktext"]) == 40
    assert yaxis["ticktext"][0] == "#1 user00" and yaxis["ticktext"][39] == "#40 user39"
    # The figure grows with the rows (never 25 names in 360 px), at least 20 px a row.
    assert spec["layout"]["height"] >= 20 * 40
    small = charts.ranking_bar(board(scores[:5]))
    assert small["layout"]["height"] < spec["layout"]["height"]


def test_equal_labels_are_not_merged_into_one_bar():
    frame = board([0.9, 0.9, 0.8])
    frame["rank"] = [1, 1, 3]
    frame["username"] = ["alice", "alice", "bob"]  # "all submissions": one user twice at the same rank
    spec = charts.ranking_bar(frame)
    assert spec["data"][0]["y"] == [0, 1, 2] and len(spec["data"][0]["x"]) == 3


def test_long_names_are_cut_and_kept_whole_in_the_hover():
    frame = board([0.9, 0.8])
    frame.loc[0, "username"] = "a-very-long-username-that-would-eat-the-phone-screen"
    spec = charts.ranking_bar(frame)
    assert len(spec["layout"]["yaxis"]["ticktext"][0]) <= 3 + charts._NAME_CHARS
    assert spec["layout"]["yaxis"]["ticktext"][0].endswith("…")
    assert "a-very-long-username-that-would-eat-the-phone-screen" in spec["data"][0]["customdata"][0]


def test_scores_are_a_column_right_of_the_plot_and_baseline_labels_sit_above_it_one_per_line():
    spec = charts.ranking_bar(board([0.92, 0.88, 0.65]), baselines=references(random=0.6, ceiling=1.0))
    scores = annotations(spec, "score")
    assert [a["text"] for a in scores] == ["0.92", "0.88", "0.65"]
    assert all(a["xref"] == "paper" and a["x"] == 1 and a["xanchor"] == "left" for a in scores)
    assert spec["layout"]["margin"]["r"] >= 60  # room for the score column, also on a phone
    labels = annotations(spec, "baseline: ")
    assert {a["name"] for a in labels} == {"baseline: Random attributions", "baseline: Ground truth"}
    assert all(a["yref"] == "paper" and a["y"] == 1 and a["yanchor"] == "bottom" for a in labels)
    shifts = sorted(a["yshift"] for a in labels)
    assert shifts[1] - shifts[0] >= charts._LABEL_ROW_PX  # one line each: they never overlap
    top = spec["layout"]["margin"]["t"]
    assert top >= max(shifts) + charts._LABEL_ROW_PX  # inside the top margin, clear of the bars and their scores


def test_a_reference_inside_the_range_is_a_band_and_one_outside_an_arrow_at_the_edge():
    # Scores 0.55–0.70: the random baseline (0.6 ± 0.01) is inside, the ground truth (1.0) far to the right.
    spec = charts.ranking_bar(board([0.7, 0.62, 0.55]), baselines=references(random=0.6, ceiling=1.0))
    random_label = annotations(spec, "baseline: Random")[0]
    assert random_label["xref"] == "x" and random_label["x"] == 0.6 and random_label["text"] == "Random attributions"
    bands = [s for s in spec["layout"]["shapes"] if s["type"] == "rect"]
    assert [(b["x0"], b["x1"]) for b in bands] == [(0.59, 0.61)]
    lines = [s for s in spec["layout"]["shapes"] if s["type"] == "line"]
    assert [line["x0"] for line in lines] == [0.6]
    ceiling = annotations(spec, "baseline: Ground truth")[0]
    assert ceiling["xref"] == "paper" and ceiling["x"] == 1 and ceiling["text"].endswith("▶")
    assert "1" in ceiling["text"]
    # Only the two reference baselines are drawn (the others are in the table).
    assert not annotations(spec, "baseline: Sobel")


def test_intervals_are_error_bars_and_groups_alternate_colours():
    spec = charts.ranking_bar(board([0.9, 0.85, 0.84, 0.7], groups=["1", "2–3", "2–3", "4"]), highlight="user03")
    bar = spec["data"][0]
    assert bar["error_x"]["array"] == [0.01] * 4 and bar["error_x"]["arrayminus"] == [0.01] * 4
    colours = bar["marker"]["color"]
    assert colours[1] == colours[2] != colours[0]  # one group, one colour
    assert colours[3] == charts._YOU  # the viewer's own row
    assert "rank group 2–3" in bar["customdata"][1] and "p vs next (Holm) 0.0123" in bar["customdata"][1]
    assert "95 % CI" in bar["customdata"][0]


def test_rows_without_intervals_have_no_error_bars():
    spec = charts.ranking_bar(board([0.9, 0.8], ci=None))
    assert "error_x" not in spec["data"][0]


def test_scores_at_the_float_limits_keep_a_finite_figure():
    frame = board([1.7e308, -1.7e308], ci=None)
    spec = charts.ranking_bar(frame)
    assert "range" not in spec["layout"]["xaxis"]  # no overflowing span: plotly picks the range
    json.dumps(spec, allow_nan=False)
    go.Figure(spec)


def test_a_single_row_or_equal_scores_get_a_visible_range():
    spec = charts.ranking_bar(board([0.5], ci=None))
    low, high = spec["layout"]["xaxis"]["range"]
    assert low < 0.5 < high


@FAST
@given(st.lists(st.floats(0, 1).map(lambda v: round(v, 4)), min_size=1, max_size=60))
def test_the_ranking_chart_carries_only_four_decimal_figures(scores):
    scores = sorted(scores, reverse=True)
    spec = charts.ranking_bar(board(scores), baselines=references())
    json.dumps(spec, allow_nan=False)
    figures = numbers(spec["data"]) + [a["x"] for a in spec["layout"]["annotations"] if a["xref"] == "x"]
    figures += [v for s in spec["layout"]["shapes"] for v in (s["x0"], s["x1"])]
    assert figures and all(v == round(v, 4) for v in figures)
    for a in annotations(spec, "score"):  # the score column's text: the rounded figure, no more digits
        assert a["text"] == "" or float(a["text"]) == round(float(a["text"]), 4)


def test_critical_difference_chart_shows_average_ranks_with_half_the_cd():
    result = critical_difference(
        [[0.9, 0.8, 0.95], [0.7, 0.75, 0.6], [0.5, 0.4, 0.3]],
        methods=["#1 a · A", "#2 b · B", "Baseline · Random attributions"],
        blocks=["EMD", "Mass", "AUC"],
        higher_is_better=[True] * 3,
    )
    spec = charts.critical_difference_chart(result)
    trace = spec["data"][0]
    assert trace["x"] == [1.0, 2.0, 3.0]
    assert spec["layout"]["yaxis"]["ticktext"][0] == "#1 a · A"
    assert trace["error_x"]["value"] == pytest.approx(result.cd / 2, abs=1e-4)
    assert f"{result.cd:.2f}" in spec["layout"]["title"]["text"]
    go.Figure(spec)


def test_critical_difference_chart_accepts_a_rounded_result():
    cd = CriticalDifference(("a", "b"), (1.25, 1.75), ((1.0, 1.5), (2.0, 1.5)), ("x", "y"), 1.386, None, None, ())
    go.Figure(charts.critical_difference_chart(cd))


def _comparison_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "metric": ["emd", "mass", "precision", "auc"],
            "label": ["EMD score", "Importance mass accuracy", "Precision (rank accuracy)", "ROC-AUC"],
            "higher_is_better": [True] * 4,
            "n": [27, 27, 27, None],
            "difference": [0.1115, -0.02, 0.0, None],
            "ci_low": [0.1045, -0.05, -0.01, None],
            "ci_high": [0.119, 0.01, 0.01, None],
            "win_rate": [1.0, 0.4, 0.5, None],
            "p_value": [0.0, 0.2, 1.0, None],
        }
    )


def test_paired_differences_plot_each_metric_with_its_interval_around_zero():
    spec = charts.paired_differences(_comparison_frame())
    trace = spec["data"][0]
    assert trace["y"] == [
        "EMD score ↑",
        "Importance mass accuracy ↑",
        "Precision (rank accuracy) ↑",
    ]  # no figure: left out
    assert trace["x"] == [0.1115, -0.02, 0.0]
    assert trace["error_x"]["array"] == [0.0075, 0.03, 0.01] and trace["error_x"]["arrayminus"] == [0.007, 0.03, 0.01]
    assert spec["layout"]["shapes"][0]["x0"] == 0
    assert "A wins 100% of 27 samples" in trace["customdata"][0]
    go.Figure(spec)


def test_paired_scatter_has_one_trace_per_part_and_the_diagonal():
    frame = pd.DataFrame(
        {
            "split": ["development"] * 3 + ["public"] * 2,
            "sample": [0, 4, 9, 1, 2],
            "metric": ["emd"] * 5,
            "a": [0.8, 0.7, 0.9, 0.6, 0.65],
            "b": [0.7, 0.75, 0.6, 0.6, 0.5],
        }
    )
    spec = charts.paired_scatter(frame, metric_label="EMD score", a_label="Mine", b_label="Theirs")
    assert [t["name"] for t in spec["data"]] == ["development samples", "public samples"]
    assert spec["data"][0]["customdata"] == [0, 4, 9]
    diagonal = spec["layout"]["shapes"][0]
    assert (diagonal["x0"], diagonal["y0"], diagonal["x1"], diagonal["y1"]) == (0.5, 0.5, 0.9, 0.9)
    assert spec["layout"]["xaxis"]["range"] == spec["layout"]["yaxis"]["range"]
    go.Figure(spec)


def test_the_old_call_without_statistics_still_works():
    """Score-only boards pass the plain table (rank, username, score) as before."""
    frame = pd.DataFrame({"rank": [1, 2], "username": ["a", "b"], "score": [0.9, np.float64(0.8)]})
    spec = charts.ranking_bar(frame)
    assert spec["data"][0]["x"] == [0.9, 0.8]
    assert not math.isnan(spec["layout"]["xaxis"]["range"][0])


def test_user_text_cannot_put_markup_into_a_chart():
    """Plotly renders links and line breaks in chart text: names and method names are escaped."""
    import json

    import pandas as pd

    from exact import charts

    table = pd.DataFrame({"rank": [1, 2], "username": ['<a href="https://evil.example">x</a>', "bob"],
                          "method": ["<br>m", "n"], "score": [0.9, 0.8]})  # fmt: skip
    spec = json.dumps(charts.ranking_bar(table))
    assert "<a href" not in spec and "&lt;a href" in spec
    assert "<br>m" not in spec

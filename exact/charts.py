"""Plotly figures for leaderboards; pure functions of the service layer's data frames."""

from __future__ import annotations

import html
import math
from typing import Any

import pandas as pd
import plotly.graph_objects as go

# Figures are plain Plotly specifications (dicts), not graph objects: Streamlit validates a figure once when it
# renders it, and building graph objects first (update_layout, add_vline) validated everything twice and copied a
# whole template per figure, ~30 ms of CPU per chart (docs/load-test.md). No template: Streamlit's theme applies.
Figure = dict[str, Any]
_LAYOUT: dict[str, Any] = {"margin": {"l": 10, "r": 10, "t": 40, "b": 10}, "height": 360}


def _text(value: object) -> str:
    """User text (names, method names) as chart text: Plotly renders a subset of HTML (links, line breaks) in
    labels and hovers, so a method name must not be able to add a link to everyone's chart."""
    return html.escape(str(value), quote=False)


def _layout(title: str, **extra: Any) -> dict[str, Any]:
    return {"title": {"text": title}, **_LAYOUT, **extra}


_BAR = "#4C78A8"
_BAR_ALT = "#9ECAE9"  # every other rank group, so tied neighbours read as one block
_YOU = "#F58518"
_BAND = "rgba(120, 120, 120, 0.16)"
_ROW_PX = 26  # per bar: every name stays readable however many rows are drawn
_LABEL_ROW_PX = 16  # per baseline label, each on its own line above the plot: labels never overlap
_NAME_CHARS = 22  # y-axis names are cut here (the hover has the whole name): a phone keeps room for the bars
REFERENCE_BASELINES = ("Random", "Ground truth")  # the baselines drawn as labelled bands


def _short(text: str, limit: int = _NAME_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _column(table: pd.DataFrame, name: str) -> list[float | None]:
    if name not in table.columns:
        return [None] * len(table)
    return [_finite(v) for v in table[name]]


def _axis_range(values: list[float]) -> list[float] | None:
    """The data's range with a margin; None (plotly's own) when a span would overflow or nothing is finite."""
    if not values:
        return None
    low, high = min(values), max(values)
    span = high / 2 - low / 2  # halves: high - low overflows near the float limit
    if not math.isfinite(span) or span > 1e300:
        return None
    pad = span * 0.2 if span > 0 else max(abs(high) * 0.05, 0.01)  # 0.2 of the half span: 10 % of the span
    return [low - pad, high + pad]


def ranking_bar(
    table: pd.DataFrame,
    *,
    top: int | None = None,
    baselines: pd.DataFrame | None = None,
    highlight: str | None = None,
    value_format: str = ".4g",
    score_label: str = "score",
) -> Figure:
    """Horizontal bars of the ranking, best first, on the data's own range (not from 0).

    Every row gets its own line (the figure grows with the rows), the score of each row is a column to the
    right of the plot, and 95 % intervals (``ci_low``/``ci_high``) are error bars. Bars of one rank group
    (``group``) share a colour; the viewer's rows (``highlight``) are orange. The random baseline and the ground
    truth are bands (their interval, or a line), labelled above the plot on a line each; one outside the range is
    an arrow at the edge. ``p_next`` and ``group`` appear on hover.
    """
    shown = table if top is None else table.head(top)
    n = len(shown)
    scores = _column(shown, "score")
    lows, highs = _column(shown, "ci_low"), _column(shown, "ci_high")
    users = [_text(u) for u in shown["username"]] if "username" in shown.columns else [""] * n
    methods = [_text(m) for m in shown["method"]] if "method" in shown.columns else [""] * n
    groups = list(shown["group"]) if "group" in shown.columns else [None] * n
    p_next = _column(shown, "p_next")
    ranks = list(shown["rank"]) if "rank" in shown.columns else list(range(1, n + 1))
    names = [f"#{rank} {_short(user)}" for rank, user in zip(ranks, users, strict=True)]

    colours, parity, previous = [], 0, None
    for i, group in enumerate(groups):
        if i and (group is None or group != previous):
            parity ^= 1
        previous = group
        colours.append(_YOU if highlight is not None and users[i] == highlight else (_BAR_ALT if parity else _BAR))

    def number(value: float | None) -> str:
        return "" if value is None else format(value, value_format)

    hover = []
    for i in range(n):
        lines = [f"#{ranks[i]} {users[i]}" + (f" · {methods[i]}" if methods[i] else ""),
                 f"{score_label} {number(scores[i])}"]  # fmt: skip
        if lows[i] is not None and highs[i] is not None:
            lines.append(f"95 % CI {number(lows[i])} – {number(highs[i])}")
        if groups[i] is not None and not pd.isna(groups[i]):
            lines.append(f"rank group {groups[i]}")
        if p_next[i] is not None:
            lines.append(f"p vs next (Holm) {p_next[i]:.4f}")
        hover.append("<br>".join(lines))

    bar: dict[str, Any] = {
        "type": "bar",
        "orientation": "h",
        "x": [s for s in scores],
        "y": list(range(n)),
        "marker": {"color": colours},
        "customdata": hover,
        "hovertemplate": "%{customdata}<extra></extra>",
    }
    if any(v is not None for v in lows):
        bar["error_x"] = {
            "type": "data",
            "symmetric": False,
            "array": [None if h is None or s is None else round(h - s, 4) for h, s in zip(highs, scores, strict=True)],
            "arrayminus": [None if lo is None or s is None else round(s - lo, 4) for lo, s in zip(lows, scores,
                                                                                                   strict=True)],
            "color": "#333",
            "thickness": 1.2,
            "width": 3,
        }  # fmt: skip
    in_range = [v for v in (*scores, *lows, *highs) if v is not None]
    x_range = _axis_range(in_range)

    shapes: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = [
        {"name": "score", "text": number(s), "x": 1, "xref": "paper", "xanchor": "left", "xshift": 6, "y": i,
         "yref": "y", "showarrow": False, "font": {"size": 11}}
        for i, s in enumerate(scores)
    ]  # fmt: skip
    label_rows = 0
    for reference in _references(baselines):
        method, score, low, high = reference
        label = method.split(" (")[0]
        text = f"{label} {number(score)}"
        row_shift = 4 + _LABEL_ROW_PX * label_rows
        label_rows += 1
        inside = x_range is None or x_range[0] <= score <= x_range[1]
        if inside:
            left, right = (low, high) if low is not None and high is not None else (score, score)
            if x_range is not None and right - left > (x_range[1] - x_range[0]) * 0.004:
                shapes.append({"type": "rect", "xref": "x", "yref": "y domain", "x0": left, "x1": right, "y0": 0,
                               "y1": 1, "fillcolor": _BAND, "line": {"width": 0}, "layer": "below"})  # fmt: skip
            shapes.append({"type": "line", "xref": "x", "yref": "y domain", "x0": score, "x1": score, "y0": 0,
                           "y1": 1, "line": {"dash": "dot", "color": "#777", "width": 1}})  # fmt: skip
            middle = None if x_range is None else (x_range[0] + x_range[1]) / 2
            anchor = "left" if middle is None or score <= middle else "right"
            annotations.append({"name": f"baseline: {label}", "text": label, "hovertext": text, "x": score, "xref": "x",
                                "xanchor": anchor, "y": 1, "yref": "paper", "yanchor": "bottom", "yshift": row_shift,
                                "showarrow": False, "font": {"size": 11, "color": "#555"}})  # fmt: skip
        else:
            below = score < x_range[0]
            annotations.append({"name": f"baseline: {label}", "text": f"◀ {label} {number(score)}" if below
                                else f"{label} {number(score)} ▶", "hovertext": text,
                                "x": 0 if below else 1, "xref": "paper", "xanchor": "left" if below else "right",
                                "y": 1, "yref": "paper", "yanchor": "bottom", "yshift": row_shift, "showarrow": False,
                                "font": {"size": 11, "color": "#555"}})  # fmt: skip

    top_margin = 34 + _LABEL_ROW_PX * label_rows + (6 if label_rows else 0)
    layout = {
        "title": {"text": f"Ranking ({n} rows)", "y": 1, "yref": "container", "yanchor": "top", "pad": {"t": 8}},
        "margin": {"l": 10, "r": 64, "t": top_margin, "b": 40},
        "height": max(220, _ROW_PX * n + top_margin + 50),
        "showlegend": False,
        "xaxis": {
            "title": {"text": score_label},
            "automargin": True,
            **({"range": x_range} if x_range is not None else {}),
        },  # fmt: skip
        "yaxis": {
            "tickmode": "array",
            "tickvals": list(range(n)),
            "ticktext": names,
            "autorange": "reversed",
            "automargin": True,
            "fixedrange": True,
        },  # fmt: skip
        "shapes": shapes,
        "annotations": annotations,
        "bargap": 0.25,
    }
    return {"data": [bar], "layout": layout}


def _references(baselines: pd.DataFrame | None) -> list[tuple[str, float, float | None, float | None]]:
    """(method, score, ci_low, ci_high) of the reference baselines that have a score, lowest first."""
    if baselines is None or baselines.empty:
        return []
    found = []
    for row in baselines.to_dict("records"):
        score = _finite(row.get("score"))
        method = str(row.get("method", ""))
        if score is not None and method.startswith(REFERENCE_BASELINES):
            found.append((method, score, _finite(row.get("ci_low")), _finite(row.get("ci_high"))))
    return sorted(found, key=lambda r: r[1])


def critical_difference_chart(cd) -> Figure:
    """Average ranks (1 = best) with whiskers of half the critical difference: two methods whose whiskers overlap
    are not significantly different (Nemenyi). ``cd``: an exact.statistics.CriticalDifference."""
    order = sorted(range(len(cd.methods)), key=lambda i: (cd.average_ranks[i], i))
    labels = [_text(_short(cd.methods[i], 30)) for i in order]
    hover = [
        f"{_text(cd.methods[i])}<br>average rank {cd.average_ranks[i]:.2f}<br>"
        + "<br>".join(f"{block}: {rank:g}" for block, rank in zip(cd.blocks, cd.ranks[i], strict=True))
        for i in order
    ]
    half = round(cd.cd / 2, 4)
    trace = {
        "type": "scatter",
        "mode": "markers",
        "x": [cd.average_ranks[i] for i in order],
        "y": list(range(len(order))),
        "marker": {"size": 9, "color": _BAR},
        "error_x": {"type": "constant", "value": half, "color": "#888", "thickness": 1.2, "width": 4},
        "customdata": hover,
        "hovertemplate": "%{customdata}<extra></extra>",
    }
    k = len(order)
    layout = {
        "title": {"text": f"Critical difference over {len(cd.blocks)} metrics: CD = {cd.cd:.2f}"},
        "margin": {"l": 10, "r": 20, "t": 40, "b": 40},
        "height": max(220, _ROW_PX * k + 100),
        "showlegend": False,
        "xaxis": {"title": {"text": "average rank (1 = best)"}, "range": [0.5, k + 0.5]},
        "yaxis": {
            "tickmode": "array",
            "tickvals": list(range(k)),
            "ticktext": labels,
            "autorange": "reversed",
            "automargin": True,
            "fixedrange": True,
        },  # fmt: skip
    }
    return {"data": [trace], "layout": layout}


def paired_differences(frame: pd.DataFrame) -> Figure:
    """Per metric the mean paired difference A − B with its 95 % interval; 0 = no difference."""
    shown = frame[[d is not None and not pd.isna(d) for d in frame["difference"]]]
    arrows = ["↑" if h else "↓" for h in shown["higher_is_better"]]
    labels = [f"{label} {arrow}" for label, arrow in zip(shown["label"], arrows, strict=True)]
    differences = [float(d) for d in shown["difference"]]
    hover = [
        f"{label}<br>A − B {d:+.4f} (95 % CI {lo:+.4f} – {hi:+.4f})<br>A wins {w:.0%} of {int(n)} samples<br>"
        f"Wilcoxon p {p:.4f}"
        for label, d, lo, hi, w, n, p in zip(
            labels,
            differences,
            shown["ci_low"],
            shown["ci_high"],
            shown["win_rate"],
            shown["n"],
            shown["p_value"],
            strict=True,
        )
    ]
    trace = {
        "type": "scatter",
        "mode": "markers",
        "x": differences,
        "y": labels,
        "marker": {"size": 10, "color": _BAR},
        "error_x": {
            "type": "data",
            "symmetric": False,
            "array": [round(float(h) - d, 4) for h, d in zip(shown["ci_high"], differences, strict=True)],
            "arrayminus": [round(d - float(lo), 4) for lo, d in zip(shown["ci_low"], differences, strict=True)],
            "color": "#333",
            "thickness": 1.2,
            "width": 4,
        },
        "customdata": hover,
        "hovertemplate": "%{customdata}<extra></extra>",
    }
    line = {"type": "line", "xref": "x", "yref": "y domain", "x0": 0, "x1": 0, "y0": 0, "y1": 1,
            "line": {"color": "#999", "dash": "dot"}}  # fmt: skip
    layout = {
        "title": {"text": "A − B per metric, 95 % CI"},
        "margin": {"l": 10, "r": 20, "t": 40, "b": 40},
        "height": max(200, 48 * len(labels) + 90),
        "showlegend": False,
        "xaxis": {"title": {"text": "difference A − B"}, "zeroline": False},
        "yaxis": {"automargin": True, "autorange": "reversed", "fixedrange": True},
        "shapes": [line],
    }
    return {"data": [trace], "layout": layout}


_SPLIT_COLOURS = {"development": "#4C78A8", "public": "#F58518", "private": "#54A24B"}


def paired_scatter(frame: pd.DataFrame, *, metric_label: str, a_label: str = "A", b_label: str = "B") -> Figure:
    """Per-sample scores of A (x) against B (y), one colour per part; above the diagonal B did better."""
    traces = []
    order = {name: i for i, name in enumerate(_SPLIT_COLOURS)}
    for split, part in sorted(frame.groupby("split", sort=False), key=lambda item: order.get(str(item[0]), 9)):
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": f"{split} samples",
                "x": part["a"].tolist(),
                "y": part["b"].tolist(),
                "customdata": part["sample"].tolist(),
                "marker": {"size": 7, "opacity": 0.75, "color": _SPLIT_COLOURS.get(str(split), _BAR)},
                "hovertemplate": "sample %{customdata}<br>A %{x:.4f}<br>B %{y:.4f}<extra></extra>",
            }
        )
    values = [float(v) for v in (*frame["a"], *frame["b"])] if not frame.empty else [0.0, 1.0]
    low, high = min(values), max(values)
    pad = (high - low) * 0.05 or 0.01
    square = [round(low - pad, 4), round(high + pad, 4)]  # one range on both axes: the diagonal is at 45°
    diagonal = {"type": "line", "xref": "x", "yref": "y", "x0": low, "y0": low, "x1": high, "y1": high,
                "line": {"color": "#999", "dash": "dot"}}  # fmt: skip
    layout = {
        "title": {"text": f"{metric_label} per sample"},
        "margin": {"l": 10, "r": 10, "t": 40, "b": 40},
        "height": 420,
        "xaxis": {"title": {"text": f"A: {_text(_short(a_label, 40))}"}, "range": square},
        "yaxis": {"title": {"text": f"B: {_text(_short(b_label, 40))}"}, "range": square},
        "shapes": [diagonal],
        "legend": {"orientation": "h", "y": -0.2},
    }
    return {"data": traces, "layout": layout}


def best_over_time(progression: pd.DataFrame) -> Figure:
    line = {
        "type": "scatter",
        "x": progression["created_at"].tolist(),
        "y": progression["best_score"].tolist(),
        "mode": "lines+markers",
        "line": {"shape": "hv"},
        "text": [_text(u) for u in progression["username"]],
        "hovertemplate": "%{x}<br>best %{y} by %{text}<extra></extra>",
    }
    layout = _layout(
        "Best score over time", xaxis={"title": {"text": "submitted"}}, yaxis={"title": {"text": "best score"}}
    )
    return {"data": [line], "layout": layout}


def score_distribution(histogram: pd.DataFrame) -> Figure:
    centres = (histogram["bin_start"] + histogram["bin_end"]) / 2
    spans = histogram["bin_end"] - histogram["bin_start"]
    bar: dict[str, Any] = {
        "type": "bar",
        "x": centres.tolist(),
        "y": histogram["count"].tolist(),
        "marker": {"color": "#72B7B2"},
        "customdata": histogram[["bin_start", "bin_end"]].to_numpy().tolist(),
        "hovertemplate": "%{customdata[0]:.4g} – %{customdata[1]:.4g}: %{y} submissions<extra></extra>",
    }
    # All scores equal: one bin of width 0, which plotly refuses; let it pick a width instead.
    if (spans > 0).all():
        bar["width"] = spans.tolist()
    layout = _layout(
        "Distribution of all submitted scores",
        xaxis={"title": {"text": "score"}},
        yaxis={"title": {"text": "submissions"}},
        bargap=0.02,
    )
    return {"data": [bar], "layout": layout}


def image_grid(rows: list[list[tuple[str, object]]], *, height_per_row: int = 190) -> go.Figure:
    """A grid of heatmaps: ``rows`` of (title, 2-D array or None) cells; None leaves the cell empty."""
    from plotly.subplots import make_subplots

    n_rows = len(rows)
    n_cols = max(len(row) for row in rows)
    titles = [title for row in rows for title, _ in row]
    figure = make_subplots(
        rows=n_rows, cols=n_cols, subplot_titles=titles, horizontal_spacing=0.03, vertical_spacing=0.08
    )
    for r, row in enumerate(rows, start=1):
        for c, (_, image) in enumerate(row, start=1):
            if image is None:
                continue
            figure.add_trace(go.Heatmap(z=image, colorscale="RdBu_r", showscale=False, zmid=0), row=r, col=c)
            figure.update_yaxes(
                autorange="reversed",
                scaleanchor=f"x{'' if (r - 1) * n_cols + c == 1 else (r - 1) * n_cols + c}",
                showticklabels=False,
                row=r,
                col=c,
            )
            figure.update_xaxes(showticklabels=False, row=r, col=c)
    figure.update_layout(height=height_per_row * n_rows + 40, margin={"l": 5, "r": 5, "t": 30, "b": 5})
    figure.update_annotations(font_size=11)
    return figure


def per_sample_violin(frame: pd.DataFrame) -> go.Figure:
    """Distribution of per-sample scores, one violin per metric."""
    figure = go.Figure()
    for label, values in frame.groupby("metric", sort=False)["value"]:
        figure.add_trace(go.Violin(y=values, name=label, box_visible=True, meanline_visible=True, points=False))
    figure.update_layout(title="Per-sample scores", showlegend=False, yaxis_title="score", **_LAYOUT)
    return figure

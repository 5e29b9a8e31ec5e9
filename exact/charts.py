"""Plotly figures for leaderboards; pure functions of the service layer's data frames."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go

# Figures are plain Plotly specifications (dicts), not graph objects: Streamlit validates a figure once when it
# renders it, and building graph objects first (update_layout, add_vline) validated everything twice and copied a
# whole template per figure, ~30 ms of CPU per chart (docs/load-test.md). No template: Streamlit's theme applies.
Figure = dict[str, Any]
_LAYOUT: dict[str, Any] = {"margin": {"l": 10, "r": 10, "t": 40, "b": 10}, "height": 360}


def _layout(title: str, **extra: Any) -> dict[str, Any]:
    return {"title": {"text": title}, **_LAYOUT, **extra}


def ranking_bar(table: pd.DataFrame, *, top: int = 25, baselines: pd.DataFrame | None = None) -> Figure:
    shown = table.head(top)
    labels = [f"#{rank} {name}" for rank, name in zip(shown["rank"], shown["username"], strict=True)]
    shapes: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    if baselines is not None:  # reference lines: where random attributions and the ground truth land
        for method, score in zip(baselines["method"], baselines["score"], strict=True):
            if score is not None and pd.notna(score) and method.startswith(("Random", "Ground truth")):
                line = {"type": "line", "xref": "x", "yref": "y domain", "x0": score, "x1": score, "y0": 0, "y1": 1}
                shapes.append({**line, "line": {"dash": "dash", "color": "#999"}})
                annotations.append(
                    {
                        "text": method.split(" (")[0],
                        "x": score,
                        "xref": "x",
                        "y": 1,
                        "yref": "y domain",
                        "yanchor": "bottom",
                        "showarrow": False,
                    }
                )
    bar = {
        "type": "bar",
        "x": shown["score"].tolist(),
        "y": labels,
        "orientation": "h",
        "text": [f"{s:.4g}" for s in shown["score"]],
        "textposition": "auto",
        "marker": {"color": "#4C78A8"},
        "hovertemplate": "%{y}<br>score %{x}<extra></extra>",
    }
    layout = _layout(
        f"Ranking (top {len(shown)})", yaxis={"autorange": "reversed"}, shapes=shapes, annotations=annotations
    )
    return {"data": [bar], "layout": layout}


def best_over_time(progression: pd.DataFrame) -> Figure:
    line = {
        "type": "scatter",
        "x": progression["created_at"].tolist(),
        "y": progression["best_score"].tolist(),
        "mode": "lines+markers",
        "line": {"shape": "hv"},
        "text": progression["username"].tolist(),
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

"""Plotly figures for leaderboards; pure functions of the service layer's data frames."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

_LAYOUT = {"margin": {"l": 10, "r": 10, "t": 40, "b": 10}, "height": 360, "template": "plotly_white"}


def ranking_bar(table: pd.DataFrame, *, top: int = 25, baselines: pd.DataFrame | None = None) -> go.Figure:
    shown = table.head(top)
    labels = [f"#{rank} {name}" for rank, name in zip(shown["rank"], shown["username"], strict=True)]
    figure = go.Figure(
        go.Bar(
            x=shown["score"],
            y=labels,
            orientation="h",
            text=[f"{s:.4g}" for s in shown["score"]],
            textposition="auto",
            marker_color="#4C78A8",
            hovertemplate="%{y}<br>score %{x}<extra></extra>",
        )
    )
    figure.update_layout(title=f"Ranking (top {len(shown)})", yaxis={"autorange": "reversed"}, **_LAYOUT)
    if baselines is not None:  # reference lines: where random attributions and the ground truth land
        for method, score in zip(baselines["method"], baselines["score"], strict=True):
            if score is not None and pd.notna(score) and method.startswith(("Random", "Ground truth")):
                figure.add_vline(
                    x=score,
                    line_dash="dash",
                    line_color="#999",
                    annotation_text=method.split(" (")[0],
                    annotation_position="top",
                )
    return figure


def best_over_time(progression: pd.DataFrame) -> go.Figure:
    figure = go.Figure(
        go.Scatter(
            x=progression["created_at"],
            y=progression["best_score"],
            mode="lines+markers",
            line_shape="hv",
            text=progression["username"],
            hovertemplate="%{x}<br>best %{y} by %{text}<extra></extra>",
        )
    )
    figure.update_layout(title="Best score over time", xaxis_title="submitted", yaxis_title="best score", **_LAYOUT)
    return figure


def score_distribution(histogram: pd.DataFrame) -> go.Figure:
    centres = (histogram["bin_start"] + histogram["bin_end"]) / 2
    spans = histogram["bin_end"] - histogram["bin_start"]
    # All scores equal: one bin of width 0, which plotly refuses; let it pick a width instead.
    widths = spans.tolist() if (spans > 0).all() else None
    figure = go.Figure(
        go.Bar(
            x=centres,
            y=histogram["count"],
            width=widths,
            marker_color="#72B7B2",
            customdata=histogram[["bin_start", "bin_end"]],
            hovertemplate="%{customdata[0]:.4g} – %{customdata[1]:.4g}: %{y} submissions<extra></extra>",
        )
    )
    figure.update_layout(
        title="Distribution of all submitted scores",
        xaxis_title="score",
        yaxis_title="submissions",
        bargap=0.02,
        **_LAYOUT,
    )
    return figure


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
    figure.update_layout(
        height=height_per_row * n_rows + 40, margin={"l": 5, "r": 5, "t": 30, "b": 5}, template="plotly_white"
    )
    figure.update_annotations(font_size=11)
    return figure


def per_sample_violin(frame: pd.DataFrame) -> go.Figure:
    """Distribution of per-sample scores, one violin per metric."""
    figure = go.Figure()
    for label, values in frame.groupby("metric", sort=False)["value"]:
        figure.add_trace(go.Violin(y=values, name=label, box_visible=True, meanline_visible=True, points=False))
    figure.update_layout(title="Per-sample scores", showlegend=False, yaxis_title="score", **_LAYOUT)
    return figure

"""The 'evaluation set' part of the create-challenge page: none, uploaded files, or a generated benchmark."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from exact import charts
from exact.challenges import EvaluationChoice
from exact.evaluation import prepare_benchmark, prepare_uploaded_evaluation
from exact.metrics import METRICS
from exact.storage import MediaStorage, UploadedFile
from exact.xaitris import BenchmarkSpec, generate, preview_samples

MODES = {
    "none": "Participants submit a score (no ground truth)",
    "upload": "The server scores attributions: upload an evaluation set",
    "benchmark": "The server scores attributions: generate an XAI-TRIS benchmark",
}
SCENARIOS = {
    "linear": "Linear (additive)",
    "multiplicative": "Multiplicative",
    "rigid": "Rigid (random rotation and position)",
    "xor": "XOR",
}


def _spec_from_widgets() -> BenchmarkSpec:
    cols = st.columns(3)
    scenario = cols[0].selectbox("Scenario", list(SCENARIOS), format_func=SCENARIOS.get, key="bench_scenario")
    size = cols[1].radio("Image size", [8, 64], format_func=lambda s: f"{s}×{s}", key="bench_size", horizontal=True)
    background = cols[2].radio(
        "Background",
        ["white", "correlated"],
        key="bench_background",
        horizontal=True,
        help="White: independent Gaussian noise. Correlated: smoothed Gaussian noise.",
    )
    cols = st.columns(3)
    alpha = cols[0].slider(
        "Signal weight α",
        0.05,
        0.95,
        0.5,
        0.05,
        key="bench_alpha",
        help="x = α·pattern + (1 − α)·noise, both normalised first.",
    )
    n_default, n_max = (1000, 20000) if size == 8 else (300, 2000)
    n_samples = cols[1].number_input(
        "Samples", min_value=20, max_value=n_max, value=n_default, step=20, key=f"bench_n_{size}"
    )
    seed = cols[2].number_input(
        "Seed",
        min_value=0,
        max_value=2**31 - 1,
        value=0,
        step=1,
        key="bench_seed",
        help="Kept on the server: with it anyone could regenerate the test masks.",
    )
    return BenchmarkSpec(
        scenario=scenario,
        size=size,
        background=background,
        alpha=float(alpha),
        n_samples=int(n_samples),
        seed=int(seed),
    )


def _preview(spec: BenchmarkSpec) -> None:
    small = BenchmarkSpec(**{**spec.as_dict(), "n_samples": 40})  # same look, generated in milliseconds
    samples = preview_samples(generate(small), k=4)
    rows = [
        [(f"input · class {label}", image) for image, _, label in samples],
        [("mask", mask) for _, mask, _ in samples],
    ]
    st.plotly_chart(charts.image_grid(rows), key="bench_preview")


def evaluation_section(private: MediaStorage, *, max_bytes: int) -> Callable[[], EvaluationChoice | None]:
    """Render the choices; return a function that validates them into an EvaluationChoice at submit time."""
    st.subheader("Scoring")
    mode = st.radio("How are submissions scored?", list(MODES), format_func=MODES.get, key="manage_eval_mode")
    if mode == "none":
        return lambda: None
    inputs_upload = masks_upload = spec = None
    if mode == "upload":
        st.caption("Formats: docs/metrics.md. The masks file stays on the server and is never offered for download.")
        inputs_upload = st.file_uploader(
            "Evaluation inputs (.npz with `inputs` and optional `labels`, or .npy)",
            type=["npz", "npy"],
            key="eval_inputs",
        )
        masks_upload = st.file_uploader(
            "Ground-truth masks (.npz with `masks`, or .npy) — private", type=["npz", "npy"], key="eval_masks"
        )
    else:
        spec = _spec_from_widgets()
        with st.spinner("Generating a preview…"):
            _preview(spec)
        st.caption(
            "The dataset download will hold the training and validation splits with their masks and the "
            "test inputs without masks; the test masks stay on the server."
        )
    cols = st.columns(2)
    primary = cols[0].selectbox(
        "Primary metric (ranks the leaderboard)",
        list(METRICS),
        format_func=lambda m: METRICS[m].label,
        key="eval_primary",
    )
    shown = cols[1].multiselect(
        "Also show",
        [m for m in METRICS if m != primary],
        default=[m for m in METRICS if m != primary],
        format_func=lambda m: METRICS[m].label,
        key="eval_shown",
    )

    def build() -> EvaluationChoice:
        if mode == "upload":
            if inputs_upload is None or masks_upload is None:
                from exact.errors import ValidationError

                raise ValidationError("Upload both the evaluation inputs and the ground-truth masks.")
            prepared = prepare_uploaded_evaluation(
                UploadedFile(inputs_upload.name, inputs_upload.getvalue()),
                UploadedFile(masks_upload.name, masks_upload.getvalue()),
                max_bytes=max_bytes,
            )
        else:
            spec.validate()
            prepared, _ = prepare_benchmark(spec)
        return EvaluationChoice(prepared=prepared, private=private, primary_metric=primary, shown_metrics=tuple(shown))

    return build

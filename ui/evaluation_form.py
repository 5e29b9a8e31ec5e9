"""The 'evaluation set' part of the create-challenge page: none, uploaded files, or a generated benchmark."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import streamlit as st

from exact import charts
from exact.challenges import EvaluationChoice
from exact.evaluation_sets import (
    SECRET_MASK_SCENARIOS,
    dense_scoring_estimate,
    prepare_benchmark,
    prepare_uploaded_evaluation,
    secret_seed,
)
from exact.metrics import METRICS
from exact.storage import MediaStorage, UploadedFile
from exact.trained_models import TrainingPlan, architecture_label, models_available
from exact.xaitris import (
    MAX_SAMPLES,
    MIN_SAMPLES,
    PAPER_BACKGROUND_SIGMA,
    PAPER_SAMPLES,
    PAPER_SPLITS,
    BenchmarkSpec,
    describe_protocol,
    generate,
    paper_alpha,
    preview_samples,
)

MODES = {
    "none": "Participants submit a score (no ground truth)",
    "upload": "The server scores attributions: upload an evaluation set",
    "benchmark": "The server scores attributions: generate an XAI-TRIS benchmark",
}
PROTOCOLS = {
    "paper": "XAI-TRIS paper protocol (Clark et al. 2024)",
    "exact": "Exact's own settings",
}
# The smallest sample count whose every split still holds a sample of each class under the paper's fractions.
PAPER_MIN_SAMPLES = {8: MIN_SAMPLES, 64: 40}
SCENARIOS = {
    "rigid": "Rigid (random rotation and position): masks stay secret",
    "linear": "Linear (additive): the mask follows from the class",
    "multiplicative": "Multiplicative: the mask follows from the class",
    "xor": "XOR: the mask follows from the class",
}


def _spec_from_widgets() -> BenchmarkSpec:
    protocol = st.radio(
        "Protocol",
        list(PROTOCOLS),
        format_func=PROTOCOLS.get,
        key="bench_protocol",
        horizontal=True,
        help="The paper protocol reproduces the published XAI-TRIS generation and scoring; Exact's own settings "
        "let you choose the signal weight and sample count (docs/benchmarks.md, Protocols).",
    )
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
    if scenario in SECRET_MASK_SCENARIOS:
        st.caption("Rigid: the pattern's position and rotation vary per sample, so the test masks stay secret.")
    else:
        st.warning(
            "In this scenario every sample of a class has the same mask, so anyone who can tell the class of an "
            "input knows its mask: fine for practice, not for a competition. Use the rigid scenario to keep "
            "masks secret."
        )
    if protocol == "paper":
        spec = _paper_spec_from_widgets(scenario, size, background)
    else:
        spec = _exact_spec_from_widgets(scenario, size, background)
    st.caption("The generator's seed is drawn from a secure random source and kept on the server.")
    return spec


def _paper_spec_from_widgets(scenario: str, size: int, background: str) -> BenchmarkSpec:
    """The published parameters, shown in disabled fields; only the sample count may be lowered."""
    alpha = paper_alpha(scenario, size, background)
    splits = "/".join(f"{100 * f:g}" for f in PAPER_SPLITS[size])
    cols = st.columns(3)
    # No keys on the disabled fields: their value follows the scenario, size and background.
    cols[0].number_input("Signal weight α (published)", value=alpha, format="%g", disabled=True)
    cols[1].text_input("Train / validation / test % (published)", value=splits, disabled=True)
    n_samples = cols[2].number_input(
        "Samples",
        min_value=PAPER_MIN_SAMPLES[size],
        max_value=PAPER_SAMPLES[size],
        value=PAPER_SAMPLES[size],
        step=40 if size == 64 else 20,
        key=f"bench_paper_n_{size}",
        help="The published count; lower it for a quick trial (the other parameters stay the published ones).",
    )
    smoothing = f" Correlated background: Gaussian filter σ = {PAPER_BACKGROUND_SIGMA[size]:g}." * (
        background == "correlated"
    )
    st.caption(
        f"Published: {PAPER_SAMPLES[size]:,} samples; you may lower the count for a quick trial, the other "
        f"parameters are fixed by the protocol.{smoothing}"
    )
    # The count is checked when the challenge is created (as under Exact's own settings), not while typing.
    spec = dataclasses.replace(BenchmarkSpec.paper(scenario, size, background, seed=0), n_samples=int(n_samples))
    st.caption(describe_protocol(spec.as_dict()))
    return spec


def _exact_spec_from_widgets(scenario: str, size: int, background: str) -> BenchmarkSpec:
    cols = st.columns(2)
    alpha = cols[0].slider(
        "Signal weight α",
        0.05,
        0.95,
        0.5,
        0.05,
        key="bench_alpha",
        help="x = α·pattern + (1 − α)·noise, both normalised first.",
    )
    n_default, n_max = (1000, MAX_SAMPLES[8]) if size == 8 else (300, MAX_SAMPLES[64])
    n_samples = cols[1].number_input(
        "Samples", min_value=20, max_value=n_max, value=n_default, step=20, key=f"bench_n_{size}"
    )
    return BenchmarkSpec(
        scenario=scenario,
        size=size,
        background=background,
        alpha=float(alpha),
        n_samples=int(n_samples),
        seed=0,  # replaced by a secret seed when the challenge is created (the preview uses 0)
    )


def _preview(spec: BenchmarkSpec) -> None:
    small = BenchmarkSpec(**{**spec.as_dict(), "n_samples": 40})  # same look, generated in milliseconds
    samples = preview_samples(generate(small), k=4)
    rows = [
        [(f"input · class {label}", image) for image, _, label in samples],
        [("mask", mask) for _, mask, _ in samples],
    ]
    st.plotly_chart(charts.image_grid(rows), key="bench_preview")


NO_MODEL = "none"


def _scoring_time_warning(spec: BenchmarkSpec) -> None:
    """Say so when one submission's scoring would outlast the server's budget (EXACT_SCORING_SECONDS)."""
    from ui.runtime import get_settings

    evaluation_samples, needed = dense_scoring_estimate(spec)
    budget = get_settings().scoring_seconds
    if needed > budget:
        st.warning(
            f"Scoring one submission of {evaluation_samples:,} dense 64×64 samples takes about {needed / 60:.0f} "
            f"minutes of CPU, more than this server's budget of {budget / 60:.0f} minutes per submission: "
            "submissions and baselines would stop unscored. Raise EXACT_SCORING_SECONDS (docs/deployment.md) "
            "or use fewer samples."
        )


def _model_choice(spec: BenchmarkSpec) -> str | None:
    """The paper model the challenge asks to explain (all of the paper's models are trained and shipped)."""
    if not models_available():
        st.caption(
            "Models: this installation cannot train them (the optional PyTorch extra, requirements-models.txt, "
            "is not installed); the challenge ships no model."
        )
        return None
    from exact.networks import paper_architectures

    options = [*paper_architectures(spec.scenario, int(spec.size)), NO_MODEL]
    choice = st.selectbox(
        "Model to explain",
        options,
        index=len(options) - 2,  # the paper's CNN for the size
        format_func=lambda name: (
            "No model (participants explain whatever they like)" if name == NO_MODEL else architecture_label(name)
        ),
        key="bench_model",
        help="The server trains every model of the paper for this benchmark in the background (docs/models.md) "
        "and ships them with their test accuracy; the one chosen here is the model to explain, and its "
        "Saliency, Integrated Gradients, Gradient SHAP, DeepLift and LRP attributions become reference rows.",
    )
    return None if choice == NO_MODEL else choice


def evaluation_section(private: MediaStorage, *, max_bytes: int) -> Callable[[], EvaluationChoice | None]:
    """Render the choices; return a function that validates them into an EvaluationChoice at submit time."""
    st.subheader("Scoring")
    mode = st.radio("How are submissions scored?", list(MODES), format_func=MODES.get, key="manage_eval_mode")
    if mode == "none":
        return lambda: None
    inputs_upload = masks_upload = spec = explained = None
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
        _scoring_time_warning(spec)
        explained = _model_choice(spec)
        with st.spinner("Generating a preview…"):
            _preview(spec)
        st.caption(
            "The dataset download will hold the training and validation splits with their masks and the "
            "test inputs without masks; the test masks stay on the server."
        )
    st.markdown("**Evaluation samples** (the server assigns them at random and keeps the assignment private)")
    cols = st.columns(3)
    development = cols[0].number_input(
        "Development %", 0, 90, 10, key="eval_split_dev",
        help="Their masks are published with the inputs; submitters see per-sample results on them.",
    )  # fmt: skip
    public = cols[1].number_input("Public leaderboard %", 1, 99, 30, key="eval_split_public")
    cols[2].metric("Private % (final ranking)", max(0, 100 - int(development) - int(public)))
    publish_labels = st.checkbox(
        "Publish the labels of the evaluation inputs",
        value=False,
        key="eval_publish_labels",
        help="Off by default: on linear, multiplicative and XOR benchmarks a label gives the mask away.",
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
            secret = BenchmarkSpec(**{**spec.as_dict(), "splits": tuple(spec.splits), "seed": secret_seed()})
            secret.validate()
            prepared = prepare_benchmark(secret)
        private_percent = 100 - int(development) - int(public)
        if private_percent < 1:
            from exact.errors import ValidationError

            raise ValidationError("Development and public parts leave nothing for the private part.")
        return EvaluationChoice(
            prepared=prepared,
            private=private,
            primary_metric=primary,
            shown_metrics=tuple(shown),
            split_fractions=(int(development) / 100, int(public) / 100, private_percent / 100),
            publish_labels=publish_labels,
            training=TrainingPlan(explained=explained) if explained else None,
        )

    return build

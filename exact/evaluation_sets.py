"""Ground-truth evaluation sets: validated inputs and masks, their split, the files they are stored as, baselines.

The masks and the split assignment live in the private store only (never downloadable). The public evaluation
inputs hold the inputs to explain, the development samples' indices and masks, and the labels only when the
organiser opts in (on fixed-position benchmarks a label gives the mask away).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from scipy import ndimage
from sqlalchemy.engine import Connection

from db import evaluations as evaluations_sql
from db.database import Database
from exact import arrays, metrics, splits
from exact.errors import ValidationError
from exact.storage import MediaStorage, StagedFiles, UploadedFile
from exact.xaitris import BenchmarkSpec, benchmark_protocol, emd_normaliser_name, generate, precision_rule_name

# Grids up to this many pixels are scored while the submitter waits (8×8: 1,000 samples in well under a second);
# larger ones (64×64: seconds per sample) go to the background worker.
INLINE_PIXEL_LIMIT = 32 * 32
BASELINES: dict[str, str] = {
    "random": "Random attributions",
    "sobel": "Sobel edges of the input",
    "laplace": "Laplace edges of the input",
    "input": "The input itself",
    "ground_truth": "Ground truth (ceiling)",
}
# The paper protocol computes the edge baselines as XAI-TRIS's xai/methods.py does; the names whose meaning
# changes get their own labels so a leaderboard says which definition it shows. The random and ground-truth
# labels stay the same under both protocols: other code finds those baselines by label.
PAPER_BASELINES: dict[str, str] = {
    **BASELINES,
    "sobel": "Sobel filter of the input (one axis, signed, as in XAI-TRIS)",
    "laplace": "Laplace filter of the input (signed, as in XAI-TRIS)",
}
BASELINE_USERNAME = "baseline"
# Scenarios whose test masks cannot be derived from anything published (the pattern's position varies per
# sample); in the others the mask follows from the class.
SECRET_MASK_SCENARIOS = frozenset({"rigid"})


@dataclass(frozen=True)
class EvaluationSet:
    challenge_id: str
    inputs_path: str
    masks_path: str
    n_samples: int
    height: int
    width: int
    primary_metric: str
    shown_metrics: tuple[str, ...]
    benchmark: dict[str, Any] | None
    created_by: int | None
    created_at: datetime
    n_development: int | None = None  # None: an evaluation set from before splits (all samples public)
    n_public: int | None = None
    n_private: int | None = None
    labels_published: bool = False
    # exact.metrics.PRECISION_RULES name, stored at creation (exact_evaluation_rules); sets from before: expected ties
    precision_rule: str = metrics.DEFAULT_PRECISION_RULE

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> EvaluationSet:
        values = {name: row.get(name) for name in cls.__dataclass_fields__}
        values["shown_metrics"] = tuple(row.get("shown_metrics") or ())
        values["labels_published"] = bool(row.get("labels_published"))
        values["precision_rule"] = row.get("precision_rule") or metrics.DEFAULT_PRECISION_RULE
        # The generator's seed regenerates every mask: it stays in the database row, never in what pages get.
        values["benchmark"] = {k: v for k, v in (row.get("benchmark") or {}).items() if k != "seed"} or None
        return cls(**values)

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.n_samples, self.height, self.width

    @property
    def protocol(self) -> str | None:
        """The generated benchmark's protocol ("paper" or "exact"); None for an uploaded evaluation set."""
        return benchmark_protocol(self.benchmark)

    @property
    def emd_normaliser(self) -> str:
        """The ``exact.metrics.EMD_NORMALISERS`` name this evaluation set's EMD score is computed with."""
        return emd_normaliser_name(self.benchmark)

    @property
    def scored_inline(self) -> bool:
        return self.height * self.width <= INLINE_PIXEL_LIMIT

    @property
    def split_sizes(self) -> dict[str, int]:
        if self.n_public is None:
            return {"public": self.n_samples}
        return {"development": self.n_development or 0, "public": self.n_public, "private": self.n_private or 0}


@dataclass(frozen=True)
class PreparedEvaluation:
    """A validated evaluation set, ready to store."""

    inputs: np.ndarray  # (n, H, W)
    labels: np.ndarray | None
    masks: np.ndarray  # (n, H, W)
    dataset_file: UploadedFile | None  # public dataset download (benchmarks: training split with masks + inputs)
    benchmark: dict[str, Any] | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.masks.shape  # type: ignore[return-value]


def clean_metric_choice(primary: str, shown: list[str] | tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    if primary not in metrics.METRICS:
        raise ValidationError(f"Unknown primary metric {primary!r}; choose one of {', '.join(metrics.METRICS)}.")
    unknown = [name for name in shown if name not in metrics.METRICS]
    if unknown:
        raise ValidationError(f"Unknown metric(s): {', '.join(unknown)}.")
    return primary, tuple(name for name in metrics.METRICS if name in shown and name != primary)


def prepare_uploaded_evaluation(
    inputs_upload: UploadedFile, masks_upload: UploadedFile, *, max_bytes: int
) -> PreparedEvaluation:
    """Validate an organiser's evaluation files: inputs (.npz with `inputs` [+ `labels`], or .npy) and masks."""
    masks = arrays.validate_masks(
        arrays.load_array_file(
            masks_upload.data,
            name=masks_upload.name,
            max_bytes=max_bytes,
            key="masks" if masks_upload.name.lower().endswith(".npz") else None,
        )
    )
    n, height, width = masks.shape
    labels = None
    if inputs_upload.name.lower().endswith(".npz"):
        raw_inputs = arrays.load_array_file(
            inputs_upload.data, name=inputs_upload.name, max_bytes=max_bytes, key="inputs"
        )
        try:
            raw_labels = arrays.load_array_file(
                inputs_upload.data, name=inputs_upload.name, max_bytes=max_bytes, key="labels"
            )
        except ValidationError:
            raw_labels = None
        labels = arrays.validate_labels(raw_labels, n) if raw_labels is not None else None
    else:
        raw_inputs = arrays.load_array_file(inputs_upload.data, name=inputs_upload.name, max_bytes=max_bytes)
    inputs = arrays.validate_inputs(raw_inputs)
    if inputs.shape not in ((n, height, width), (n, height * width)):
        raise ValidationError(
            f"Inputs have shape {inputs.shape} but the masks are {n} samples of {height}×{width}: "
            "they must describe the same samples."
        )
    return PreparedEvaluation(inputs=inputs.reshape(n, height, width), labels=labels, masks=masks, dataset_file=None)


def prepare_benchmark(spec: BenchmarkSpec) -> PreparedEvaluation:
    benchmark = generate(spec)
    test = benchmark.test
    return PreparedEvaluation(
        inputs=np.asarray(test.inputs, dtype=np.float64),
        labels=np.asarray(test.labels),
        masks=np.asarray(test.masks, dtype=np.float64),
        dataset_file=UploadedFile(
            f"xai-tris-{spec.scenario}-{spec.size}x{spec.size}.npz", benchmark.public_dataset_npz()
        ),
        benchmark=spec.as_dict(),
    )


def secret_seed() -> int:
    """A seed nobody can guess (benchmarks, random baselines): drawn from the operating system's secure source."""
    return secrets.randbits(63)


def baseline_labels(protocol: str | None = "exact") -> dict[str, str]:
    """Baseline name -> the method name shown for it, for a benchmark protocol (None: an uploaded set)."""
    return PAPER_BASELINES if protocol == "paper" else BASELINES


# Scoring a dense 64×64 sample costs about a second of CPU (the exact EMD; docs/architecture.md, "Parallel scoring").
SECONDS_PER_DENSE_64_SAMPLE = 1.0


def dense_scoring_estimate(spec: BenchmarkSpec) -> tuple[int, float]:
    """The evaluation samples of a generated benchmark and the CPU seconds one dense submission of them takes to
    score (0 below 64×64, where scoring is quick)."""
    samples = round(spec.n_samples * float(spec.splits[2]))
    return samples, samples * SECONDS_PER_DENSE_64_SAMPLE if int(spec.size) == 64 else 0.0


def baseline_attributions(
    inputs: np.ndarray, masks: np.ndarray, *, protocol: str | None = "exact", seed: int | None = None
) -> dict[str, np.ndarray]:
    """Reference attributions every method should beat (and the ground truth, which none can).

    ``protocol`` "exact" (and None, for uploaded sets): random = standard normal, sobel = gradient magnitude over
    both axes, laplace = |Laplacian|. "paper", as XAI-TRIS's get_baselines: random = uniform on [-1, 1], sobel =
    ``scipy.ndimage.sobel`` along the last axis only and laplace = ``scipy.ndimage.laplace``, both signed. The input
    baseline is the input itself under both (XAI-TRIS divides it by its sum, which no metric can tell apart: they
    take |a| and normalise it). The random baseline's seed is secret (drawn here, never stored), so nobody can
    recompute its attributions.
    """
    images = inputs.reshape(masks.shape).astype(np.float64)
    rng = np.random.default_rng(secret_seed() if seed is None else seed)
    if protocol == "paper":
        return {
            "random": rng.uniform(-1.0, 1.0, size=masks.shape),
            "sobel": np.stack([ndimage.sobel(x) for x in images]),
            "laplace": np.stack([ndimage.laplace(x) for x in images]),
            "input": images,
            "ground_truth": masks.astype(np.float64),
        }
    sobel = np.stack([np.hypot(ndimage.sobel(x, axis=0), ndimage.sobel(x, axis=1)) for x in images])
    laplace = np.stack([np.abs(ndimage.laplace(x)) for x in images])
    return {
        "random": rng.standard_normal(masks.shape),
        "sobel": sobel,
        "laplace": laplace,
        "input": images,
        "ground_truth": masks.copy(),
    }


def store_evaluation(
    conn: Connection,
    public: StagedFiles,
    private: StagedFiles,
    *,
    challenge_id: str,
    prepared: PreparedEvaluation,
    primary_metric: str,
    shown_metrics: tuple[str, ...],
    created_by: int,
    split_fractions: tuple[float, float, float] = splits.DEFAULT_FRACTIONS,
    publish_labels: bool = False,
) -> list[int]:
    """Inside the challenge's unit of work: the split, the files, the evaluation rows and the queued baselines."""
    n, height, width = prepared.shape
    sizes = splits.split_sizes(n, split_fractions)
    codes = splits.assign(n, sizes)
    development = np.flatnonzero(codes == splits.SPLIT_CODES["development"])
    published: dict[str, np.ndarray] = {
        "inputs": prepared.inputs,
        "development_indices": development.astype(np.int64),
        "development_masks": prepared.masks[development],
    }
    if publish_labels and prepared.labels is not None:
        published["labels"] = prepared.labels
    inputs_path = public.write(
        f"challenges/{challenge_id}/evaluation", UploadedFile("evaluation-inputs.npz", arrays.npz_bytes(**published))
    )
    masks_path = private.write(
        f"evaluations/{challenge_id}", UploadedFile("masks.npz", arrays.npz_bytes(masks=prepared.masks, split=codes))
    )
    evaluations_sql.insert_evaluation(
        conn,
        challenge_id=challenge_id,
        inputs_path=inputs_path,
        masks_path=masks_path,
        n_samples=n,
        height=height,
        width=width,
        primary_metric=primary_metric,
        shown_metrics=list(shown_metrics),
        benchmark=prepared.benchmark,
        created_by=created_by,
    )
    rule = precision_rule_name(prepared.benchmark)
    evaluations_sql.insert_rules(conn, challenge_id=challenge_id, precision_rule=rule)
    evaluations_sql.insert_split(
        conn,
        challenge_id=challenge_id,
        n_development=sizes.development,
        n_public=sizes.public,
        n_private=sizes.private,
        labels_published=bool(publish_labels and prepared.labels is not None),
    )
    baseline_ids = []
    protocol = benchmark_protocol(prepared.benchmark)
    labels = baseline_labels(protocol)
    for name, attribution in baseline_attributions(prepared.inputs, prepared.masks, protocol=protocol).items():
        path = private.write(
            f"evaluations/{challenge_id}/baselines", UploadedFile(f"{name}.npy", arrays.npy_bytes(attribution))
        )
        row = evaluations_sql.insert_submission(
            conn,
            challenge_id=challenge_id,
            kind="baseline",
            username=BASELINE_USERNAME,
            method_name=labels[name],
            file_path=path,
            primary_metric=primary_metric,
        )
        baseline_ids.append(row["id"])
    return baseline_ids


def get_evaluation(db: Database, challenge_id: str) -> EvaluationSet | None:
    with db.connect() as conn:
        row = evaluations_sql.get_evaluation(conn, challenge_id)
    return EvaluationSet.from_row(row) if row else None


def evaluated_challenges(db: Database, among: list[str] | None = None) -> set[str]:
    """Ids of the challenges scored on the server (of ``among`` only, when given)."""
    with db.connect() as conn:
        return evaluations_sql.evaluated_challenge_ids(conn, among)


# --- private files (read by the scorer and for organisers only) ---------------------------------------------------


def _bound(evaluation: EvaluationSet) -> int:
    """Upper bound of what our own evaluation files declare: float64 images plus a few per-sample arrays."""
    return int(np.prod(evaluation.shape)) * 24 + evaluation.n_samples * 32 + 4096


def _private_npz(evaluation: EvaluationSet, private: MediaStorage) -> tuple[bytes, str]:
    path = private.resolve(evaluation.masks_path)
    return path.read_bytes(), path.name


def load_masks(evaluation: EvaluationSet, private: MediaStorage) -> np.ndarray:
    data, name = _private_npz(evaluation, private)
    raw = arrays.load_array_file(data, name=name, max_bytes=_bound(evaluation), key="masks")
    return arrays.validate_masks(raw, evaluation.n_samples)


def load_split_codes(evaluation: EvaluationSet, private: MediaStorage) -> np.ndarray | None:
    """The private split code of every sample; None for an evaluation set from before splits (all public)."""
    if evaluation.n_public is None:
        return None
    data, name = _private_npz(evaluation, private)
    codes = arrays.load_array_file(data, name=name, max_bytes=_bound(evaluation), key="split")
    if codes.shape != (evaluation.n_samples,):
        raise ValueError(f"split assignment of {evaluation.challenge_id!r} has shape {codes.shape}")
    return codes.astype(np.int8)


def load_inputs(evaluation: EvaluationSet, media: MediaStorage) -> np.ndarray:
    path = media.resolve(evaluation.inputs_path)
    raw = arrays.load_array_file(path.read_bytes(), name=path.name, max_bytes=_bound(evaluation), key="inputs")
    return arrays.validate_inputs(raw).reshape(evaluation.shape)

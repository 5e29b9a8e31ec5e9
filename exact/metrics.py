"""Scoring core: attribution maps against ground-truth masks, pure NumPy plus POT for the exact EMD.

No Streamlit, no I/O. Formulas and the not-scorable rules: docs/metrics.md.

For one sample, ``a`` is the attribution (H x W) and ``m`` the mask (H x W, values >= 0, "inside" = ``m > 0``):

* ``emd``: 1 - EMD(p, q) / D with p = m / sum(m), q = |a| / sum(|a|), Euclidean ground cost between pixel
  coordinates and D = sqrt((H-1)^2 + (W-1)^2) (``emd_normaliser="diagonal"``, the default) or D = sqrt(2*H*W)
  (``"sqrt_2hw"``, the XAI-TRIS paper's code). The EMD is the exact optimal-transport cost (network simplex).
* ``mass``: sum of |a| inside the mask / sum of |a|.
* ``precision``: share of the top-k pixels by |a| inside the mask, k = number of mask pixels; a tie group across
  the k-th place counts by its expected value (``precision_rule="expected_ties"``, the default). ``"paper"``: the
  XAI-TRIS code's rule, the k largest |a| among the non-zero pixels only, as NumPy's argpartition picks them.
* ``auc``: ROC-AUC of |a| as a score for "inside the mask", ties counting one half (Mann-Whitney).

A sample whose attribution is all zeros or whose mask is empty gets NaN for every metric; for ``auc`` also a
mask that covers every pixel. Summaries are over scorable samples only.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Any

import numpy as np
import ot

try:  # The compiled network simplex behind ``ot.emd2`` (called in its 5-argument form; see _network_simplex).
    from ot.lp.emd_wrap import emd_c as _pot_network_simplex
except ImportError:  # pragma: no cover - another POT layout: ot.emd2 alone is used
    _pot_network_simplex = None

__all__ = [
    "EMD_NORMALISERS",
    "PRECISION_RULES",
    "METRICS",
    "EvaluationResult",
    "MetricInfo",
    "MetricSummary",
    "emd_cost",
    "emd_divisor",
    "score_batch",
    "summarise",
]


@dataclass(frozen=True)
class MetricInfo:
    name: str
    label: str
    description: str
    higher_is_better: bool = True


METRICS: Mapping[str, MetricInfo] = MappingProxyType(
    {
        "emd": MetricInfo(
            "emd",
            "EMD score",
            "1 - EMD / D: the exact earth mover's distance between the normalised mask and the normalised |attribution|"
            " (Euclidean ground cost between pixel positions), divided by the grid diagonal D (sqrt(2HW) on"
            " XAI-TRIS paper-protocol benchmarks). 1 = same distribution.",
        ),
        "mass": MetricInfo(
            "mass",
            "Importance mass accuracy",
            "Share of the total |attribution| that falls inside the mask (Quantus: relevance mass accuracy).",
        ),
        "precision": MetricInfo(
            "precision",
            "Precision (rank accuracy)",
            "Share of the k pixels with the largest |attribution| that lie inside the mask, k = mask size"
            " (Quantus: relevance rank accuracy); ties at the k-th place count by their expected value.",
        ),
        "auc": MetricInfo(
            "auc",
            "ROC-AUC",
            "Area under the ROC curve of |attribution| as a score for 'pixel is inside the mask'; ties count 1/2.",
        ),
    }
)

Progress = Callable[[int, int], None]

# What the EMD is divided by, for an H x W grid. "diagonal": the largest distance on the grid, so the score spans
# [0, 1]; "sqrt_2hw": sqrt(n_dim + n_dim) with n_dim = H*W, as XAI-TRIS's eval/eval_utils.py computes it (at 8 x 8
# 11.31 instead of 9.90, so the same EMD scores higher).
EMD_NORMALISERS: Mapping[str, str] = MappingProxyType(
    {
        "diagonal": "the grid diagonal sqrt((H - 1)^2 + (W - 1)^2)",
        "sqrt_2hw": "sqrt(2 * H * W), as in the XAI-TRIS paper's code",
    }
)
DEFAULT_EMD_NORMALISER = "diagonal"

# Which k pixels precision counts. "expected_ties": the k largest |a|, a tie group across the k-th place by its
# expected value (independent of pixel order). "paper": as XAI-TRIS's eval/eval_utils.py, the k largest |a| among
# the non-zero pixels only (a map with fewer non-zeros scores at most their hits / k), ties left to np.argpartition
# on the row-major pixels, so paper-protocol scores match the paper's code.
PRECISION_RULES: Mapping[str, str] = MappingProxyType(
    {
        "expected_ties": "the k largest |attribution|, ties at the k-th place by their expected value",
        "paper": "the k largest |attribution| among the non-zero pixels, as the XAI-TRIS paper's code picks them",
    }
)
DEFAULT_PRECISION_RULE = "expected_ties"

# Mass, precision and AUC work on chunks of rows of about this many pixels (8 x 8: 16,384 samples at once;
# 64 x 64: 256), so their (n, H*W) temporaries stay bounded (~10 MB each) for any n.
_CHUNK_ELEMENTS = 1 << 20
# The EMD's reduced cost matrix never exceeds (4096 / 2)^2 cells for grids of up to 64 x 64 pixels (what
# exact.arrays accepts); larger problems are refused instead of allocating gigabytes.
_MAX_EMD_CELLS = 2048 * 2048

# The EMD loop reports progress every 1% of the samples, and at least every second (64 x 64 samples are slow);
# the other metrics are one vectorised step.
_PROGRESS_STEPS = 100


@dataclass(frozen=True)
class MetricSummary:
    """Mean and population standard deviation (ddof=0) over the scorable samples; NaN when there are none."""

    mean: float
    std: float
    n_scored: int
    n_not_scorable: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean": _json_float(self.mean),
            "std": _json_float(self.std),
            "n_scored": self.n_scored,
            "n_not_scorable": self.n_not_scorable,
        }


@dataclass(frozen=True, eq=False)
class EvaluationResult:
    """Per-sample scores (float64, NaN = not scorable) and a summary per metric, in registry order."""

    n_samples: int
    per_sample: Mapping[str, np.ndarray]
    summary: Mapping[str, MetricSummary]

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(self.per_sample)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (NaN becomes None); ``from_dict`` reads it back."""
        out: dict[str, Any] = {"n_samples": self.n_samples, "metrics": {}}
        for name, values in self.per_sample.items():
            info = METRICS[name]
            out["metrics"][name] = {
                "label": info.label,
                "higher_is_better": info.higher_is_better,
                **self.summary[name].to_dict(),
                "per_sample": [_json_float(v) for v in values.tolist()],
            }
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvaluationResult:
        per_sample: dict[str, np.ndarray] = {}
        summary: dict[str, MetricSummary] = {}
        for name, entry in data["metrics"].items():
            if name not in METRICS:
                raise ValueError(f"unknown metric {name!r}")
            values = np.array([math.nan if v is None else float(v) for v in entry["per_sample"]], dtype=np.float64)
            values.setflags(write=False)
            per_sample[name] = values
            summary[name] = MetricSummary(
                mean=math.nan if entry["mean"] is None else float(entry["mean"]),
                std=math.nan if entry["std"] is None else float(entry["std"]),
                n_scored=int(entry["n_scored"]),
                n_not_scorable=int(entry["n_not_scorable"]),
            )
        return cls(
            n_samples=int(data["n_samples"]),
            per_sample=MappingProxyType(per_sample),
            summary=MappingProxyType(summary),
        )


def _json_float(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


# ---------------------------------------------------------------------------------------------------------------
# Input preparation


def _as_float64(arr: np.ndarray, what: str) -> np.ndarray:
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{what} must be a real numeric array, got dtype {arr.dtype}")
    out = np.asarray(arr, dtype=np.float64)
    if not np.isfinite(out).all():
        raise ValueError(f"{what} contain NaN or infinite values")
    return out


def _prepare(attributions: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Return (|a|, m) as (n, H*W) float64 arrays and the grid shape; ValueError for malformed input."""
    masks = np.asarray(masks)
    attributions = np.asarray(attributions)
    if masks.ndim != 3:
        raise ValueError(f"masks must have shape (n, H, W), got {masks.shape}")
    n, h, w = masks.shape
    if attributions.shape not in ((n, h, w), (n, h * w)):
        raise ValueError(f"attributions must have shape {(n, h, w)} or {(n, h * w)}, got {attributions.shape}")
    m = _as_float64(masks, "masks").reshape(n, h * w)
    if (m < 0).any():
        raise ValueError("masks must not contain negative values")
    a = np.abs(_as_float64(attributions, "attributions")).reshape(n, h * w)
    return a, m, h, w


def _scaled_by_row_max(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x / max(x) per row (rows of zeros stay zero) and whether the row has any positive value.

    Dividing first keeps every row sum <= H*W, so values near the float limit (1e308) cannot overflow the sums.
    """
    row_max = x.max(axis=1) if x.shape[1] else np.zeros(x.shape[0])
    positive = row_max > 0
    scaled = x / np.where(positive, row_max, 1.0)[:, None]
    return scaled, positive


# ---------------------------------------------------------------------------------------------------------------
# Vectorised metrics (every row is computed; the caller sets not-scorable rows to NaN)


def _mass(a_scaled: np.ndarray, inside: np.ndarray) -> np.ndarray:
    total = a_scaled.sum(axis=1)
    within = np.where(inside, a_scaled, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return within / total


def _precision(a: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Top-k hit rate with ties at the boundary counted by expectation. Ranks on the raw |a| (exact comparisons)."""
    n, size = a.shape
    k = inside.sum(axis=1)
    if size == 0:
        return np.full(n, np.nan)
    descending = -np.sort(-a, axis=1)
    kth = descending[np.arange(n), np.clip(k - 1, 0, size - 1)][:, None]
    greater = a > kth
    tied = a == kth
    n_greater = greater.sum(axis=1)
    n_tied = tied.sum(axis=1)
    hits_greater = (greater & inside).sum(axis=1)
    hits_tied = (tied & inside).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (hits_greater + hits_tied * (k - n_greater) / n_tied) / k


def _auc(a: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Mann-Whitney AUC from average ranks (ties share the mean of their ranks, i.e. count one half)."""
    n, size = a.shape
    n_pos = inside.sum(axis=1)
    n_neg = size - n_pos
    if size == 0:
        return np.full(n, np.nan)
    order = np.argsort(a, axis=1, kind="stable")
    values = np.take_along_axis(a, order, axis=1)
    labels = np.take_along_axis(inside, order, axis=1)
    positions = np.broadcast_to(np.arange(size), (n, size))
    starts_group = np.ones((n, size), dtype=bool)
    starts_group[:, 1:] = values[:, 1:] != values[:, :-1]
    ends_group = np.ones((n, size), dtype=bool)
    ends_group[:, :-1] = starts_group[:, 1:]
    first = np.maximum.accumulate(np.where(starts_group, positions, 0), axis=1)
    last = np.minimum.accumulate(np.where(ends_group, positions, size)[:, ::-1], axis=1)[:, ::-1]
    # 1-based average rank of each tie group; half-integers, exact in float64 for any grid that fits in memory.
    ranks = (first + last) / 2.0 + 1.0
    rank_sum = np.where(labels, ranks, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


# ---------------------------------------------------------------------------------------------------------------
# EMD


# False forces the public ``ot.emd2`` path (the benchmark and the tests compare both).
_USE_COMPILED_SOLVER = True


@lru_cache(maxsize=16)
def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Row and column coordinate of every pixel (row-major), and the grid diagonal D; cached per shape."""
    rows, cols = np.divmod(np.arange(h * w, dtype=np.int64), w)
    rows_f = rows.astype(np.float64)
    cols_f = cols.astype(np.float64)
    rows_f.setflags(write=False)
    cols_f.setflags(write=False)
    return rows_f, cols_f, math.hypot(h - 1, w - 1)


# Grids of up to this many pixels keep their full pixel-to-pixel distance table (32 x 32: 8 MB; 8 x 8: 32 KB), so a
# reduced cost matrix is one indexing operation; larger grids compute it from the coordinates each time.
_TABLE_MAX_PIXELS = 1024


@lru_cache(maxsize=8)
def _distance_table(h: int, w: int) -> np.ndarray | None:
    if h * w > _TABLE_MAX_PIXELS:
        return None
    rows, cols, _ = _grid(h, w)
    everything = np.arange(h * w)
    table = _distances(rows, cols, everything, everything)
    table.setflags(write=False)
    return table


def _distances(rows: np.ndarray, cols: np.ndarray, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Euclidean distances between the pixels ``src`` and ``dst`` (index arrays): a len(src) x len(dst) matrix."""
    return np.hypot(np.subtract.outer(rows[src], rows[dst]), np.subtract.outer(cols[src], cols[dst]))


def _network_simplex(a: np.ndarray, b: np.ndarray, cost_matrix: np.ndarray) -> float:
    """Exact optimal-transport cost (a and b: float64, each summing to 1; cost_matrix: C-ordered float64).

    ``ot.emd2`` spends most of its time on a tiny problem in backend detection, argument checks and dual
    post-processing we do not need (~70 us per call against ~25 us in the solver), so the compiled solver it
    wraps is called directly when present; ``ot.emd2`` is the fallback and gives the same optimum.
    """
    global _USE_COMPILED_SOLVER
    # Network simplex pivots grow with the problem; never stop short of the optimum.
    max_iter = max(100_000, 50 * (a.size + b.size) * min(a.size, b.size))
    result_code = None
    if _pot_network_simplex is not None and _USE_COMPILED_SOLVER:
        try:
            _, cost, _, _, result_code = _pot_network_simplex(a, b, cost_matrix, max_iter, 1)
        except TypeError:  # pragma: no cover - a POT whose compiled signature changed: use the public API
            _USE_COMPILED_SOLVER = False
    if result_code is None:
        cost, log = ot.emd2(a, b, cost_matrix, numItermax=max_iter, log=True, center_dual=False, check_marginals=False)
        result_code = log["result_code"]
    if result_code != 1:
        raise RuntimeError(f"EMD solver did not reach the optimum (POT result code {result_code})")
    return float(cost)


def emd_cost(p: np.ndarray, q: np.ndarray, shape: tuple[int, int]) -> float:
    """Exact EMD between two distributions on an H x W grid (flattened row-major, each summing to 1).

    Reduction (the optimum is unchanged): with a metric ground cost, mass present in both p and q at the same
    pixel can stay where it is (Kantorovich-Rubinstein: W1 depends only on p - q), so only the surplus
    d+ = max(p - q, 0) has to move to the deficit d- = max(q - p, 0). Both have the same total t, disjoint
    supports, and never include zero-mass pixels; EMD(p, q) = t * EMD(d+ / t, d- / t). The cost matrix covers
    only those pixels (indexed from a cached distance table on small grids, else computed from coordinates).
    A side with one pixel has the closed form sum_j w_j * dist(i, j); everything else is solved exactly by POT's
    network simplex (the solver of ``ot.emd2``).
    """
    diff = np.asarray(p, dtype=np.float64).ravel() - np.asarray(q, dtype=np.float64).ravel()
    if diff.size != shape[0] * shape[1]:
        raise ValueError(f"p and q must have {shape[0] * shape[1]} entries for a {shape[0]} x {shape[1]} grid")
    return _emd_of_difference(diff, np.flatnonzero(diff > 0), np.flatnonzero(diff < 0), shape)


def _emd_of_difference(diff: np.ndarray, src: np.ndarray, dst: np.ndarray, shape: tuple[int, int]) -> float:
    """EMD given p - q and the pixels where it is positive (src) and negative (dst); see ``emd_cost``."""
    if src.size == 0 or dst.size == 0:
        return 0.0
    surplus = diff[src]
    deficit = -diff[dst]
    total_surplus = surplus.sum()
    total_deficit = deficit.sum()
    # Mathematically equal; the mean halves the rounding error of either alone.
    moved = 0.5 * (total_surplus + total_deficit)
    return moved * _unit_emd(surplus / total_surplus, deficit / total_deficit, src, dst, shape)


def _unit_emd(
    surplus: np.ndarray, deficit: np.ndarray, src: np.ndarray, dst: np.ndarray, shape: tuple[int, int]
) -> float:
    """EMD between unit masses on the disjoint pixel sets src and dst (both non-empty)."""
    if src.size * dst.size > _MAX_EMD_CELLS:
        raise ValueError(
            f"EMD problem of {src.size} x {dst.size} pixels is too large (at most {_MAX_EMD_CELLS} pairs); "
            "grids of up to 64 x 64 pixels are supported"
        )
    costs = _costs(src, dst, shape)
    if src.size == 1:
        return float(deficit @ costs[0])
    if dst.size == 1:
        return float(surplus @ costs[:, 0])
    return _network_simplex(surplus, deficit, costs)


def _costs(src: np.ndarray, dst: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The len(src) x len(dst) Euclidean cost matrix (C-ordered float64) between two sets of pixels."""
    table = _distance_table(*shape)
    if table is not None:
        return table[src[:, None], dst]
    rows, cols, _ = _grid(*shape)
    return _distances(rows, cols, src, dst)


def _row_slices(flags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column indices of the True entries of a 2-D array, row after row, and each row's start in that list."""
    row_idx, col_idx = np.nonzero(flags)
    starts = np.zeros(flags.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(row_idx, minlength=flags.shape[0]), out=starts[1:])
    return col_idx, starts


def emd_divisor(shape: tuple[int, int], name: str = DEFAULT_EMD_NORMALISER) -> float:
    """D of the EMD score 1 - EMD / D on an H x W grid, for a name in ``EMD_NORMALISERS``."""
    if name not in EMD_NORMALISERS:
        raise ValueError(f"unknown EMD normaliser {name!r}; known: {', '.join(EMD_NORMALISERS)}")
    h, w = shape
    return math.sqrt(2 * h * w) if name == "sqrt_2hw" else math.hypot(h - 1, w - 1)


def _emd_scores(
    m_scaled: np.ndarray,
    a_scaled: np.ndarray,
    scorable: np.ndarray,
    shape: tuple[int, int],
    progress: Progress | None,
    divisor: float,
) -> np.ndarray:
    n = m_scaled.shape[0]
    out = np.full(n, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        diff_all = m_scaled / m_scaled.sum(axis=1, keepdims=True)  # p
        diff_all -= a_scaled / a_scaled.sum(axis=1, keepdims=True)  # p - q
    diff_all[~scorable] = 0.0
    # Surplus (p > q) and deficit (q > p) pixels of every row, their masses normalised to 1 per row, as flat
    # arrays sliced per row below: the loop then does little but call the solver.
    src_all, src_start = _row_slices(diff_all > 0)
    dst_all, dst_start = _row_slices(diff_all < 0)
    src_rows = np.repeat(np.arange(n), np.diff(src_start))
    dst_rows = np.repeat(np.arange(n), np.diff(dst_start))
    surplus_all = diff_all[src_rows, src_all]
    deficit_all = -diff_all[dst_rows, dst_all]
    total_surplus = np.bincount(src_rows, weights=surplus_all, minlength=n)
    total_deficit = np.bincount(dst_rows, weights=deficit_all, minlength=n)
    moved = 0.5 * (total_surplus + total_deficit)  # mathematically equal; the mean halves the rounding error
    with np.errstate(invalid="ignore", divide="ignore"):
        surplus_all /= total_surplus[src_rows]
        deficit_all /= total_deficit[dst_rows]
    step = max(1, n // _PROGRESS_STEPS)
    last_report = time.monotonic()
    for i in range(n):
        if scorable[i]:
            s0, s1, d0, d1 = src_start[i], src_start[i + 1], dst_start[i], dst_start[i + 1]
            if s0 == s1 or d0 == d1:
                cost = 0.0  # p == q
            else:
                unit = _unit_emd(surplus_all[s0:s1], deficit_all[d0:d1], src_all[s0:s1], dst_all[d0:d1], shape)
                cost = moved[i] * unit
            # A 1 x 1 grid has diagonal D = 0, but then p = q and the score is 1 by definition.
            out[i] = 1.0 - cost / divisor if divisor > 0 else 1.0
        if progress is not None and i + 1 < n and ((i + 1) % step == 0 or time.monotonic() - last_report > 1.0):
            progress(i + 1, n)
            last_report = time.monotonic()
    return out


# ---------------------------------------------------------------------------------------------------------------
# Public entry point


def summarise(values: np.ndarray) -> MetricSummary:
    """Mean and std over the scorable (non-NaN) values."""
    scored = values[~np.isnan(values)]
    n_scored = int(scored.size)
    if n_scored == 0:
        return MetricSummary(math.nan, math.nan, 0, int(values.size))
    return MetricSummary(float(scored.mean()), float(scored.std(ddof=0)), n_scored, int(values.size) - n_scored)


def _selected(metrics: Iterable[str] | None) -> tuple[str, ...]:
    if metrics is None:
        return tuple(METRICS)
    if isinstance(metrics, str):
        metrics = [metrics]
    wanted = set(metrics)
    unknown = sorted(wanted - set(METRICS))
    if unknown:
        raise ValueError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(METRICS)}")
    if not wanted:
        raise ValueError("no metric selected")
    return tuple(name for name in METRICS if name in wanted)


def _paper_precision(a: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """XAI-TRIS's precision: hits among the min(k, non-zero count) largest non-zero |a|, over k. Ties at the k-th
    place are left to np.argpartition on the row-major pixels, as in the paper's code (one call per sample)."""
    k = inside.sum(axis=1)
    out = np.full(a.shape[0], np.nan)
    for i in range(a.shape[0]):
        nonzero = np.flatnonzero(a[i])
        take = min(int(k[i]), nonzero.size)
        if take == 0:  # an empty mask or an all-zero map: not scorable either way
            continue
        chosen = nonzero[np.argpartition(a[i, nonzero], -take)[-take:]]
        out[i] = np.count_nonzero(inside[i, chosen]) / k[i]
    return out


def _vectorised(name: str, a: np.ndarray, a_scaled: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """mass, precision or auc for every row, in chunks of about _CHUNK_ELEMENTS values to bound the temporaries."""
    rows = max(1, _CHUNK_ELEMENTS // max(1, a.shape[1]))
    out = np.empty(a.shape[0])
    for start in range(0, a.shape[0], rows):
        part = slice(start, start + rows)
        if name == "mass":
            out[part] = _mass(a_scaled[part], inside[part])
        elif name == "precision":
            out[part] = _precision(a[part], inside[part])
        else:
            out[part] = _auc(a[part], inside[part])
    return out


def score_batch(
    attributions: np.ndarray,
    masks: np.ndarray,
    *,
    metrics: Iterable[str] | None = None,
    progress: Progress | None = None,
    emd_normaliser: str = DEFAULT_EMD_NORMALISER,
    precision_rule: str = DEFAULT_PRECISION_RULE,
) -> EvaluationResult:
    """Score n attribution maps against n masks.

    ``attributions``: (n, H, W) or (n, H*W), real and finite; ``masks``: (n, H, W), finite and >= 0. Use
    ``exact.arrays`` to validate uploads first: this function raises ValueError on malformed input.
    ``metrics``: names from ``METRICS`` (default: all), reported in registry order.
    ``progress(done, total)`` is called with (0, n) first, with samples done while the EMD runs, and (n, n) last.
    ``emd_normaliser``: a name from ``EMD_NORMALISERS``, what the EMD score divides the EMD by ("diagonal"; the
    XAI-TRIS paper protocol uses "sqrt_2hw"). The other metrics do not depend on it.
    ``precision_rule``: a name from ``PRECISION_RULES``, which k pixels precision counts ("expected_ties"; the
    paper protocol uses "paper").
    """
    names = _selected(metrics)
    if emd_normaliser not in EMD_NORMALISERS:
        raise ValueError(f"unknown EMD normaliser {emd_normaliser!r}; known: {', '.join(EMD_NORMALISERS)}")
    if precision_rule not in PRECISION_RULES:
        raise ValueError(f"unknown precision rule {precision_rule!r}; known: {', '.join(PRECISION_RULES)}")
    a, m, h, w = _prepare(attributions, masks)
    n = m.shape[0]
    if progress is not None:
        progress(0, n)
    inside = m > 0
    k = inside.sum(axis=1)
    a_scaled, attribution_nonzero = _scaled_by_row_max(a)
    scorable = attribution_nonzero & (k > 0)

    per_sample: dict[str, np.ndarray] = {}
    for name in names:
        if name == "emd":
            m_scaled, _ = _scaled_by_row_max(m)
            divisor = emd_divisor((h, w), emd_normaliser)
            values = _emd_scores(m_scaled, a_scaled, scorable, (h, w), progress, divisor)
        elif name == "precision" and precision_rule == "paper":
            values = _paper_precision(a, inside)
        else:
            values = _vectorised(name, a, a_scaled, inside)
        keep = scorable & (k < h * w) if name == "auc" else scorable
        values = np.where(keep, values, np.nan).astype(np.float64)
        values.setflags(write=False)
        per_sample[name] = values
    if progress is not None:
        progress(n, n)
    return EvaluationResult(
        n_samples=n,
        per_sample=MappingProxyType(per_sample),
        summary=MappingProxyType({name: summarise(values) for name, values in per_sample.items()}),
    )

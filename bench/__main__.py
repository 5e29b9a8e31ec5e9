"""Time ``exact.metrics.score_batch`` against a plain per-sample ``ot.emd2`` on the full cost matrix.

1,000 random 8 x 8 samples (tetromino masks, noisy attributions, fixed seed). Figures are ratios against the
baseline measured in the same run; the only failure is a disagreement between the two EMDs (> 1e-9).
"""

from __future__ import annotations

import math
import os
import platform
import sys
import time
from collections.abc import Callable

import numpy as np
import ot

from exact import metrics
from exact.metrics import score_batch

SEED = 20240601
N_SAMPLES = 1_000
N_LARGE = 5
REPEATS = 3
TOLERANCE = 1e-9

# The seven tetrominoes as (row, col) cells; rotations are added below.
TETROMINOES = {
    "I": [(0, 0), (1, 0), (2, 0), (3, 0)],
    "O": [(0, 0), (0, 1), (1, 0), (1, 1)],
    "T": [(0, 0), (1, 0), (2, 0), (1, 1)],
    "S": [(0, 1), (0, 2), (1, 0), (1, 1)],
    "Z": [(0, 0), (0, 1), (1, 1), (1, 2)],
    "J": [(0, 1), (1, 1), (2, 1), (2, 0)],
    "L": [(0, 0), (1, 0), (2, 0), (2, 1)],
}


def _shapes() -> list[np.ndarray]:
    shapes = []
    for cells in TETROMINOES.values():
        block = np.zeros((4, 4))
        for r, c in cells:
            block[r, c] = 1.0
        for k in range(4):
            rotated = np.rot90(block, k)
            rows, cols = np.nonzero(rotated)
            shapes.append(rotated[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1])
    return shapes


def make_samples(n: int, size: int, rng: np.random.Generator, cell: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Masks: one tetromino (each cell a ``cell`` x ``cell`` block) at a random place. Attributions: signal of
    random strength on the mask plus Gaussian noise; every other map is rectified (positive-only methods)."""
    shapes = _shapes()
    masks = np.zeros((n, size, size))
    for i in range(n):
        shape = np.kron(shapes[rng.integers(len(shapes))], np.ones((cell, cell)))
        h, w = shape.shape
        r, c = rng.integers(0, size - h + 1), rng.integers(0, size - w + 1)
        masks[i, r : r + h, c : c + w] = shape
    strength = rng.uniform(0.0, 3.0, size=(n, 1, 1))
    attributions = strength * masks + rng.normal(size=(n, size, size))
    attributions[::2] = np.maximum(attributions[::2], 0.0)
    attributions[::2, 0, 0] += 1e-3  # never all zero: every sample is scorable by both implementations
    return attributions, masks


def baseline_emd_scores(attributions: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """What one would write with POT directly: ot.emd2 per sample on the full H*W x H*W Euclidean cost matrix."""
    n, h, w = masks.shape
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    coords = np.column_stack([rows.ravel(), cols.ravel()]).astype(float)
    cost = ot.dist(coords, coords, metric="euclidean")
    diagonal = math.hypot(h - 1, w - 1)
    out = np.empty(n)
    for i in range(n):
        p = masks[i].ravel() / masks[i].sum()
        q = np.abs(attributions[i]).ravel()
        q = q / q.sum()
        out[i] = 1.0 - ot.emd2(p, q, cost) / diagonal
    return out


def best_time(fn: Callable[[], object], repeats: int = REPEATS) -> tuple[float, object]:
    best, result = math.inf, None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


def main() -> int:
    rng = np.random.default_rng(SEED)
    attributions, masks = make_samples(N_SAMPLES, 8, rng)
    print(f"Exact scoring benchmark: {N_SAMPLES} samples of 8×8, seed {SEED}, best of {REPEATS} runs")
    print(
        f"  Python {platform.python_version()}, NumPy {np.__version__}, POT {ot.__version__}, "
        f"{os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.1f}"
    )

    t_base, base = best_time(lambda: baseline_emd_scores(attributions, masks))
    t_ours, ours = best_time(lambda: score_batch(attributions, masks, metrics=["emd"]).per_sample["emd"])
    metrics._USE_COMPILED_SOLVER = False
    try:
        t_public, public = best_time(lambda: score_batch(attributions, masks, metrics=["emd"]).per_sample["emd"])
    finally:
        metrics._USE_COMPILED_SOLVER = True
    t_all, result = best_time(lambda: score_batch(attributions, masks))

    diff = max(float(np.max(np.abs(ours - base))), float(np.max(np.abs(public - base))))
    rate = N_SAMPLES / t_base
    print()
    print(f"{'EMD':<52} {'seconds':>8} {'samples/s':>10} {'speed-up':>9}")
    print(f"{'baseline: ot.emd2 per sample, full 64×64 cost matrix':<52} {t_base:8.3f} {rate:10.0f} {1.0:8.1f}×")
    for label, seconds in (
        ("score_batch EMD (reduced problem, compiled solver)", t_ours),
        ("score_batch EMD (reduced problem, public ot.emd2)", t_public),
    ):
        print(f"{label:<52} {seconds:8.3f} {N_SAMPLES / seconds:10.0f} {t_base / seconds:8.1f}×")
    print(f"max |difference| to the baseline: {diff:.1e} (tolerance {TOLERANCE:.0e})")
    print()
    print(f"all four metrics, {N_SAMPLES} samples: {t_all:.3f} s ({N_SAMPLES / t_all:.0f} samples/s)")
    for name, summary in result.summary.items():
        print(f"  {name:<10} mean {summary.mean:.4f}  std {summary.std:.4f}  n_scored {summary.n_scored}")

    large_attr, large_masks = make_samples(N_LARGE, 64, np.random.default_rng(SEED + 1), cell=8)
    started = time.perf_counter()
    score_batch(large_attr, large_masks)
    t_large = time.perf_counter() - started
    print()
    print(
        f"64×64 (tetromino of 8×8 blocks, dense attributions), {N_LARGE} samples, all four metrics: "
        f"{t_large:.2f} s ({t_large / N_LARGE:.2f} s per sample)"
    )

    if not diff <= TOLERANCE:
        print("FAILED: score_batch and the baseline disagree", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The three parts of an evaluation set: development, public leaderboard and private samples.

Development samples have their masks published with the evaluation inputs, so submitters may see per-sample
detail on them. Public samples rank the leaderboard while the challenge runs; private samples rank it at the
end. Only aggregates of the public and private parts ever leave the server (exact.permissions). The server draws
the assignment from a secure random source and keeps it in the private masks file.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from exact import metrics
from exact.errors import ValidationError

SPLITS: tuple[str, str, str] = ("development", "public", "private")
SPLIT_CODES: Mapping[str, int] = {name: code for code, name in enumerate(SPLITS)}
DEFAULT_FRACTIONS: tuple[float, float, float] = (0.1, 0.3, 0.6)


@dataclass(frozen=True)
class SplitSizes:
    development: int
    public: int
    private: int

    @property
    def total(self) -> int:
        return self.development + self.public + self.private


def split_sizes(n: int, fractions: tuple[float, float, float] | list[float]) -> SplitSizes:
    """Sample counts per split (largest remainder); public and private must each get at least one sample."""
    if not isinstance(fractions, tuple | list) or len(fractions) != 3:
        raise ValidationError("Give three split fractions: development, public and private.")
    try:
        values = [float(f) for f in fractions]
    except (TypeError, ValueError):
        raise ValidationError("Split fractions must be numbers.") from None
    if not all(math.isfinite(f) and 0.0 <= f <= 1.0 for f in values):
        raise ValidationError("Each split fraction must be between 0 and 1.")
    if not math.isclose(math.fsum(values), 1.0, abs_tol=1e-6):
        raise ValidationError(f"Split fractions must add up to 100 % (they add up to {math.fsum(values):.0%}).")
    shares = [n * f for f in values]
    counts = [math.floor(s + 1e-9) for s in shares]
    for k in sorted(range(3), key=lambda k: (-(shares[k] - counts[k]), k))[: n - sum(counts)]:
        counts[k] += 1
    sizes = SplitSizes(*counts)
    if sizes.public < 1 or sizes.private < 1:
        raise ValidationError(
            f"With {n} samples these fractions leave the public or the private part empty; both need a sample."
        )
    return sizes


def assign(n: int, sizes: SplitSizes, *, seed: int | None = None) -> np.ndarray:
    """A random split code (0 development, 1 public, 2 private) per sample; secure seed unless one is given."""
    codes = np.repeat(np.array([0, 1, 2], dtype=np.int8), [sizes.development, sizes.public, sizes.private])
    rng = np.random.default_rng(secrets.randbits(128) if seed is None else seed)
    return rng.permutation(codes)


def summarise(
    result: metrics.EvaluationResult, codes: np.ndarray | None
) -> dict[str, dict[str, metrics.MetricSummary]]:
    """Summary of every metric on each split. ``codes`` None (an evaluation set from before splits): all public."""
    n = result.n_samples
    codes = np.ones(n, dtype=np.int8) if codes is None else np.asarray(codes)
    out: dict[str, dict[str, metrics.MetricSummary]] = {}
    for name, code in SPLIT_CODES.items():
        members = codes == code
        if not members.any():
            continue
        out[name] = {metric: metrics.summarise(values[members]) for metric, values in result.per_sample.items()}
    return out

"""XAI-TRIS-style synthetic image benchmarks with known ground truth (NumPy + scipy.ndimage only).

After Clark et al., "XAI-TRIS: non-linear image benchmarks to quantify false positive post-hoc attribution of
feature importance" (reference code: github.com/braindatalab/xai-tris). This is an independent implementation;
the formulas, defaults and file layout are documented in docs/benchmarks.md.

Each sample is an H x W image (8 x 8 or 64 x 64) made of a class-dependent tetromino signal and a noise
background. Class 0 is the T tetromino, class 1 the L tetromino (for ``xor``: equal vs. opposite signs of T and L).
The ground-truth mask of a sample is where its signal was put: a 0/1 image of the (scaled) tetromino cells.

Two protocols (docs/benchmarks.md, "Protocols"):

* ``paper``: the published XAI-TRIS settings (``BenchmarkSpec.paper``): alphas, sample counts and splits of the
  paper, normalisation over the whole sample x pixel matrix, inputs scaled to max |x| = 1 and stored as float16,
  and the masks the paper scores against (the union of both tetrominoes for the fixed-position scenarios).
* ``exact``: Exact's own choices, summarised below. A spec without a protocol (stored before protocols existed)
  is ``exact``.

Summary of the ``exact`` decisions:

* Normalisation is per sample: the signal image and the noise image are each scaled to unit Frobenius norm, then
  ``x = alpha * s + (1 - alpha) * n`` (``linear``, ``rigid``, ``xor``) or ``x = (1 - alpha * p) * n``
  (``multiplicative``, ``p`` the pattern image with values in [0, 1]).
* 64 x 64: each tetromino cell becomes an 8 x 8 block (4 x 4 for ``rigid``, as in XAI-TRIS), the signal image is
  smoothed with a Gaussian filter (sigma 1.5); the mask stays the binary, unsmoothed block pattern.
* Inputs are float32 (computed in float64), labels int64, masks float64 with values 0 and 1.
* Splits default to 70 / 15 / 15 % and are stratified: every split holds exactly as many class-0 as class-1 samples.
* The same spec (seed included) gives bit-for-bit the same benchmark. The seed is therefore a secret of the server:
  none of the published files contains it.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any, Literal, get_args

import numpy as np
from scipy.ndimage import gaussian_filter

from exact.arrays import npz_bytes
from exact.errors import ValidationError

Scenario = Literal["linear", "multiplicative", "rigid", "xor"]
Background = Literal["white", "correlated"]
Size = Literal[8, 64]
Protocol = Literal["paper", "exact"]

SCENARIOS: tuple[str, ...] = get_args(Scenario)
BACKGROUNDS: tuple[str, ...] = get_args(Background)
SIZES: tuple[int, ...] = get_args(Size)
PROTOCOLS: tuple[str, ...] = get_args(Protocol)
# What a spec without a protocol means: every benchmark stored before protocols existed followed Exact's own.
DEFAULT_PROTOCOL = "exact"

# The two tetrominoes, 3 rows x 2 columns. Class 0 = T, class 1 = L.
T_PATTERN = np.array([[1, 0], [1, 1], [1, 0]], dtype=np.float64)
L_PATTERN = np.array([[1, 0], [1, 0], [1, 1]], dtype=np.float64)
PATTERNS: tuple[np.ndarray, np.ndarray] = (T_PATTERN, L_PATTERN)

# Top-left corner (row, column) of T and L for the fixed-position scenarios (linear, multiplicative, xor).
FIXED_POSITIONS: dict[int, tuple[tuple[int, int], tuple[int, int]]] = {8: ((1, 1), (4, 5)), 64: ((8, 8), (32, 40))}
# Side of the square block one tetromino cell becomes (64 x 64 rigid uses smaller tetrominoes, as XAI-TRIS does).
CELL_SCALE: dict[int, int] = {8: 1, 64: 8}
RIGID_CELL_SCALE: dict[int, int] = {8: 1, 64: 4}
# Gaussian smoothing of the signal image at 64 x 64 (none at 8 x 8).
PATTERN_SMOOTHING_SIGMA: dict[int, float] = {8: 0.0, 64: 1.5}
# Default Gaussian smoothing of the correlated background (XAI-TRIS: 3 for 8 x 8, 10 for 64 x 64).
DEFAULT_BACKGROUND_SIGMA: dict[int, float] = {8: 3.0, 64: 10.0}

MIN_SAMPLES = 20
MAX_SAMPLES: dict[int, int] = {8: 20_000, 64: 2_000}
MAX_SMOOTHING_SIGMA = 20.0
MAX_SEED = 2**63 - 1
DEFAULT_SPLITS: tuple[float, float, float] = (0.7, 0.15, 0.15)
SPLIT_NAMES: tuple[str, str, str] = ("train", "validation", "test")

# --- the published XAI-TRIS parameters (Clark et al. 2024; braindatalab/xai-tris, data/data_config*.json) --------
PAPER_SAMPLES: dict[int, int] = {8: 10_000, 64: 40_000}
# sklearn's StratifiedShuffleSplit with test_split 0.2 (8 x 8) or 0.1 (64 x 64), the rest halved into validation
# and test; we apportion the same fractions per class by largest remainder (split_counts_per_class).
PAPER_SPLITS: dict[int, tuple[float, float, float]] = {8: (0.8, 0.1, 0.1), 64: (0.9, 0.05, 0.05)}
# alpha ("snrs") per size and scenario: (white background, correlated background).
PAPER_ALPHAS: dict[int, dict[str, tuple[float, float]]] = {
    8: {"linear": (0.18, 0.0125), "multiplicative": (0.7, 0.1), "rigid": (0.65, 0.2), "xor": (0.35, 0.15)},
    64: {"linear": (0.03, 0.02), "multiplicative": (0.65, 0.05), "rigid": (0.575, 0.375), "xor": (0.075, 0.03)},
}
PAPER_BACKGROUND_SIGMA: dict[int, float] = {8: 3.0, 64: 10.0}
PAPER_BACKGROUND_STD = 0.5  # np.random.normal(0, 0.5); irrelevant after normalisation, kept for fidelity
# The paper smooths every pattern image whose cells are larger than 3 pixels (all of them at 64 x 64).
PAPER_PATTERN_SIGMA = 1.5
PAPER_SMOOTHING_MIN_CELL = 4
# A smoothed pattern pixel belongs to the mask the paper scores against when it is at least this large.
PAPER_MASK_THRESHOLD = 0.05
PAPER_EMD_NORMALISER = "sqrt_2hw"
EXACT_EMD_NORMALISER = "diagonal"
PAPER_PRECISION_RULE = "paper"
EXACT_PRECISION_RULE = "expected_ties"


def paper_alpha(scenario: str, size: int, background: str) -> float:
    """The alpha XAI-TRIS published for this scenario, image size and background."""
    try:
        white, correlated = PAPER_ALPHAS[int(size)][scenario]
    except (KeyError, TypeError, ValueError):
        raise ValidationError(f"XAI-TRIS published no alpha for {scenario!r} at size {size!r}.") from None
    if background not in BACKGROUNDS:
        raise ValidationError(f"Unknown background {background!r}; choose one of {', '.join(BACKGROUNDS)}.")
    return white if background == "white" else correlated


def max_samples(size: int, protocol: str = DEFAULT_PROTOCOL) -> int:
    """The largest n_samples a spec may ask for: the paper's count under ``paper``, MAX_SAMPLES under ``exact``."""
    return PAPER_SAMPLES[int(size)] if protocol == "paper" else MAX_SAMPLES[int(size)]


# Sign combinations (sign of T, sign of L) for xor; the label is 0 for equal signs and 1 for opposite ones.
XOR_SIGNS: tuple[tuple[tuple[int, int], tuple[int, int]], tuple[tuple[int, int], tuple[int, int]]] = (
    ((1, 1), (-1, -1)),
    ((1, -1), (-1, 1)),
)


def _is_real(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _is_int(value: object) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


@dataclass(frozen=True)
class BenchmarkSpec:
    """Everything that determines a benchmark. Call ``validate()`` (``generate`` does) before use.

    ``smoothing_sigma`` is the Gaussian filter width of the ``correlated`` background in pixels; ``None`` means the
    XAI-TRIS default for the size (3 for 8 x 8, 10 for 64 x 64). It is ignored for the ``white`` background.

    ``protocol`` is ``"exact"`` (Exact's own generation, every field free within its range) or ``"paper"`` (the
    published XAI-TRIS generation; alpha, splits and smoothing must be the published values, and n_samples at most
    the published count). ``BenchmarkSpec.paper(...)`` fills in a paper spec.
    """

    scenario: Scenario
    size: Size = 8
    background: Background = "white"
    alpha: float = 0.5
    n_samples: int = 1000
    seed: int = 0
    splits: tuple[float, float, float] = DEFAULT_SPLITS
    smoothing_sigma: float | None = None
    protocol: Protocol = "exact"

    @classmethod
    def paper(
        cls, scenario: str, size: int = 8, background: str = "white", *, seed: int, n_samples: int | None = None
    ) -> BenchmarkSpec:
        """The published XAI-TRIS benchmark for this scenario, size and background (validated).

        ``n_samples`` defaults to the paper's count (10,000 at 8 x 8, 40,000 at 64 x 64); a smaller even count gives
        a quicker trial with the same parameters otherwise.
        """
        alpha = paper_alpha(scenario, size, background)  # refuses an unknown scenario, size or background
        spec = cls(
            scenario=scenario,  # type: ignore[arg-type]
            size=size,  # type: ignore[arg-type]
            background=background,  # type: ignore[arg-type]
            alpha=alpha,
            n_samples=PAPER_SAMPLES[int(size)] if n_samples is None else n_samples,
            seed=seed,
            splits=PAPER_SPLITS[int(size)],
            smoothing_sigma=PAPER_BACKGROUND_SIGMA[int(size)] if background == "correlated" else None,
            protocol="paper",
        )
        spec.validate()
        return spec

    @property
    def background_sigma(self) -> float:
        """The smoothing actually used for the correlated background."""
        return DEFAULT_BACKGROUND_SIGMA[self.size] if self.smoothing_sigma is None else float(self.smoothing_sigma)

    def validate(self) -> None:
        """Raise ``ValidationError`` with a message meant for the person who filled in the form."""
        if self.protocol not in PROTOCOLS:
            raise ValidationError(f"Unknown protocol {self.protocol!r}; choose one of {', '.join(PROTOCOLS)}.")
        if self.scenario not in SCENARIOS:
            raise ValidationError(f"Unknown scenario {self.scenario!r}; choose one of {', '.join(SCENARIOS)}.")
        if not _is_int(self.size) or self.size not in SIZES:
            raise ValidationError(f"Image size must be 8 or 64 (pixels per side), not {self.size!r}.")
        if self.background not in BACKGROUNDS:
            raise ValidationError(f"Unknown background {self.background!r}; choose one of {', '.join(BACKGROUNDS)}.")
        if not _is_real(self.alpha) or not math.isfinite(self.alpha):
            raise ValidationError("Alpha (signal weight) must be a number strictly between 0 and 1.")
        if not 0.0 < float(self.alpha) < 1.0:
            raise ValidationError(f"Alpha (signal weight) must be strictly between 0 and 1, not {self.alpha}.")
        if self.protocol == "paper":
            self._validate_paper_parameters()
        if not _is_int(self.n_samples):
            raise ValidationError("Number of samples must be a whole number.")
        limit = max_samples(int(self.size), self.protocol)
        if not MIN_SAMPLES <= self.n_samples <= limit:
            where = " under the XAI-TRIS paper protocol" if self.protocol == "paper" else ""
            raise ValidationError(
                f"Number of samples must be between {MIN_SAMPLES} and {limit:,} for {self.size}x{self.size} images"
                f"{where} (got {self.n_samples})."
            )
        if self.n_samples % 2:
            raise ValidationError(
                f"Number of samples must be even so both classes are equally large (got {self.n_samples})."
            )
        if not _is_int(self.seed) or not 0 <= self.seed <= MAX_SEED:
            raise ValidationError(f"Seed must be a whole number between 0 and {MAX_SEED}.")
        self._validate_splits()
        if self.smoothing_sigma is not None:
            sigma = self.smoothing_sigma
            if not _is_real(sigma) or not math.isfinite(sigma) or not 0.0 < sigma <= MAX_SMOOTHING_SIGMA:
                raise ValidationError(
                    f"Smoothing sigma must be a number above 0 and at most {MAX_SMOOTHING_SIGMA:g} pixels "
                    "(or empty for the default)."
                )

    def _validate_paper_parameters(self) -> None:
        """Under ``paper`` only the published alpha, splits and background smoothing are accepted."""
        size = int(self.size)
        what = f"{self.scenario} {size}x{size} with a {self.background} background"
        published = paper_alpha(self.scenario, size, self.background)
        if float(self.alpha) != published:
            raise ValidationError(
                f"Under the XAI-TRIS paper protocol alpha is the published {published:g} for {what} "
                f"(got {self.alpha}); choose Exact's own settings to set it freely."
            )
        splits = self.splits
        if not isinstance(splits, tuple | list) or tuple(splits) != PAPER_SPLITS[size]:
            shown = "/".join(f"{100 * f:g}" for f in PAPER_SPLITS[size])
            raise ValidationError(
                f"Under the XAI-TRIS paper protocol the splits are the published {shown} (train/validation/test) "
                f"for {size}x{size} images; choose Exact's own settings to change them."
            )
        sigma = self.smoothing_sigma
        if sigma is not None and not (_is_real(sigma) and float(sigma) == PAPER_BACKGROUND_SIGMA[size]):
            raise ValidationError(
                f"Under the XAI-TRIS paper protocol the correlated background is smoothed with the published "
                f"sigma {PAPER_BACKGROUND_SIGMA[size]:g} for {size}x{size} images (got {sigma!r})."
            )

    def _validate_splits(self) -> None:
        splits = self.splits
        if not isinstance(splits, tuple | list) or len(splits) != 3 or not all(_is_real(f) for f in splits):
            raise ValidationError("Splits must be three fractions (train, validation, test), e.g. (0.7, 0.15, 0.15).")
        if not all(math.isfinite(f) and 0.0 < f < 1.0 for f in splits):
            raise ValidationError("Each split fraction (train, validation, test) must be strictly between 0 and 1.")
        if not math.isclose(math.fsum(splits), 1.0, abs_tol=1e-6):
            raise ValidationError(f"Split fractions must add up to 1 (they add up to {math.fsum(splits):g}).")
        counts = split_counts_per_class(self.n_samples // 2, splits)
        for name, count in zip(SPLIT_NAMES, counts, strict=True):
            if count < 1:
                raise ValidationError(
                    f"The {name} split would get no sample of a class with {self.n_samples} samples; "
                    "use more samples or a larger fraction."
                )

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (splits as a list); ``from_dict`` reads it back."""
        return {
            "scenario": self.scenario,
            "size": self.size,
            "background": self.background,
            "alpha": self.alpha,
            "n_samples": self.n_samples,
            "seed": self.seed,
            "splits": list(self.splits),
            "smoothing_sigma": self.smoothing_sigma,
            "protocol": self.protocol,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchmarkSpec:
        """A validated spec from ``as_dict`` output (e.g. stored JSON). Unknown keys are rejected; a missing
        ``protocol`` (JSON stored before protocols existed) means ``"exact"``."""
        if not isinstance(data, dict):
            raise ValidationError("Benchmark settings must be a mapping of names to values.")
        unknown = sorted(map(str, set(data) - set(cls.__dataclass_fields__)))
        if unknown:
            raise ValidationError(f"Unknown benchmark setting(s): {', '.join(unknown)}.")
        if "scenario" not in data:
            raise ValidationError("Benchmark settings need a scenario.")
        values = dict(data)
        if isinstance(values.get("splits"), list):
            values["splits"] = tuple(values["splits"])
        spec = cls(**values)
        spec.validate()
        return spec


def split_counts_per_class(n_per_class: int, splits: tuple[float, float, float] | list[float]) -> tuple[int, int, int]:
    """Samples of each class in (train, validation, test), by largest remainder.

    Each count is the exact share rounded down or up, and the three add up to ``n_per_class``; leftover samples go
    to the splits with the largest fractional parts, ties in the order train, validation, test.
    """
    shares = [n_per_class * float(f) for f in splits]
    counts = [math.floor(share + 1e-9) for share in shares]
    leftover = n_per_class - sum(counts)
    by_remainder = sorted(range(3), key=lambda k: (-(shares[k] - counts[k]), k))
    for k in by_remainder[: max(0, leftover)]:
        counts[k] += 1
    return counts[0], counts[1], counts[2]


@dataclass(frozen=True, eq=False)
class Split:
    """One split. ``labels`` (n,) int64; ``inputs`` (n, H, W) and ``masks`` (n, H, W) with values 0 and 1.

    Protocol ``exact``: inputs float32, masks float64. Protocol ``paper``: inputs float16 (as published), masks
    float32 (exact 0/1 at half the memory; on the fixed-position scenarios every row is the same union mask, held
    as one read-only broadcast row).
    """

    inputs: np.ndarray
    labels: np.ndarray
    masks: np.ndarray

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True, eq=False)
class Benchmark:
    """A generated benchmark; the arrays are read-only."""

    spec: BenchmarkSpec
    train: Split
    validation: Split
    test: Split = field(repr=False)

    def split(self, name: str) -> Split:
        if name not in SPLIT_NAMES:
            raise ValueError(f"unknown split {name!r}")
        return getattr(self, name)

    def public_dataset_npz(self) -> bytes:
        """What participants download: train and validation inputs, labels and masks, and the test inputs without
        their labels or masks (on linear, multiplicative and XOR benchmarks a label gives the mask away)."""
        return npz_bytes(
            x_train=self.train.inputs,
            y_train=self.train.labels,
            masks_train=self.train.masks,
            x_val=self.validation.inputs,
            y_val=self.validation.labels,
            masks_val=self.validation.masks,
            x_test=self.test.inputs,
        )


def read_npz(data: bytes) -> dict[str, np.ndarray]:
    """Load npz bytes into a dict of arrays, never unpickling anything."""
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}


def _scaled(pattern: np.ndarray, scale: int) -> np.ndarray:
    return np.kron(pattern, np.ones((scale, scale))) if scale > 1 else pattern.copy()


def _smooth_images(images: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian filter over the two image axes of an (n, H, W) stack, never across samples."""
    if sigma <= 0:
        return images
    return gaussian_filter(images, sigma=(0.0, sigma, sigma), mode="reflect")


def _unit_frobenius(images: np.ndarray) -> np.ndarray:
    norms = np.sqrt(np.einsum("nij,nij->n", images, images))
    return images / np.where(norms > 0, norms, 1.0)[:, None, None]


def _fixed_images(size: int, pattern_signs: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """(signal, mask) images with T and L at their fixed positions, scaled by the given signs (0 = absent)."""
    scale = CELL_SCALE[size]
    signal = np.zeros((size, size))
    mask = np.zeros((size, size))
    for pattern, (row, col), sign in zip(PATTERNS, FIXED_POSITIONS[size], pattern_signs, strict=True):
        if sign == 0:
            continue
        block = _scaled(pattern, scale)
        h, w = block.shape
        signal[row : row + h, col : col + w] += sign * block
        mask[row : row + h, col : col + w] = np.maximum(mask[row : row + h, col : col + w], block)
    return signal, mask


def _class_sorted_signals(spec: BenchmarkSpec, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unsmoothed signal images, masks and labels for all samples, class 0 first (shuffled later)."""
    n, size = spec.n_samples, int(spec.size)
    half = n // 2
    labels = np.repeat(np.array([0, 1], dtype=np.int64), half)
    signals = np.zeros((n, size, size))
    masks = np.zeros((n, size, size))
    if spec.scenario in ("linear", "multiplicative"):
        for label in (0, 1):
            signs = [1.0 if k == label else 0.0 for k in (0, 1)]
            signal, mask = _fixed_images(size, signs)
            signals[labels == label] = signal
            masks[labels == label] = mask
    elif spec.scenario == "xor":
        for label in (0, 1):
            start = label * half
            for variant, signs in enumerate(XOR_SIGNS[label]):
                # Alternate the two sign combinations within a class so each gets half of it (+-1).
                signal, mask = _fixed_images(size, [float(s) for s in signs])
                signals[start + variant : start + half : 2] = signal
                masks[start + variant : start + half : 2] = mask
    else:  # rigid: random 90-degree rotation and random position that keeps the whole tetromino inside
        rotations = rng.integers(0, 4, size=n)
        blocks = [[np.rot90(_scaled(PATTERNS[label], RIGID_CELL_SCALE[size]), k) for k in range(4)] for label in (0, 1)]
        heights = np.array([[b.shape[0] for b in per_label] for per_label in blocks])[labels, rotations]
        widths = np.array([[b.shape[1] for b in per_label] for per_label in blocks])[labels, rotations]
        rows = rng.integers(0, size - heights + 1)
        cols = rng.integers(0, size - widths + 1)
        for i in range(n):
            block = blocks[labels[i]][rotations[i]]
            h, w = block.shape
            signals[i, rows[i] : rows[i] + h, cols[i] : cols[i] + w] = block
        masks[:] = signals
    return signals, masks, labels


def generate(spec: BenchmarkSpec) -> Benchmark:
    """Generate the benchmark described by ``spec`` (validated first). Deterministic for a given spec."""
    spec.validate()
    if spec.protocol == "paper":
        return _generate_paper(spec)
    size = int(spec.size)
    alpha = float(spec.alpha)
    rng = np.random.default_rng(spec.seed)

    signals, masks, labels = _class_sorted_signals(spec, rng)
    signals = _smooth_images(signals, PATTERN_SMOOTHING_SIGMA[size])

    noise = rng.standard_normal((spec.n_samples, size, size))
    if spec.background == "correlated":
        noise = _smooth_images(noise, spec.background_sigma)
    noise = _unit_frobenius(noise)

    if spec.scenario == "multiplicative":
        inputs = (1.0 - alpha * signals) * noise
    else:
        inputs = alpha * _unit_frobenius(signals) + (1.0 - alpha) * noise

    # Stratified split: the same number of each class in every split, then each split shuffled.
    counts = split_counts_per_class(spec.n_samples // 2, spec.splits)
    per_split: list[list[np.ndarray]] = [[], [], []]
    for label in (0, 1):
        members = rng.permutation(np.flatnonzero(labels == label))
        bounds = np.cumsum((0, *counts))
        for k in range(3):
            per_split[k].append(members[bounds[k] : bounds[k + 1]])
    splits = []
    for parts in per_split:
        order = rng.permutation(np.concatenate(parts))
        splits.append(
            Split(
                inputs=_read_only(inputs[order].astype(np.float32)),
                labels=_read_only(labels[order].copy()),
                masks=_read_only(masks[order].copy()),
            )
        )
    return Benchmark(spec=spec, train=splits[0], validation=splits[1], test=splits[2])


# --- protocol "paper" ---------------------------------------------------------------------------------------------

# Samples per processing block: about 2**20 pixels (8 x 8: 16,384 samples; 64 x 64: 256), so the float64
# temporaries stay near 8 MB while the full stack is held once, in float32.
_PAPER_BLOCK_PIXELS = 1 << 20


def _paper_cell_scale(scenario: str, size: int) -> int:
    return (RIGID_CELL_SCALE if scenario == "rigid" else CELL_SCALE)[size]


def _paper_smoothed(images: np.ndarray, cell_scale: int) -> np.ndarray:
    """The paper's pattern smoothing: a Gaussian filter (sigma 1.5, mode reflect) per image, for large cells only."""
    if cell_scale < PAPER_SMOOTHING_MIN_CELL:
        return images
    return gaussian_filter(images, sigma=(0.0, PAPER_PATTERN_SIGMA, PAPER_PATTERN_SIGMA), mode="reflect")


def paper_union_mask(size: int) -> np.ndarray:
    """The mask XAI-TRIS scores every linear, multiplicative and XOR sample against: T and L at their fixed
    positions (8 x 8: 8 pixels); at 64 x 64 the 8 x 8-block pattern smoothed (sigma 1.5) and kept where >= 0.05."""
    size = int(size)
    signal, _ = _fixed_images(size, [1.0, 1.0])
    smoothed = _paper_smoothed(signal[None], CELL_SCALE[size])[0]
    return (smoothed >= PAPER_MASK_THRESHOLD).astype(np.float32)


class _PaperPatterns:
    """The (smoothed) pattern image of any sample, computed on demand for a block of sample indices.

    Fixed-position scenarios have two (xor: four) distinct images, indexed per sample; rigid places each sample's
    rotated tetromino at its own random position (drawn from ``rng`` here, before anything else).
    """

    def __init__(self, spec: BenchmarkSpec, labels: np.ndarray, rng: np.random.Generator) -> None:
        self.size = size = int(spec.size)
        self.scenario = spec.scenario
        self.cell_scale = _paper_cell_scale(spec.scenario, size)
        n, half = spec.n_samples, spec.n_samples // 2
        if spec.scenario == "rigid":
            self.rotations = rng.integers(0, 4, size=n)
            self.blocks = [
                [np.rot90(_scaled(PATTERNS[label], self.cell_scale), k) for k in range(4)] for label in (0, 1)
            ]
            heights = np.array([[b.shape[0] for b in per_label] for per_label in self.blocks])[labels, self.rotations]
            widths = np.array([[b.shape[1] for b in per_label] for per_label in self.blocks])[labels, self.rotations]
            self.rows = rng.integers(0, size - heights + 1)
            self.cols = rng.integers(0, size - widths + 1)
            self.labels = labels
            return
        if spec.scenario == "xor":
            # The paper's quarters: (+,+) and (-,-) are class 0, (+,-) and (-,+) class 1.
            sign_pairs = [signs for label in (0, 1) for signs in XOR_SIGNS[label]]
            first = (half + 1) // 2
            within = np.arange(n) % half
            self.template_of = 2 * labels + (within >= first)
        else:
            sign_pairs = [(1, 0), (0, 1)]
            self.template_of = labels.copy()
        raw = np.stack([_fixed_images(size, [float(s) for s in signs])[0] for signs in sign_pairs])
        self.templates = _paper_smoothed(raw, self.cell_scale)

    def images(self, indices: np.ndarray) -> np.ndarray:
        """float64 (len(indices), H, W) pattern images of these samples."""
        if self.scenario != "rigid":
            return self.templates[self.template_of[indices]]
        out = np.zeros((indices.size, self.size, self.size))
        for j, i in enumerate(indices):
            block = self.blocks[self.labels[i]][self.rotations[i]]
            h, w = block.shape
            out[j, self.rows[i] : self.rows[i] + h, self.cols[i] : self.cols[i] + w] = block
        return _paper_smoothed(out, self.cell_scale)


def _blocks(indices: np.ndarray, size: int) -> list[np.ndarray]:
    rows = max(1, _PAPER_BLOCK_PIXELS // (size * size))
    return [indices[start : start + rows] for start in range(0, indices.size, rows)]


def _sum_of_squares(images: np.ndarray) -> float:
    flat = images.reshape(images.shape[0], -1).astype(np.float64, copy=False)
    return float(np.einsum("ij,ij->", flat, flat))


def _generate_paper(spec: BenchmarkSpec) -> Benchmark:
    """The XAI-TRIS generation (docs/benchmarks.md, "Protocols"): whole-matrix normalisation, 1/max|x| scaling,
    float16 inputs, and the paper's evaluation masks in every split."""
    size, n, alpha = int(spec.size), spec.n_samples, float(spec.alpha)
    rng = np.random.default_rng(spec.seed)
    labels = np.repeat(np.array([0, 1], dtype=np.int64), n // 2)  # class-sorted as in the paper; splits shuffle
    patterns = _PaperPatterns(spec, labels, rng)
    everything = np.arange(n)
    multiplicative = spec.scenario == "multiplicative"

    # The background stack is the one full-size array; it is held in float32 and overwritten by x below.
    stack = rng.standard_normal((n, size, size), dtype=np.float32)
    stack *= np.float32(PAPER_BACKGROUND_STD)
    background_squares = 0.0
    pattern_squares = 0.0
    for block in _blocks(everything, size):
        rows = slice(int(block[0]), int(block[-1]) + 1)
        if spec.background == "correlated":
            stack[rows] = _smooth_images(stack[rows], PAPER_BACKGROUND_SIGMA[size])
        background_squares += _sum_of_squares(stack[rows])
        images = patterns.images(block)
        pattern_squares += _sum_of_squares(1.0 - alpha * images if multiplicative else images)
    background_norm = math.sqrt(background_squares) or 1.0
    pattern_norm = math.sqrt(pattern_squares)

    # Stratified split, drawn as under "exact": per class a permutation cut by the largest-remainder counts.
    counts = split_counts_per_class(n // 2, spec.splits)
    bounds = np.cumsum((0, *counts))
    per_split: list[list[np.ndarray]] = [[], [], []]
    for label in (0, 1):
        members = rng.permutation(np.flatnonzero(labels == label))
        for k in range(3):
            per_split[k].append(members[bounds[k] : bounds[k + 1]])
    orders = [rng.permutation(np.concatenate(parts)) for parts in per_split]

    union = paper_union_mask(size) if spec.scenario != "rigid" else None
    split_masks: list[np.ndarray] = []
    largest = 0.0
    for order in orders:
        masks = None if union is not None else np.empty((order.size, size, size), dtype=np.float32)
        done = 0
        for block in _blocks(order, size):
            images = patterns.images(block)
            background = stack[block].astype(np.float64) / background_norm
            if multiplicative:
                x = (1.0 - alpha * images) / pattern_norm * background
            else:
                x = alpha * images / pattern_norm + (1.0 - alpha) * background
            x_stored = x.astype(np.float32)
            stack[block] = x_stored
            largest = max(largest, float(np.abs(x_stored).max()))
            if masks is not None:
                masks[done : done + block.size] = images >= PAPER_MASK_THRESHOLD
            done += block.size
        split_masks.append(masks if masks is not None else np.broadcast_to(union, (order.size, size, size)))
    # x *= 1 / max|x| over the whole matrix; dividing the float32 values by their own maximum makes it exactly 1.
    np.divide(stack, np.float32(largest), out=stack)

    splits = []
    for order, masks in zip(orders, split_masks, strict=True):
        inputs = np.empty((order.size, size, size), dtype=np.float16)
        done = 0
        for block in _blocks(order, size):
            inputs[done : done + block.size] = stack[block]
            done += block.size
        splits.append(Split(inputs=_read_only(inputs), labels=_read_only(labels[order]), masks=_read_only(masks)))
    return Benchmark(spec=spec, train=splits[0], validation=splits[1], test=splits[2])


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


def preview_samples(benchmark: Benchmark, k: int = 4) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """Up to ``k`` (input, mask, label) triples from the training split, alternating classes, for a gallery.

    Never draws from the test split, whose masks are private.
    """
    train = benchmark.train
    k = max(0, min(int(k), len(train)))
    by_class = [np.flatnonzero(train.labels == label) for label in (0, 1)]
    chosen: list[int] = []
    for i in range(k):
        members = by_class[i % 2]
        if i // 2 < len(members):
            chosen.append(int(members[i // 2]))
    return [
        (np.array(train.inputs[i], dtype=np.float64), np.array(train.masks[i]), int(train.labels[i])) for i in chosen
    ]


# --- protocol of a stored benchmark (the spec dict of an evaluation set, seed removed) -------------------------------


def benchmark_protocol(benchmark: dict[str, Any] | None) -> str | None:
    """``"paper"`` or ``"exact"`` for a generated benchmark's stored spec (no key: ``"exact"``); None for an
    uploaded evaluation set."""
    if not benchmark:
        return None
    protocol = benchmark.get("protocol") or DEFAULT_PROTOCOL
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown benchmark protocol {protocol!r}")
    return str(protocol)


def emd_normaliser_name(benchmark: dict[str, Any] | None) -> str:
    """The EMD normaliser (``exact.metrics.EMD_NORMALISERS``) an evaluation set is scored with: the paper's
    sqrt(2HW) for a paper-protocol benchmark, the grid diagonal otherwise (uploaded sets included)."""
    return PAPER_EMD_NORMALISER if benchmark_protocol(benchmark) == "paper" else EXACT_EMD_NORMALISER


def precision_rule_name(benchmark: dict[str, Any] | None) -> str:
    """The precision rule (``exact.metrics.PRECISION_RULES``) an evaluation set is scored with: the paper code's
    for a paper-protocol benchmark, ties by expected value otherwise (uploaded sets included)."""
    return PAPER_PRECISION_RULE if benchmark_protocol(benchmark) == "paper" else EXACT_PRECISION_RULE


def _percentages(splits: Any) -> str:
    try:
        return "/".join(f"{100 * float(f):g}" for f in splits)
    except (TypeError, ValueError):
        return "?"


def _shown(value: Any, spec: str) -> str:
    return format(value, spec) if _is_real(value) else "?"


def describe_protocol(benchmark: dict[str, Any] | None) -> str:
    """One plain sentence for the challenge page: how the evaluation set was made and how EMD and precision are
    computed."""
    protocol = benchmark_protocol(benchmark)
    if protocol is None or benchmark is None:
        return "Uploaded evaluation set (no generation protocol); EMD score 1 − EMD / grid diagonal."
    scenario, size, n_samples = benchmark.get("scenario"), benchmark.get("size"), benchmark.get("n_samples")
    alpha = _shown(benchmark.get("alpha"), "g")
    splits = _percentages(benchmark.get("splits") or DEFAULT_SPLITS)
    samples = f"{_shown(n_samples, ',')} samples"
    if protocol == "paper":
        masks = "each sample's own tetromino as its mask" if scenario == "rigid" else "union masks (T and L)"
        if size == 64:
            masks += ", smoothed and thresholded at 0.05"
        published = PAPER_SAMPLES.get(size) if _is_int(size) else None
        if published and _is_int(n_samples) and n_samples < published:
            samples = f"{n_samples:,} of the published {published:,} samples"
        return (
            f"XAI-TRIS paper protocol (Clark et al. 2024): α = {alpha}, {samples}, {splits} split, "
            f"whole-dataset normalisation, {masks}, EMD score 1 − EMD / √(2HW), precision over the top k "
            "non-zero attributions as the paper's code counts it."
        )
    masks = "both tetrominoes as the mask" if scenario == "xor" else "each sample's own tetromino as its mask"
    return (
        f"Exact's own protocol: α = {alpha}, {samples}, {splits} split, per-sample normalisation, {masks}, "
        "EMD score 1 − EMD / grid diagonal."
    )

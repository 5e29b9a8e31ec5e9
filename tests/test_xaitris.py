"""XAI-TRIS generator: determinism, balance, masks, label rules, signal strength, normalisation, files, validation."""

from __future__ import annotations

import dataclasses
import io
import time
import zipfile
from functools import cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.ndimage import gaussian_filter

from exact.errors import ValidationError
from exact.xaitris import (
    BACKGROUNDS,
    L_PATTERN,
    MAX_SAMPLES,
    MIN_SAMPLES,
    SCENARIOS,
    T_PATTERN,
    Benchmark,
    BenchmarkSpec,
    generate,
    preview_samples,
    read_npz,
)

T_CELLS_8 = {(1, 1), (2, 1), (2, 2), (3, 1)}  # T at row 1, column 1
L_CELLS_8 = {(4, 5), (5, 5), (6, 5), (6, 6)}  # L at row 4, column 5


@cache
def bench(scenario: str, size: int = 8, background: str = "white", alpha: float = 0.5, n: int = 400, seed: int = 0):
    return generate(BenchmarkSpec(scenario, size, background, alpha, n, seed))


def all_of(b: Benchmark) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    splits = (b.train, b.validation, b.test)
    return tuple(np.concatenate([getattr(s, name) for s in splits]) for name in ("inputs", "labels", "masks"))


def cells(mask: np.ndarray) -> set[tuple[int, int]]:
    return {(int(r), int(c)) for r, c in zip(*np.nonzero(mask), strict=True)}


def rotations(pattern: np.ndarray) -> list[np.ndarray]:
    return [np.rot90(pattern, k) for k in range(4)]


def crop(mask: np.ndarray) -> np.ndarray:
    rows, cols = np.nonzero(mask)
    return mask[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]


# --- determinism -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_same_spec_gives_identical_arrays_and_other_seed_differs(scenario):
    spec = BenchmarkSpec(scenario, background="correlated", n_samples=200, seed=7)
    a, b = generate(spec), generate(spec)
    c = generate(dataclasses.replace(spec, seed=8))
    for name in ("train", "validation", "test"):
        for field in ("inputs", "labels", "masks"):
            x, y = getattr(a.split(name), field), getattr(b.split(name), field)
            assert x.dtype == y.dtype and x.tobytes() == y.tobytes()
    assert not np.array_equal(a.train.inputs, c.train.inputs)
    assert not np.array_equal(a.test.labels, c.test.labels)


def test_64_is_deterministic_too():
    spec = BenchmarkSpec("rigid", size=64, background="correlated", n_samples=40, seed=3)
    assert generate(spec).test.inputs.tobytes() == generate(spec).test.inputs.tobytes()


# --- shapes, dtypes, balance, splits ---------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("size", [8, 64])
def test_shapes_dtypes_and_balanced_splits(scenario, size):
    b = bench(scenario, size, n=40 if size == 64 else 400)
    n = b.spec.n_samples
    assert [len(b.train), len(b.validation), len(b.test)] == ([28, 6, 6] if size == 64 else [280, 60, 60])
    assert len(b.train) + len(b.validation) + len(b.test) == n
    for split in (b.train, b.validation, b.test):
        assert split.inputs.shape == split.masks.shape == (len(split), size, size)
        assert split.inputs.dtype == np.float32 and split.masks.dtype == np.float64 and split.labels.dtype == np.int64
        assert np.bincount(split.labels, minlength=2).tolist() == [len(split) // 2] * 2
        assert np.all(np.isfinite(split.inputs)) and split.masks.min() >= 0
        assert set(np.unique(split.masks)) <= {0.0, 1.0}
        assert not split.inputs.flags.writeable


def test_splits_are_shuffled_not_class_sorted():
    labels = bench("linear").train.labels
    assert np.count_nonzero(np.diff(labels)) > 50


@pytest.mark.parametrize(
    ("n", "splits", "expected"),
    [
        (1000, (0.7, 0.15, 0.15), [700, 150, 150]),
        (1000, (0.8, 0.1, 0.1), [800, 100, 100]),
        (20, (0.5, 0.25, 0.25), [10, 6, 4]),
    ],
)
def test_custom_split_fractions(n, splits, expected):
    b = generate(BenchmarkSpec("linear", n_samples=n, splits=splits))
    assert [len(b.train), len(b.validation), len(b.test)] == expected
    for split in (b.train, b.validation, b.test):
        assert np.bincount(split.labels).tolist() == [len(split) // 2] * 2


def test_splits_are_disjoint_samples():
    x, _, _ = all_of(bench("rigid"))
    assert len({row.tobytes() for row in x}) == len(x)


# --- masks -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", ["linear", "multiplicative"])
def test_fixed_masks_are_the_tetromino_cells_of_the_class(scenario):
    _, labels, masks = all_of(bench(scenario))
    for label, mask in zip(labels, masks, strict=True):
        assert cells(mask) == (T_CELLS_8 if label == 0 else L_CELLS_8)


def test_xor_mask_is_the_union_of_both_patterns():
    _, _, masks = all_of(bench("xor"))
    for mask in masks:
        assert cells(mask) == T_CELLS_8 | L_CELLS_8


def test_rigid_masks_are_rotated_translated_tetrominoes_of_the_class():
    _, labels, masks = all_of(bench("rigid"))
    seen_rotations, seen_positions = set(), set()
    for label, mask in zip(labels, masks, strict=True):
        assert mask.sum() == 4
        shape = crop(mask)
        pattern = T_PATTERN if label == 0 else L_PATTERN
        matches = [
            k for k, rot in enumerate(rotations(pattern)) if rot.shape == shape.shape and np.array_equal(rot, shape)
        ]
        assert matches, f"mask is not a rotation of the class-{label} tetromino:\n{mask}"
        seen_rotations.add(matches[0])
        seen_positions.add(tuple(np.argwhere(mask)[0]))
    assert seen_rotations == {0, 1, 2, 3}
    assert len(seen_positions) > 20


def test_rigid_64_masks_are_4x4_blocks_of_a_rotated_tetromino():
    b = bench("rigid", 64, n=40)
    for label, mask in zip(b.train.labels, b.train.masks, strict=True):
        assert mask.sum() == 4 * 16
        shape = crop(mask)
        cells_grid = shape[::4, ::4]
        assert np.array_equal(np.kron(cells_grid, np.ones((4, 4))), shape)
        pattern = T_PATTERN if label == 0 else L_PATTERN
        assert any(rot.shape == cells_grid.shape and np.array_equal(rot, cells_grid) for rot in rotations(pattern))


def test_64_fixed_masks_are_8x8_blocks_at_fixed_positions():
    b = bench("linear", 64, n=40)
    for label, mask in zip(b.train.labels, b.train.masks, strict=True):
        expected = np.zeros((64, 64))
        if label == 0:
            expected[8:32, 8:24] = np.kron(T_PATTERN, np.ones((8, 8)))
        else:
            expected[32:56, 40:56] = np.kron(L_PATTERN, np.ones((8, 8)))
        assert np.array_equal(mask, expected)


# --- label rules and signal ------------------------------------------------------------------------------------


def test_xor_label_is_sign_agreement_of_t_and_l():
    x, labels, _ = all_of(bench("xor", alpha=0.9))
    t_sign = np.sign(sum(x[:, r, c] for r, c in T_CELLS_8))
    l_sign = np.sign(sum(x[:, r, c] for r, c in L_CELLS_8))
    assert np.array_equal(labels, (t_sign != l_sign).astype(np.int64))
    # All four sign combinations occur, each in about a quarter of the samples.
    combos = np.bincount(((t_sign > 0) * 2 + (l_sign > 0)).astype(int), minlength=4)
    assert combos.min() >= len(labels) // 4 - 2


@pytest.mark.parametrize("scenario", ["linear", "rigid"])
def test_signal_inside_mask_stands_out_from_background(scenario):
    x, _, masks = all_of(bench(scenario, alpha=0.9))
    inside = x[masks > 0].mean()
    outside = np.abs(x[masks == 0]).mean()
    assert inside > 10 * outside


def test_multiplicative_signal_damps_the_background_inside_the_mask():
    x, _, masks = all_of(bench("multiplicative", alpha=0.9))
    ratio = np.sqrt((x[masks > 0] ** 2).mean() / (x[masks == 0] ** 2).mean())
    assert ratio == pytest.approx(0.1, rel=0.25)


def linear_model_accuracy(b: Benchmark) -> float:
    """Least-squares linear classifier (with bias) trained on train, scored on validation + test."""

    def design(inputs: np.ndarray) -> np.ndarray:
        flat = inputs.reshape(len(inputs), -1).astype(np.float64)
        return np.hstack([flat, np.ones((len(flat), 1))])

    weights, *_ = np.linalg.lstsq(design(b.train.inputs), 2.0 * b.train.labels - 1, rcond=None)
    held_x = np.concatenate([b.validation.inputs, b.test.inputs])
    held_y = np.concatenate([b.validation.labels, b.test.labels])
    return float(np.mean((design(held_x) @ weights > 0) == held_y))


def test_linear_model_solves_linear_but_not_xor():
    assert linear_model_accuracy(bench("linear", n=1000, alpha=0.3)) > 0.95
    assert linear_model_accuracy(bench("xor", n=1000, alpha=0.3)) < 0.65


def test_xor_is_solvable_by_a_product_feature():
    x, labels, _ = all_of(bench("xor", alpha=0.3, n=1000))
    t = sum(x[:, r, c] for r, c in T_CELLS_8)
    l_ = sum(x[:, r, c] for r, c in L_CELLS_8)
    assert np.mean((t * l_ < 0) == labels) > 0.9


# --- normalisation ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", ["linear", "rigid"])
@pytest.mark.parametrize("background", BACKGROUNDS)
def test_additive_components_have_unit_frobenius_norm_8(scenario, background):
    alpha = 0.4
    x, _, masks = all_of(bench(scenario, background=background, alpha=alpha))
    signal = masks / 2.0  # four cells of 1: Frobenius norm 2
    noise = (x - alpha * signal) / (1 - alpha)
    assert np.allclose(np.linalg.norm(noise, axis=(1, 2)), 1.0, atol=1e-5)


def test_xor_components_have_unit_frobenius_norm():
    alpha = 0.6
    x, _, _ = all_of(bench("xor", alpha=alpha))
    signal = np.zeros_like(x, dtype=np.float64)
    t_sign = np.sign(sum(x[:, r, c] for r, c in T_CELLS_8))
    l_sign = np.sign(sum(x[:, r, c] for r, c in L_CELLS_8))
    for r, c in T_CELLS_8:
        signal[:, r, c] = t_sign
    for r, c in L_CELLS_8:
        signal[:, r, c] = l_sign
    signal /= np.sqrt(8.0)
    assert np.allclose(np.linalg.norm(signal, axis=(1, 2)), 1.0)
    noise = (x - alpha * signal) / (1 - alpha)
    assert np.allclose(np.linalg.norm(noise, axis=(1, 2)), 1.0, atol=1e-5)


def test_multiplicative_background_has_unit_norm_and_gain_one_minus_alpha():
    alpha = 0.7
    x, _, masks = all_of(bench("multiplicative", alpha=alpha))
    noise = x / (1.0 - alpha * masks)
    assert np.allclose(np.linalg.norm(noise, axis=(1, 2)), 1.0, atol=1e-5)


def test_64_linear_signal_is_the_smoothed_pattern_normalised():
    alpha = 0.5
    b = bench("linear", 64, background="correlated", alpha=alpha, n=40)
    smoothed = gaussian_filter(b.train.masks, sigma=(0, 1.5, 1.5), mode="reflect")
    signal = smoothed / np.linalg.norm(smoothed, axis=(1, 2))[:, None, None]
    noise = (b.train.inputs - alpha * signal) / (1 - alpha)
    assert np.allclose(np.linalg.norm(noise, axis=(1, 2)), 1.0, atol=1e-4)
    # Smoothing leaks a little signal outside the binary mask, but nearly all of it stays inside.
    assert (signal[b.train.masks > 0] ** 2).sum() / (signal**2).sum() > 0.9


def neighbour_correlation(b: Benchmark) -> float:
    """Correlation of horizontally adjacent pixels where neither carries signal."""
    x, _, masks = all_of(b)
    left, right = x[:, :, :-1].astype(np.float64), x[:, :, 1:].astype(np.float64)
    free = (masks[:, :, :-1] == 0) & (masks[:, :, 1:] == 0)
    return float(np.corrcoef(left[free], right[free])[0, 1])


@pytest.mark.parametrize("size", [8, 64])
def test_correlated_background_is_smoother_than_white(size):
    n = 40 if size == 64 else 400
    white = neighbour_correlation(bench("linear", size, "white", alpha=0.1, n=n))
    correlated = neighbour_correlation(bench("linear", size, "correlated", alpha=0.1, n=n))
    assert abs(white) < 0.1
    assert correlated > 0.5


def test_custom_smoothing_sigma_changes_the_background():
    spec = BenchmarkSpec("linear", background="correlated", n_samples=40)
    a = generate(spec)
    b = generate(dataclasses.replace(spec, smoothing_sigma=0.7))
    assert not np.array_equal(a.train.inputs, b.train.inputs)
    assert spec.background_sigma == 3.0 and BenchmarkSpec("linear", size=64).background_sigma == 10.0


# --- files -----------------------------------------------------------------------------------------------------


def test_npz_files_load_without_pickle_and_hold_the_right_keys():
    b = bench("rigid")
    public = read_npz(b.public_dataset_npz())
    # No y_test: on fixed-position scenarios the test labels would give the test masks away.
    assert sorted(public) == ["masks_train", "masks_val", "x_test", "x_train", "x_val", "y_train", "y_val"]
    assert np.array_equal(public["x_train"], b.train.inputs) and np.array_equal(public["masks_val"], b.validation.masks)
    assert np.array_equal(public["x_test"], b.test.inputs)
    for data in (b.public_dataset_npz(),):
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            assert all(npz[key].dtype != object for key in npz.files)


def test_published_files_hold_neither_test_masks_nor_seed():
    spec = BenchmarkSpec("rigid", n_samples=200, seed=987654321)
    b = generate(spec)
    test_mask_bytes = b.test.masks.tobytes()
    for data in (b.public_dataset_npz(),):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            assert not any(name.startswith(("masks_test", "masks.")) for name in archive.namelist())
            raw = b"".join(archive.read(name) for name in archive.namelist())
        assert test_mask_bytes not in raw
        assert str(spec.seed).encode() not in raw


def test_preview_comes_from_training_split_and_alternates_classes():
    b = bench("linear")
    preview = preview_samples(b, k=5)
    assert [label for _, _, label in preview] == [0, 1, 0, 1, 0]
    train_inputs = {row.tobytes() for row in b.train.inputs.astype(np.float64)}
    for image, mask, label in preview:
        assert image.shape == mask.shape == (8, 8)
        assert image.tobytes() in train_inputs
        assert cells(mask) == (T_CELLS_8 if label == 0 else L_CELLS_8)
    assert preview_samples(b, k=0) == []


# --- speed -----------------------------------------------------------------------------------------------------


def test_1000_samples_of_8x8_take_under_half_a_second():
    generate(BenchmarkSpec("linear", n_samples=40))  # warm-up
    start = time.perf_counter()
    generate(BenchmarkSpec("rigid", background="correlated", n_samples=1000, seed=1))
    assert time.perf_counter() - start < 0.5


# --- validation ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"scenario": "spiral"}, "Unknown scenario"),
        ({"size": 32}, "size must be 8 or 64"),
        ({"background": "imagenet"}, "Unknown background"),
        ({"alpha": 0.0}, "strictly between 0 and 1"),
        ({"alpha": 1.0}, "strictly between 0 and 1"),
        ({"alpha": float("nan")}, "Alpha"),
        ({"alpha": "0.5"}, "Alpha"),
        ({"n_samples": 21}, "even"),
        ({"n_samples": 18}, "between 20"),
        ({"n_samples": 20_002}, "20,000"),
        ({"n_samples": 2_002, "size": 64}, "2,000"),
        ({"n_samples": 100.0}, "whole number"),
        ({"seed": -1}, "Seed"),
        ({"seed": True}, "Seed"),
        ({"splits": (0.5, 0.5)}, "three fractions"),
        ({"splits": (0.8, 0.1, 0.0)}, "strictly between 0 and 1"),
        ({"splits": (0.8, 0.1, 0.2)}, "add up to 1"),
        ({"splits": (0.96, 0.02, 0.02), "n_samples": 40}, "no sample"),
        ({"smoothing_sigma": 0.0}, "Smoothing sigma"),
        ({"smoothing_sigma": 50.0}, "Smoothing sigma"),
    ],
)
def test_invalid_specs_are_rejected_with_clear_messages(changes, message):
    spec = dataclasses.replace(BenchmarkSpec("linear"), **changes)
    with pytest.raises(ValidationError, match=message):
        spec.validate()
    with pytest.raises(ValidationError):
        generate(spec)


def test_spec_round_trips_through_dict():
    spec = BenchmarkSpec("xor", 64, "correlated", 0.25, 100, 5, (0.6, 0.2, 0.2), 4.0)
    assert BenchmarkSpec.from_dict(spec.as_dict()) == spec
    with pytest.raises(ValidationError, match="Unknown benchmark setting"):
        BenchmarkSpec.from_dict({**spec.as_dict(), "colour": "red"})
    with pytest.raises(ValidationError, match="strictly between"):
        BenchmarkSpec.from_dict({**spec.as_dict(), "alpha": 2})


@settings(max_examples=150, deadline=None)
@given(
    scenario=st.sampled_from([*SCENARIOS, "Linear", ""]),
    size=st.sampled_from([8, 64, 16]),
    background=st.sampled_from([*BACKGROUNDS, "pink"]),
    alpha=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-2, 2), st.none()),
    n_samples=st.one_of(st.integers(-10, 25_000), st.floats(0, 100)),
    seed=st.one_of(st.integers(-5, 2**64), st.booleans()),
    splits=st.one_of(
        st.tuples(*[st.floats(-0.5, 1.5, allow_nan=False)] * 3),
        st.lists(st.floats(0, 1), max_size=4).map(tuple),
    ),
    sigma=st.one_of(st.none(), st.floats(allow_nan=True), st.integers(-1, 30)),
)
def test_validate_accepts_exactly_the_documented_ranges(
    scenario, size, background, alpha, n_samples, seed, splits, sigma
):
    spec = BenchmarkSpec(scenario, size, background, alpha, n_samples, seed, splits, sigma)  # type: ignore[arg-type]
    expected_ok = (
        scenario in SCENARIOS
        and size in (8, 64)
        and background in BACKGROUNDS
        and isinstance(alpha, int | float)
        and 0 < alpha < 1
        and isinstance(n_samples, int)
        and MIN_SAMPLES <= n_samples <= MAX_SAMPLES[size]
        and n_samples % 2 == 0
        and not isinstance(seed, bool)
        and 0 <= seed < 2**63
        and len(splits) == 3
        and all(0 < f < 1 for f in splits)
        and abs(sum(splits) - 1) <= 1e-6
        and (sigma is None or (sigma == sigma and 0 < sigma <= 20))
    )
    try:
        spec.validate()
    except ValidationError as error:
        assert str(error)
        # The only valid-looking specs we may still reject are those whose tiny splits would be empty.
        assert not expected_ok or "no sample" in str(error)
    else:
        assert expected_ok


@settings(max_examples=25, deadline=None)
@given(
    scenario=st.sampled_from(SCENARIOS),
    background=st.sampled_from(BACKGROUNDS),
    alpha=st.floats(0.01, 0.99),
    half=st.integers(10, 60),
    seed=st.integers(0, 2**63 - 1),
)
def test_every_valid_small_spec_generates_balanced_finite_data(scenario, background, alpha, half, seed):
    b = generate(BenchmarkSpec(scenario, 8, background, alpha, 2 * half, seed))
    for split in (b.train, b.validation, b.test):
        assert len(split) >= 2 and np.bincount(split.labels, minlength=2).tolist() == [len(split) // 2] * 2
        assert np.all(np.isfinite(split.inputs))
        assert np.all(split.masks.sum(axis=(1, 2)) == (8 if scenario == "xor" else 4))

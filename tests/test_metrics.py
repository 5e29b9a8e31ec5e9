"""The scoring core: hand-computed cases, not-scorable rules, and cross-checks against independent implementations
(POT on the full problem, SciPy's LP-based Wasserstein distance, the 1-D CDF formula, Quantus, scikit-learn)."""

from __future__ import annotations

import itertools
import json
import math
import warnings

import numpy as np
import ot
import pytest
import quantus
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.stats import mannwhitneyu, wasserstein_distance_nd
from sklearn.metrics import roc_auc_score

from exact import metrics
from exact.metrics import METRICS, EvaluationResult, emd_cost, score_batch

SQRT2 = math.sqrt(2.0)
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def one(attribution, mask, **kwargs) -> dict[str, float]:
    """Score a single sample given as nested lists; returns {metric: value}."""
    result = score_batch(np.array([attribution], dtype=float), np.array([mask], dtype=float), **kwargs)
    return {name: float(values[0]) for name, values in result.per_sample.items()}


def grid_coordinates(h: int, w: int) -> np.ndarray:
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    return np.column_stack([rows.ravel(), cols.ravel()]).astype(float)


def reference_emd_score(attribution: np.ndarray, mask: np.ndarray) -> float:
    """Plain POT on the full H*W x H*W problem, as a user of POT would write it."""
    h, w = mask.shape
    coords = grid_coordinates(h, w)
    cost = ot.dist(coords, coords, metric="euclidean")
    p = mask.ravel() / mask.sum()
    q = np.abs(attribution).ravel() / np.abs(attribution).sum()
    return 1.0 - ot.emd2(p, q, cost, numItermax=10_000_000) / math.hypot(h - 1, w - 1)


def random_case(rng: np.random.Generator, n: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Continuous attributions (no ties) with some exact zeros, and sparse soft masks; every sample scorable."""
    masks = np.where(rng.random((n, h, w)) < 0.25, rng.uniform(0.1, 1.0, (n, h, w)), 0.0)
    masks[:, 0, 0] = np.maximum(masks[:, 0, 0], 0.5)
    masks[:, -1, -1] = 0.0  # never a full mask
    attributions = rng.normal(size=(n, h, w)) * (rng.random((n, h, w)) < 0.8)
    attributions[:, h // 2, w // 2] += 3.0
    return attributions, masks


# ---------------------------------------------------------------------------------------------------------------
# Registry and result object


def test_registry_lists_the_four_metrics_all_higher_is_better():
    assert list(METRICS) == ["emd", "mass", "precision", "auc"]
    for name, info in METRICS.items():
        assert info.name == name
        assert info.label and info.description
        assert info.higher_is_better is True


def test_result_to_dict_is_json_safe_and_round_trips():
    attributions = np.array([[[1.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]])
    masks = np.array([[[1.0, 0.0], [0.0, 0.0]], [[1.0, 0.0], [0.0, 0.0]]])
    result = score_batch(attributions, masks)
    data = result.to_dict()
    text = json.dumps(data, allow_nan=False)  # raises if any NaN slipped through
    assert data["n_samples"] == 2
    assert data["metrics"]["mass"]["per_sample"] == [1.0, None]
    assert data["metrics"]["mass"]["n_not_scorable"] == 1
    assert data["metrics"]["emd"]["label"] == "EMD score"
    back = EvaluationResult.from_dict(json.loads(text))
    assert back.metrics == result.metrics
    for name in result.metrics:
        np.testing.assert_array_equal(back.per_sample[name], result.per_sample[name])
        assert back.summary[name] == result.summary[name]


def test_summary_with_nothing_scorable_is_nan_in_the_object_and_none_in_the_dict():
    result = score_batch(np.zeros((3, 2, 2)), np.ones((3, 2, 2)))
    for name in METRICS:
        summary = result.summary[name]
        assert (summary.n_scored, summary.n_not_scorable) == (0, 3)
        assert math.isnan(summary.mean) and math.isnan(summary.std)
        assert result.to_dict()["metrics"][name]["mean"] is None


def test_only_the_requested_metrics_are_computed_in_registry_order():
    result = score_batch(np.ones((1, 2, 2)), np.ones((1, 2, 2)), metrics=["auc", "mass"])
    assert result.metrics == ("mass", "auc")
    with pytest.raises(ValueError, match="unknown metric"):
        score_batch(np.ones((1, 2, 2)), np.ones((1, 2, 2)), metrics=["iou"])
    with pytest.raises(ValueError, match="no metric"):
        score_batch(np.ones((1, 2, 2)), np.ones((1, 2, 2)), metrics=[])


def test_chunked_vectorised_metrics_equal_the_unchunked_ones(monkeypatch):
    rng = np.random.default_rng(8)
    attributions, masks = random_case(rng, 50, 4, 4)
    attributions = np.round(attributions, 1)  # ties too
    whole = score_batch(attributions, masks, metrics=["mass", "precision", "auc"]).per_sample
    monkeypatch.setattr(metrics, "_CHUNK_ELEMENTS", 3 * 16)  # chunks of 3 rows, the last one shorter
    chunked = score_batch(attributions, masks, metrics=["mass", "precision", "auc"]).per_sample
    for name in whole:
        np.testing.assert_array_equal(chunked[name], whole[name])


def test_oversized_emd_problems_are_refused_not_allocated(monkeypatch):
    monkeypatch.setattr(metrics, "_MAX_EMD_CELLS", 10)
    with pytest.raises(ValueError, match="too large"):
        score_batch(np.arange(16.0).reshape(1, 4, 4), np.eye(4)[None], metrics=["emd"])


def test_per_sample_arrays_are_float64_and_read_only():
    result = score_batch(np.ones((2, 3, 3), dtype=np.float32), np.ones((2, 3, 3), dtype=np.int64))
    for values in result.per_sample.values():
        assert values.dtype == np.float64 and values.shape == (2,)
        with pytest.raises(ValueError):
            values[0] = 0.0


def test_progress_reports_start_steps_and_end():
    calls: list[tuple[int, int]] = []
    rng = np.random.default_rng(0)
    attributions, masks = random_case(rng, 250, 4, 4)
    score_batch(attributions, masks, progress=lambda done, total: calls.append((done, total)))
    assert calls[0] == (0, 250) and calls[-1] == (250, 250)
    assert len(calls) > 2
    assert all(total == 250 for _, total in calls)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


@pytest.mark.parametrize(
    ("attributions", "masks", "message"),
    [
        (np.ones((2, 3, 3)), np.ones((2, 3)), "masks must have shape"),
        (np.ones((2, 3, 4)), np.ones((2, 3, 3)), "attributions must have shape"),
        (np.ones((3, 9)), np.ones((2, 3, 3)), "attributions must have shape"),
        (np.full((1, 2, 2), np.nan), np.ones((1, 2, 2)), "NaN"),
        (np.ones((1, 2, 2)), np.full((1, 2, 2), -1.0), "negative"),
        (np.ones((1, 2, 2), dtype=complex), np.ones((1, 2, 2)), "real numeric"),
    ],
)
def test_malformed_input_is_refused(attributions, masks, message):
    with pytest.raises(ValueError, match=message):
        score_batch(attributions, masks)


# ---------------------------------------------------------------------------------------------------------------
# Hand-computed cases


def test_opposite_corners_of_2x2():
    # Mass moves along the whole diagonal: EMD = sqrt(2) = D. AUC: the positive ties two negatives (1/2 each) and
    # loses to one: (1/2 + 1/2 + 0) / 3.
    scores = one([[0, 0], [0, 1]], [[1, 0], [0, 0]])
    assert scores["emd"] == pytest.approx(0.0, abs=1e-12)
    assert scores["mass"] == 0.0
    assert scores["precision"] == 0.0
    assert scores["auc"] == pytest.approx(1 / 3, abs=1e-12)


def test_perfect_attribution_scores_one_everywhere_and_sign_is_ignored():
    mask = [[0, 1, 0], [1, 1, 1], [0, 0, 0]]
    for attribution in (mask, [[-v for v in row] for row in mask]):
        scores = one(attribution, mask)
        assert scores == {"emd": 1.0, "mass": 1.0, "precision": 1.0, "auc": 1.0}


def test_emd_one_row_cdf_cases():
    # 1 x 3, D = 2. Everything moves 2 -> 0. Half moves 1 and half moves 2 -> 1 - 1.5 / 2.
    assert one([[0, 0, 1]], [[1, 0, 0]])["emd"] == pytest.approx(0.0, abs=1e-12)
    assert one([[0, 1, 1]], [[1, 0, 0]])["emd"] == pytest.approx(0.25, abs=1e-12)
    # 1 x 4, two pixels to two pixels (the network simplex, not a closed form): EMD = 0.5 + 1 + 0.5 = 2, D = 3.
    assert one([[0, 0, 1, 1]], [[1, 1, 0, 0]])["emd"] == pytest.approx(1 / 3, abs=1e-12)


def test_emd_3x3_centre_mask_against_uniform_attribution():
    # Mass 1/9 moves from the centre to each pixel: 4 neighbours at 1, 4 corners at sqrt(2); D = 2 sqrt(2).
    scores = one(np.ones((3, 3)), [[0, 0, 0], [0, 1, 0], [0, 0, 0]])
    assert scores["emd"] == pytest.approx(1 - (4 + 4 * SQRT2) / 9 / (2 * SQRT2), abs=1e-12)
    assert scores["mass"] == pytest.approx(1 / 9, abs=1e-15)
    # All |a| tie: the one slot is filled by expectation, 1 of 9 tied pixels is inside.
    assert scores["precision"] == pytest.approx(1 / 9, abs=1e-15)
    assert scores["auc"] == pytest.approx(0.5, abs=1e-15)


def test_emd_column_shift_3x3():
    # Left column to right column: every unit moves at least 2 (the column coordinate is 1-Lipschitz) and
    # moving straight across achieves it. D = 2 sqrt(2).
    mask = [[1, 0, 0], [1, 0, 0], [1, 0, 0]]
    attribution = [[0, 0, 5], [0, 0, 5], [0, 0, 5]]
    assert one(attribution, mask)["emd"] == pytest.approx(1 - 2 / (2 * SQRT2), abs=1e-12)


def test_soft_mask_weights_emd_but_mass_precision_auc_use_the_support():
    # 1 x 3, mask [2, 0, 1]: p = [2/3, 0, 1/3]; all attribution on the middle pixel: EMD = 1, D = 2.
    scores = one([[0, 1, 0]], [[2, 0, 1]])
    assert scores["emd"] == pytest.approx(0.5, abs=1e-12)
    assert scores["mass"] == 0.0
    # k = 2: the middle pixel (outside) first, then one slot for the tie {0, 2}, both inside: 2 x 1/2 = 1 hit.
    assert scores["precision"] == pytest.approx(0.5, abs=1e-15)
    assert scores["auc"] == 0.0


def test_flat_attribution_shape_gives_the_same_scores():
    rng = np.random.default_rng(3)
    attributions, masks = random_case(rng, 5, 4, 6)
    nested = score_batch(attributions, masks)
    flat = score_batch(attributions.reshape(5, 24), masks)
    for name in METRICS:
        np.testing.assert_array_equal(flat.per_sample[name], nested.per_sample[name])


def test_single_pixel_grid():
    scores = one([[2.0]], [[1.0]])
    assert scores["emd"] == 1.0 and scores["mass"] == 1.0 and scores["precision"] == 1.0
    assert math.isnan(scores["auc"])  # the mask covers every pixel


# ---------------------------------------------------------------------------------------------------------------
# Ties in precision and AUC (exact rationals)


def test_precision_tie_group_across_the_boundary_counts_by_expectation():
    # |a| = 3, 1, 1, 1, 0, 0; mask = pixels 1 and 4 (k = 2). Top-1 is pixel 0 (outside); one slot is left for
    # the tie {1, 2, 3} of which one is inside: 1 x 1/3. Precision = (0 + 1/3) / 2.
    scores = one([[3, 1, 1, 1, 0, 0]], [[0, 1, 0, 0, 1, 0]])
    assert scores["precision"] == pytest.approx(1 / 6, abs=1e-15)


def test_precision_tie_group_entirely_inside_the_top_k_counts_fully():
    # |a| = 2, 2, 1, 0; mask = pixels 0 and 3 (k = 2): the tie {0, 1} fills both slots, one hit.
    assert one([[2, 2, 1, 0]], [[1, 0, 0, 1]])["precision"] == pytest.approx(0.5, abs=1e-15)


@pytest.mark.parametrize("k", [1, 3, 5, 8])
def test_constant_attribution_precision_is_the_base_rate_and_auc_one_half(k):
    mask = np.zeros(9)
    mask[:k] = 1
    scores = one(np.full((3, 3), 0.7), mask.reshape(3, 3))
    assert scores["precision"] == pytest.approx(k / 9, abs=1e-15)
    assert scores["auc"] == pytest.approx(0.5, abs=1e-15)


def test_auc_with_ties_hand_counted():
    # Positives (inside) score 2, 1; negatives score 1, 0, 0.
    # Pairs: 2 beats all three (3); 1 ties 1 (1/2) and beats 0, 0 (2). AUC = 5.5 / 6.
    assert one([[2, 1, 1, 0, 0]], [[1, 1, 0, 0, 0]])["auc"] == pytest.approx(5.5 / 6, abs=1e-15)


@FAST
@given(seed=st.integers(0, 2**32 - 1), levels=st.integers(1, 4))
def test_auc_with_ties_matches_scikit_learn_and_mann_whitney(seed, levels):
    rng = np.random.default_rng(seed)
    attributions = rng.integers(-levels, levels + 1, size=(6, 5, 5)).astype(float)
    masks = (rng.random((6, 5, 5)) < 0.4).astype(float)
    masks[:, 0, 0], masks[:, 4, 4] = 1.0, 0.0
    attributions[:, 2, 2] = levels + 1  # never all zero
    ours = score_batch(attributions, masks, metrics=["auc"]).per_sample["auc"]
    for i in range(6):
        scores, labels = np.abs(attributions[i]).ravel(), masks[i].ravel() > 0
        assert ours[i] == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
        u = mannwhitneyu(scores[labels], scores[~labels], alternative="two-sided").statistic
        assert ours[i] == pytest.approx(u / (labels.sum() * (~labels).sum()), abs=1e-12)


@FAST
@given(seed=st.integers(0, 2**32 - 1), levels=st.integers(1, 3))
def test_precision_with_ties_equals_the_average_over_all_tie_orders(seed, levels):
    # Independent definition: the expected hit rate over every order of the tied pixels, estimated exactly by
    # averaging over all permutations of the boundary tie group (small groups only).
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, levels + 1, size=6).astype(float)
    scores[0] = levels + 1
    inside = rng.random(6) < 0.5
    inside[1] = True
    k = int(inside.sum())
    total = 0.0
    perms = list(itertools.permutations(range(6)))
    for perm in perms:
        # Sort by score descending, break ties by the permutation's order.
        order = sorted(range(6), key=lambda i: (-scores[i], perm.index(i)))
        total += inside[order[:k]].sum() / k
    expected = total / len(perms)
    got = one(scores.reshape(2, 3), inside.reshape(2, 3).astype(float), metrics=["precision"])["precision"]
    assert got == pytest.approx(expected, abs=1e-12)


# ---------------------------------------------------------------------------------------------------------------
# Not scorable


def test_not_scorable_samples_are_nan_and_excluded_from_the_summary():
    # Sample 0: perfect. Sample 1: all-zero attribution. Sample 2: empty mask. Sample 3: full mask (AUC only).
    # Sample 4: mask on the top row, attribution on the bottom row.
    attributions = np.array(
        [
            [[1.0, 0.0], [0.0, 0.0]],
            [[0.0, 0.0], [0.0, 0.0]],
            [[1.0, 1.0], [1.0, 1.0]],
            [[1.0, 2.0], [3.0, 4.0]],
            [[0.0, 0.0], [1.0, 1.0]],
        ]
    )
    masks = np.array(
        [
            [[1.0, 0.0], [0.0, 0.0]],
            [[1.0, 0.0], [0.0, 0.0]],
            [[0.0, 0.0], [0.0, 0.0]],
            [[1.0, 1.0], [1.0, 1.0]],
            [[1.0, 1.0], [0.0, 0.0]],
        ]
    )
    result = score_batch(attributions, masks)
    mass = result.per_sample["mass"]
    assert mass[0] == 1.0 and math.isnan(mass[1]) and math.isnan(mass[2]) and mass[3] == 1.0 and mass[4] == 0.0
    assert result.summary["mass"].n_scored == 3 and result.summary["mass"].n_not_scorable == 2
    assert result.summary["mass"].mean == pytest.approx(2 / 3, abs=1e-15)
    assert result.summary["mass"].std == pytest.approx(math.sqrt(2 / 9), abs=1e-15)  # population std of 1, 1, 0
    auc = result.per_sample["auc"]
    assert auc[0] == 1.0 and auc[4] == 0.0
    assert all(math.isnan(auc[i]) for i in (1, 2, 3))
    assert result.summary["auc"].n_not_scorable == 3 and result.summary["auc"].mean == 0.5
    for name in ("emd", "precision"):
        values = result.per_sample[name]
        assert math.isnan(values[1]) and math.isnan(values[2])
        assert not math.isnan(values[3])
        assert result.summary[name].n_not_scorable == 2
    # Sample 4: each unit moves 1 (straight down); D = sqrt(2).
    assert result.per_sample["emd"][4] == pytest.approx(1 - 1 / SQRT2, abs=1e-12)
    assert result.per_sample["emd"][3] < 1.0


def test_float_limits_do_not_overflow():
    mask = np.zeros((8, 8))
    mask[2:4, 2:4] = 1.0
    huge = np.full((8, 8), 1e308)
    huge[::2] *= -1  # signs do not matter
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow warning would fail the test
        scores = one(huge, mask)
    assert scores["mass"] == pytest.approx(4 / 64, abs=1e-15)
    assert scores["precision"] == pytest.approx(4 / 64, abs=1e-15)
    assert scores["auc"] == pytest.approx(0.5, abs=1e-15)
    # Same distribution as a uniform map: compare with POT on the full problem.
    assert scores["emd"] == pytest.approx(reference_emd_score(np.ones((8, 8)), mask), abs=1e-9)
    tiny = np.where(mask > 0, 5e-324, 0.0)  # denormals: the smallest positive float
    assert one(tiny, mask) == {"emd": 1.0, "mass": 1.0, "precision": 1.0, "auc": 1.0}
    masked_huge = one(np.ones((8, 8)), mask * 1e308)
    assert masked_huge["emd"] == pytest.approx(scores["emd"], abs=1e-12)


# ---------------------------------------------------------------------------------------------------------------
# Cross-checks against independent implementations


@FAST
@given(seed=st.integers(0, 2**32 - 1), h=st.integers(2, 7), w=st.integers(2, 7))
def test_emd_matches_pot_on_the_full_problem(seed, h, w):
    rng = np.random.default_rng(seed)
    attributions, masks = random_case(rng, 3, h, w)
    ours = score_batch(attributions, masks, metrics=["emd"]).per_sample["emd"]
    for i in range(3):
        assert ours[i] == pytest.approx(reference_emd_score(attributions[i], masks[i]), abs=1e-9)


def test_emd_matches_pot_on_8x8_tetromino_like_masks():
    rng = np.random.default_rng(20240601)
    masks = np.zeros((40, 8, 8))
    for i in range(40):
        r, c = rng.integers(0, 6, 2)
        masks[i, r : r + 3, c] = 1.0
        masks[i, r + 1, c + 1] = 1.0
    attributions = rng.normal(size=(40, 8, 8)) + 2 * masks
    attributions[::2] = np.maximum(attributions[::2], 0.0)
    ours = score_batch(attributions, masks, metrics=["emd"]).per_sample["emd"]
    expected = [reference_emd_score(attributions[i], masks[i]) for i in range(40)]
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-9)


def test_costs_from_coordinates_path_used_for_large_grids(monkeypatch):
    # Grids above _TABLE_MAX_PIXELS compute the reduced cost matrix from coordinates instead of a cached table.
    rng = np.random.default_rng(33)
    attributions, masks = random_case(rng, 6, 6, 7)
    monkeypatch.setattr(metrics, "_TABLE_MAX_PIXELS", 0)
    metrics._distance_table.cache_clear()
    try:
        assert metrics._distance_table(6, 7) is None
        ours = score_batch(attributions, masks, metrics=["emd"]).per_sample["emd"]
    finally:
        metrics._distance_table.cache_clear()
    expected = [reference_emd_score(attributions[i], masks[i]) for i in range(6)]
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-9)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), h=st.integers(2, 6), w=st.integers(2, 6))
def test_emd_matches_scipy_wasserstein_distance_nd(seed, h, w):
    rng = np.random.default_rng(seed)
    attributions, masks = random_case(rng, 1, h, w)
    coords = grid_coordinates(h, w)
    p = masks[0].ravel() / masks[0].sum()
    q = np.abs(attributions[0]).ravel() / np.abs(attributions[0]).sum()
    expected = 1 - wasserstein_distance_nd(coords, coords, p, q) / math.hypot(h - 1, w - 1)
    assert one(attributions[0], masks[0], metrics=["emd"])["emd"] == pytest.approx(expected, abs=1e-9)


@FAST
@given(seed=st.integers(0, 2**32 - 1), w=st.integers(2, 30))
def test_emd_on_one_row_matches_the_cdf_formula(seed, w):
    # In 1-D, W1 is the L1 distance between the CDFs.
    rng = np.random.default_rng(seed)
    attributions, masks = random_case(rng, 1, 1, w)
    p = masks[0, 0] / masks[0, 0].sum()
    q = np.abs(attributions[0, 0]) / np.abs(attributions[0, 0]).sum()
    expected = 1 - np.abs(np.cumsum(p - q))[:-1].sum() / (w - 1)
    assert one(attributions[0], masks[0], metrics=["emd"])["emd"] == pytest.approx(expected, abs=1e-9)


def test_compiled_solver_and_public_ot_emd2_agree(monkeypatch):
    rng = np.random.default_rng(11)
    attributions, masks = random_case(rng, 30, 6, 6)
    fast = score_batch(attributions, masks, metrics=["emd"]).per_sample["emd"]
    monkeypatch.setattr(metrics, "_USE_COMPILED_SOLVER", False)
    public = score_batch(attributions, masks, metrics=["emd"]).per_sample["emd"]
    np.testing.assert_allclose(fast, public, rtol=0, atol=1e-12)


def test_emd_cost_is_symmetric_and_zero_on_identical_inputs():
    rng = np.random.default_rng(5)
    p = rng.random(20)
    q = rng.random(20)
    p, q = p / p.sum(), q / q.sum()
    assert emd_cost(p, p, (4, 5)) == 0.0
    assert emd_cost(p, q, (4, 5)) == pytest.approx(emd_cost(q, p, (4, 5)), abs=1e-12)
    with pytest.raises(ValueError):
        emd_cost(p, q, (3, 5))


def quantus_scores(metric_class, attributions: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Quantus wants channel-first batches: x (n, 1, H, W), attributions and segmentation masks likewise."""
    n, h, w = masks.shape
    x_batch = np.random.default_rng(0).random((n, 1, h, w))
    y_batch = np.zeros(n, dtype=int)
    metric = metric_class(abs=True, normalise=False, disable_warnings=True)
    scores = metric(
        model=None,
        x_batch=x_batch,
        y_batch=y_batch,
        a_batch=attributions.reshape(n, 1, h, w),
        s_batch=(masks > 0).astype(float).reshape(n, 1, h, w),
    )
    return np.asarray(scores, dtype=float)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), h=st.integers(2, 9), w=st.integers(2, 9))
def test_mass_precision_auc_match_quantus(seed, h, w):
    rng = np.random.default_rng(seed)
    attributions, masks = random_case(rng, 8, h, w)
    attributions = rng.normal(size=attributions.shape)  # continuous, no zeros: no ties for Quantus' argsort
    ours = score_batch(attributions, masks, metrics=["mass", "precision", "auc"]).per_sample
    np.testing.assert_allclose(
        ours["mass"], quantus_scores(quantus.RelevanceMassAccuracy, attributions, masks), rtol=0, atol=1e-9
    )
    np.testing.assert_allclose(
        ours["precision"], quantus_scores(quantus.RelevanceRankAccuracy, attributions, masks), rtol=0, atol=1e-9
    )
    np.testing.assert_allclose(ours["auc"], quantus_scores(quantus.AUC, attributions, masks), rtol=0, atol=1e-9)


def test_quantus_agrees_on_a_64x64_batch():
    rng = np.random.default_rng(64)
    masks = np.zeros((3, 64, 64))
    masks[:, 8:32, 8:16] = 1.0
    masks[:, 16:24, 16:24] = 1.0
    attributions = rng.normal(size=(3, 64, 64)) + masks
    ours = score_batch(attributions, masks, metrics=["mass", "precision", "auc"]).per_sample
    np.testing.assert_allclose(
        ours["mass"], quantus_scores(quantus.RelevanceMassAccuracy, attributions, masks), rtol=0, atol=1e-9
    )
    np.testing.assert_allclose(
        ours["precision"], quantus_scores(quantus.RelevanceRankAccuracy, attributions, masks), rtol=0, atol=1e-9
    )
    np.testing.assert_allclose(ours["auc"], quantus_scores(quantus.AUC, attributions, masks), rtol=0, atol=1e-9)


@FAST
@given(seed=st.integers(0, 2**32 - 1), scale=st.sampled_from([1e-300, 1e-5, 3.0, 1e200]))
def test_scores_do_not_depend_on_the_attribution_scale(seed, scale):
    rng = np.random.default_rng(seed)
    attributions, masks = random_case(rng, 4, 5, 5)
    base = score_batch(attributions, masks).per_sample
    scaled = score_batch(attributions * scale, masks * 7.0).per_sample
    for name in ("precision", "auc"):
        np.testing.assert_array_equal(scaled[name], base[name])
    for name in ("emd", "mass"):
        np.testing.assert_allclose(scaled[name], base[name], rtol=0, atol=1e-12)

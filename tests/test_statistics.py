"""Statistics of leaderboards and comparisons (exact/statistics.py).

Three layers: the pure statistics against known answers (published tables, hand computations, an exhaustive
enumeration) and against SciPy called directly; hypothesis properties of each; and the services on a real
PostgreSQL database, recomputed independently from the stored per-sample values, with the permission rules and the
bounds (rows read, cache) they promise.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from db import evaluations as evaluations_sql
from exact import splits, statistics
from exact.competition import Rules
from exact.errors import NotFound, PermissionDenied, ValidationError
from exact.evaluation_sets import BASELINES
from exact.moderation import moderate
from exact.permissions import MIN_STATISTIC_SAMPLES, SHOWN_DECIMALS
from exact.scores import leaderboard
from exact.statistics import (
    bootstrap_mean_interval,
    critical_difference,
    group_label,
    holm,
    nemenyi_q,
    normalised,
    paired_comparison,
    rank_groups,
    wilcoxon_p,
)
from exact.storage import MediaStorage
from tests.conftest import make_user
from tests.test_pages_scoring import MAX_BYTES, make_gt_challenge, submit

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


def has_at_most_shown_decimals(value: float) -> bool:
    return value == round(value, SHOWN_DECIMALS)


# --- known answers ----------------------------------------------------------------------------------------------

# SciPy's documented example (Cushny and Peebles' sleep data differences, as used in its wilcoxon docstring).
SLEEP_DIFFERENCES = [6, 8, 14, 16, 23, 24, 28, 29, 41, -48, 49, 56, 60, -67, 75]


def _exact_wilcoxon_by_enumeration(differences: list[float]) -> float:
    """The two-sided exact p-value by enumerating all 2^n sign patterns of the ranks (no ties, no zeros)."""
    d = np.asarray(differences, dtype=float)
    ranks = scipy_stats.rankdata(np.abs(d))
    n = len(d)
    observed = ranks[d > 0].sum()
    mean = n * (n + 1) / 4
    extreme = 0
    for signs in itertools.product((0, 1), repeat=n):
        w = float(np.dot(signs, ranks))
        if abs(w - mean) >= abs(observed - mean) - 1e-9:
            extreme += 1
    return extreme / 2**n


def test_wilcoxon_matches_the_exact_enumeration_and_scipy():
    expected = _exact_wilcoxon_by_enumeration(SLEEP_DIFFERENCES)
    assert expected == pytest.approx(0.041259765625)  # SciPy's documentation gives this number too
    assert wilcoxon_p(SLEEP_DIFFERENCES) == pytest.approx(expected, abs=1e-12)
    assert wilcoxon_p(SLEEP_DIFFERENCES) == scipy_stats.wilcoxon(SLEEP_DIFFERENCES).pvalue


def test_wilcoxon_of_no_difference_is_one():
    assert wilcoxon_p([0.0] * 12) == 1.0
    assert wilcoxon_p([0.0] * 11 + [0.5]) == pytest.approx(1.0)  # one non-zero difference: no evidence


def test_holm_on_a_hand_computed_example():
    # Sorted: 0.005, 0.01, 0.03, 0.04 with m = 4 -> 4*0.005 = 0.02, 3*0.01 = 0.03, 2*0.03 = 0.06, max(0.06, 0.04).
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.01, None, 0.04]) == [pytest.approx(0.02), None, pytest.approx(0.04)]
    assert holm([0.6, 0.7]) == [1.0, 1.0]  # capped at 1
    assert holm([]) == [] and holm([None]) == [None]


# Demšar (2006), "Statistical comparisons of classifiers over multiple data sets", JMLR 7, Table 5(a): q_0.05.
DEMSAR_Q05 = {2: 1.960, 3: 2.343, 4: 2.569, 5: 2.728, 6: 2.850, 7: 2.949, 8: 3.031, 9: 3.102, 10: 3.164}


@pytest.mark.parametrize(("k", "q"), sorted(DEMSAR_Q05.items()))
def test_nemenyi_critical_values_are_demsars_table(k, q):
    assert nemenyi_q(k) == pytest.approx(q, abs=1e-3)  # the table has three decimals, truncated


def test_critical_difference_of_demsars_example():
    """Demšar's worked example: four methods on 14 data sets, CD = 2.569 * sqrt(4 * 5 / (6 * 14)) = 1.25."""
    rng = np.random.default_rng(0)
    matrix = rng.random((4, 14))
    result = critical_difference(
        matrix, methods=list("ABCD"), blocks=[str(j) for j in range(14)], higher_is_better=[True] * 14
    )
    assert result.cd == pytest.approx(1.2536, abs=1e-3)


def test_friedman_statistic_matches_scipy_and_its_formula():
    # 3 methods, 4 blocks, no ties: chi2_F = 12 N / (k (k + 1)) * (sum R_j^2 - k (k + 1)^2 / 4)
    matrix = np.array([[0.9, 0.8, 0.7, 0.95], [0.6, 0.7, 0.5, 0.65], [0.3, 0.75, 0.2, 0.4]])
    result = critical_difference(matrix, methods=["a", "b", "c"], blocks=list("wxyz"), higher_is_better=[True] * 4)
    ranks = np.array([[1, 1, 1, 1], [2, 3, 2, 2], [3, 2, 3, 3]])  # 1 = best (highest) per block
    assert [list(r) for r in result.ranks] == ranks.tolist()
    k, n = 3, 4
    by_hand = 12 * n / (k * (k + 1)) * (sum((ranks.mean(axis=1)) ** 2) - k * (k + 1) ** 2 / 4)
    assert result.friedman_statistic == pytest.approx(by_hand)
    assert result.friedman_statistic == pytest.approx(scipy_stats.friedmanchisquare(*matrix).statistic)
    assert result.friedman_p == pytest.approx(scipy_stats.friedmanchisquare(*matrix).pvalue)
    assert result.average_ranks == pytest.approx((1.0, 2.25, 2.75))
    # CD for k = 3, N = 4: 2.343 * sqrt(3 * 4 / 24) = 1.657; a (1.0) and c (2.75) differ by more, a-b does not.
    assert result.cd == pytest.approx(2.3437 * math.sqrt(0.5), abs=1e-3)
    assert result.cliques == ((0, 1), (1, 2))


def test_lower_is_better_blocks_rank_the_lowest_first():
    result = critical_difference([[1.0, 0.1], [2.0, 0.2]], methods=["a", "b"], blocks=["x", "y"],
                                 higher_is_better=[True, False])  # fmt: skip
    assert [list(r) for r in result.ranks] == [[2.0, 1.0], [1.0, 2.0]]
    assert result.friedman_statistic is None  # two methods: Friedman needs three


def test_critical_difference_needs_two_methods_and_two_blocks():
    assert critical_difference([[0.5, 0.6]], methods=["a"], blocks=["x", "y"], higher_is_better=[True, True]) is None
    assert critical_difference([[0.5], [0.6]], methods=["a", "b"], blocks=["x"], higher_is_better=[True]) is None
    nan_row = critical_difference([[0.5, math.nan], [0.6, 0.7], [0.1, 0.2]], methods=["a", "b", "c"],
                                  blocks=["x", "y"], higher_is_better=[True, True])  # fmt: skip
    assert nan_row.methods == ("b", "c")


def test_bootstrap_interval_is_scipys_bca_interval():
    values = np.random.default_rng(3).gamma(2.0, size=80)  # skewed: BCa and percentile differ
    ours = bootstrap_mean_interval(values, seed=11)
    theirs = scipy_stats.bootstrap((values,), np.mean, n_resamples=statistics.BOOTSTRAP_RESAMPLES,
                                   rng=np.random.default_rng(11), method="BCa", vectorized=True,
                                   batch=statistics.BOOTSTRAP_BATCH).confidence_interval  # fmt: skip
    assert (ours.low, ours.high) == pytest.approx((theirs.low, theirs.high), abs=1e-12)
    assert ours.mean == pytest.approx(values.mean()) and ours.n == 80


def test_above_the_bca_limit_the_interval_is_scipys_percentile_interval():
    values = np.random.default_rng(4).gamma(2.0, size=statistics.BCA_MAX_SAMPLES + 1)
    ours = bootstrap_mean_interval(values, seed=2)
    theirs = scipy_stats.bootstrap((values,), np.mean, n_resamples=statistics.BOOTSTRAP_RESAMPLES,
                                   rng=np.random.default_rng(2), method="percentile", vectorized=True,
                                   batch=statistics.BOOTSTRAP_BATCH).confidence_interval  # fmt: skip
    assert (ours.low, ours.high) == pytest.approx((theirs.low, theirs.high), abs=1e-12)


def test_bootstrap_interval_of_a_large_normal_sample_is_the_textbook_interval():
    """Known answer: for n = 4,000 draws of N(0.7, 0.1²) the interval is mean ± 1.96 σ / sqrt(n)."""
    values = np.random.default_rng(5).normal(0.7, 0.1, size=4000)
    interval = bootstrap_mean_interval(values, seed=1)
    half = 1.959964 * values.std(ddof=1) / math.sqrt(values.size)
    assert interval.low == pytest.approx(values.mean() - half, abs=0.15 * half)
    assert interval.high == pytest.approx(values.mean() + half, abs=0.15 * half)


def test_bootstrap_intervals_cover_the_true_mean_about_95_percent_of_the_time():
    """200 samples of 40 values from an exponential distribution with mean 1 (seeded, so the count is fixed):
    a 95 % interval method covers the true mean in about 190 of them."""
    rng = np.random.default_rng(2024)
    covered = 0
    for trial in range(200):
        interval = bootstrap_mean_interval(rng.exponential(1.0, size=40), seed=trial, resamples=1000)
        covered += interval.low <= 1.0 <= interval.high
    assert 176 <= covered <= 199, covered  # 95 % ± 3.5 binomial standard deviations


def test_bootstrap_of_constant_or_too_few_values():
    assert bootstrap_mean_interval([0.5] * 20, seed=1) == statistics.MeanInterval(0.5, 0.5, 0.5, 20)
    assert bootstrap_mean_interval([0.5], seed=1) is None
    assert bootstrap_mean_interval([None, math.nan, 0.3], seed=1) is None  # one finite value


def test_paired_comparison_on_a_small_known_example():
    a = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
    b = [0.8, 0.8, 0.6, 0.7, 0.3, 0.1]
    result = paired_comparison(a, b, seed=1)
    assert (result.wins, result.losses, result.ties, result.n) == (4, 1, 1, 6)
    assert result.win_rate == pytest.approx(4.5 / 6)
    assert result.difference == pytest.approx(np.mean(np.subtract(a, b)))
    assert result.p_value == pytest.approx(scipy_stats.wilcoxon(a, b).pvalue)
    lower = paired_comparison(a, b, higher_is_better=False, seed=1)
    assert (lower.wins, lower.losses) == (1, 4) and lower.win_rate == pytest.approx(1.5 / 6)


def test_paired_comparison_pairs_only_samples_both_were_scored_on():
    a = [0.9, None, 0.7, 0.6, math.nan]
    b = [0.8, 0.5, None, 0.7, 0.2]
    result = paired_comparison(a, b, seed=1)
    assert result.n == 2 and result.mean_a == pytest.approx(0.75) and result.mean_b == pytest.approx(0.75)
    assert paired_comparison([0.1, None], [0.2, 0.3], seed=1) is None
    with pytest.raises(ValueError, match="aligned"):
        paired_comparison([0.1, 0.2], [0.1], seed=1)


def test_rank_groups_join_neighbours_that_are_not_significantly_different():
    ranks = [1, 2, 3, 4, 5]
    assert rank_groups(ranks, [0.5, 0.01, 0.2, None]) == [(1, 2), (1, 2), (3, 4), (3, 4), (5, 5)]
    assert rank_groups(ranks, [0.001] * 4) == [(r, r) for r in ranks]
    assert rank_groups([1, 1, 3], [0.9, 0.9]) == [(1, 3)] * 3
    assert rank_groups([7], []) == [(7, 7)]
    assert rank_groups([], []) == []
    assert rank_groups([1, 2], [0.05]) == [(1, 2), (1, 2)]  # p = alpha is not significant
    with pytest.raises(ValueError):
        rank_groups([1, 2, 3], [0.5])
    assert group_label(1, 2) == "1–2" and group_label(4, 4) == "4"


def test_normalised_puts_random_at_zero_and_the_ground_truth_at_one():
    assert normalised(0.6, 0.6, 1.0) == 0.0
    assert normalised(1.0, 0.6, 1.0) == 1.0
    assert normalised(0.8, 0.6, 1.0) == pytest.approx(0.5)
    assert normalised(0.5, 0.6, 1.0) == pytest.approx(-0.25)  # worse than random
    assert normalised(0.7, 0.5, 0.5) is None and normalised(None, 0.5, 1.0) is None
    assert normalised(0.7, None, 1.0) is None and normalised(math.inf, 0.5, 1.0) is None


# --- properties -------------------------------------------------------------------------------------------------


@FAST
@given(st.lists(finite, min_size=2, max_size=60), st.integers(0, 2**32 - 1))
def test_bootstrap_interval_lies_within_the_data_and_is_ordered(values, seed):
    interval = bootstrap_mean_interval(values, seed=seed, resamples=200)
    low, high = min(values), max(values)
    tolerance = 1e-9 * max(1.0, abs(low), abs(high))
    assert low - tolerance <= interval.low <= interval.high <= high + tolerance
    assert interval.n == len(values)
    assert bootstrap_mean_interval(values, seed=seed, resamples=200) == interval  # deterministic for a seed


@FAST
@given(st.integers(8, 60), st.integers(0, 2**32 - 1), st.floats(-10, 10), st.integers(0, 2**32 - 1))
def test_bootstrap_interval_moves_with_the_data(n, data_seed, shift, seed):
    """Shifting the data shifts the interval. Up to one step of BCa's bias correction: a resample whose mean ties
    the sample mean exactly (a permutation of the data) falls on either side of it with the last bit of a shift,
    which moves the interval's quantile by 1/resamples (seen at n = 11: 0.0027 of a width of 0.2)."""
    values = np.random.default_rng(data_seed).normal(0.5, 0.2, size=n).tolist()
    before = bootstrap_mean_interval(values, seed=seed, resamples=200)
    after = bootstrap_mean_interval([v + shift for v in values], seed=seed, resamples=200)
    step = 0.05 * (before.high - before.low) + 1e-9
    assert after.low == pytest.approx(before.low + shift, abs=step)
    assert after.high == pytest.approx(before.high + shift, abs=step)
    assert after.high - after.low == pytest.approx(before.high - before.low, abs=2 * step)


@FAST
@given(st.lists(st.one_of(st.none(), st.floats(0, 1)), min_size=0, max_size=30))
def test_holm_adjusts_upwards_keeps_the_order_and_stays_a_probability(p_values):
    adjusted = holm(p_values)
    pairs = [(p, q) for p, q in zip(p_values, adjusted, strict=True) if p is not None]
    assert all((p is None) == (q is None) for p, q in zip(p_values, adjusted, strict=True))
    assert all(p - 1e-12 <= q <= 1.0 for p, q in pairs)
    ordered = sorted(pairs)
    assert all(a[1] <= b[1] + 1e-12 for a, b in itertools.pairwise(ordered))  # monotone in the raw p-value
    # The rejections at 0.05 are those of Holm's step-down procedure run directly.
    raw = sorted(p for p, _ in pairs)
    m, rejected = len(raw), 0
    for j, p in enumerate(raw):
        if (m - j) * p > 0.05:  # p > 0.05 / (m - j), in the same floating-point arithmetic as the adjustment
            break
        rejected += 1
    assert sum(q <= 0.05 for _, q in pairs) == rejected


@FAST
@given(st.lists(st.one_of(st.none(), st.floats(0, 1)), min_size=0, max_size=30))
def test_rank_groups_are_contiguous_runs_split_exactly_at_significant_neighbours(p_values):
    ranks = list(range(1, len(p_values) + 2))
    groups = rank_groups(ranks, p_values)
    assert len(groups) == len(ranks)
    for i, p in enumerate(p_values):
        joined = p is not None and p >= statistics.ALPHA
        assert (groups[i] == groups[i + 1]) is joined
    for i, (first, last) in enumerate(groups):
        assert first <= ranks[i] <= last


@FAST
@given(st.lists(st.tuples(unit, unit), min_size=2, max_size=50), st.integers(0, 2**32 - 1))
def test_comparing_b_with_a_mirrors_comparing_a_with_b(pairs, seed):
    a, b = [x for x, _ in pairs], [y for _, y in pairs]
    forward = paired_comparison(a, b, seed=seed, resamples=200)
    backward = paired_comparison(b, a, seed=seed, resamples=200)
    assert backward.difference == pytest.approx(-forward.difference, abs=1e-12)
    assert (backward.wins, backward.losses, backward.ties) == (forward.losses, forward.wins, forward.ties)
    assert backward.win_rate == pytest.approx(1 - forward.win_rate)
    assert backward.p_value == pytest.approx(forward.p_value)
    assert 0.0 <= forward.p_value <= 1.0 and 0.0 <= forward.win_rate <= 1.0


@FAST
@given(st.integers(2, 12), st.integers(2, 6), st.integers(0, 2**32 - 1))
def test_average_ranks_sum_to_the_ranks_and_cliques_are_within_the_critical_difference(k, n, seed):
    matrix = np.random.default_rng(seed).integers(0, 4, size=(k, n)).astype(float)  # with ties
    result = critical_difference(matrix, methods=[str(i) for i in range(k)], blocks=[str(j) for j in range(n)],
                                 higher_is_better=[True] * n)  # fmt: skip
    assert sum(result.average_ranks) == pytest.approx(k * (k + 1) / 2)
    assert all(1.0 <= r <= k for r in result.average_ranks)
    ranks = result.average_ranks
    for clique in result.cliques:
        members = [ranks[i] for i in clique]
        assert max(members) - min(members) < result.cd
    # maximal: no clique is contained in another
    sets = [set(c) for c in result.cliques]
    assert not any(a < b for a in sets for b in sets)


# --- the services on a real database ----------------------------------------------------------------------------

CID = "gt-stats"


@pytest.fixture
def stores(media_root, private_root):
    return MediaStorage(media_root, max_bytes=MAX_BYTES), MediaStorage(private_root, max_bytes=MAX_BYTES)


@pytest.fixture
def people(db):
    return {
        "root": make_user(db, "root", superuser=True),
        "olivia": make_user(db, "olivia", staff=True),
        "oscar": make_user(db, "oscar", staff=True),
        **{name: make_user(db, name) for name in ("pat", "quinn", "rae", "sam")},
    }


def make_fixed_split_challenge(db, stores, organiser_id: int, challenge_id: str, *, n_samples: int = 600):
    """make_gt_challenge with the split fixed (development samples first, then public, then private) before
    anything is scored: the server draws it at random, and these tests need the same samples every run."""
    from exact import arrays
    from exact.challenges import ChallengeForm, EvaluationChoice, create_challenge
    from exact.evaluation_sets import get_evaluation, load_split_codes, prepare_benchmark
    from exact.scoring import score_waiting_baselines
    from exact.xaitris import BenchmarkSpec

    media, private = stores
    prepared = prepare_benchmark(BenchmarkSpec(scenario="linear", size=8, n_samples=n_samples, seed=3))
    create_challenge(
        db, media, organiser_id, ChallengeForm(f"Ground truth {challenge_id}", "Tetrominoes.", challenge_id), {},
        evaluation=EvaluationChoice(prepared=prepared, private=private, primary_metric="emd",
                                    shown_metrics=("mass", "auc")),
    )  # fmt: skip
    evaluation = get_evaluation(db, challenge_id)
    codes = np.sort(load_split_codes(evaluation, private))
    private.resolve(evaluation.masks_path).write_bytes(arrays.npz_bytes(masks=prepared.masks, split=codes))
    assert score_waiting_baselines(db, media, private, challenge_id) == len(BASELINES)
    return prepared


@pytest.fixture
def board_world(db, stores, people):
    """An 8×8 benchmark with 90 evaluation samples (27 public, fixed) and four participants of increasing noise:
    pat, quinn and rae differ on every sample in the same direction (more noise, lower EMD: the exact Wilcoxon
    p-value is 2 / 2^27 before Holm's factor of 3); rae and sam run the same method (the same amount of
    independent noise), so they come out statistically tied."""
    statistics.clear_cache()
    prepared = make_fixed_split_challenge(db, stores, people["olivia"].id, CID)
    masks = prepared.masks
    rng = np.random.default_rng(7)
    noise = rng.random(masks.shape)
    made = {
        "pat": submit(db, stores, people["pat"], CID, masks + 0.1 * noise, "Mask and a little noise"),
        "quinn": submit(db, stores, people["quinn"], CID, masks + 0.6 * noise, "Mask and more noise"),
        "rae": submit(db, stores, people["rae"], CID, masks + 2.0 * noise, "Mostly noise"),
        "sam": submit(db, stores, people["sam"], CID, masks + 2.0 * rng.random(masks.shape), "Mostly noise too"),
    }  # fmt: skip
    assert all(s.status == "done" for s in made.values())
    return {"prepared": prepared, "made": made}


def _stored(db, submission_id: int) -> dict:
    with db.connect() as conn:
        return conn.execute(sa.text("SELECT result FROM exact_submission WHERE id = :i"), {"i": submission_id}).scalar()


def _split_values(db, submission_id: int, metric: str, split: str) -> np.ndarray:
    result = _stored(db, submission_id)
    values = np.array([np.nan if v is None else v for v in result["metrics"][metric]["per_sample"]])
    codes = np.asarray(result["split_codes"])
    return np.where(codes == splits.SPLIT_CODES[split], values, np.nan)


def test_board_statistics_recomputed_from_the_stored_values(db, board_world, people):
    board = leaderboard(db, CID)
    details = statistics.board_statistics(db, None, board)
    assert details.available and details.split == "public" and details.metric == "emd"
    table = details.table.set_index("username")
    assert list(details.table["username"])[:2] == ["pat", "quinn"]
    ids = [int(i) for i in details.table["submission_id"]]
    # Intervals: SciPy's BCa bootstrap of each row's public per-sample values, with the documented seed.
    for sid in ids:
        values = _split_values(db, sid, "emd", "public")
        values = values[np.isfinite(values)]
        expected = scipy_stats.bootstrap(
            (values,), np.mean, n_resamples=statistics.BOOTSTRAP_RESAMPLES, method="BCa", vectorized=True,
            rng=np.random.default_rng(statistics.seed_for(sid, 1, 0)), batch=statistics.BOOTSTRAP_BATCH,
        ).confidence_interval  # fmt: skip
        row = details.table[details.table["submission_id"] == sid].iloc[0]
        assert row["ci_low"] == round(expected.low, 4) and row["ci_high"] == round(expected.high, 4)
        assert row["ci_low"] <= row["score"] <= row["ci_high"]
        assert row["n"] == values.size == 27
    # Tests between neighbours: SciPy's Wilcoxon on the paired public values, then Holm over the page's pairs.
    raw = []
    for a, b in itertools.pairwise(ids):
        x, y = _split_values(db, a, "emd", "public"), _split_values(db, b, "emd", "public")
        both = np.isfinite(x) & np.isfinite(y)
        raw.append(scipy_stats.wilcoxon(x[both], y[both]).pvalue)
    adjusted = holm(raw)
    assert list(details.table["p_next"][:-1]) == [round(p, 4) for p in adjusted]
    assert math.isnan(details.table["p_next"].iloc[-1])  # the last row has no next row on the page
    # pat and quinn are clearly apart; the two near-identical noisy methods are tied.
    assert table.loc["pat", "group"] == "1" and table.loc["quinn", "group"] == "2"
    assert table.loc["rae", "group"] == table.loc["sam", "group"] == "3–4"
    # Every figure that may leave the server has at most 4 decimals.
    for column in ("ci_low", "ci_high", "p_next", "norm_score", "norm_ci_low", "norm_ci_high", "norm_mass"):
        assert all(has_at_most_shown_decimals(v) for v in details.table[column].dropna()), column
    # Baselines get intervals too; the ground truth's is the single point 1.
    baselines = details.baselines.set_index("method")
    assert baselines.loc[BASELINES["ground_truth"], "ci_low"] == baselines.loc[BASELINES["ground_truth"],
                                                                                "ci_high"] == 1.0  # fmt: skip


def test_the_normalised_view_puts_the_baselines_at_zero_and_one(db, board_world):
    details = statistics.board_statistics(db, None, leaderboard(db, CID))
    assert details.normalisable
    baselines = details.baselines.set_index("method")
    assert baselines.loc[BASELINES["random"], "norm_score"] == 0.0
    assert baselines.loc[BASELINES["ground_truth"], "norm_score"] == 1.0
    random_score = baselines.loc[BASELINES["random"], "score"]
    for row in details.table.itertuples():
        assert row.norm_score == round((row.score - random_score) / (1.0 - random_score), 4)
        ceiling_mass = baselines.loc[BASELINES["ground_truth"], "mass"]
        random_mass = baselines.loc[BASELINES["random"], "mass"]
        assert row.norm_mass == round((row.mass - random_mass) / (ceiling_mass - random_mass), 4)


def test_result_links_only_where_the_viewer_may_open_the_result(db, board_world, people):
    board = leaderboard(db, CID)
    made = board_world["made"]
    for viewer, own in ((None, set()), (people["pat"], {made["pat"].id}), (people["oscar"], set())):
        details = statistics.board_statistics(db, viewer.id if viewer else None, board)
        linked = {int(i) for i in details.table["result_id"].dropna()}
        assert linked == own, viewer
        assert details.baselines["result_id"].notna().all()  # baselines are public
    for organiser in ("olivia", "root"):
        details = statistics.board_statistics(db, people[organiser].id, board)
        assert {int(i) for i in details.table["result_id"]} == {s.id for s in made.values()}


def test_method_cards_show_the_submitters_public_text_for_every_row_and_baseline(db, board_world):
    details = statistics.board_statistics(db, None, leaderboard(db, CID))
    cards = details.cards
    assert len(cards) == 4 + len(BASELINES)
    pat = next(c for c in cards.values() if c.username == "pat")
    assert pat.method == "Mask and a little noise" and pat.rank == 1 and not pat.is_baseline and pat.result_id is None
    baseline = next(c for c in cards.values() if c.method == BASELINES["sobel"])
    assert baseline.is_baseline and baseline.username is None and "Sobel" in baseline.description


def test_statistics_are_cached_by_submission_and_read_only_the_shown_rows(db, board_world, monkeypatch):
    board = leaderboard(db, CID, limit=2)  # a page of two rows
    reads: list[list[int]] = []
    real = evaluations_sql.per_sample_values

    def counting(conn, challenge_id, ids, names):
        reads.append(sorted(ids))
        return real(conn, challenge_id, ids, names)

    monkeypatch.setattr(evaluations_sql, "per_sample_values", counting)
    first = statistics.board_statistics(db, None, board)
    page_ids = sorted(int(i) for i in board.table["submission_id"])
    baseline_ids = sorted(int(i) for i in board.baselines["submission_id"])
    assert reads == [sorted(page_ids + baseline_ids)]  # the page's two rows and the baselines, nothing else
    again = statistics.board_statistics(db, None, board)
    assert len(reads) == 1, "the second view is served from the cache"
    assert again.table[["ci_low", "ci_high", "p_next"]].equals(first.table[["ci_low", "ci_high", "p_next"]])


def test_score_only_challenges_say_there_are_no_per_sample_values(db, stores, people):
    from exact.challenges import ChallengeForm, create_challenge
    from exact.scores import submit_score

    create_challenge(db, stores[0], people["olivia"].id, ChallengeForm("Typed", "Scores.", "typed"), {})
    submit_score(db, people["pat"].id, "typed", 0.5)
    details = statistics.board_statistics(db, None, leaderboard(db, "typed"))
    assert not details.available and details.note == statistics.SCORE_ONLY_NOTE
    assert "ci_low" not in details.table.columns and details.critical_difference is None
    assert not statistics.comparison_candidates(db, "typed").scored_on_server
    with pytest.raises(ValidationError, match="no per-sample values"):
        statistics.compare(db, None, "typed", 1, 2)


def test_critical_difference_over_the_boards_metrics(db, board_world):
    details = statistics.board_statistics(db, None, leaderboard(db, CID))
    cd = details.critical_difference
    assert cd.blocks == ("EMD score", "Importance mass accuracy", "ROC-AUC")  # the primary and the shown metrics
    assert len(cd.methods) == 4 + len(BASELINES)
    assert cd.cd == round(nemenyi_q(len(cd.methods)) * math.sqrt(len(cd.methods) * (len(cd.methods) + 1) / 18), 4)
    assert cd.methods[cd.average_ranks.index(min(cd.average_ranks))] == "Baseline · Ground truth (ceiling)"


def test_compare_aggregates_match_scipy_and_per_sample_pairs_follow_the_rules(db, board_world, people):
    made = board_world["made"]
    a, b = made["pat"].id, made["quinn"].id
    visitor = statistics.compare(db, None, CID, a, b)
    assert visitor.board == "public" and visitor.access.per_sample_splits == ("development",)
    emd = visitor.metrics.set_index("metric").loc["emd"]
    x, y = _split_values(db, a, "emd", "public"), _split_values(db, b, "emd", "public")
    both = np.isfinite(x) & np.isfinite(y)
    assert emd["n"] == both.sum()
    assert emd["difference"] == round(float(np.mean(x[both] - y[both])), 4)
    assert emd["p_value"] == round(scipy_stats.wilcoxon(x[both], y[both]).pvalue, 4)
    assert emd["win_rate"] == round(float(np.mean(x[both] > y[both]) + 0.5 * np.mean(x[both] == y[both])), 4)
    assert emd["ci_low"] <= emd["difference"] <= emd["ci_high"]
    for column in ("mean_a", "mean_b", "difference", "ci_low", "ci_high", "win_rate", "p_value"):
        assert all(has_at_most_shown_decimals(v) for v in visitor.metrics[column].dropna()), column
    # Per-sample pairs: development samples only, for everyone but the organisers.
    codes = np.asarray(_stored(db, a)["split_codes"])
    development = set(np.flatnonzero(codes == 0).tolist())
    assert set(visitor.per_sample["split"]) == {"development"}
    assert set(visitor.per_sample["sample"]) == development
    for viewer in ("pat", "oscar"):
        assert set(statistics.compare(db, people[viewer].id, CID, a, b).per_sample["split"]) == {"development"}
    organiser = statistics.compare(db, people["olivia"].id, CID, a, b)
    assert set(organiser.per_sample["split"]) == {"development", "public", "private"}
    assert len(organiser.per_sample) == 4 * len(codes)  # every metric of every sample (all scorable)


def test_compare_refuses_the_same_method_hidden_and_foreign_submissions(db, stores, board_world, people):
    made = board_world["made"]
    with pytest.raises(ValidationError, match="two different"):
        statistics.compare(db, None, CID, made["pat"].id, made["pat"].id)
    with pytest.raises(NotFound):
        statistics.compare(db, None, CID, made["pat"].id, 987654)
    moderate(db, people["olivia"].id, made["sam"].score_id, action="hidden", reason="Copied")
    with pytest.raises(NotFound, match="on the leaderboard"):
        statistics.compare(db, None, CID, made["pat"].id, made["sam"].id)
    with pytest.raises(NotFound):
        statistics.method_card(db, None, CID, made["sam"].id)
    other = make_gt_challenge(db, stores, people["olivia"].id, "gt-other", n_samples=600)
    foreign = submit(db, stores, people["pat"], "gt-other", other.masks, "Elsewhere")
    with pytest.raises(NotFound):
        statistics.compare(db, None, CID, made["pat"].id, foreign.id)  # another challenge's submission
    with pytest.raises(ValidationError, match="revealed"):
        statistics.compare(db, None, CID, made["pat"].id, made["quinn"].id, board="private")


def test_too_few_samples_give_no_figures(db, stores, people):
    statistics.clear_cache()
    prepared = make_gt_challenge(db, stores, people["olivia"].id, "gt-small", n_samples=100)  # 4-5 public samples
    pat = submit(db, stores, people["pat"], "gt-small", prepared.masks + 0.1, "Pat")
    quinn = submit(db, stores, people["quinn"], "gt-small", prepared.masks + 0.5, "Quinn")
    codes = np.asarray(_stored(db, pat.id)["split_codes"])
    assert (codes == 1).sum() < MIN_STATISTIC_SAMPLES
    details = statistics.board_statistics(db, None, leaderboard(db, "gt-small"))
    assert details.table["ci_low"].isna().all() and details.table["p_next"].isna().all()
    assert list(details.table["group"]) == ["1", "2"]
    comparison = statistics.compare(db, None, "gt-small", pat.id, quinn.id)
    assert comparison.metrics["p_value"].isna().all() and comparison.metrics["difference"].isna().all()


def test_the_final_board_compares_final_submissions_once_revealed(db, stores, people):
    from datetime import UTC, datetime, timedelta

    from db import competition as competition_sql

    statistics.clear_cache()
    prepared = make_gt_challenge(db, stores, people["olivia"].id, "gt-final", n_samples=600)
    masks, noise = prepared.masks, np.random.default_rng(1).random(prepared.masks.shape)
    best = submit(db, stores, people["pat"], "gt-final", masks + 0.1 * noise, "Best")
    probe = submit(db, stores, people["pat"], "gt-final", masks + 1.5 * noise, "Probe")
    quinn = submit(db, stores, people["quinn"], "gt-final", masks + 0.5 * noise, "Quinn")
    with db.transaction() as conn:
        rules = Rules(ends_at=datetime.now(UTC) - timedelta(minutes=1))
        competition_sql.save_rules(conn, "gt-final", {**{k: getattr(rules, k) for k in (
            "starts_at", "ends_at", "reveal", "daily_limit", "total_limit", "final_count", "metric_name",
            "higher_is_better", "min_value", "max_value")}})  # fmt: skip
    board = leaderboard(db, "gt-final")
    assert board.board == "private"
    details = statistics.board_statistics(db, None, board)
    assert details.split == "private" and details.table["ci_low"].notna().all()
    x = _split_values(db, best.id, "emd", "private")
    assert details.table.set_index("submission_id").loc[best.id, "n"] == np.isfinite(x).sum()
    final = statistics.compare(db, None, "gt-final", best.id, quinn.id)
    assert final.board == "private" and final.metrics["n"].iloc[0] == np.isfinite(x).sum()
    with pytest.raises(ValidationError, match="final submissions"):
        statistics.compare(db, None, "gt-final", probe.id, quinn.id)  # pat's probe does not count at the end
    public = statistics.compare(db, None, "gt-final", probe.id, quinn.id, board="public")
    assert public.board == "public"


def test_friedman_is_computed_when_methods_disagree_across_blocks():
    """Three methods on two blocks whose ranks are not all the same in every block: the Friedman test applies.
    Known answer (rank sums 2, 4, 6 over n = 2 blocks): chi2 = 12 / (n k (k + 1)) * sum(R^2) - 3 n (k + 1) = 4."""
    result = critical_difference(
        [[0.9, 0.8], [0.5, 0.4], [0.1, 0.2]],
        methods=["a", "b", "c"],
        blocks=["m1", "m2"],
        higher_is_better=[True, True],
    )
    assert result is not None and result.friedman_statistic == pytest.approx(4.0)
    assert result.friedman_p == pytest.approx(math.exp(-2.0))  # chi2 with 2 degrees of freedom: p = exp(-x / 2)
    tied = critical_difference(
        [[0.5, 0.5], [0.5, 0.5], [0.5, 0.5]],
        methods=["a", "b", "c"],
        blocks=["m1", "m2"],
        higher_is_better=[True, True],
    )
    assert tied is not None and tied.friedman_statistic is None  # every method tied in every block: no test to run


def test_two_submissions_of_one_participant_are_compared_only_by_organisers(db, stores, board_world, people):
    """Two uploads that differ on one sample would make the paired figures (win counts, the mean difference) that
    sample's own comparison: the self-differencing oracle the review found. Organisers may still compare them."""
    masks = board_world["prepared"].masks
    second = submit(db, stores, people["pat"], CID, masks + 0.2, "Pat's second method")
    first = board_world["made"]["pat"].id
    for viewer in (None, people["pat"].id, people["quinn"].id):
        with pytest.raises(PermissionDenied, match="same participant"):
            statistics.compare(db, viewer, CID, first, second.id)
    organiser = statistics.compare(db, people["olivia"].id, CID, first, second.id)
    assert organiser.access.is_organiser and not organiser.metrics.empty


def test_every_reference_row_is_described_under_both_protocols_and_for_model_baselines():
    from exact.evaluation_sets import BASELINES, PAPER_BASELINES
    from exact.statistics import baseline_description

    for labels in (BASELINES, PAPER_BASELINES):
        assert all(baseline_description(label) for label in labels.values())
    assert "along one axis" in baseline_description(PAPER_BASELINES["sobel"])
    assert baseline_description("Saliency · Convolutional network (8x8)") == (
        "Saliency attributions of the model to explain (Convolutional network (8x8)), computed on the server with "
        "Captum."
    )
    assert baseline_description("Someone's method") == ""

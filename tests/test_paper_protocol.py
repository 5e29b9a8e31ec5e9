"""The XAI-TRIS paper protocol: published parameters, generation, masks, EMD normaliser, baselines, scoring.

Expected values are typed from the paper's published configuration (Clark et al. 2024, braindatalab/xai-tris:
data/data_config_8by8.json, data/data_config.json, eval/eval_utils.py, xai/methods.py), or computed here with
scipy from hand-built patterns; none is read from exact.xaitris. The "exact" digests were taken before the paper
protocol was added, so Exact's own generation is unchanged byte for byte.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
from functools import cache

import numpy as np
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from exact import evaluation_sets, intake, metrics, scoring, splits
from exact.challenges import ChallengeForm, EvaluationChoice, create_challenge
from exact.errors import ValidationError
from exact.evaluation_sets import EvaluationSet
from exact.storage import UploadedFile
from exact.xaitris import (
    BenchmarkSpec,
    describe_protocol,
    emd_normaliser_name,
    generate,
    paper_alpha,
    precision_rule_name,
    read_npz,
)
from tests.conftest import make_user

# (size, scenario) -> (alpha with a white background, alpha with a correlated one), as published.
PUBLISHED_ALPHAS = {
    (8, "linear"): (0.18, 0.0125),
    (8, "multiplicative"): (0.7, 0.1),
    (8, "rigid"): (0.65, 0.2),
    (8, "xor"): (0.35, 0.15),
    (64, "linear"): (0.03, 0.02),
    (64, "multiplicative"): (0.65, 0.05),
    (64, "rigid"): (0.575, 0.375),
    (64, "xor"): (0.075, 0.03),
}
PUBLISHED_SAMPLES = {8: 10_000, 64: 40_000}
PUBLISHED_SPLITS = {8: (0.8, 0.1, 0.1), 64: (0.9, 0.05, 0.05)}
PUBLISHED_SIGMA = {8: 3.0, 64: 10.0}
COMBOS = [(size, scenario, background) for size, scenario in PUBLISHED_ALPHAS for background in ("white", "correlated")]

T_CELLS_8 = {(1, 1), (2, 1), (2, 2), (3, 1)}  # T at row 1, column 1
L_CELLS_8 = {(4, 5), (5, 5), (6, 5), (6, 6)}  # L at row 4, column 5
T = np.array([[1, 0], [1, 1], [1, 0]], dtype=float)
L = np.array([[1, 0], [1, 0], [1, 1]], dtype=float)


@cache
def paper_bench(scenario: str, size: int = 8, background: str = "white", n: int | None = None, seed: int = 0):
    return generate(BenchmarkSpec.paper(scenario, size, background, seed=seed, n_samples=n))


def splits_of(b):
    return (b.train, b.validation, b.test)


def cells(mask: np.ndarray) -> set[tuple[int, int]]:
    return {(int(r), int(c)) for r, c in zip(*np.nonzero(mask), strict=True)}


def union_64_by_hand() -> np.ndarray:
    """eval_utils.py's combined_mask_binary, rebuilt: T and L on the 8x8 cell grid, 8x8 blocks, sigma 1.5, >= 0.05."""
    cells8 = np.zeros((8, 8))
    for r, c in T_CELLS_8 | L_CELLS_8:
        cells8[r, c] = 1.0
    smoothed = ndimage.gaussian_filter(np.kron(cells8, np.ones((8, 8))), 1.5)
    return (smoothed >= 0.05).astype(float)


# --- published parameters ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "scenario", "background"), COMBOS)
def test_paper_spec_holds_every_published_parameter(size, scenario, background):
    spec = BenchmarkSpec.paper(scenario, size, background, seed=5)
    alpha = PUBLISHED_ALPHAS[(size, scenario)][background == "correlated"]
    assert paper_alpha(scenario, size, background) == alpha
    assert (spec.protocol, spec.alpha, spec.n_samples, tuple(spec.splits)) == (
        "paper",
        alpha,
        PUBLISHED_SAMPLES[size],
        PUBLISHED_SPLITS[size],
    )
    assert spec.background_sigma == PUBLISHED_SIGMA[size]
    spec.validate()  # the paper's own sample count is allowed at 64 x 64 too (40,000)


def test_exact_protocol_keeps_its_own_limits_and_a_missing_protocol_means_exact():
    with pytest.raises(ValidationError, match="2,000"):
        dataclasses.replace(BenchmarkSpec("linear", size=64), n_samples=40_000).validate()
    stored = BenchmarkSpec("xor", 8, "white", 0.3, 100, 1).as_dict()
    del stored["protocol"]  # JSON of a challenge stored before protocols existed
    assert BenchmarkSpec.from_dict(stored).protocol == "exact"
    assert emd_normaliser_name(stored) == "diagonal" and emd_normaliser_name(None) == "diagonal"
    with pytest.raises(ValidationError, match="Unknown protocol"):
        BenchmarkSpec.from_dict({**stored, "protocol": "folklore"})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"splits": (0.7, 0.15, 0.15)}, "80/10/10"),
        ({"smoothing_sigma": 4.0}, "sigma 3"),
        ({"n_samples": 10_002}, "10,000"),
        ({"n_samples": 201}, "even"),
    ],
)
def test_paper_deviations_are_refused(changes, message):
    spec = dataclasses.replace(BenchmarkSpec.paper("linear", 8, "correlated", seed=1), **changes)
    with pytest.raises(ValidationError, match=message):
        spec.validate()


@settings(max_examples=60, deadline=None)
@given(
    combo=st.sampled_from(COMBOS),
    seed=st.integers(0, 2**63 - 1),
    half=st.one_of(st.none(), st.integers(20, 5_000)),
)
def test_paper_specs_round_trip_through_json(combo, seed, half):
    size, scenario, background = combo
    spec = BenchmarkSpec.paper(scenario, size, background, seed=seed, n_samples=None if half is None else 2 * half)
    again = BenchmarkSpec.from_dict(json.loads(json.dumps(spec.as_dict())))
    assert again == dataclasses.replace(spec, splits=tuple(spec.splits)) and again.protocol == "paper"


@settings(max_examples=80, deadline=None)
@given(combo=st.sampled_from(COMBOS), alpha=st.floats(min_value=1e-6, max_value=1 - 1e-6))
def test_any_other_alpha_is_refused_under_the_paper_protocol(combo, alpha):
    size, scenario, background = combo
    published = PUBLISHED_ALPHAS[(size, scenario)][background == "correlated"]
    spec = dataclasses.replace(BenchmarkSpec.paper(scenario, size, background, seed=0), alpha=alpha)
    if alpha == published:
        spec.validate()
    else:
        with pytest.raises(ValidationError, match="published"):
            spec.validate()
        dataclasses.replace(spec, protocol="exact", n_samples=200).validate()  # fine under Exact's own settings


# --- generation ------------------------------------------------------------------------------------------------


def test_8x8_counts_and_class_balance_are_the_papers_80_10_10():
    b = paper_bench("linear")
    assert [len(s) for s in splits_of(b)] == [8_000, 1_000, 1_000]
    for split in splits_of(b):
        assert np.bincount(split.labels).tolist() == [len(split) // 2] * 2


def test_64x64_uses_90_5_5_with_a_small_count():
    b = paper_bench("xor", 64, "correlated", n=400)
    assert [len(s) for s in splits_of(b)] == [360, 20, 20]
    for split in splits_of(b):
        assert np.bincount(split.labels).tolist() == [len(split) // 2] * 2


@pytest.mark.parametrize(("size", "scenario", "background"), COMBOS)
def test_inputs_are_float16_scaled_to_max_abs_one_over_the_whole_set(size, scenario, background):
    b = paper_bench(scenario, size, background, n=80 if size == 64 else 400)
    everything = np.concatenate([s.inputs for s in splits_of(b)])
    assert everything.dtype == np.float16 and np.isfinite(everything).all()
    assert np.abs(everything).max() == np.float16(1.0)
    # The scale is one number for the whole set, so most samples stay below 1.
    assert (np.abs(everything).reshape(len(everything), -1).max(axis=1) < 1).mean() > 0.5
    public = read_npz(b.public_dataset_npz())
    assert public["x_train"].dtype == np.float16 and sorted(public) == [
        "masks_train", "masks_val", "x_test", "x_train", "x_val", "y_train", "y_val",
    ]  # fmt: skip


def test_same_paper_spec_gives_identical_bytes_and_another_seed_differs():
    spec = BenchmarkSpec.paper("rigid", 8, "correlated", seed=3, n_samples=200)
    a, b, c = generate(spec), generate(spec), generate(dataclasses.replace(spec, seed=4))
    for x, y in zip(splits_of(a), splits_of(b), strict=True):
        assert x.inputs.tobytes() == y.inputs.tobytes() and x.masks.tobytes() == y.masks.tobytes()
    assert a.train.inputs.tobytes() != c.train.inputs.tobytes()


@pytest.mark.parametrize("scenario", ["linear", "multiplicative", "xor"])
def test_fixed_scenarios_score_every_sample_against_the_union_mask_8x8(scenario):
    b = paper_bench(scenario, n=200)
    for split in splits_of(b):
        assert all(cells(mask) == T_CELLS_8 | L_CELLS_8 for mask in split.masks)
        assert set(np.unique(split.masks)) == {0.0, 1.0}


def test_64x64_union_mask_is_the_papers_thresholded_smoothed_pattern():
    expected = union_64_by_hand()
    # T and L each cover 4 blocks of 8 x 8 = 256 pixels; smoothing then thresholding widens each to ~430.
    assert 2 * 400 < expected.sum() < 2 * 460
    b = paper_bench("linear", 64, n=40)
    for split in splits_of(b):
        assert split.masks.shape == (len(split), 64, 64)
        assert all(np.array_equal(mask, expected) for mask in split.masks)


def test_rigid_8x8_masks_are_each_samples_rotated_tetromino():
    b = paper_bench("rigid", n=200)
    shapes = [{(np.rot90(p, k).shape, np.rot90(p, k).tobytes()) for k in range(4)} for p in (T, L)]
    for split in splits_of(b):
        for mask, label in zip(split.masks, split.labels, strict=True):
            rows, cols = np.nonzero(mask)
            crop = mask[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].astype(float)
            assert mask.sum() == 4 and (crop.shape, crop.tobytes()) in shapes[label]


def test_rigid_64x64_masks_are_the_smoothed_placed_pattern_thresholded():
    b = paper_bench("rigid", 64, "white", n=40)
    for split in (b.validation, b.test):
        for mask, label in zip(split.masks, split.labels, strict=True):
            matches = 0
            for k in range(4):
                block = np.rot90(np.kron((T, L)[label], np.ones((4, 4))), k)
                h, w = block.shape
                for r in range(64 - h + 1):
                    for c in range(64 - w + 1):
                        if not mask[r : r + h, c : c + w][block > 0].all():
                            continue
                        placed = np.zeros((64, 64))
                        placed[r : r + h, c : c + w] = block
                        matches += np.array_equal(ndimage.gaussian_filter(placed, 1.5) >= 0.05, mask > 0)
            assert matches == 1


def test_xor_has_the_four_sign_quarters():
    b = paper_bench("xor", n=400)
    t_rows, t_cols = zip(*sorted(T_CELLS_8), strict=True)
    l_rows, l_cols = zip(*sorted(L_CELLS_8), strict=True)
    for split in splits_of(b):
        x = split.inputs.astype(float)
        t_sign = np.sign(x[:, t_rows, t_cols].mean(axis=1))
        l_sign = np.sign(x[:, l_rows, l_cols].mean(axis=1))
        # alpha 0.35 on 8 pixels out of 64: the signal's sign dominates the T and L regions.
        agree = (t_sign == l_sign).astype(int)
        assert (agree == 1 - split.labels).mean() > 0.95


# --- EMD normaliser --------------------------------------------------------------------------------------------


def test_emd_normaliser_sqrt_2hw_versus_the_diagonal_for_a_one_pixel_move():
    masks = np.zeros((1, 8, 8))
    masks[0, 3, 3] = 1.0
    attributions = np.zeros((1, 8, 8))
    attributions[0, 3, 4] = -2.0  # all the mass one pixel to the right: EMD = 1
    paper = metrics.score_batch(attributions, masks, metrics=["emd"], emd_normaliser="sqrt_2hw")
    ours = metrics.score_batch(attributions, masks, metrics=["emd"], emd_normaliser="diagonal")
    default = metrics.score_batch(attributions, masks, metrics=["emd"])
    assert paper.per_sample["emd"][0] == pytest.approx(1 - 1 / math.sqrt(128), abs=1e-12)
    assert ours.per_sample["emd"][0] == pytest.approx(1 - 1 / math.sqrt(98), abs=1e-12)
    assert default.per_sample["emd"][0] == ours.per_sample["emd"][0]
    assert set(metrics.EMD_NORMALISERS) == {"diagonal", "sqrt_2hw"}
    with pytest.raises(ValueError, match="EMD normaliser"):
        metrics.score_batch(attributions, masks, emd_normaliser="max")


# --- precision rule ----------------------------------------------------------------------------------------------


def _precision(attributions, masks, rule):
    return metrics.score_batch(attributions, masks, metrics=["precision"], precision_rule=rule).per_sample["precision"]


def test_paper_precision_counts_only_non_zero_pixels():
    # An 8-pixel mask; a map with three non-zero pixels, two of them inside. The paper's code takes the top
    # min(8, 3) non-zero pixels: 2 hits of 8. Exact's own rule fills the other five places from the 61 tied zeros,
    # 6 of which are inside: (2 + 6 * 5 / 61) / 8.
    masks = np.zeros((1, 8, 8))
    masks[0, 1:5, 1:3] = 1.0
    attributions = np.zeros((1, 8, 8))
    attributions[0, 1, 1], attributions[0, 2, 2], attributions[0, 7, 7] = 0.5, -0.25, 0.75
    assert _precision(attributions, masks, "paper")[0] == pytest.approx(2 / 8, abs=1e-15)
    assert _precision(attributions, masks, "expected_ties")[0] == pytest.approx((2 + 6 * 5 / 61) / 8, abs=1e-15)
    default = metrics.score_batch(attributions, masks, metrics=["precision"]).per_sample["precision"][0]
    assert default == _precision(attributions, masks, "expected_ties")[0]
    empty = np.zeros((1, 8, 8))  # all zeros: not scorable under either rule
    assert np.isnan(_precision(empty, masks, "paper")[0]) and np.isnan(_precision(empty, masks, "expected_ties")[0])
    with pytest.raises(ValueError, match="precision rule"):
        metrics.score_batch(attributions, masks, precision_rule="top_k")
    assert set(metrics.PRECISION_RULES) == {"expected_ties", "paper"}


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 63), st.integers(2, 12))
def test_both_precision_rules_are_top_k_on_maps_without_ties_or_zeros(seed, k, size):
    # Distinct non-zero |a|: no tie to break and no zero to skip, so both rules are the plain top-k hit rate,
    # computed here by a full sort.
    rng = np.random.default_rng(seed)
    pixels = size * size
    k = min(k, pixels - 1)
    magnitudes = rng.permutation(pixels) + 1.0
    attributions = (magnitudes * rng.choice([-1.0, 1.0], pixels)).reshape(1, size, size)
    inside = np.zeros(pixels, bool)
    inside[rng.choice(pixels, k, replace=False)] = True
    masks = inside.reshape(1, size, size).astype(float)
    top = np.argsort(-magnitudes)[:k]
    expected = inside[top].sum() / k
    assert _precision(attributions, masks, "paper")[0] == pytest.approx(expected, abs=1e-15)
    assert _precision(attributions, masks, "expected_ties")[0] == pytest.approx(expected, abs=1e-15)


def test_paper_precision_with_ties_picks_whole_pixels():
    # Ties across the k-th place: the paper's code picks k of the tied pixels (a whole number of hits), Exact's own
    # rule their expected share. Mask: 4 pixels; |a| = 1 on 8 pixels, 2 of them inside, 0 elsewhere.
    masks = np.zeros((1, 4, 4))
    masks[0, 0, :] = 1.0
    attributions = np.zeros((1, 4, 4))
    attributions[0, 0, :2] = 1.0
    attributions[0, 2:, 1:4] = -1.0
    paper = _precision(attributions, masks, "paper")[0]
    assert paper * 4 in (0, 1, 2) and paper * 4 == round(paper * 4)
    assert _precision(attributions, masks, "expected_ties")[0] == pytest.approx(2 * 4 / 8 / 4, abs=1e-15)


def test_the_protocol_decides_the_precision_rule():
    assert precision_rule_name(BenchmarkSpec.paper("rigid", 8, "white", seed=1).as_dict()) == "paper"
    assert precision_rule_name(BenchmarkSpec("rigid", alpha=0.4).as_dict()) == "expected_ties"
    assert precision_rule_name(None) == "expected_ties"
    assert "non-zero" in describe_protocol(BenchmarkSpec.paper("xor", 8, "white", seed=1).as_dict())


def test_describe_protocol_says_which_protocol_in_one_sentence():
    paper = describe_protocol(BenchmarkSpec.paper("linear", 8, "white", seed=1).as_dict())
    assert paper.startswith("XAI-TRIS paper protocol (Clark et al. 2024)")
    assert "0.18" in paper and "80/10/10" in paper and "union masks" in paper and "√(2HW)" in paper
    exact = describe_protocol(BenchmarkSpec("rigid", alpha=0.4).as_dict())
    assert exact.startswith("Exact's own protocol") and "0.4" in exact and "70/15/15" in exact
    assert describe_protocol(None).startswith("Uploaded evaluation set")
    assert emd_normaliser_name(BenchmarkSpec.paper("rigid", 64, seed=1).as_dict()) == "sqrt_2hw"


# --- baselines -------------------------------------------------------------------------------------------------


def test_paper_baselines_are_the_papers_definitions():
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(6, 8, 8))
    masks = (rng.random((6, 8, 8)) > 0.8).astype(float)
    paper = evaluation_sets.baseline_attributions(inputs, masks, protocol="paper", seed=7)
    for i in range(6):
        np.testing.assert_array_equal(paper["sobel"][i], ndimage.sobel(inputs[i], axis=-1))
        np.testing.assert_array_equal(paper["laplace"][i], ndimage.laplace(inputs[i]))
    assert (paper["sobel"] < 0).any() and (paper["laplace"] < 0).any()  # signed, as published
    assert paper["random"].shape == masks.shape and np.abs(paper["random"]).max() <= 1.0
    assert (paper["random"] < 0).any() and (paper["random"] > 0).any()
    np.testing.assert_array_equal(paper["input"], inputs)
    np.testing.assert_array_equal(paper["ground_truth"], masks)
    again = evaluation_sets.baseline_attributions(inputs, masks, protocol="paper", seed=7)
    np.testing.assert_array_equal(again["random"], paper["random"])
    exact = evaluation_sets.baseline_attributions(inputs, masks, seed=7)
    assert (exact["sobel"] >= 0).all() and (exact["laplace"] >= 0).all()  # Exact's own: magnitudes
    assert list(paper) == list(exact) == list(evaluation_sets.BASELINES)


# --- Exact's own generation is unchanged -----------------------------------------------------------------------

# sha256 over (dtype, shape, bytes) of inputs, labels and masks of train, validation and test, computed before the
# paper protocol existed: BenchmarkSpec(scenario, size, background, alpha=0.3, n_samples, seed=12345).
EXACT_DIGESTS = {
    ("linear", 8, "white"): "6601ad966f59677a78a2919fd69bc7e5839bb9671b135dfb32d62d723d6c9ecb",
    ("linear", 8, "correlated"): "7798053b8fbb12ac52fee20a8d1d3defdd264af12f7977098e87b2791b3cce20",
    ("multiplicative", 8, "white"): "fc88ae7fe4243b9c7df00f1043e31bb22b4d2bf294383f59791a38102e7daafe",
    ("multiplicative", 8, "correlated"): "975caa670caf44b7fe829c375a40eb2f30224436db55ad877f878cb36dfb8e4c",
    ("rigid", 8, "white"): "b9ff2174aece4aa4ae2442decb8963324dab05f7191e12b5bb1db6fb72d54cdb",
    ("rigid", 8, "correlated"): "2185b84b5a1b38e014af3f8c786c6e6772f5042866eb859d61a08256b6156606",
    ("xor", 8, "white"): "f0258514686fd71b17bd6d5a93cce3a8de2961cf2e9bf0407434916006bafdfe",
    ("xor", 8, "correlated"): "6a5a571b65ac5321c4488ea4386eb1659918645531e64975ab81ed63dd7d439c",
    ("linear", 64, "correlated"): "a5ed34eece7a6657e48d7aa0d50c770c0bb74210d47b5cd051d0edc2086d13a7",
    ("rigid", 64, "white"): "7e8b61398f9142f068befe9d043d520c0bec8c512295eafac387bd1d99334967",
    ("xor", 64, "white"): "3d25402d12597fc78421942d5f5345f995361d9197a9aabfaf0cd4beb267e94b",
}


@pytest.mark.parametrize(("scenario", "size", "background"), list(EXACT_DIGESTS))
def test_exact_protocol_output_is_unchanged(scenario, size, background):
    n_samples = 40 if size == 8 else 20
    b = generate(BenchmarkSpec(scenario, size=size, background=background, alpha=0.3, n_samples=n_samples, seed=12345))
    digest = hashlib.sha256()
    for split in splits_of(b):
        for array in (split.inputs, split.labels, split.masks):
            digest.update(str(array.dtype).encode())
            digest.update(str(array.shape).encode())
            digest.update(np.ascontiguousarray(array).tobytes())
    assert digest.hexdigest() == EXACT_DIGESTS[(scenario, size, background)]


# --- a paper-protocol challenge is scored with the paper's normaliser and precision rule ------------------------------


def test_a_paper_challenge_scores_emd_and_precision_the_papers_way(db, storage, private_root):
    from exact.storage import MediaStorage

    private = MediaStorage(private_root, max_bytes=50 * 1024 * 1024)
    organiser = make_user(db, "olivia", staff=True)
    prepared = evaluation_sets.prepare_benchmark(BenchmarkSpec.paper("rigid", 8, "white", seed=11, n_samples=400))
    create_challenge(
        db,
        storage,
        organiser.id,
        ChallengeForm("Paper", "desc", "paper"),
        {},
        evaluation=EvaluationChoice(prepared=prepared, private=private, primary_metric="emd", shown_metrics=()),
    )
    evaluation = evaluation_sets.get_evaluation(db, "paper")
    assert (evaluation.protocol, evaluation.emd_normaliser, evaluation.n_samples) == ("paper", "sqrt_2hw", 40)
    assert scoring.score_waiting_baselines(db, storage, private, "paper") == len(evaluation_sets.BASELINES)
    masks = evaluation_sets.load_masks(evaluation, private)
    public = np.flatnonzero(evaluation_sets.load_split_codes(evaluation, private) == splits.SPLIT_CODES["public"])
    inputs = np.load(storage.resolve(evaluation.inputs_path), allow_pickle=False)["inputs"].astype(float)
    sobel = np.stack([ndimage.sobel(x, axis=-1) for x in inputs])  # computed here from the published inputs
    with db.connect() as conn:
        stored = conn.execute(
            sa.text("SELECT primary_value FROM exact_submission WHERE challenge_id = 'paper' AND method_name = :m"),
            {"m": evaluation_sets.PAPER_BASELINES["sobel"]},
        ).scalar_one()
    expected = {
        name: metrics.score_batch(sobel[public], masks[public], metrics=["emd"], emd_normaliser=name).summary["emd"]
        for name in ("sqrt_2hw", "diagonal")
    }
    assert stored == pytest.approx(expected["sqrt_2hw"].mean, abs=1e-12)
    assert abs(stored - expected["diagonal"].mean) > 1e-3
    # An evaluation set without a protocol key (stored before protocols) keeps the diagonal.
    before_protocols = {k: v for k, v in evaluation.benchmark.items() if k != "protocol"}
    legacy = dataclasses.replace(evaluation, benchmark=before_protocols)
    assert isinstance(legacy, EvaluationSet) and legacy.emd_normaliser == "diagonal" and legacy.protocol == "exact"
    # The precision rule is stored with the evaluation set; one from before the rules table keeps expected ties.
    assert evaluation.precision_rule == "paper"
    with db.transaction() as conn:
        conn.execute(sa.text("DELETE FROM exact_evaluation_rules WHERE challenge_id = 'paper'"))
    assert evaluation_sets.get_evaluation(db, "paper").precision_rule == "expected_ties"
    with db.transaction() as conn:
        conn.execute(sa.text("INSERT INTO exact_evaluation_rules VALUES ('paper', 'paper')"))

    # A participant's sparse maps (two non-zero pixels, both on the tetromino) are scored with the paper's
    # precision: 2 hits of k (k = the mask's pixels), where Exact's own rule would add a share of the tied zeros.
    participant = make_user(db, "pat")
    sparse = np.zeros(masks.shape)
    for i, mask in enumerate(masks):
        rows, cols = np.nonzero(mask)
        sparse[i, rows[:2], cols[:2]] = (1.0, -0.5)
    buffer = io.BytesIO()
    np.save(buffer, sparse)
    submission = intake.submit_attributions(
        db, storage, participant.id, "paper", UploadedFile("a.npy", buffer.getvalue()), method_name="Sparse"
    )
    assert scoring.process_submission(db, storage, private, submission.id).status == "done"
    stored = intake.get_submission_row(db, submission.id, with_result=True).result["metrics"]["precision"]
    k = (masks > 0).reshape(len(masks), -1).sum(axis=1)
    assert set(k) == {4}
    np.testing.assert_allclose(stored["per_sample"], 2 / k, atol=1e-15)

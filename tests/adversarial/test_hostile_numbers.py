"""Hostile numbers: property tests (hypothesis) for the score parser, the array validators, the array loader and the
metrics, with NaN/inf anywhere, wrong shapes and dtypes, all-zero maps and values at the float limits; and the
leaderboard with scores at the float limits.

Contract: a validator returns clean finite data or raises ValidationError (nothing else); the metrics of validated
data are in [0, 1] or NaN (not scorable), never raise, never overflow (RuntimeWarnings are errors here).
"""

from __future__ import annotations

import io
import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from exact import arrays, metrics
from exact.challenges import ChallengeForm, create_challenge
from exact.errors import ValidationError
from exact.scores import leaderboard, submit_score
from exact.validation import NUMBER_RE, clean_score
from tests.adversarial.conftest import ONE_MB
from tests.conftest import make_user
from tests.pages_helpers import run, scalar

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
FLOAT_MAX = np.finfo(np.float64).max
LIMITS = [0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, 1e-300, 1.0, -1.0, 1e300, FLOAT_MAX, -FLOAT_MAX]
n_, h_, w_ = 3, 2, 2  # small grids keep the exact EMD fast under hypothesis
SHAPE = (n_, h_, w_)


@pytest.fixture(autouse=True)
def runtime_warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        yield


# --- scores typed by a person -------------------------------------------------------------------------------------

SPECIAL_SCORES = [
    "nan",
    "NaN",
    "-nan",
    "+nan",
    "inf",
    "-inf",
    "+Infinity",
    "infinity",
    "1e309",
    "-1e309",
    "1e308",
    "-1e308",
    "5e-324",
    "1e-400",
    "0x10",
    "1_000",
    "1,5",
    "0.5.5",
    "--1",
    "1e",
    "e5",
    ".",
    "+",
    "",
    "   ",
    "\x00",
    "1\x00",
    "١٢٣",
    "𝟏",
    "½",
    "Ⅻ",
    "1e+00000000000000000000308",
    "0" * 5000 + "1",
    "9" * 400,
    "1" + "0" * 308,
]


@SETTINGS
@given(
    st.one_of(
        st.sampled_from(SPECIAL_SCORES),
        st.from_regex(r"\s*[+-]?(\d{0,320}(\.\d{0,20})?|\.\d{1,5})([eE][+-]?\d{1,4})?\s*", fullmatch=True),
        st.text(max_size=50),
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(min_value=-(10**300), max_value=10**300),
        st.none(),
        st.booleans(),
        st.binary(max_size=10),
        st.lists(st.integers(), max_size=2),
    )
)
def test_clean_score_returns_a_finite_float_or_refuses(value):
    try:
        result = clean_score(value)
    except ValidationError as exc:
        assert str(exc).startswith("Score"), str(exc)
        return
    assert type(result) is float and math.isfinite(result)
    if isinstance(value, str):
        assert NUMBER_RE.match(value.strip())
        assert result == float(value.strip())
    else:
        assert not isinstance(value, bool) and result == float(value)


def test_clean_score_refuses_integers_beyond_the_float_range():
    """A Python int too large for a float is a refusal like 1e309, not an OverflowError."""
    for value in (10**309, -(10**400), 2**1024):
        with pytest.raises(ValidationError, match="Score must be finite"):
            clean_score(value)


# --- attribution maps, masks and inputs -----------------------------------------------------------------------------

REAL_DTYPES = [np.float16, np.float32, np.float64, np.int8, np.int64, np.uint8, np.uint64, np.bool_]
OTHER_DTYPES = [np.complex64, np.complex128]
SHAPES = [
    SHAPE,
    (n_, h_ * w_),
    (n_, h_, w_ + 1),
    (n_ - 1, h_, w_),
    (n_,),
    (n_, h_, w_, 1),
    (0, h_, w_),
    (),
    (1, n_ * h_ * w_),
]


def _any_array():
    return st.tuples(st.sampled_from(REAL_DTYPES + OTHER_DTYPES), st.sampled_from(SHAPES)).flatmap(
        lambda spec: hnp.arrays(spec[0], spec[1])
    )


def _mask_arrays():
    return hnp.arrays(np.float64, SHAPE, elements=st.sampled_from([0.0, 1.0, 0.5, 5e-324, 1e308, 3.0]))


def _check_metrics(attributions: np.ndarray, masks: np.ndarray) -> None:
    result = metrics.score_batch(attributions, masks)
    flat = np.abs(attributions.reshape(n_, -1))
    inside = masks.reshape(n_, -1) > 0
    scorable = (flat.max(axis=1) > 0) & inside.any(axis=1)
    for name, values in result.per_sample.items():
        assert values.shape == (n_,) and values.dtype == np.float64
        finite = ~np.isnan(values)
        assert np.all((values[finite] >= -1e-12) & (values[finite] <= 1 + 1e-12)), (name, values)
        expected = scorable & (~inside.all(axis=1) if name == "auc" else True)
        assert np.array_equal(finite, expected), (name, values, scorable)
        summary = result.summary[name]
        assert summary.n_scored + summary.n_not_scorable == n_
        assert math.isnan(summary.mean) == (summary.n_scored == 0)
        assert math.isnan(summary.mean) or 0 - 1e-12 <= summary.mean <= 1 + 1e-12
    assert result.to_dict()  # JSON-safe: NaN turns into None


@SETTINGS
@given(_any_array(), _mask_arrays())
def test_validate_attributions_returns_clean_maps_or_refuses(raw, masks):
    try:
        clean = arrays.validate_attributions(raw, SHAPE)
    except ValidationError as exc:
        message = str(exc)
        reasons = [
            raw.shape not in (SHAPE, (n_, h_ * w_)),
            raw.dtype.kind == "c",
            raw.dtype.kind == "f" and not np.isfinite(raw.astype(np.float64)).all(),
        ]
        assert any(reasons), message
        assert message.startswith("Attributions"), message
        return
    assert raw.dtype.kind in "biuf" and raw.shape in (SHAPE, (n_, h_ * w_))
    assert clean.dtype == np.float64 and clean.shape == SHAPE and clean.flags.c_contiguous
    assert np.isfinite(clean).all()
    assert np.array_equal(clean, raw.astype(np.float64).reshape(SHAPE))
    assert not np.shares_memory(clean, raw)
    _check_metrics(clean, masks)


@SETTINGS
@given(hnp.arrays(np.float64, SHAPE, elements=st.sampled_from(LIMITS)), _mask_arrays())
def test_metrics_of_values_at_the_float_limits_stay_in_range(attributions, masks):
    _check_metrics(arrays.validate_attributions(attributions, SHAPE), arrays.validate_masks(masks))


@SETTINGS
@given(
    hnp.arrays(np.float64, SHAPE, elements=st.floats(-1, 1, allow_nan=False).filter(lambda v: v == 0 or abs(v) > 1e-6)),
    _mask_arrays(),
)
def test_metrics_do_not_change_when_maps_are_scaled_to_the_float_limit(attributions, masks):
    assume(np.abs(attributions).reshape(n_, -1).max(axis=1).min() > 0)
    small = metrics.score_batch(attributions, masks)
    huge = metrics.score_batch(attributions * 1e300, masks)
    for name in metrics.METRICS:
        np.testing.assert_allclose(small.per_sample[name], huge.per_sample[name], rtol=1e-9, atol=1e-12)


def test_all_zero_maps_are_not_scorable_rather_than_an_error():
    masks = np.zeros(SHAPE)
    masks[:, 0, 0] = 1
    result = metrics.score_batch(np.zeros(SHAPE), masks)
    for name in metrics.METRICS:
        assert np.isnan(result.per_sample[name]).all() and result.summary[name].n_scored == 0
        assert result.to_dict()["metrics"][name]["mean"] is None


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.array([{"a": 1}] * n_ * h_ * w_, dtype=object).reshape(SHAPE), "must be numeric"),
        (np.zeros(SHAPE, dtype=[("a", "<f8")]), "must be numeric"),
        (np.zeros(SHAPE, dtype="<U3"), "must be numeric"),
        (np.zeros(SHAPE, dtype="V8"), "must be numeric"),
        (np.zeros(SHAPE, dtype="M8[s]"), "must be numeric"),
        pytest.param(
            np.zeros(SHAPE, dtype=np.longdouble),
            "extended precision",
            id="longdouble",
            marks=pytest.mark.skipif(np.dtype(np.longdouble).itemsize <= 8, reason="long double is a double here"),
        ),
        (np.zeros(SHAPE, dtype=np.complex128), "not complex"),
    ],
)
def test_odd_dtypes_are_refused_with_a_reason(array, message):
    with pytest.raises(ValidationError, match=message):
        arrays.validate_attributions(array, SHAPE)
    with pytest.raises(ValidationError):
        arrays.validate_masks(array)
    with pytest.raises(ValidationError):
        arrays.validate_inputs(array)


@SETTINGS
@given(
    st.tuples(st.sampled_from(REAL_DTYPES + OTHER_DTYPES), st.sampled_from(SHAPES)).flatmap(
        lambda spec: hnp.arrays(spec[0], spec[1])
    )
)
def test_validate_masks_and_inputs_return_clean_arrays_or_refuse(raw):
    for validate, what in ((arrays.validate_masks, "Masks"), (arrays.validate_inputs, "Inputs")):
        try:
            clean = validate(raw)
        except ValidationError as exc:
            assert str(exc).startswith(what), str(exc)
            continue
        assert clean.ndim in (2, 3) and clean.shape[0] > 0 and clean.size > 0
        assert np.isfinite(clean.astype(np.float64)).all()
        if what == "Masks":
            assert clean.dtype == np.float64 and (clean >= 0).all() and clean.ndim == 3


# --- the loader under fuzzing ---------------------------------------------------------------------------------------


def _npy_header(descr: str, fortran: bool, shape: tuple) -> bytes:
    body = repr({"descr": descr, "fortran_order": fortran, "shape": shape}).encode("latin1")
    body += b" " * (63 - (len(body) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little") + body


@SETTINGS
@given(
    st.sampled_from(
        ["<f8", ">f8", "<f2", "|b1", "<i8", "|O", "<c16", "|V8", "<U4", "<f16", "[('a', '<f8')]", "garbage", "<M8[s]"]
    ),
    st.booleans(),
    st.lists(st.integers(min_value=-3, max_value=2**40), max_size=4).map(tuple),
    st.binary(max_size=256),
)
def test_the_loader_refuses_forged_npy_headers_before_reading(descr, fortran, shape, payload):
    data = _npy_header(descr, fortran, shape) + payload
    try:
        array = arrays.load_array_file(data, name="a.npy", max_bytes=4096)
    except ValidationError:
        return
    assert array.dtype.kind in "biufc" and array.nbytes <= 4096 and array.nbytes == len(payload)


@SETTINGS
@given(
    st.sampled_from(
        [
            b"",
            b"\x93NUMPY",
            b"\x93NUMPY\x01\x00",
            b"\x93NUMPY\x03\x00",
            b"PK\x03\x04",
            b"PK\x05\x06",
            b"\x80\x04",
            b"(lp0\n",
            b"\x89HDF",
        ]
    ),
    st.binary(max_size=300),
    st.sampled_from(["a.npy", "a.npz", "a.NPY", "a.txt"]),
)
def test_the_loader_never_fails_with_anything_but_a_validation_error(prefix, rest, name):
    try:
        array = arrays.load_array_file(prefix + rest, name=name, max_bytes=ONE_MB)
    except ValidationError:
        return
    assert isinstance(array, np.ndarray) and array.dtype.kind in "biufc"


def test_a_declared_shape_of_astronomic_size_is_refused_without_allocating():
    for shape in ((2**62, 2**62), (10**18,), (2**31, 2**31, 2**31)):
        data = _npy_header("<f8", False, shape) + b"\x00" * 8
        with pytest.raises(ValidationError, match="more than the limit"):
            arrays.load_array_file(data, name="a.npy", max_bytes=ONE_MB)
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(4))
    assert arrays.load_array_file(buffer.getvalue(), name="a.npy", max_bytes=ONE_MB).shape == (4,)


# --- scores at the float limits on the leaderboard ----------------------------------------------------------------


def test_scores_past_the_accepted_magnitude_are_refused_clearly(db, storage, cast):
    create_challenge(db, storage, cast.owner.id, ChallengeForm("Limits", "d", "limits"), {})
    for score in ("1.7976931348623157e308", "-1e308", "1e301"):
        with pytest.raises(ValidationError, match="between -1e\\+300 and 1e\\+300"):
            submit_score(db, cast.participant.id, "limits", score)
    assert scalar(db, "SELECT count(*) FROM api_score") == 0


def test_scores_at_the_accepted_limits_keep_the_leaderboard_finite(db, storage, cast):
    create_challenge(db, storage, cast.owner.id, ChallengeForm("Limits", "d", "limits"), {})
    for index, score in enumerate(["1e300", "-1e300", "5e-324", "0", "-0"]):
        submit_score(db, make_user(db, f"limit{index}").id, "limits", score)
    board = leaderboard(db, "limits")
    assert list(board.table["score"])[:2] == [1e300, 5e-324]
    assert list(board.table["rank"]) == [1, 2, 3, 3, 5]
    histogram = board.histogram
    assert histogram["count"].sum() == 5
    assert np.isfinite(histogram[["bin_start", "bin_end"]].to_numpy()).all(), histogram
    assert (histogram["bin_end"] >= histogram["bin_start"]).all()


def test_the_leaderboard_page_survives_scores_at_the_accepted_limits(app, db, storage, cast):
    create_challenge(db, storage, cast.owner.id, ChallengeForm("Limits", "d", "limits"), {})
    submit_score(db, cast.participant.id, "limits", "1e300")
    submit_score(db, cast.other.id, "limits", "-1e300")
    at = app()
    at.query_params["challenge"] = "limits"
    run(at)
    run(at.switch_page("app_pages/leaderboard.py"))
    assert not at.error, [e.value for e in at.error]
    assert len(at.get("plotly_chart")) == 3

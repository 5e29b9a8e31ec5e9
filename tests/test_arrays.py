"""Safe loading and validation of uploaded arrays: round trips, hostile files (pickles, bombs, odd archives),
and property tests over shapes, dtypes and NaN/inf placements."""

from __future__ import annotations

import io
import pickle
import struct
import time
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from exact.arrays import (
    MAX_NPZ_ENTRIES,
    evaluation_set_from_arrays,
    load_array_file,
    load_attributions,
    load_evaluation_files,
    load_evaluation_set,
    validate_attributions,
    validate_inputs,
    validate_labels,
    validate_masks,
)
from exact.errors import ValidationError
from exact.metrics import score_batch

MB = 1024 * 1024
PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

NUMERIC_DTYPES = [
    "bool",
    "int8",
    "uint8",
    "int16",
    "uint16",
    ">i4",
    "<i4",
    "uint32",
    "int64",
    ">u8",
    "float16",
    "float32",
    ">f4",
    "float64",
    ">f8",
    "complex64",
    "complex128",
]
REAL_DTYPES = [d for d in NUMERIC_DTYPES if not d.startswith("complex")]


def npy_bytes(array: np.ndarray, *, allow_pickle: bool = False) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def npz_bytes(compressed: bool = True, **arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
    return buffer.getvalue()


def zip_bytes(entries: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def patch_central_directory(data: bytes, *, offset: int, fmt: str, value: int) -> bytes:
    """Overwrite one field of the (first) central-directory record, e.g. the declared uncompressed size."""
    start = data.index(b"PK\x01\x02")
    patched = bytearray(data)
    struct.pack_into(fmt, patched, start + offset, value)
    return bytes(patched)


CD_FLAGS = 8  # offset of the general-purpose flags in a central-directory record ("<H")
CD_UNCOMPRESSED_SIZE = 24  # offset of the uncompressed size ("<I")

UNPICKLED: list[str] = []


def _record_unpickling(tag: str) -> None:
    UNPICKLED.append(tag)


class Trap:
    """Unpickling this calls _record_unpickling: a loader that unpickles would leave a trace."""

    def __reduce__(self):
        return (_record_unpickling, ("trap",))


def refuse(data: bytes, name: str, match: str, **kwargs) -> str:
    kwargs.setdefault("max_bytes", MB)
    with pytest.raises(ValidationError, match=match) as info:
        load_array_file(data, name=name, **kwargs)
    return str(info.value)


# ---------------------------------------------------------------------------------------------------------------
# Round trips


@PROPS
@given(
    array=hnp.arrays(
        dtype=st.sampled_from(NUMERIC_DTYPES),
        shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=6),
    ),
    fortran=st.booleans(),
)
def test_npy_round_trip_any_numeric_dtype_and_shape(array, fortran):
    if fortran:
        array = np.asfortranarray(array)
    loaded = load_array_file(npy_bytes(array), name="upload.NPY", max_bytes=MB)
    assert loaded.dtype == array.dtype and loaded.shape == array.shape
    np.testing.assert_array_equal(loaded, array)
    assert loaded.flags.writeable


@PROPS
@given(
    array=hnp.arrays(dtype=st.sampled_from(NUMERIC_DTYPES), shape=hnp.array_shapes(min_dims=1, max_dims=3)),
    compressed=st.booleans(),
)
def test_npz_round_trip_by_key(array, compressed):
    data = npz_bytes(compressed, attributions=array, other=np.arange(3))
    loaded = load_array_file(data, name="sub.npz", max_bytes=MB, key="attributions")
    assert loaded.dtype == array.dtype
    np.testing.assert_array_equal(loaded, array)


def test_npz_single_array_loads_without_key():
    loaded = load_array_file(npz_bytes(arr_0=np.eye(3)), name="x.npz", max_bytes=MB)
    np.testing.assert_array_equal(loaded, np.eye(3))


# ---------------------------------------------------------------------------------------------------------------
# Pickles and objects: never loaded, clear messages


@pytest.mark.parametrize("protocol", range(0, pickle.HIGHEST_PROTOCOL + 1))
def test_a_pickle_renamed_npy_is_not_an_array_file_and_is_never_unpickled(protocol):
    UNPICKLED.clear()
    payload = pickle.dumps([Trap(), np.ones(3)], protocol=protocol)
    message = refuse(payload, "attributions.npy", "not a NumPy array file")
    assert "pickle" in message
    refuse(payload, "attributions.npz", "not a NumPy array file")
    assert UNPICKLED == []


def test_object_arrays_are_refused_in_npy_and_npz():
    UNPICKLED.clear()
    objects = np.array([Trap(), 1], dtype=object)
    refuse(npy_bytes(objects, allow_pickle=True), "x.npy", "Python objects")
    refuse(npz_bytes(attributions=objects), "x.npz", "Python objects", key="attributions")
    assert UNPICKLED == []


def test_a_pytorch_style_zip_with_pickles_is_refused():
    data = zip_bytes({"archive/data.pkl": pickle.dumps({"w": 1}), "archive/version": b"3"})
    refuse(data, "model.npz", "pickled data")
    refuse(data, "model.npy", "pickled data")


@pytest.mark.parametrize(
    ("array", "match"),
    [
        (np.zeros(3, dtype=[("a", "f8"), ("b", "i4")]), "structured"),
        (np.array(["a", "bc"]), "not numeric"),
        (np.array([b"a"]), "not numeric"),
        (np.array(["2020-01-01"], dtype="datetime64[D]"), "not numeric"),
        (np.zeros(2, dtype="V8"), "structured"),
    ],
)
def test_non_numeric_dtypes_are_refused(array, match):
    refuse(npy_bytes(array), "x.npy", match)


# ---------------------------------------------------------------------------------------------------------------
# Sizes and bombs


def test_npy_header_size_is_checked_before_the_data_is_read():
    # A header claiming 8 TB of float64 followed by no data at all: refused on the header alone.
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)})
    forged = buffer.getvalue()
    message = refuse(forged, "huge.npy", "more than the limit")
    assert "(1000000, 1000000)" in message


def test_npy_at_the_size_limit_loads_and_one_byte_less_refuses():
    array = np.zeros(100, dtype=np.float32)  # 400 bytes of data
    assert load_array_file(npy_bytes(array), name="x.npy", max_bytes=400).shape == (100,)
    refuse(npy_bytes(array), "x.npy", "more than the limit", max_bytes=399)


def test_truncated_and_padded_npy_are_refused():
    data = npy_bytes(np.arange(10.0))
    refuse(data[:-1], "x.npy", "damaged")
    refuse(data + b"\0", "x.npy", "damaged")
    refuse(data[:9], "x.npy", "not a NumPy array file|malformed")


def test_malformed_npy_header_is_refused():
    data = npy_bytes(np.arange(3.0))
    refuse(data.replace(b"'descr'", b"'dexcr'"), "x.npy", "malformed")
    refuse(data.replace(b"'<f8'", b"'<q9'"), "x.npy", "malformed")


def test_deflate_bomb_is_refused_from_the_directory_before_decompressing():
    bomb = zip_bytes({"attributions.npy": npy_bytes(np.zeros(20 * MB // 8))})
    assert len(bomb) < MB // 20
    started = time.perf_counter()
    message = refuse(bomb, "bomb.npz", "declares .* of uncompressed data", max_bytes=MB, key="attributions")
    assert "nothing was decompressed" in message
    assert time.perf_counter() - started < 0.5


def test_declared_size_is_the_sum_over_all_entries():
    half = npy_bytes(np.zeros(MB // 8 // 2 + 64))
    data = zip_bytes({"a.npy": half, "b.npy": half})
    refuse(data, "two.npz", "declares", max_bytes=MB, key="a")


def test_forged_huge_declared_size_is_refused_without_decompressing():
    data = zip_bytes({"attributions.npy": npy_bytes(np.zeros(10))})
    forged = patch_central_directory(data, offset=CD_UNCOMPRESSED_SIZE, fmt="<I", value=0xFFFFFFF0)
    refuse(forged, "x.npz", "declares", key="attributions")


def test_entry_larger_than_declared_is_refused_not_read_past_its_size():
    # The stream inflates to more than the directory says: reading stops at the declared size and fails.
    real = npy_bytes(np.zeros(1000))
    data = zip_bytes({"attributions.npy": real})
    forged = patch_central_directory(data, offset=CD_UNCOMPRESSED_SIZE, fmt="<I", value=len(real) - 800)
    refuse(forged, "x.npz", "damaged|malformed", key="attributions")


def test_stream_longer_than_its_consistent_declared_size_fails_the_crc_check():
    # Header and directory agree on 100 float64, but the compressed stream holds 10,000: reading stops at the
    # declared size and zipfile's CRC check (over the whole stream's data) refuses it.
    real = npy_bytes(np.ones(100))
    header_length = len(real) - 800
    padded = real + np.ones(9_900).tobytes()
    data = zip_bytes({"attributions.npy": padded})
    forged = patch_central_directory(data, offset=CD_UNCOMPRESSED_SIZE, fmt="<I", value=header_length + 800)
    refuse(forged, "x.npz", "damaged .*CRC", key="attributions")


def test_corrupted_compressed_data_is_refused():
    data = bytearray(npz_bytes(attributions=np.arange(1000.0)))
    middle = data.index(b"attributions.npy") + 200
    data[middle : middle + 50] = b"\xff" * 50
    refuse(bytes(data), "x.npz", "damaged|malformed|not a valid", key="attributions")


# ---------------------------------------------------------------------------------------------------------------
# Odd archives


@pytest.mark.parametrize(
    "member",
    [
        "../attributions.npy",
        "a/attributions.npy",
        "/attributions.npy",
        ".attributions.npy",
        "attributions",
        "attributions.txt",
        "attri butions.npy",
        "attributions.npy/",
        "über.npy",
        "a\\b.npy",
    ],
)
def test_odd_member_names_are_refused(member):
    data = zip_bytes({member: npy_bytes(np.zeros(3))})
    refuse(data, "x.npz", "entry named", key="attributions")


def test_duplicate_members_are_refused():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive, pytest.warns(UserWarning):
        archive.writestr("attributions.npy", npy_bytes(np.zeros(3)))
        archive.writestr("attributions.npy", npy_bytes(np.ones(3)))
    refuse(buffer.getvalue(), "x.npz", "twice", key="attributions")


def test_encrypted_and_unusual_compression_are_refused():
    data = zip_bytes({"attributions.npy": npy_bytes(np.zeros(3))})
    refuse(patch_central_directory(data, offset=CD_FLAGS, fmt="<H", value=1), "x.npz", "encrypted")
    lzma = zip_bytes({"attributions.npy": npy_bytes(np.zeros(3))}, compression=zipfile.ZIP_LZMA)
    refuse(lzma, "x.npz", "compression")


def test_too_many_entries_and_empty_archives_are_refused():
    many = zip_bytes({f"a{i}.npy": npy_bytes(np.zeros(1)) for i in range(MAX_NPZ_ENTRIES + 1)})
    refuse(many, "x.npz", "entries")
    refuse(zip_bytes({}), "x.npz", "empty archive")


def test_a_huge_zip_directory_is_refused_before_it_is_parsed(monkeypatch):
    # 5,000 empty entries: the end record gives it away; zipfile must not even be asked to read the directory.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for i in range(5_000):
            archive.writestr(f"a{i}.npy", b"")
    data = buffer.getvalue()

    def no_parsing(*args, **kwargs):
        raise AssertionError("zipfile.ZipFile was called")

    monkeypatch.setattr(zipfile, "ZipFile", no_parsing)
    refuse(data, "x.npz", "5000 entries")


def test_missing_key_and_ambiguous_archive_messages_name_what_is_there():
    data = npz_bytes(x_test=np.zeros(3), y_test=np.zeros(3))
    message = refuse(data, "x.npz", "no array named 'attributions'", key="attributions")
    assert "x_test, y_test" in message
    refuse(data, "x.npz", "holds 2 arrays")


@pytest.mark.parametrize(
    ("data", "name", "match"),
    [
        (b"", "x.npy", "is empty"),
        (b"hello world", "x.npy", "not a NumPy array file"),
        (b"col1,col2\n1,2\n", "x.npz", "not a NumPy .npz archive"),
        (npy_bytes(np.zeros(2)), "x.npz", "rename it to .npy"),
        (npz_bytes(a=np.zeros(2)), "x.npy", "rename it to .npz"),
        (npy_bytes(np.zeros(2)), "x.csv", "must be a .npy or .npz"),
        (b"PK\x03\x04garbage", "x.npz", "not a valid .npz"),
    ],
)
def test_wrong_kinds_of_files(data, name, match):
    refuse(data, name, match)


# ---------------------------------------------------------------------------------------------------------------
# Fuzzing: whatever the bytes, the loader returns an array or raises ValidationError, nothing else


def load_or_refuse(data: bytes, name: str, key: str | None = None) -> None:
    try:
        array = load_array_file(data, name=name, max_bytes=MB, key=key)
    except ValidationError:
        return
    assert isinstance(array, np.ndarray)
    assert array.dtype.kind in "biufc" and not array.dtype.hasobject
    assert array.nbytes <= MB


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=600), ext=st.sampled_from([".npy", ".npz"]))
def test_random_bytes_never_escape_as_another_exception(data, ext):
    load_or_refuse(data, "upload" + ext)
    load_or_refuse(b"\x93NUMPY" + data, "upload.npy")
    load_or_refuse(b"PK\x03\x04" + data, "upload.npz")


VALID_FILES = {
    "upload.npy": npy_bytes(np.arange(24, dtype=">f4").reshape(2, 3, 4)),
    "upload.npz": npz_bytes(attributions=np.arange(12.0).reshape(3, 4), other=np.eye(2, dtype=np.int16)),
    "stored.npz": npz_bytes(False, attributions=np.arange(12.0).reshape(3, 4)),
}


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(sorted(VALID_FILES)),
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=4),
    cut=st.none() | st.integers(0, 10_000),
)
# Found by CI: a zeroed byte in the central directory gives an entry with an empty name, on which
# ZipInfo.is_dir() raised IndexError.
@example(name="stored.npz", flips=[(5572, 0)], cut=None)
def test_damaged_valid_files_never_escape_as_another_exception(name, flips, cut):
    data = bytearray(VALID_FILES[name])
    for position, value in flips:
        data[position % len(data)] = value
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    load_or_refuse(bytes(data), name, key="attributions" if name.endswith(".npz") else None)


# ---------------------------------------------------------------------------------------------------------------
# Validators


def test_attribution_shape_message_is_exact():
    with pytest.raises(ValidationError) as info:
        validate_attributions(np.zeros((199, 8, 8)), (200, 8, 8))
    assert str(info.value) == "Attributions: expected 200 samples of 8×8 (or 200×64), got (199, 8, 8)."


@PROPS
@given(
    n=st.integers(1, 5),
    h=st.integers(1, 6),
    w=st.integers(1, 6),
    flat=st.booleans(),
    dtype=st.sampled_from(REAL_DTYPES),
    data=st.data(),
)
def test_attributions_of_any_real_dtype_become_float64_n_h_w(n, h, w, flat, dtype, data):
    shape = (n, h * w) if flat else (n, h, w)
    array = data.draw(hnp.arrays(dtype=dtype, shape=shape, elements={"allow_nan": False, "allow_infinity": False}))
    out = validate_attributions(array, (n, h, w))
    assert out.dtype == np.float64 and out.shape == (n, h, w)
    np.testing.assert_array_equal(out.reshape(shape), array.astype(np.float64))
    assert not np.shares_memory(out, array)


@PROPS
@given(
    n=st.integers(1, 4),
    h=st.integers(1, 5),
    w=st.integers(1, 5),
    dtype=st.sampled_from(["float16", "float32", "float64"]),
    data=st.data(),
)
def test_nan_and_inf_are_counted_wherever_they_are(n, h, w, dtype, data):
    size = n * h * w
    positions = data.draw(st.lists(st.integers(0, size - 1), min_size=1, max_size=size, unique=True))
    kinds = data.draw(
        st.lists(st.sampled_from(["nan", "inf", "-inf"]), min_size=len(positions), max_size=len(positions))
    )
    array = np.ones(size, dtype=dtype)
    for position, kind in zip(positions, kinds, strict=True):
        array[position] = float(kind)
    n_nan = kinds.count("nan")
    n_inf = len(kinds) - n_nan
    first_sample = min(positions) // (h * w)
    with pytest.raises(ValidationError) as info:
        validate_attributions(array.reshape(n, h, w), (n, h, w))
    message = str(info.value)
    if n_nan:
        assert f"{n_nan} NaN value" in message
    else:
        assert "NaN" not in message
    if n_inf:
        assert f"{n_inf} infinite value" in message
    else:
        assert "infinite" not in message
    assert f"first in sample {first_sample})" in message
    with pytest.raises(ValidationError, match="finite"):
        validate_masks(np.abs(array).reshape(n, h, w))


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
def test_complex_attributions_and_masks_are_refused(dtype):
    with pytest.raises(ValidationError, match="not complex"):
        validate_attributions(np.zeros((2, 2, 2), dtype=dtype), (2, 2, 2))
    with pytest.raises(ValidationError, match="not complex"):
        validate_masks(np.zeros((2, 2, 2), dtype=dtype))


def test_extended_precision_and_non_numeric_are_refused():
    with pytest.raises(ValidationError, match="extended precision"):
        validate_attributions(np.zeros((1, 2, 2), dtype=np.longdouble), (1, 2, 2))
    with pytest.raises(ValidationError, match="numeric"):
        validate_attributions(np.array([[["a"]]]), (1, 1, 1))
    with pytest.raises(ValidationError, match="numeric"):
        validate_masks(np.zeros((1, 1, 1), dtype=object))


def test_near_float_limit_and_denormal_values_are_kept_exactly_and_score_finitely():
    values = np.array([1e308, -1e308, np.finfo(np.float64).max, 5e-324, -5e-324, 2.2250738585072014e-308, 0, 0.0])
    attributions = validate_attributions(np.tile(values, (3, 1)), (3, 2, 4))
    np.testing.assert_array_equal(attributions.reshape(3, 8)[0], values)
    masks = validate_masks(np.tile(np.array([[1e308, 0, 0, 5e-324], [0, 0, 0, 0]]), (3, 1, 1)))
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow to 0 is harmless
        result = score_batch(attributions, masks)
    for name in ("emd", "mass", "precision", "auc"):
        assert np.isfinite(result.per_sample[name]).all(), name
    # |a| in the mask: 1e308 (pixel 0) and 5e-324 (pixel 3) of a total 2e308 + max + ...: a third-ish, not NaN.
    assert 0.0 < result.per_sample["mass"][0] < 1.0


def test_float16_and_float32_extremes_convert_exactly():
    for dtype in (np.float16, np.float32):
        info = np.finfo(dtype)
        array = np.array([[[info.max, -info.max], [info.smallest_subnormal, info.tiny]]], dtype=dtype)
        out = validate_attributions(array, (1, 2, 2))
        assert out.dtype == np.float64
        np.testing.assert_array_equal(out, array.astype(np.float64))


def test_all_zero_maps_are_valid_and_not_scorable():
    attributions = validate_attributions(np.zeros((2, 3, 3), dtype=np.int8), (2, 3, 3))
    masks = validate_masks(np.ones((2, 3, 3), dtype=bool))
    result = score_batch(attributions, masks)
    for name in result.metrics:
        assert result.summary[name].n_not_scorable == 2


@PROPS
@given(
    shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4),
    n=st.integers(0, 4),
    h=st.integers(1, 4),
    w=st.integers(1, 4),
)
def test_any_wrong_attribution_shape_is_refused_with_the_expected_shape_in_the_message(shape, n, h, w):
    assume(shape not in ((n, h, w), (n, h * w)))
    with pytest.raises(ValidationError) as info:
        validate_attributions(np.zeros(shape), (n, h, w))
    assert f"expected {n} samples of {h}×{w} (or {n}×{h * w})" in str(info.value)
    assert f"got {shape}." in str(info.value)


def test_masks_validation():
    assert validate_masks(np.ones((2, 3, 3), dtype=np.uint8)).dtype == np.float64
    with pytest.raises(ValidationError, match=r"shape \(n, H, W\); got shape \(2, 9\)"):
        validate_masks(np.ones((2, 9)))
    with pytest.raises(ValidationError, match="expected 3 samples, got 2"):
        validate_masks(np.ones((2, 3, 3)), 3)
    with pytest.raises(ValidationError, match="no samples"):
        validate_masks(np.ones((0, 3, 3)))
    with pytest.raises(ValidationError, match="no pixels"):
        validate_masks(np.ones((2, 0, 3)))
    negative = np.ones((4, 2, 2))
    negative[2, 0, 1] = -0.5
    negative[3, 1, 1] = -1e-300
    with pytest.raises(ValidationError, match=r"2 negative values \(first in sample 2\)"):
        validate_masks(negative)
    with pytest.raises(ValidationError, match="too large"):
        validate_masks(np.ones((1, 65, 64)))
    assert validate_masks(np.ones((1, 65, 64)), max_pixels=65 * 64).shape == (1, 65, 64)


def test_labels_validation():
    np.testing.assert_array_equal(validate_labels(np.array([0, 1, 1], dtype=np.uint8), 3), [0, 1, 1])
    assert validate_labels(np.array([0, 1, 1], dtype=np.uint8), 3).dtype == np.int64
    np.testing.assert_array_equal(validate_labels(np.array([0.0, 2.0]), 2), [0, 2])
    with pytest.raises(ValidationError, match="whole numbers"):
        validate_labels(np.array([0.0, 0.5]), 2)
    with pytest.raises(ValidationError, match="finite"):
        validate_labels(np.array([0.0, np.nan]), 2)
    with pytest.raises(ValidationError, match="negative"):
        validate_labels(np.array([0, -1]), 2)
    with pytest.raises(ValidationError, match=r"expected shape \(3,\)"):
        validate_labels(np.array([0, 1]), 3)
    with pytest.raises(ValidationError, match="integers"):
        validate_labels(np.array(["a", "b"]), 2)
    with pytest.raises(ValidationError, match="2\\*\\*63"):
        validate_labels(np.array([2**64 - 1], dtype=np.uint64), 1)


def test_inputs_validation():
    inputs = np.ones((2, 4, 4), dtype=">f4")
    out = validate_inputs(inputs)
    assert out.dtype == np.float32 and out.dtype.isnative
    assert validate_inputs(np.ones((2, 16), dtype=np.int16)).dtype == np.float64
    with pytest.raises(ValidationError, match="shape"):
        validate_inputs(np.ones(5))
    with pytest.raises(ValidationError, match="1 infinite value"):
        validate_inputs(np.array([[1.0, np.inf]]))


# ---------------------------------------------------------------------------------------------------------------
# Evaluation sets and submissions


def make_set(n: int = 6, h: int = 4, w: int = 4) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "inputs": rng.random((n, h, w)).astype(np.float32),
        "labels": np.arange(n) % 2,
        "masks": (rng.random((n, h, w)) < 0.3).astype(np.float64),
    }


def test_load_evaluation_set_from_one_npz():
    arrays = make_set()
    loaded = load_evaluation_set(npz_bytes(**arrays), name="truth.npz", max_bytes=MB)
    assert loaded.n_samples == 6 and loaded.grid == (4, 4)
    np.testing.assert_array_equal(loaded.masks, arrays["masks"])
    np.testing.assert_array_equal(loaded.labels, arrays["labels"])
    assert not loaded.masks.flags.writeable


def test_load_evaluation_set_refusals():
    arrays = make_set()
    without_labels = {k: v for k, v in arrays.items() if k != "labels"}
    with pytest.raises(ValidationError, match="no array named 'labels'"):
        load_evaluation_set(npz_bytes(**without_labels), name="truth.npz", max_bytes=MB)
    with pytest.raises(ValidationError, match=r"Labels: expected shape \(6,\)"):
        load_evaluation_set(npz_bytes(**{**arrays, "labels": np.zeros(5, int)}), name="t.npz", max_bytes=MB)
    with pytest.raises(ValidationError, match=r"Inputs: expected 6 samples of 4×4"):
        load_evaluation_set(npz_bytes(**{**arrays, "inputs": np.zeros((6, 15))}), name="t.npz", max_bytes=MB)
    with pytest.raises(ValidationError, match=r"must be a \.npz"):
        load_evaluation_set(npy_bytes(arrays["masks"]), name="t.npy", max_bytes=MB)


def test_load_evaluation_files_from_three_npy_uploads():
    arrays = make_set()
    files = {key: (f"{key}.npy", npy_bytes(value)) for key, value in arrays.items()}
    files["inputs"] = ("inputs.npy", npy_bytes(arrays["inputs"].reshape(6, 16)))
    loaded = load_evaluation_files(files, max_bytes=MB)
    assert loaded.inputs.shape == (6, 16)
    with pytest.raises(ValidationError, match="Missing file"):
        load_evaluation_files({"inputs": files["inputs"]}, max_bytes=MB)


def test_evaluation_set_from_arrays_checks_agreement():
    arrays = make_set()
    with pytest.raises(ValidationError, match="Inputs: expected 6 samples"):
        evaluation_set_from_arrays(arrays["inputs"][:5], arrays["labels"], arrays["masks"])


def test_load_attributions_npy_and_npz():
    attributions = np.random.default_rng(1).normal(size=(6, 16)).astype(np.float32)
    from_npy = load_attributions(npy_bytes(attributions), name="a.npy", max_bytes=MB, masks_shape=(6, 4, 4))
    from_npz = load_attributions(
        npz_bytes(attributions=attributions), name="a.npz", max_bytes=MB, masks_shape=(6, 4, 4)
    )
    np.testing.assert_array_equal(from_npy, attributions.astype(np.float64).reshape(6, 4, 4))
    np.testing.assert_array_equal(from_npz, from_npy)
    with pytest.raises(ValidationError, match="no array named 'attributions'"):
        load_attributions(npz_bytes(arr_0=attributions), name="a.npz", max_bytes=MB, masks_shape=(6, 4, 4))

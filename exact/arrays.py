"""Safe loading and validation of uploaded NumPy arrays (.npy, .npz). Nothing uploaded is ever unpickled.

Loading never calls ``pickle`` and never uses ``numpy.load``: the .npy header is parsed with NumPy's header
reader, the dtype and size are checked, and only then are exactly ``shape x itemsize`` bytes read into a new
array. For .npz the zip directory is checked (entry names, count, compression, declared sizes) before anything is
decompressed, and decompression is bounded by the declared size (a longer stream fails its CRC check).

Every failure raises ``exact.errors.ValidationError`` with a message meant for the uploader. File formats and
bounds: docs/metrics.md.
"""

from __future__ import annotations

import io
import math
import re
import struct
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO

import numpy as np

from exact.errors import ValidationError

__all__ = [
    "ATTRIBUTIONS_KEY",
    "EVALUATION_KEYS",
    "MAX_NPZ_ENTRIES",
    "MAX_PIXELS",
    "EvaluationSet",
    "evaluation_set_from_arrays",
    "load_array_file",
    "load_attributions",
    "load_evaluation_files",
    "load_evaluation_set",
    "validate_attributions",
    "validate_submitted_attributions",
    "validate_inputs",
    "validate_labels",
    "validate_masks",
]

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
# numpy.save never writes a header longer than this for the arrays we accept (NumPy's own reader default).
MAX_HEADER_BYTES = 10_000
MAX_NPZ_ENTRIES = 64
# The EMD of a dense map against a dense mask needs a (pixels/2)^2 cost matrix: 64 x 64 grids are the largest
# that stay within seconds per sample and ~100 MB.
MAX_PIXELS = 64 * 64
EVALUATION_KEYS = ("inputs", "labels", "masks")
ATTRIBUTIONS_KEY = "attributions"
# Plain "name.npy" entries only: no folders, no dot files, no control or non-ASCII characters.
_ENTRY_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,99}\.npy\Z")
# Real numbers we convert to float64 without loss of range: bool, signed and unsigned integers, float16/32/64.
_REAL_KINDS = "biuf"


def _size(n_bytes: int) -> str:
    if n_bytes < 1024:
        return f"{n_bytes} bytes"
    if n_bytes < 1024 * 1024:
        return f"{n_bytes / 1024:.1f} KiB"
    if n_bytes < 1024**3:
        return f"{n_bytes / 1024 / 1024:.1f} MiB"
    return f"{n_bytes / 1024**3:.1f} GiB"


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _short(exc: BaseException, limit: int = 200) -> str:
    """An exception's text for a message: NumPy's header errors quote the whole (uploaded) header."""
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _looks_like_pickle(data: bytes) -> bool:
    # Every pickle ends with STOP ("."); protocol 2+ starts with PROTO (0x80) and the protocol number, protocols
    # 0 and 1 usually with MARK, EMPTY_LIST, EMPTY_DICT or GLOBAL.
    if not data.endswith(b"."):
        return False
    return (len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5) or data[:1] in (b"(", b"]", b"}", b"c")


def _zip_holds_pickles(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return any(_is_pickle_entry(entry.filename) for entry in archive.infolist())
    except Exception:  # any unreadable zip simply holds no pickles we can see
        return False


def _is_pickle_entry(filename: str) -> bool:
    return filename.lower().endswith((".pkl", ".pickle"))


def _pickle_archive(name: str) -> ValidationError:
    return ValidationError(
        f"'{name}' is not a NumPy array file: it is a zip archive with pickled data (e.g. a PyTorch checkpoint), "
        "which is never loaded. Save the array with numpy.save (.npy) or numpy.savez (.npz)."
    )


def _not_an_array_file(name: str, data: bytes) -> ValidationError:
    if _looks_like_pickle(data):
        return ValidationError(
            f"'{name}' is not a NumPy array file: it looks like a Python pickle, and pickles are never loaded. "
            "Save the array with numpy.save (.npy) or numpy.savez (.npz)."
        )
    return ValidationError(
        f"'{name}' is not a NumPy array file (a .npy file starts with the bytes \\x93NUMPY). "
        "Save the array with numpy.save (.npy) or numpy.savez (.npz)."
    )


# ---------------------------------------------------------------------------------------------------------------
# Loading


def npz_bytes(**named: np.ndarray) -> bytes:
    """A compressed .npz of the named arrays, as the server writes its own files (never with pickles)."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **named)
    return buffer.getvalue()


def npy_bytes(array: np.ndarray) -> bytes:
    """A .npy of one array, pickles refused."""
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def load_array_file(data: bytes, *, name: str, max_bytes: int, key: str | None = None) -> np.ndarray:
    """Load one array from the bytes of an uploaded ``.npy`` or ``.npz`` file (the extension of ``name`` decides).

    ``max_bytes`` bounds the array's data (shape x itemsize), checked from the header before the data is read
    (and, for .npz, from the zip directory before anything is decompressed). For .npz, ``key`` names the array
    to load; without it the archive must hold exactly one. Only bool, integer, float and complex dtypes load.
    """
    if max_bytes <= 0:
        raise ValueError("max_bytes must be positive")
    lower = name.lower()
    if not data:
        raise ValidationError(f"'{name}' is empty.")
    if lower.endswith(".npy"):
        if data[:4] in ZIP_MAGICS:
            if _zip_holds_pickles(data):
                raise _pickle_archive(name)
            raise ValidationError(f"'{name}' is a zip archive (.npz), not a .npy file: rename it to .npz.")
        if not data.startswith(NPY_MAGIC):
            raise _not_an_array_file(name, data)
        stream = io.BytesIO(data)
        return _read_npy(stream, stored_bytes=len(data), label=f"'{name}'", max_bytes=max_bytes)
    if lower.endswith(".npz"):
        return _load_npz(data, name=name, max_bytes=max_bytes, key=key)
    raise ValidationError(f"'{name}' must be a .npy or .npz file.")


def _read_npy(stream: IO[bytes], *, stored_bytes: int, label: str, max_bytes: int) -> np.ndarray:
    """Read a .npy from ``stream`` (at its start), ``stored_bytes`` long in all; checks come before the data."""
    try:
        version = np.lib.format.read_magic(stream)
    except ValueError as exc:
        raise ValidationError(f"{label} is not a NumPy array file ({_short(exc)}).") from None
    if version not in ((1, 0), (2, 0)):
        # Version 3.0 exists only for structured dtypes with non-Latin-1 field names, which we refuse anyway.
        raise ValidationError(f"{label} uses .npy format version {version[0]}.{version[1]}; use numpy.save.")
    reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    try:
        shape, fortran_order, dtype = reader(stream, max_header_size=MAX_HEADER_BYTES)
    except Exception as exc:  # NumPy's parser raises ValueError, SyntaxError, TokenError, ...
        raise ValidationError(f"{label} has a malformed .npy header ({_short(exc)}).") from None
    header_end = stream.tell()
    _check_dtype(dtype, label)
    if any(d < 0 for d in shape):
        raise ValidationError(f"{label} declares a negative dimension {_shape(shape)}.")
    n_bytes = math.prod(shape) * dtype.itemsize  # Python integers: no overflow, whatever the header says
    if n_bytes > max_bytes:
        raise ValidationError(
            f"{label} holds an array of shape {_shape(shape)} and dtype {dtype} = {_size(n_bytes)}, "
            f"more than the limit of {_size(max_bytes)}."
        )
    if stored_bytes - header_end != n_bytes:
        raise ValidationError(
            f"{label} is damaged: its header announces {n_bytes} bytes of data, the file holds "
            f"{stored_bytes - header_end} (truncated, or extra bytes at the end)."
        )
    buffer = bytearray(n_bytes)
    if n_bytes and stream.readinto(buffer) != n_bytes:
        raise ValidationError(f"{label} is damaged: its data ends early.")
    array = np.frombuffer(buffer, dtype=dtype)
    return array.reshape(shape, order="F" if fortran_order else "C")


def _check_dtype(dtype: np.dtype, label: str) -> None:
    if dtype.hasobject:
        raise ValidationError(
            f"{label} holds Python objects (dtype object), which could only be read by unpickling; "
            "only numeric arrays are accepted."
        )
    if dtype.names is not None or dtype.subdtype is not None or dtype.kind == "V":
        raise ValidationError(f"{label} has a structured dtype ({dtype}); only plain numeric arrays are accepted.")
    if dtype.kind not in "biufc":
        raise ValidationError(f"{label} has dtype {dtype}, which is not numeric; only numeric arrays are accepted.")


def _load_npz(data: bytes, *, name: str, max_bytes: int, key: str | None) -> np.ndarray:
    if data[:4] not in ZIP_MAGICS:
        if data.startswith(NPY_MAGIC):
            raise ValidationError(f"'{name}' is a .npy file, not a .npz archive: rename it to .npy.")
        if _looks_like_pickle(data):
            raise _not_an_array_file(name, data)
        raise ValidationError(f"'{name}' is not a NumPy .npz archive (not a zip file).")
    check_zip_directory_size(data, name)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except Exception as exc:  # BadZipFile, struct.error, OverflowError, ... from a forged directory
        raise ValidationError(f"'{name}' is not a valid .npz archive ({_short(exc)}).") from None
    with archive:
        entries = archive.infolist()
        _check_entries(entries, name=name, max_bytes=max_bytes)
        keys = [entry.filename[: -len(".npy")] for entry in entries]
        if key is None:
            if len(keys) != 1:
                raise ValidationError(f"'{name}' holds {len(keys)} arrays ({', '.join(keys)}); expected exactly one.")
            key = keys[0]
        elif key not in keys:
            held = ", ".join(keys) if keys else "nothing"
            raise ValidationError(f"'{name}' has no array named '{key}' (it holds: {held}).")
        entry = entries[keys.index(key)]
        label = f"Array '{key}' in '{name}'"
        try:
            with archive.open(entry) as stream:
                array = _read_npy(stream, stored_bytes=entry.file_size, label=label, max_bytes=max_bytes)
                if stream.read(1):  # also makes zipfile verify the CRC of everything read
                    raise ValidationError(f"{label} is damaged: more data than its size in the archive.")
        except ValidationError:
            raise
        except Exception as exc:  # BadZipFile (CRC), zlib.error, EOFError, ... from damaged data
            raise ValidationError(f"{label} is damaged ({_short(exc)}).") from None
    return array


def check_zip_directory_size(data: bytes, name: str, *, max_entries: int = MAX_NPZ_ENTRIES) -> None:
    """Refuse a huge central directory from the end records alone, before zipfile builds an object per entry.

    zipfile trusts the zip64 end record when one is present, so both are checked. Anything malformed is left to
    zipfile, which refuses it.
    """
    eocd = data.rfind(b"PK\x05\x06", max(0, len(data) - 22 - 65_535))
    if eocd < 0 or len(data) - eocd < 22:
        return
    _, _, _, _, count, directory_size, _, _ = struct.unpack("<4s4H2LH", data[eocd : eocd + 22])
    locator = eocd - 20
    if locator >= 0 and data[locator : locator + 4] == b"PK\x06\x07":
        record = locator - 56
        if record >= 0 and data[record : record + 4] == b"PK\x06\x06":
            fields = struct.unpack("<4sQ2H2L4Q", data[record : record + 56])
            count, directory_size = max(count, fields[7]), max(directory_size, fields[8])
    if count > max_entries or directory_size > max_entries * 1024:
        raise ValidationError(
            f"'{name}' has a zip directory of {count} entries ({_size(directory_size)}); at most "
            f"{max_entries} entries are accepted."
        )


def _check_entries(entries: list[zipfile.ZipInfo], *, name: str, max_bytes: int) -> None:
    """Refuse what numpy.savez never writes, and anything too big, from the zip directory alone."""
    if not entries:
        raise ValidationError(f"'{name}' is an empty archive: it holds no arrays.")
    if len(entries) > MAX_NPZ_ENTRIES:
        raise ValidationError(f"'{name}' holds {len(entries)} entries; at most {MAX_NPZ_ENTRIES} are accepted.")
    if any(_is_pickle_entry(entry.filename) for entry in entries):
        raise _pickle_archive(name)
    seen: set[str] = set()
    for entry in entries:
        shown = entry.filename.encode("ascii", "backslashreplace").decode("ascii")
        # The pattern alone, not ZipInfo.is_dir(): it also refuses folders, and is_dir() fails on an empty name.
        if not _ENTRY_RE.match(entry.filename):
            raise ValidationError(
                f"'{name}' contains an entry named {shown!r}; only plain NAME.npy entries (letters, digits, "
                "'_' and '-', no folders) are accepted, as numpy.savez writes them."
            )
        if entry.filename in seen:
            raise ValidationError(f"'{name}' contains the entry {shown!r} twice.")
        seen.add(entry.filename)
        if entry.flag_bits & 0x1:
            raise ValidationError(f"'{name}' contains an encrypted entry ({shown!r}).")
        if entry.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ValidationError(
                f"'{name}': entry {shown!r} uses a compression other than deflate; use numpy.savez or "
                "numpy.savez_compressed."
            )
    declared = sum(entry.file_size for entry in entries)
    if declared > max_bytes:
        raise ValidationError(
            f"'{name}' declares {_size(declared)} of uncompressed data, more than the limit of {_size(max_bytes)}; "
            "nothing was decompressed."
        )


# ---------------------------------------------------------------------------------------------------------------
# Validation


def _real_dtype(arr: np.ndarray, what: str) -> None:
    dtype = arr.dtype
    if dtype.kind == "c":
        raise ValidationError(f"{what} must be real numbers, not complex ({dtype}).")
    if dtype.kind not in _REAL_KINDS or dtype.names is not None:
        raise ValidationError(f"{what} must be numeric (bool, integer or float); got dtype {dtype}.")
    if dtype.kind == "f" and dtype.itemsize > 8:
        raise ValidationError(f"{what} use {dtype} (extended precision); save them as float64 or float32.")


def _as_array(arr: object) -> np.ndarray:
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"expected a numpy array, got {type(arr).__name__}")
    return arr


def _check_finite(values: np.ndarray, what: str) -> None:
    """``values``: float array with samples along the first axis."""
    finite = np.isfinite(values)
    if finite.all():
        return
    n_nan = int(np.isnan(values).sum())
    n_inf = int(values.size - finite.sum()) - n_nan
    parts = []
    if n_nan:
        parts.append(f"{n_nan} NaN value{'s' if n_nan != 1 else ''}")
    if n_inf:
        parts.append(f"{n_inf} infinite value{'s' if n_inf != 1 else ''}")
    first_sample = int(np.argmin(finite.reshape(values.shape[0], -1).all(axis=1)))
    raise ValidationError(
        f"{what} contain {' and '.join(parts)} (first in sample {first_sample}); all values must be finite."
    )


def _to_float64(arr: np.ndarray) -> np.ndarray:
    # New, native-endian, C-ordered and writeable: callers may keep it without aliasing the upload buffer.
    return np.array(arr, dtype=np.float64, order="C", copy=True)


def validate_inputs(arr: np.ndarray) -> np.ndarray:
    """Inputs to explain: (n, H, W) or (n, H*W), real and finite. Floats keep their precision (native byte
    order), bool and integers become float64."""
    arr = _as_array(arr)
    _real_dtype(arr, "Inputs")
    if arr.ndim not in (2, 3):
        raise ValidationError(f"Inputs must have shape (n, H, W) or (n, H*W); got shape {_shape(arr.shape)}.")
    if arr.shape[0] == 0:
        raise ValidationError("Inputs contain no samples.")
    if arr.size == 0:
        raise ValidationError(f"Inputs have no pixels (shape {_shape(arr.shape)}).")
    out = np.array(arr, dtype=arr.dtype.newbyteorder("=") if arr.dtype.kind == "f" else np.float64, order="C")
    _check_finite(out, "Inputs")
    return out


def validate_labels(arr: np.ndarray, n: int) -> np.ndarray:
    """Class labels: (n,) non-negative integers (floats holding whole numbers are accepted). Returns int64."""
    arr = _as_array(arr)
    if arr.dtype.kind not in "iuf" or arr.dtype.names is not None:
        raise ValidationError(f"Labels must be integers; got dtype {arr.dtype}.")
    if arr.shape != (n,):
        raise ValidationError(f"Labels: expected shape ({n},), one label per sample; got {_shape(arr.shape)}.")
    if arr.dtype.kind == "f":
        values = np.asarray(arr, dtype=np.float64)
        _check_finite(values.reshape(n, 1), "Labels")
        bad = values != np.round(values)
        if bad.any():
            raise ValidationError(
                f"Labels must be whole numbers; {int(bad.sum())} are not (first: {values[bad][0]!r} "
                f"in sample {int(np.argmax(bad))})."
            )
        if np.abs(values).max(initial=0.0) >= 2.0**63:
            raise ValidationError("Labels must be smaller than 2**63.")
    elif arr.dtype.kind == "u" and arr.size and int(arr.max()) >= 2**63:
        raise ValidationError("Labels must be smaller than 2**63.")
    labels = arr.astype(np.int64)
    negative = labels < 0
    if negative.any():
        raise ValidationError(
            f"Labels must not be negative; {int(negative.sum())} are (first in sample {int(np.argmax(negative))})."
        )
    return labels


def validate_masks(arr: np.ndarray, n: int | None = None, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Ground-truth masks: (n, H, W), real, finite, >= 0 ("inside" = value > 0). Returns a new float64 array."""
    arr = _as_array(arr)
    _real_dtype(arr, "Masks")
    if arr.ndim != 3:
        raise ValidationError(f"Masks must have shape (n, H, W); got shape {_shape(arr.shape)}.")
    count, height, width = arr.shape
    if n is not None and count != n:
        raise ValidationError(f"Masks: expected {n} samples, got {count} (shape {_shape(arr.shape)}).")
    if count == 0:
        raise ValidationError("Masks contain no samples.")
    if height == 0 or width == 0:
        raise ValidationError(f"Masks have no pixels (shape {_shape(arr.shape)}).")
    if height * width > max_pixels:
        raise ValidationError(
            f"Masks of {height}×{width} = {height * width} pixels are too large; at most {max_pixels} pixels "
            "(e.g. 64×64) are supported."
        )
    masks = _to_float64(arr)
    _check_finite(masks, "Masks")
    negative = masks < 0
    if negative.any():
        first = int(np.argmax(negative.reshape(count, -1).any(axis=1)))
        raise ValidationError(
            f"Masks contain {int(negative.sum())} negative values (first in sample {first}); mask values must be >= 0."
        )
    return masks


def validate_attributions(arr: np.ndarray, masks_shape: tuple[int, int, int]) -> np.ndarray:
    """Attribution maps for masks of shape (n, H, W): (n, H, W) or (n, H*W), real and finite.

    Returns a new (n, H, W) float64 array; bool/integers/float16/float32 are converted, complex is refused.
    Very large or tiny magnitudes (1e308, denormals) are fine: the metrics scale each map by its maximum.
    """
    arr = _as_array(arr)
    n, height, width = masks_shape
    if arr.shape not in ((n, height, width), (n, height * width)):
        raise ValidationError(
            f"Attributions: expected {n} samples of {height}×{width} (or {n}×{height * width}), "
            f"got {_shape(arr.shape)}."
        )
    _real_dtype(arr, "Attributions")
    attributions = _to_float64(arr).reshape(n, height, width)
    _check_finite(attributions, "Attributions")
    return attributions


def validate_submitted_attributions(arr: np.ndarray, masks_shape: tuple[int, int, int]) -> np.ndarray:
    """``validate_attributions`` plus the rule for what is submitted to the server: every map has some attribution.

    An all-zero map cannot be scored, and a summary over the scorable samples of a split would then be over a set
    the submitter chose: zeros everywhere but sample j make the "aggregate" of j's split j's own value, and whether
    it is scorable at all tells j's split. Refusing such files at upload (a rule about the file alone, so the
    refusal says nothing about the ground truth) keeps every summary over a set fixed by the evaluation set.
    The offline scorer (``python -m exact evaluate``) still accepts them and reports them as not scorable.
    """
    attributions = validate_attributions(arr, masks_shape)
    empty = np.flatnonzero(~np.any(attributions != 0, axis=(1, 2)))
    if empty.size:
        listed = ", ".join(str(i) for i in empty[:5]) + (f" and {empty.size - 5} more" if empty.size > 5 else "")
        raise ValidationError(
            f"Attributions: {empty.size} of {masks_shape[0]} maps are all zeros (sample {listed}; counted from 0). "
            "Every map needs some attribution: an all-zero map cannot be scored. If your method gives none for a "
            "sample, submit a constant map for it."
        )
    return attributions


# ---------------------------------------------------------------------------------------------------------------
# Evaluation sets and submissions


@dataclass(frozen=True, eq=False)
class EvaluationSet:
    """Validated ground truth of a challenge: inputs (n, H, W) or (n, H*W), labels (n,), masks (n, H, W)."""

    inputs: np.ndarray
    labels: np.ndarray
    masks: np.ndarray

    @property
    def n_samples(self) -> int:
        return int(self.masks.shape[0])

    @property
    def grid(self) -> tuple[int, int]:
        return int(self.masks.shape[1]), int(self.masks.shape[2])


def evaluation_set_from_arrays(inputs: np.ndarray, labels: np.ndarray, masks: np.ndarray) -> EvaluationSet:
    """Validate the three arrays and that they agree (same n, inputs on the masks' grid)."""
    checked_masks = validate_masks(masks)
    n, height, width = checked_masks.shape
    checked_inputs = validate_inputs(inputs)
    if checked_inputs.shape not in ((n, height, width), (n, height * width)):
        raise ValidationError(
            f"Inputs: expected {n} samples of {height}×{width} (or {n}×{height * width}) to match the masks, "
            f"got {_shape(checked_inputs.shape)}."
        )
    checked_labels = validate_labels(labels, n)
    for array in (checked_inputs, checked_labels, checked_masks):
        array.setflags(write=False)
    return EvaluationSet(inputs=checked_inputs, labels=checked_labels, masks=checked_masks)


def load_evaluation_set(data: bytes, *, name: str, max_bytes: int) -> EvaluationSet:
    """An evaluation set from one .npz holding the arrays ``inputs``, ``labels`` and ``masks``.

    ``max_bytes`` bounds the declared uncompressed size of the whole archive.
    """
    if not name.lower().endswith(".npz"):
        keys = ", ".join(EVALUATION_KEYS)
        raise ValidationError(f"'{name}': an evaluation set must be a .npz file with the arrays {keys}.")
    arrays = {key: load_array_file(data, name=name, max_bytes=max_bytes, key=key) for key in EVALUATION_KEYS}
    return evaluation_set_from_arrays(**arrays)


def load_evaluation_files(files: Mapping[str, tuple[str, bytes]], *, max_bytes: int) -> EvaluationSet:
    """An evaluation set from three uploads: ``{"inputs": (name, data), "labels": ..., "masks": ...}``, each a
    .npy or a single-array .npz; ``max_bytes`` bounds each file."""
    missing = [key for key in EVALUATION_KEYS if key not in files]
    if missing:
        raise ValidationError(f"Missing file(s) for: {', '.join(missing)}.")
    arrays = {}
    for key in EVALUATION_KEYS:
        file_name, data = files[key]
        arrays[key] = load_array_file(data, name=file_name, max_bytes=max_bytes)
    return evaluation_set_from_arrays(**arrays)


def load_attributions(data: bytes, *, name: str, max_bytes: int, masks_shape: tuple[int, int, int]) -> np.ndarray:
    """A submission: a .npy, or a .npz holding the array ``attributions``; validated against the masks' shape."""
    key = ATTRIBUTIONS_KEY if name.lower().endswith(".npz") else None
    return validate_attributions(load_array_file(data, name=name, max_bytes=max_bytes, key=key), masks_shape)

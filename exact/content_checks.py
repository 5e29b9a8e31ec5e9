"""Does an uploaded file's content match its extension? Refuses pickles and archives that hide them.

Challenge files are only stored and offered for download, never opened by the server, but a file that claims
to be a CSV and is a pickle (or a zip bomb) is refused with a clear message, so nobody downloads a trap from us.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile

from exact import arrays
from exact.errors import ValidationError

_PICKLE_SUFFIXES = (".pkl", ".pickle", ".pt", ".pth", ".joblib", ".dill", ".sav")
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_MAX_ZIP_ENTRIES = 10_000


def _looks_like_pickle(data: bytes) -> bool:
    # Protocol 2+ pickles start with PROTO (0x80) and the protocol number.
    return len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5


def _utf8_text(data: bytes, label: str) -> str:
    if b"\x00" in data:
        raise ValidationError(f"{label}: this is a binary file, not text.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationError(f"{label}: the file is not UTF-8 text.") from None


def _json(data: bytes, label: str) -> None:
    try:
        json.loads(_utf8_text(data, label))
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{label}: not valid JSON (line {exc.lineno}, column {exc.colno}).") from None


def _zip(data: bytes, label: str, *, max_bytes: int) -> None:
    # From the end records alone, before zipfile parses a possibly enormous directory.
    arrays.check_zip_directory_size(data, label, max_entries=_MAX_ZIP_ENTRIES)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
            if len(entries) > _MAX_ZIP_ENTRIES:
                raise ValidationError(f"{label}: the archive holds more than {_MAX_ZIP_ENTRIES} files.")
            total = 0
            for entry in entries:
                name = entry.filename
                if name.startswith(("/", "\\")) or ".." in name.replace("\\", "/").split("/") or ":" in name:
                    raise ValidationError(f"{label}: the archive contains an unsafe path ({name[:80]!r}).")
                if name.lower().endswith(_PICKLE_SUFFIXES):
                    raise ValidationError(
                        f"{label}: the archive contains a pickle ({name[:80]!r}); pickles run "
                        "code when loaded and are not accepted."
                    )
                total += entry.file_size
            if total > max_bytes:
                raise ValidationError(f"{label}: the archive would unpack to more than the upload limit.")
    except zipfile.BadZipFile:
        raise ValidationError(f"{label}: not a valid zip archive.") from None


def _safetensors(data: bytes, label: str) -> None:
    if len(data) < 8:
        raise ValidationError(f"{label}: not a safetensors file.")
    (header_length,) = struct.unpack("<Q", data[:8])
    if header_length > min(len(data) - 8, 100_000_000):
        raise ValidationError(f"{label}: not a safetensors file (bad header).")
    try:
        json.loads(data[8 : 8 + header_length])
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ValidationError(f"{label}: not a safetensors file (bad header).") from None


def check_content(data: bytes, extension: str, *, label: str, max_bytes: int) -> None:
    """Raise ValidationError unless ``data`` plausibly is a file of type ``extension`` (e.g. '.csv')."""
    if _looks_like_pickle(data):
        raise ValidationError(f"{label}: this is a Python pickle; pickles run code when loaded and are not accepted.")
    if extension == ".npy":
        arrays.load_array_file(data, name=f"{label}.npy", max_bytes=max_bytes)
    elif extension == ".npz":
        for key in _npz_keys(data, label):  # every array must load: numeric, no pickles, within the limit
            arrays.load_array_file(data, name=f"{label}.npz", max_bytes=max_bytes, key=key)
    elif extension in (".csv", ".txt", ".md", ".py"):
        _utf8_text(data, label)
    elif extension in (".json", ".ipynb"):
        _json(data, label)
    elif extension == ".zip":
        _zip(data, label, max_bytes=max_bytes)
    elif extension == ".keras":  # Keras 3: a zip; Keras 2: HDF5
        if data.startswith(_HDF5_MAGIC):
            return
        _zip(data, label, max_bytes=max_bytes)
    elif extension == ".h5":
        if not data.startswith(_HDF5_MAGIC):
            raise ValidationError(f"{label}: not an HDF5 file.")
    elif extension == ".parquet":
        if not (data.startswith(b"PAR1") and data.endswith(b"PAR1")):
            raise ValidationError(f"{label}: not a Parquet file.")
    elif extension == ".tar.gz":
        if not data.startswith(b"\x1f\x8b"):
            raise ValidationError(f"{label}: not a gzip-compressed archive.")
    elif extension == ".safetensors":
        _safetensors(data, label)
    elif extension == ".onnx" and data[:1] != b"\x08":  # a ModelProto starts with field 1 (ir_version), a varint
        raise ValidationError(f"{label}: not an ONNX model.")


def _npz_keys(data: bytes, label: str) -> list[str]:
    arrays.check_zip_directory_size(data, label)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = [n[: -len(".npy")] for n in archive.namelist() if n.endswith(".npy")]
    except zipfile.BadZipFile:
        raise ValidationError(f"{label}: not a valid .npz archive.") from None
    if not names:
        raise ValidationError(f"{label}: the .npz archive holds no arrays.")
    return names

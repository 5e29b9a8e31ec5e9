"""Hostile uploads: file names that try to escape, oversized and empty files, content that lies about its type,
pickles, object arrays, zip bombs and archives with escaping member names.

A refused upload must raise a clear ValidationError and leave no row and no file anywhere (the database and every
file under the test's temporary folder are compared before and after, and every folder above the media root is
searched for the attack's marker). An accepted hostile name must end up as a plain name inside the media root.
"""

from __future__ import annotations

import functools
import io
import os
import pickle
import re
import struct
import time
import tracemalloc
import uuid
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from exact import arrays, intake
from exact.challenges import ChallengeForm, create_challenge, delete_challenge, file_for_download, get_challenge
from exact.errors import ValidationError
from exact.storage import PATH_MAX_LENGTH, UploadedFile
from tests.adversarial.conftest import ONE_MB, H, N, W, files, npy, npz
from tests.pages_helpers import scalar

SAFE_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


@pytest.fixture
def marker(tmp_path):
    """A unique word put into hostile names; it must never turn up outside the media root."""
    word = f"advx{uuid.uuid4().hex[:10]}"
    yield word
    for ancestor in [tmp_path, *tmp_path.parents]:
        leaked = [p for p in ancestor.glob(f"*{word}*")] + [p for p in ancestor.glob(f"*/*{word}*")]
        assert not leaked, f"files escaped to {ancestor}: {leaked}"


def _create(db, storage, actor, challenge_id, **uploads):
    return create_challenge(db, storage, actor, ChallengeForm("Upload test", "d", challenge_id), uploads)


def _refused(snapshot, call, message, what=""):
    before = snapshot()
    with pytest.raises(ValidationError) as info:
        call()
    assert re.search(message, str(info.value)), (what, str(info.value))
    before.assert_unchanged(what or message)
    return str(info.value)


# --- hostile names --------------------------------------------------------------------------------------------------


def _hostile_names(marker: str) -> list[str]:
    return [
        f"../../../../../{marker}.csv",
        f"..\\..\\..\\..\\..\\{marker}.csv",
        f"/tmp/{marker}.csv",  # noqa: S108 - an attack on that path, not a use of it
        f"/etc/cron.d/{marker}.csv",
        f"C:\\Windows\\System32\\{marker}.csv",
        f"{marker}\x00.csv",
        f"{marker}\x00/../../../x.csv",
        f"{marker}\x1b[31m\r\n\t.csv",
        f"．．／．．／．．／．．／{marker}．ｃｓｖ",  # fullwidth dots, slash and letters
        f"{marker}\u202eexe.csv",  # right-to-left override: shows as ...vsc.exe, really is .csv
        f"{marker}{'a' * 10_000}.csv",
        f"{marker}<script>alert(1)</script>.csv",
        f"{marker} $(rm -rf ~); `id`.csv",
        f"-{marker}.csv",
        f"~/{marker}.csv",
    ]


def test_hostile_names_are_stored_as_plain_names_inside_the_media_root(db, storage, media_root, world, marker):
    owner = world.cast.owner.id
    outside_before = files(media_root.parent)
    for index, name in enumerate(_hostile_names(marker)):
        data = f"a,b\n{index},2\n".encode()
        created = _create(db, storage, owner, f"name{index}", dataset=UploadedFile(name, data))
        relative = created.files["dataset"]
        folder, _, stored = relative.rpartition("/")
        assert folder == f"challenges/name{index}/dataset", (name, relative)
        assert SAFE_NAME.match(stored) and stored.endswith(".csv") and not stored.startswith((".", "-")), (name, stored)
        assert len(relative) <= PATH_MAX_LENGTH
        assert (media_root / relative).read_bytes() == data
        assert file_for_download(storage, get_challenge(db, f"name{index}"), "dataset") == media_root / relative
    new = sorted(set(files(media_root.parent)) - set(outside_before))
    assert all(path.startswith("media/challenges/name") for path in new), new
    assert len(new) == len(_hostile_names(marker))


def test_names_whose_real_type_is_not_accepted_are_refused(db, storage, snapshot, world, marker):
    owner = world.cast.owner.id
    csv = b"a,b\n1,2\n"
    for name in (
        f"{marker}\u202evsc.exe",  # shows as ...exe.csv, really is .exe
        f"{marker}.csv\x00.exe",
        f"{marker}.csv/evil.sh",
        f"../{marker}.csv/..",
        "",
        ".",
        "..",
        "/",
        ".csv",
    ):
        _refused(
            snapshot,
            lambda n=name: _create(db, storage, owner, "refused", dataset=UploadedFile(n, csv)),
            r"^Dataset: files of type .* are not accepted",
            repr(name),
        )


def test_hostile_attribution_file_names_never_reach_the_disk(db, storage, media_root, world, marker):
    user = world.cast.other
    data = npy(np.random.default_rng(1).normal(size=(N, H, W)))
    names = [f"../../../{marker}.npy", f"/tmp/{marker}.npy", f"{marker}\x00\u202e.npy"]  # noqa: S108 - an attack
    stored = []
    for index, name in enumerate(names):
        submission = intake.submit_attributions(
            db, storage, user.id, "gt", UploadedFile(name, data), method_name=f"m{index}", request_key=f"k{index}"
        )
        assert re.fullmatch(rf"submissions/gt/{user.id}/[0-9a-f]{{16}}(_[0-9a-f]{{7}})?\.npy", submission.file_path)
        stored.append(submission.file_path)
        assert (media_root / submission.file_path).read_bytes() == data


# --- size, emptiness, type and content --------------------------------------------------------------------------


def test_oversized_and_empty_uploads_are_refused(db, storage, snapshot, world):
    owner, user = world.cast.owner.id, world.cast.other.id
    big = b"a,b\n" + b"1,2\n" * (ONE_MB // 4)  # one line more than 1 MiB
    assert len(big) > ONE_MB
    for kind, name in (("dataset", "data.csv"), ("model", "model.json"), ("xai", "template.py")):
        _refused(
            snapshot,
            lambda k=kind, n=name: _create(db, storage, owner, "big", **{k: UploadedFile(n, big)}),
            r"the file is larger than the 1 MB limit",
            kind,
        )
        _refused(
            snapshot,
            lambda k=kind, n=name: _create(db, storage, owner, "empty", **{k: UploadedFile(n, b"")}),
            r"the file is empty",
            kind,
        )
    exactly = b"x" * (ONE_MB - 1) + b"\n"
    assert _create(db, storage, owner, "limit", dataset=UploadedFile("data.csv", exactly)).files["dataset"]

    too_big = npy(np.zeros(ONE_MB // 8 + 1))
    _refused(
        snapshot,
        lambda: intake.submit_attributions(db, storage, user, "gt", UploadedFile("a.npy", too_big), method_name="m"),
        r"larger than the 1 MB limit",
        "attributions",
    )
    _refused(
        snapshot,
        lambda: intake.submit_attributions(db, storage, user, "gt", UploadedFile("a.npy", b""), method_name="m"),
        r"the file is empty",
        "empty attributions",
    )


WRONG_EXTENSIONS = [
    ("dataset", "data.exe"),
    ("dataset", "data.pkl"),
    ("dataset", "data.sh"),
    ("dataset", "data"),
    ("model", "model.pt"),
    ("model", "model.pth"),
    ("model", "model.pkl"),
    ("model", "model.joblib"),
    ("model", "model.ckpt"),
    ("xai", "template.exe"),
    ("xai", "template.sh"),
    ("xai", "template.pyc"),
]
LABELS = {"dataset": "Dataset", "model": "Model", "xai": "XAI method template"}


def test_wrong_extensions_are_refused(db, storage, snapshot, cast):
    for kind, name in WRONG_EXTENSIONS:
        _refused(
            snapshot,
            lambda k=kind, n=name: _create(db, storage, cast.owner.id, "ext", **{k: UploadedFile(n, b"x\n")}),
            rf"^{LABELS[kind]}: files of type .* are not accepted",
            name,
        )


LIES = [
    ("dataset", "data.csv", b"a,b\n\x00\x01\x02", "binary file, not text"),
    ("dataset", "data.csv", b"\xff\xfe\xfa\xfb", "not UTF-8 text"),
    ("dataset", "data.json", b'{"a": 1,', "not valid JSON"),
    ("dataset", "data.npy", b"\x93NUMPX garbage", "not a NumPy array file"),
    ("dataset", "data.npz", b"PK\x03\x04 truncated", "not a valid .npz archive"),
    ("dataset", "data.zip", b"not a zip at all", "not a valid zip archive"),
    ("dataset", "data.h5", b"HDF5 but no magic", "not an HDF5 file"),
    ("dataset", "data.parquet", b"PAR1 but not closed", "not a Parquet file"),
    ("dataset", "data.tar.gz", b"plain text", "not a gzip-compressed archive"),
    ("model", "model.onnx", b"garbage that is no protobuf", "not an ONNX model"),
    ("model", "model.h5", b"\x89HDF\r\n", "not an HDF5 file"),
    ("model", "model.keras", b"neither zip nor HDF5", "not a valid zip archive"),
    ("xai", "notebook.ipynb", b"<html>not json</html>", "not valid JSON"),
    ("xai", "template.py", b"\x00\x00ELF", "binary file, not text"),
]


def test_content_that_lies_about_its_type_is_refused(db, storage, snapshot, cast):
    for kind, name, data, message in LIES:
        _refused(
            snapshot,
            lambda k=kind, n=name, d=data: _create(db, storage, cast.owner.id, "lies", **{k: UploadedFile(n, d)}),
            re.escape(message),
            name,
        )


def _safetensors(header: bytes = b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}') -> bytes:
    return struct.pack("<Q", len(header)) + header + b"\x00\x00\x80\x3f"


GENUINE = [
    ("dataset", "data.csv", b"a,b\n1,2\n"),
    ("dataset", "data.json", b'{"x": [1, 2]}'),
    ("dataset", "data.npy", npy(np.zeros((2, 2)))),
    ("dataset", "data.npz", npz(x=np.zeros(3), y=np.arange(3))),
    ("dataset", "data.zip", b"PK\x05\x06" + bytes(18)),  # the empty zip archive
    ("dataset", "data.parquet", b"PAR1" + bytes(8) + b"PAR1"),
    ("dataset", "data.tar.gz", b"\x1f\x8b\x08\x00" + bytes(16)),
    ("dataset", "data.h5", b"\x89HDF\r\n\x1a\n" + bytes(8)),
    ("model", "model.onnx", b"\x08\x07\x12\x04test"),
    ("model", "model.h5", b"\x89HDF\r\n\x1a\n" + bytes(8)),
    ("model", "model.keras", b"\x89HDF\r\n\x1a\n" + bytes(8)),
    ("model", "model.json", b"{}"),
    ("model", "model.zip", b"PK\x05\x06" + bytes(18)),
    ("xai", "template.py", b"def explain(model, x):\n    return x\n"),
    ("xai", "notebook.ipynb", b'{"cells": []}'),
    ("xai", "README.md", "# Méthode\n".encode()),
    ("xai", "notes.txt", b"plain text"),
]


def test_genuine_files_of_every_accepted_type_are_accepted(db, storage, media_root, cast):
    """The control for every refusal here: the checks do not simply refuse everything."""
    for index, (kind, name, data) in enumerate(GENUINE):
        created = _create(db, storage, cast.owner.id, f"genuine{index}", **{kind: UploadedFile(name, data)})
        assert (media_root / created.files[kind]).read_bytes() == data, name


def test_safetensors_models_are_accepted_and_their_header_checked(db, storage, snapshot, cast):
    """'.safetensors' is an accepted model type (the safe alternative to pickled .pt files)."""
    owner = cast.owner.id
    created = _create(db, storage, owner, "tensors", model=UploadedFile("model.safetensors", _safetensors()))
    assert created.files["model"].endswith("/model.safetensors")
    for data in (struct.pack("<Q", 10**12) + b"{}", _safetensors(b"nope"), b"short"):
        _refused(
            snapshot,
            lambda d=data: _create(db, storage, owner, "bad-tensors", model=UploadedFile("model.safetensors", d)),
            r"not a safetensors file",
            repr(data[:12]),
        )


# --- pickles and object arrays ------------------------------------------------------------------------------------


class _Boom:
    """Unpickling this creates a folder: proof of code execution if it ever happened."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return os.mkdir, (self.path,)


def test_pickles_are_refused_under_any_name_and_never_run(db, storage, snapshot, world, tmp_path):
    trap = tmp_path / "unpickled-and-ran"
    owner, user = world.cast.owner.id, world.cast.other.id
    names = {
        "dataset": ["data.csv", "data.json", "data.npy", "data.npz", "data.zip", "data.h5", "data.txt" + ".csv"],
        "model": ["model.onnx", "model.json", "model.keras", "model.zip"],
        "xai": ["template.py", "template.txt", "template.md", "template.ipynb"],
    }
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        payload = pickle.dumps(_Boom(trap), protocol=protocol)
        for kind, kind_names in names.items():
            for name in kind_names:
                _refused(
                    snapshot,
                    lambda k=kind, n=name, p=payload: _create(db, storage, owner, "pickled", **{k: UploadedFile(n, p)}),
                    r"pickle",
                    f"{name} protocol {protocol}",
                )
        for name in ("a.npy", "a.npz"):
            _refused(
                snapshot,
                lambda n=name, p=payload: intake.submit_attributions(
                    db, storage, user, "gt", UploadedFile(n, p), method_name="m"
                ),
                r"pickle",
                f"attributions {name}",
            )
    # Protocols 0 and 1 have no PROTO header; binary formats still refuse them by their content.
    for protocol in (0, 1):
        payload = pickle.dumps(_Boom(trap), protocol=protocol)
        for kind, name in (
            ("dataset", "data.npy"),
            ("dataset", "data.npz"),
            ("dataset", "data.json"),
            ("model", "model.onnx"),
            ("dataset", "data.zip"),
        ):
            _refused(
                snapshot,
                lambda k=kind, n=name, p=payload: _create(db, storage, owner, "pickled", **{k: UploadedFile(n, p)}),
                r".",
                f"{name} protocol {protocol}",
            )
        for name in ("a.npy", "a.npz"):
            _refused(
                snapshot,
                lambda n=name, p=payload: intake.submit_attributions(
                    db, storage, user, "gt", UploadedFile(n, p), method_name="m"
                ),
                r"pickle",
                f"attributions {name}",
            )
    assert not trap.exists()


def _zip(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _object_npy() -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"a": 1}, None, "text"] * 4, dtype=object), allow_pickle=True)
    return buffer.getvalue()


def test_archives_hiding_pickles_or_object_arrays_are_refused(db, storage, snapshot, world):
    owner, user = world.cast.owner.id, world.cast.other.id
    pickled = pickle.dumps({"weights": [1, 2, 3]})
    for member in ("model.pkl", "archive/data.pkl", "x.pickle", "weights.pt", "w.pth", "m.joblib", "DATA.PKL"):
        archive = _zip({"readme.txt": b"hi", member: pickled})
        for kind, name in (("dataset", "data.zip"), ("model", "model.zip"), ("model", "model.keras")):
            _refused(
                snapshot,
                lambda k=kind, n=name, a=archive: _create(db, storage, owner, "hidden", **{k: UploadedFile(n, a)}),
                r"pickle",
                f"{name} with {member}",
            )
    torch_like = _zip({"archive/data.pkl": pickled, "archive/version": b"3"})
    _refused(
        snapshot,
        lambda: intake.submit_attributions(db, storage, user, "gt", UploadedFile("a.npz", torch_like), method_name="m"),
        r"pickled data",
        "torch checkpoint as .npz",
    )
    _refused(
        snapshot,
        lambda: intake.submit_attributions(db, storage, user, "gt", UploadedFile("a.npy", torch_like), method_name="m"),
        r"pickled data",
        "torch checkpoint as .npy",
    )

    objects_npz = _zip({"attributions.npy": _object_npy()})
    for name, data in (("a.npy", _object_npy()), ("a.npz", objects_npz)):
        _refused(
            snapshot,
            lambda n=name, d=data: intake.submit_attributions(
                db, storage, user, "gt", UploadedFile(n, d), method_name="m"
            ),
            r"Python objects",
            name,
        )
        _refused(
            snapshot,
            lambda n=name, d=data: _create(db, storage, owner, "objects", dataset=UploadedFile("data" + n[1:], d)),
            r"Python objects",
            f"dataset {name}",
        )
    structured = npy(np.zeros(N, dtype=[("a", "<f8"), ("b", "<i4")]))
    _refused(
        snapshot,
        lambda: intake.submit_attributions(db, storage, user, "gt", UploadedFile("a.npy", structured), method_name="m"),
        r"structured dtype",
        "structured",
    )


def test_zips_with_escaping_member_names_are_refused(db, storage, snapshot, world):
    for member in (
        "../../evil.txt",
        "/etc/passwd",
        "C:/Windows/evil.txt",
        "a/../../b.txt",
        "..\\..\\evil.txt",
        "D:evil.txt",
    ):
        archive = _zip({"ok.txt": b"fine", member: b"escaped"})
        _refused(
            snapshot,
            lambda a=archive: _create(db, storage, world.cast.owner.id, "zipslip", dataset=UploadedFile("data.zip", a)),
            r"unsafe path",
            member,
        )
        npz_archive = _zip({member.rsplit(".", 1)[0] + ".npy": npy(np.zeros((N, H, W)))})
        _refused(
            snapshot,
            lambda a=npz_archive: intake.submit_attributions(
                db, storage, world.cast.other.id, "gt", UploadedFile("a.npz", a), method_name="m"
            ),
            r"only plain NAME\.npy entries",
            member,
        )


# --- zip bombs ------------------------------------------------------------------------------------------------------


@functools.cache
def _npz_bomb(declared_mb: int = 200) -> bytes:
    """A .npz whose one member is a valid .npy of ``declared_mb`` MiB of zeros: about 1/1000 of that compressed."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (declared_mb * ONE_MB // 8,)}
    )
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("attributions.npy", "w", force_zip64=True) as member,
    ):
        member.write(header.getvalue())
        chunk = bytes(ONE_MB)
        for _ in range(declared_mb):
            member.write(chunk)
    return buffer.getvalue()


@functools.cache
def _zip_bomb(declared_mb: int = 200) -> bytes:
    """A .zip holding one member of ``declared_mb`` MiB of zeros."""
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("zeros.bin", "w", force_zip64=True) as member,
    ):
        chunk = bytes(ONE_MB)
        for _ in range(declared_mb):
            member.write(chunk)
    return buffer.getvalue()


@functools.cache
def _lying_npz(extra_mb: int = 50) -> bytes:
    """A .npz whose directory declares a small member (a valid (N, H, W) array) while its deflate stream holds
    ``extra_mb`` MiB more: a reader that trusted the stream instead of the directory would inflate all of it."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (N, H, W)})
    declared = header.getvalue() + bytes(N * H * W * 8)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = compressor.compress(declared + bytes(extra_mb * ONE_MB)) + compressor.flush()
    crc, name = zlib.crc32(declared), b"attributions.npy"
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(data), len(declared), len(name), 0)
    central = struct.pack(
        "<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 8, 0, 0, crc, len(data), len(declared), len(name), 0, 0, 0, 0, 0, 0
    )
    end = struct.pack(
        "<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(central) + len(name), len(local) + len(name) + len(data), 0
    )
    return local + name + data + central + name + end


@functools.cache
def _directory_bomb(entries: int = 100_000) -> bytes:
    """A small zip whose central directory lists very many (empty) entries; built by hand, as an attacker would."""
    records = []
    for index in range(entries):
        name = f"{index:x}.npy".encode()
        records.append(
            struct.pack(
                zipfile.structCentralDir,
                zipfile.stringCentralDir,
                20,
                3,
                20,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                len(name),
                0,
                0,
                0,
                0,
                0,
                0,
            )
            + name
        )
    local = struct.pack(zipfile.structFileHeader, zipfile.stringFileHeader, 20, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0) + b"0.npy"
    directory = b"".join(records)
    count = min(entries, 0xFFFF)
    end = struct.pack(
        zipfile.structEndArchive, zipfile.stringEndArchive, 0, 0, count, count, len(directory), len(local), 0
    )
    return local + directory + end


def _bounded(call, *, seconds: float, megabytes: float):
    """Run ``call`` under tracemalloc; return its ValidationError text (or result) after checking time and memory."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        try:
            outcome = call()
        except ValidationError as exc:
            outcome = str(exc)
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1] / ONE_MB
    finally:
        tracemalloc.stop()
    assert elapsed < seconds, f"took {elapsed:.2f} s"
    assert peak < megabytes, f"peak memory {peak:.1f} MiB"
    return outcome


def test_npz_bombs_are_refused_before_decompressing(db, storage, snapshot, world):
    bomb = _npz_bomb()
    assert len(bomb) < ONE_MB  # passes the upload limit: only the declared size can stop it
    user, owner = world.cast.other.id, world.cast.owner.id
    before = snapshot()
    message = _bounded(
        lambda: intake.submit_attributions(db, storage, user, "gt", UploadedFile("a.npz", bomb), method_name="m"),
        seconds=0.5,
        megabytes=8,
    )
    assert "declares 200.0 MiB of uncompressed data" in message and "nothing was decompressed" in message
    message = _bounded(
        lambda: _create(db, storage, owner, "bomb", dataset=UploadedFile("data.npz", bomb)), seconds=0.5, megabytes=8
    )
    assert "declares 200.0 MiB of uncompressed data" in message
    zip_bomb = _zip_bomb()
    assert len(zip_bomb) < ONE_MB
    message = _bounded(
        lambda: _create(db, storage, owner, "bomb", dataset=UploadedFile("data.zip", zip_bomb)),
        seconds=0.5,
        megabytes=8,
    )
    assert "would unpack to more than the upload limit" in message
    before.assert_unchanged("bombs")


def test_a_zip_directory_that_lies_about_sizes_inflates_only_what_it_declares():
    lying = _lying_npz()
    outcome = _bounded(
        lambda: arrays.load_array_file(lying, name="a.npz", max_bytes=ONE_MB, key="attributions"),
        seconds=0.5,
        megabytes=4,
    )
    assert isinstance(outcome, str) or outcome.shape == (N, H, W)


def test_zip_directory_bombs_are_refused_quickly(db, storage, snapshot, world):
    """Very many entries: refused from the end record, before a Python object is built per entry."""
    bomb = _directory_bomb()
    assert len(bomb) < 20 * ONE_MB
    big = type(storage)(storage.root, max_bytes=20 * ONE_MB)
    before = snapshot()
    started = time.perf_counter()
    with pytest.raises(ValidationError, match="at most 64 entries"):
        intake.submit_attributions(db, big, world.cast.other.id, "gt", UploadedFile("a.npz", bomb), method_name="m")
    assert time.perf_counter() - started < 0.3
    for name in ("data.zip", "data.npz"):
        started = time.perf_counter()
        with pytest.raises(ValidationError):
            _create(db, big, world.cast.owner.id, "dirbomb", dataset=UploadedFile(name, bomb))
        elapsed = time.perf_counter() - started
        assert elapsed < 0.3, f"{name}: {elapsed:.2f} s to refuse (the whole zip directory was parsed first)"
    before.assert_unchanged("directory bombs")


# --- stored paths are re-checked before anything is served or deleted ------------------------------------------------


def test_stored_paths_that_leave_the_media_root_are_never_served(db, storage, media_root, tmp_path, world):
    secret = tmp_path / "outside-secret.txt"
    secret.write_text("not yours")
    (media_root / "challenges").mkdir(exist_ok=True)
    (media_root / "challenges" / "link.csv").symlink_to(secret)
    hostile = {
        "dataset": "../outside-secret.txt",
        "mlmodel": str(secret),
        "xaimethod": "challenges/link.csv",
    }
    for values in (hostile, {"dataset": "challenges/../../outside-secret.txt", "mlmodel": "\x01", "xaimethod": "//x"}):
        with db.transaction() as conn:  # a row written through Django can hold any string
            conn.execute(
                sa.text(
                    "UPDATE api_challenge SET dataset = :dataset, mlmodel = :mlmodel, xaimethod = :xaimethod "
                    "WHERE challenge_id = 'owned'"
                ),
                values,
            )
        challenge = get_challenge(db, "owned")
        for kind in ("dataset", "model", "xai"):
            assert file_for_download(storage, challenge, kind) is None, (kind, challenge.files[kind])


def test_deleting_a_django_challenge_with_a_path_like_id_deletes_only_its_own_files(
    db, storage, private, media_root, world
):
    """Django accepts any challenge id. Deleting one named like a folder must not remove other challenges' files."""
    hostile_ids = ("../challenges", "../submissions", "../evaluations", "..", "../..")
    before, private_before = files(media_root), files(private.root)
    assert any(path.startswith("challenges/owned/") for path in before)
    assert any(path.startswith("submissions/gt/") for path in before)
    assert any(path.startswith("evaluations/gt/") for path in private_before)
    with db.transaction() as conn:
        for hostile in hostile_ids:
            conn.execute(
                sa.text(
                    "INSERT INTO api_challenge (challenge_id, title, description, created_at, mlmodel, dataset, "
                    "xaimethod) VALUES (:c, 'Django', '', now(), '', '', '')"
                ),
                {"c": hostile},
            )
    for hostile in hostile_ids:
        delete_challenge(db, storage, private, world.cast.rival.id, hostile, confirmation=hostile)
    assert files(media_root) == before, "other challenges' files were deleted"
    assert files(private.root) == private_before, "other challenges' ground truth was deleted"
    assert scalar(db, "SELECT count(*) FROM api_challenge") == 2

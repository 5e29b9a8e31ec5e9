"""Media storage: safe names, 100-character paths, nothing written outside the media root."""

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exact.errors import ValidationError
from exact.storage import PATH_MAX_LENGTH, MediaStorage, UploadedFile, build_relative_path, split_safe_name


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("data.csv", ("data", ".csv")),
        ("../../etc/passwd", ("passwd", "")),
        ("C:\\Windows\\evil.exe", ("evil", ".exe")),
        ("/abs/path/model.ONNX", ("model", ".onnx")),
        ("na\x00me\x07.npz", ("name", ".npz")),
        ("archive.tar.gz", ("archive", ".tar.gz")),
        ("ｆｕｌｌｗｉｄｔｈ.csv", ("fullwidth", ".csv")),
        ("...", ("file", "")),
        ("résumé data.csv", ("resume_data", ".csv")),
    ],
)
def test_split_safe_name(name, expected):
    assert split_safe_name(name) == expected


def test_long_names_are_shortened_keeping_the_extension():
    path = build_relative_path("challenges/abc/dataset", "x" * 300 + ".parquet")
    assert len(path) == PATH_MAX_LENGTH
    assert path.startswith("challenges/abc/dataset/xxx") and path.endswith(".parquet")


def test_prefix_too_long_is_a_clear_error():
    with pytest.raises(ValidationError, match="too long"):
        build_relative_path("challenges/" + "a" * 90 + "/dataset", "f.csv")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_any_name_stays_inside_the_media_root(tmp_path_factory, name):
    root = tmp_path_factory.mktemp("media")
    storage = MediaStorage(root, max_bytes=100)
    relative = storage.write_new("challenges/c1/dataset", UploadedFile(name, b"x"))
    assert len(relative) <= PATH_MAX_LENGTH
    written = (root / relative).resolve()
    assert written.is_relative_to(root.resolve()) and written.read_bytes() == b"x"
    assert relative.startswith("challenges/c1/dataset/") and "/" not in relative.removeprefix("challenges/c1/dataset/")


def test_existing_files_are_never_overwritten(tmp_path):
    storage = MediaStorage(tmp_path, max_bytes=100)
    first = storage.write_new("challenges/c/dataset", UploadedFile("d.csv", b"1"))
    second = storage.write_new("challenges/c/dataset", UploadedFile("d.csv", b"2"))
    assert first != second and second.endswith(".csv")
    assert (tmp_path / first).read_bytes() == b"1" and (tmp_path / second).read_bytes() == b"2"


def test_resolve_refuses_escapes(tmp_path):
    storage = MediaStorage(tmp_path, max_bytes=100)
    for bad in ["../x", "/etc/passwd", "a/../../x", "a\x00b", ""]:
        with pytest.raises(ValidationError):
            storage.resolve(bad)


def test_upload_checks(tmp_path):
    storage = MediaStorage(tmp_path, max_bytes=10)
    with pytest.raises(ValidationError, match="empty"):
        storage.check_upload(UploadedFile("a.csv", b""), label="Dataset", allowed_extensions=None)
    with pytest.raises(ValidationError, match="larger than"):
        storage.check_upload(UploadedFile("a.csv", b"x" * 11), label="Dataset", allowed_extensions=None)
    with pytest.raises(ValidationError, match="not accepted"):
        storage.check_upload(UploadedFile("a.exe", b"x"), label="Dataset", allowed_extensions=frozenset({".csv"}))
    storage.check_upload(UploadedFile("a.csv", b"x" * 10), label="Dataset", allowed_extensions=frozenset({".csv"}))


def test_staged_files_are_removed_when_the_unit_fails(tmp_path):
    storage = MediaStorage(tmp_path, max_bytes=100)
    with pytest.raises(RuntimeError), storage.staged() as staged:
        staged.write("challenges/c/dataset", UploadedFile("d.csv", b"1"))
        raise RuntimeError("commit failed")
    assert not any(p.is_file() for p in tmp_path.rglob("*"))
    assert os.listdir(tmp_path) == []

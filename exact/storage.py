"""Files under the media root, stored the way Django's FileField stores them.

Paths are ``challenges/<challenge_id>/<kind>/<file name>`` relative to the media root and at most 100 characters.
Only names we build are ever joined to the root; anything read back from the database is re-checked to lie
inside it, since a Django-side row could hold any string.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from exact.errors import ValidationError

log = logging.getLogger(__name__)

PATH_MAX_LENGTH = 100  # Django FileField default max_length; the column is varchar(100)
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
_EXTENSION = re.compile(r"^\.[A-Za-z0-9]{1,16}$")  # long enough for .safetensors
_COMPRESSED = {".gz", ".bz2", ".xz", ".zst"}
_COLLISION_SUFFIX_LENGTH = 8  # "_" + 7 random characters, as Django does


def split_safe_name(filename: str) -> tuple[str, str]:
    """Reduce an uploaded file name to a harmless ``(stem, extension)``.

    Drops any directory part (both separators), NUL and control characters, folds unicode look-alikes to ASCII
    where possible and replaces everything else outside [A-Za-z0-9._-]; a name left empty becomes "file".
    """
    name = unicodedata.normalize("NFKC", filename or "")
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = re.split(r"[\\/]", name)[-1]
    name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    name = _UNSAFE_CHARS.sub("_", name).strip("._-")
    if not name:
        return "file", ""
    path = PurePosixPath(name)
    suffixes = [s for s in path.suffixes if _EXTENSION.match(s)]
    extension = ""
    if suffixes and name.endswith(suffixes[-1]):
        extension = suffixes[-1]
        if extension.lower() in _COMPRESSED and len(suffixes) > 1 and name.endswith(suffixes[-2] + extension):
            extension = suffixes[-2] + extension
    stem = name[: len(name) - len(extension)].strip("._-") or "file"
    return stem, extension.lower()


def build_relative_path(prefix: str, filename: str, *, reserve: int = 0) -> str:
    """``<prefix>/<safe name>``, shortening the stem (never the extension) to fit PATH_MAX_LENGTH - reserve."""
    stem, extension = split_safe_name(filename)
    room = PATH_MAX_LENGTH - reserve - len(prefix) - 1 - len(extension)
    if room < 1:
        raise ValidationError(
            "This challenge id is too long to store files under it (file paths are limited to 100 characters)."
        )
    return f"{prefix}/{stem[:room].rstrip('._-') or 'f'}{extension}"


@dataclass
class UploadedFile:
    """What the service layer needs of an upload: its client-side name and its bytes."""

    name: str
    data: bytes


@dataclass
class StagedFiles:
    """Files written for one unit of work; deleted again if the unit fails."""

    storage: MediaStorage
    written: list[str] = field(default_factory=list)

    def write(self, prefix: str, upload: UploadedFile) -> str:
        relative = self.storage.write_new(prefix, upload)
        self.written.append(relative)
        return relative


class MediaStorage:
    def __init__(self, root: Path, *, max_bytes: int) -> None:
        self.root = Path(root).resolve()
        self.max_bytes = max_bytes

    def check_upload(self, upload: UploadedFile, *, label: str, allowed_extensions: frozenset[str] | None) -> None:
        if not upload.data:
            raise ValidationError(f"{label}: the file is empty.")
        if len(upload.data) > self.max_bytes:
            limit_mb = self.max_bytes / (1024 * 1024)
            raise ValidationError(f"{label}: the file is larger than the {limit_mb:g} MB limit.")
        if allowed_extensions is not None:
            _, extension = split_safe_name(upload.name)
            if extension.lower() not in allowed_extensions:
                allowed = ", ".join(sorted(allowed_extensions))
                raise ValidationError(f"{label}: files of type {extension or '(none)'!r} are not accepted ({allowed}).")
            from exact.content_checks import check_content

            check_content(upload.data, extension.lower(), label=label, max_bytes=self.max_bytes)

    def resolve(self, relative: str) -> Path:
        """The absolute path of a stored relative path, refusing anything that would leave the media root."""
        if not relative or "\x00" in relative or relative.startswith(("/", "\\")):
            raise ValidationError("Invalid file path.")
        path = (self.root / relative).resolve()
        if not path.is_relative_to(self.root):
            raise ValidationError("Invalid file path.")
        return path

    def write_new(self, prefix: str, upload: UploadedFile) -> str:
        """Write bytes under a new, unused name below ``prefix``; never overwrites an existing file."""
        relative = build_relative_path(prefix, upload.name, reserve=_COLLISION_SUFFIX_LENGTH)
        for attempt in range(20):
            candidate = relative
            if attempt:
                stem, dot, ext = relative.rpartition("/")[2].partition(".")
                directory = relative.rpartition("/")[0]
                candidate = f"{directory}/{stem}_{secrets.token_hex(4)[:7]}{dot}{ext}"
            path = self.resolve(candidate)
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                continue
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(upload.data)
                    handle.flush()
                    os.fsync(handle.fileno())
            except BaseException:
                path.unlink(missing_ok=True)
                raise
            return candidate
        raise RuntimeError(f"could not find a free file name under {prefix!r}")

    def delete(self, relative: str) -> None:
        try:
            path = self.resolve(relative)
            path.unlink(missing_ok=True)
            self._prune_empty_dirs(path.parent)
        except (OSError, ValidationError):
            log.warning("could not delete media file %r", relative, exc_info=True)

    def delete_tree(self, relative_dir: str) -> None:
        """Remove a folder below the root (never the root itself, never outside it)."""
        import shutil

        try:
            path = self.resolve(relative_dir)
        except ValidationError:
            return
        if path == self.root or not path.is_dir():
            return
        shutil.rmtree(path, ignore_errors=True)
        self._prune_empty_dirs(path.parent)

    def _prune_empty_dirs(self, directory: Path) -> None:
        while directory != self.root and directory.is_relative_to(self.root):
            try:
                directory.rmdir()
            except OSError:
                return
            directory = directory.parent

    @contextmanager
    def staged(self) -> Iterator[StagedFiles]:
        """Files written inside the block are removed if the block raises (e.g. the row's commit failed)."""
        staged = StagedFiles(self)
        try:
            yield staged
        except BaseException:
            for relative in staged.written:
                self.delete(relative)
            raise


def media_and_private(media_root: Path, private_root: Path, *, max_bytes: int) -> tuple[MediaStorage, MediaStorage]:
    """The public media store and the private (ground-truth) store, with the same upload limit."""
    return MediaStorage(media_root, max_bytes=max_bytes), MediaStorage(private_root, max_bytes=max_bytes)

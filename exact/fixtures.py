"""Django ``dumpdata`` fixtures in and out: ``python -m exact import`` / ``export`` (docs/fixtures.md).

Import reads a JSON list of ``{"model": "app.model", "pk": ..., "fields": {...}}`` objects (upstream's
``db_backup.json`` is one), checks all of it before touching the database, and writes it in one transaction:
a bad file changes nothing. It is idempotent: what is already there (matched by natural keys, see the
``match`` notes below) is skipped and counted, so a second run adds nothing. Export writes the same format,
streamed, for Django's ``loaddata`` or for an import elsewhere.

The file is only parsed as JSON, never executed or unpickled; values are checked field by field.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import os
import tempfile
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy.exc import DataError, IntegrityError

from db import fixtures as sql
from db.database import Database
from db.upstream import LiveColumn, live_columns
from exact.errors import ValidationError

# Checked on the file's size before reading it (a dumpdata of a million scores is about 150 MB).
MAX_FIXTURE_BYTES = 200 * 1024 * 1024
# A bad file lists at most this many problems (the first ones, in file order).
MAX_PROBLEMS = 20

_INT4_MAX = 2**31 - 1
_INT8_MAX = 2**63 - 1
FILE_FIELDS = ("mlmodel", "dataset", "xaimethod")


# --- field kinds -----------------------------------------------------------------------------------------------


class _Bad(Exception):
    """One value failed its check; the message completes "<where>: field 'x' ..."."""


@dataclass(frozen=True)
class Text:
    max_length: int | None = None
    nullable: bool = False

    def check(self, value: Any) -> Any:
        if value is None:
            if self.nullable:
                return None
            raise _Bad("must be text, not null")
        if not isinstance(value, str):
            raise _Bad(f"must be text, not {_kind(value)}")
        if "\x00" in value:
            raise _Bad("contains a NUL character, which PostgreSQL text cannot hold")
        if self.max_length is not None and len(value) > self.max_length:
            raise _Bad(f"has {len(value)} characters; at most {self.max_length} fit")
        return value


@dataclass(frozen=True)
class Flag:
    def check(self, value: Any) -> Any:
        if not isinstance(value, bool):
            raise _Bad(f"must be true or false, not {_kind(value)}")
        return value


@dataclass(frozen=True)
class Number:
    nullable: bool = False

    def check(self, value: Any) -> Any:
        if value is None:
            if self.nullable:
                return None
            raise _Bad("must be a number, not null")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Bad(f"must be a number, not {_kind(value)}")
        try:
            number = float(value)
        except OverflowError:
            raise _Bad("is too large for a floating-point number") from None
        if not math.isfinite(number):
            raise _Bad(f"is {value}; only finite numbers can be stored")
        return number


@dataclass(frozen=True)
class Moment:
    """A datetime as Django's serializer writes it (ISO 8601); naive ones are taken as UTC (Django with
    USE_TZ=False, as upstream's backup was written, stores and dumps UTC wall-clock times)."""

    nullable: bool = False

    def check(self, value: Any) -> Any:
        if value is None:
            if self.nullable:
                return None
            raise _Bad("must be a date and time, not null")
        if not isinstance(value, str):
            raise _Bad(f"must be a date and time as text (ISO 8601), not {_kind(value)}")
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            raise _Bad(f"is not an ISO 8601 date and time: {_preview(value)}") from None
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=dt.UTC)
        try:
            return parsed.astimezone(dt.UTC)
        except OverflowError:
            raise _Bad(f"is out of range: {_preview(value)}") from None


def _is_naive(value: Any) -> bool:
    """A date and time the fixture gave without a time zone (counted in the summary)."""
    try:
        return isinstance(value, str) and dt.datetime.fromisoformat(value).tzinfo is None
    except ValueError:
        return False


@dataclass(frozen=True)
class Refs:
    """A many-to-many field: a list of ids, or of natural keys (lists of ``arity`` strings)."""

    arity: int

    def check(self, value: Any) -> Any:
        if not isinstance(value, list):
            raise _Bad(f"must be a list of ids or natural keys, not {_kind(value)}")
        return [_ref(item, self.arity) for item in value]


@dataclass(frozen=True)
class Ref:
    """A foreign key: an id, or a natural key (a list of ``arity`` strings)."""

    arity: int

    def check(self, value: Any) -> Any:
        return _ref(value, self.arity)


def _ref(value: Any, arity: int) -> int | tuple[str, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 < value <= _INT4_MAX:
            raise _Bad(f"refers to id {value}, which no row can have")
        return value
    if isinstance(value, list) and len(value) == arity and all(isinstance(v, str) and "\x00" not in v for v in value):
        return tuple(value)
    raise _Bad(f"must refer by an id or a natural key of {arity} text value(s), not {_preview(value)}")


# Field kinds per model, as Django's models define them (api: every field of every upstream version, see
# ../shared/spec/upstream-schema-versions.md; which of them this database stores is read from its columns).
MODELS: dict[str, dict[str, Any]] = {
    "contenttypes.contenttype": {"app_label": Text(100), "model": Text(100)},
    "auth.permission": {"name": Text(255), "content_type": Ref(2), "codename": Text(100)},
    "auth.group": {"name": Text(150), "permissions": Refs(3)},
    "auth.user": {
        "password": Text(128),
        "last_login": Moment(nullable=True),
        "is_superuser": Flag(),
        "username": Text(150),
        "first_name": Text(150),
        "last_name": Text(150),
        "email": Text(254),
        "is_staff": Flag(),
        "is_active": Flag(),
        "date_joined": Moment(),
        "groups": Refs(1),
        "user_permissions": Refs(3),
    },
    "sessions.session": {"session_data": Text(), "expire_date": Moment()},
    "api.challenge": {
        "challenge_id": Text(100),
        "title": Text(100),
        "description": Text(),
        "created_at": Moment(),
        "mlmodel": Text(100, nullable=True),
        "dataset": Text(100, nullable=True),
        "xaimethod": Text(100, nullable=True),
        "created_by": Text(150),
        "creator": Text(150, nullable=True),
        "closes_on": Moment(nullable=True),
    },
    "api.score": {
        "username": Text(150),
        "challenge_id": Text(100),
        "score": Number(nullable=True),
        "created_at": Moment(),
        "emd_score": Number(nullable=True),
        "emd_std": Number(nullable=True),
        "ima_score": Number(nullable=True),
        "ima_std": Number(nullable=True),
        "method_name": Text(100, nullable=True),
        "status": Text(20),
        "error_message": Text(nullable=True),
        "plot_base64": Text(nullable=True),
    },
}
# Without these an object means nothing (its natural key, or a time Django would not invent on loaddata).
REQUIRED = {
    "contenttypes.contenttype": ("app_label", "model"),
    "auth.permission": ("content_type", "codename"),
    "auth.group": ("name",),
    "auth.user": ("username",),
    "sessions.session": ("expire_date",),
    "api.challenge": ("challenge_id", "created_at"),
    "api.score": ("username", "challenge_id", "created_at"),
}
# What Django fills for a missing field (the field's default; '' for text without one). Fields in neither list
# are nullable and become NULL.
DEFAULTS: dict[str, dict[str, Any]] = {
    "contenttypes.contenttype": {},
    "auth.permission": {"name": ""},
    "auth.group": {"permissions": []},
    "auth.user": {
        "password": "",  # an unusable password, as Django's '' is: nobody can log in with it
        "is_superuser": False,
        "first_name": "",
        "last_name": "",
        "email": "",
        "is_staff": False,
        "is_active": True,
        "groups": [],
        "user_permissions": [],
    },
    "sessions.session": {"session_data": ""},
    "api.challenge": {
        "title": "",
        "description": "",
        "mlmodel": "",
        "dataset": "",
        "xaimethod": "",
        "created_by": "admin",
    },
    "api.score": {"status": "completed"},
}
# Models taken in this order, whatever the file's order (references point backwards along it).
IMPORT_ORDER = tuple(MODELS)
_INT8_MODELS = ("api.challenge", "api.score")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _preview(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --- parsing ---------------------------------------------------------------------------------------------------


@dataclass
class FixtureObject:
    position: int  # 1-based place in the file, for messages
    model: str
    pk: Any
    fields: dict[str, Any]  # known fields checked and converted; other fields as given (JSON values)

    @property
    def where(self) -> str:
        pk = "" if self.pk is None else f" pk {self.pk!r}"
        return f"object {self.position} ({self.model}{pk})"


@dataclass
class ParsedFixture:
    objects: dict[str, list[FixtureObject]]  # by model, in file order
    unknown_models: Counter[str]
    naive_datetimes: int

    def of(self, model: str) -> list[FixtureObject]:
        return self.objects.get(model, [])


class _Problems:
    """Problems of a file, collected so one message can list them (in file order, at most MAX_PROBLEMS)."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.more = 0

    def add(self, message: str) -> None:
        if len(self.messages) < MAX_PROBLEMS:
            self.messages.append(message)
        else:
            self.more += 1

    def raise_if_any(self) -> None:
        if not self.messages:
            return
        listed = "\n".join(f"  - {m}" for m in self.messages)
        more = f"\n  ... and {self.more} more" if self.more else ""
        count = len(self.messages) + self.more
        raise ValidationError(
            f"The fixture was not imported (nothing was changed): {count} problem(s):\n{listed}{more}"
        )


def _non_finite(name: str) -> float:
    # NaN and Infinity are not JSON; Python's parser takes them anyway. Kept as floats so the field check names
    # the field (a score of NaN), rather than failing the whole parse with no place.
    return float(name.replace("Infinity", "inf"))


def parse_fixture(data: bytes) -> ParsedFixture:
    """Check a whole fixture without the database: JSON, a list of objects with "model" and "fields", known
    models' fields of the right kinds, no duplicates. Raises ValidationError listing the problems."""
    if data[:2] == b"\x1f\x8b":
        raise ValidationError("The file is compressed (gzip); decompress it first (gunzip FILE).")
    try:
        text = data.decode("utf-8-sig")  # dumpdata writes UTF-8; a BOM added by an editor is tolerated
    except UnicodeDecodeError as exc:
        raise ValidationError(f"The file is not UTF-8 text (byte {exc.start}), so not a JSON fixture.") from None
    try:
        document = json.loads(text, parse_constant=_non_finite)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            f"The file is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
        ) from None
    except RecursionError:
        raise ValidationError("The file is not a fixture: its JSON is nested too deeply.") from None
    if not isinstance(document, list):
        raise ValidationError(
            f"The file is not a Django fixture: it must be a JSON list of objects, not {_kind(document)}."
        )
    problems = _Problems()
    objects: dict[str, list[FixtureObject]] = defaultdict(list)
    unknown: Counter[str] = Counter()
    naive = 0
    for position, item in enumerate(document, start=1):
        if not isinstance(item, dict):
            problems.add(f'object {position}: must be an object with "model" and "fields", not {_kind(item)}')
            continue
        label, fields = item.get("model"), item.get("fields")
        if not isinstance(label, str) or "." not in label:
            problems.add(f'object {position}: "model" must be text like "api.score", not {_preview(label)}')
            continue
        app_label, _, model_name = label.partition(".")
        label = f"{app_label}.{model_name.lower()}"  # Django matches model names in any case
        if not isinstance(fields, dict):
            problems.add(f'object {position} ({label}): "fields" must be an object, not {_kind(fields)}')
            continue
        if label not in MODELS:
            unknown[label] += 1
            continue
        obj = FixtureObject(position, label, None, {})
        try:
            obj.pk = _check_pk(label, item.get("pk"))
        except _Bad as bad:
            problems.add(f"{obj.where}: pk {bad}")
            continue
        kinds = MODELS[label]
        for name, value in fields.items():
            if name not in kinds:
                obj.fields[name] = value  # judged against the live columns later (or kept out)
                continue
            try:
                obj.fields[name] = kinds[name].check(value)
            except _Bad as bad:
                problems.add(f"{obj.where}: field {name!r} {bad}")
                continue
            naive += isinstance(kinds[name], Moment) and _is_naive(value)
        for name in REQUIRED[label]:
            if name not in fields:
                problems.add(f"{obj.where}: field {name!r} is missing")
        if label == "sessions.session" and obj.pk is None:
            problems.add(f"{obj.where}: a session needs its key as pk")
        objects[label].append(obj)
    _check_duplicates(objects, problems)
    problems.raise_if_any()
    return ParsedFixture(dict(objects), unknown, naive)


def _check_pk(label: str, pk: Any) -> Any:
    if label == "sessions.session":
        if not isinstance(pk, str) or not pk or len(pk) > 40 or "\x00" in pk:
            raise _Bad(f"must be a session key (text of 1 to 40 characters), not {_preview(pk)}")
        return pk
    if pk is None:
        return None  # natural-key dumps leave it out; a new id is drawn
    if isinstance(pk, bool) or not isinstance(pk, int):
        raise _Bad(f"must be a whole number, not {_kind(pk)}")
    highest = _INT8_MAX if label in _INT8_MODELS else _INT4_MAX
    if not 0 < pk <= highest:
        raise _Bad(f"{pk} is out of range (1 to {highest})")
    return pk


# The natural keys that must be unique within one fixture (the database enforces them too, less readably).
_UNIQUE_FIELDS = {
    "contenttypes.contenttype": ("app_label", "model"),
    "auth.group": ("name",),
    "auth.user": ("username",),
    "api.challenge": ("challenge_id",),
}


def _check_duplicates(objects: dict[str, list[FixtureObject]], problems: _Problems) -> None:
    for label, items in objects.items():
        seen_pk: dict[Any, int] = {}
        seen_key: dict[tuple[Any, ...], int] = {}
        names = _UNIQUE_FIELDS.get(label, ())
        for obj in items:
            if obj.pk is not None:
                if obj.pk in seen_pk:
                    problems.add(f"{obj.where}: the same pk as object {seen_pk[obj.pk]}")
                seen_pk.setdefault(obj.pk, obj.position)
            if names and all(isinstance(obj.fields.get(n), str) for n in names):
                key = tuple(obj.fields[n] for n in names)
                if key in seen_key:
                    shown = ", ".join(f"{n}={obj.fields[n]!r}" for n in names)
                    problems.add(f"{obj.where}: {shown} again (as object {seen_key[key]})")
                seen_key.setdefault(key, obj.position)


def read_fixture(path: Path, *, max_bytes: int = MAX_FIXTURE_BYTES) -> bytes:
    """The file's bytes, refusing a missing or oversized file before reading it."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ValidationError(f"No such file: {path}") from None
    if not path.is_file():
        raise ValidationError(f"Not a file: {path}")
    if size > max_bytes:
        raise ValidationError(
            f"{path} is {size / 1024 / 1024:.0f} MB; fixtures of at most {max_bytes / 1024 / 1024:.0f} MB are "
            "imported (split it with dumpdata per model)."
        )
    with path.open("rb") as handle:
        data = handle.read(max_bytes + 1)  # the file may have grown since stat
    if len(data) > max_bytes:
        raise ValidationError(f"{path} is larger than {max_bytes / 1024 / 1024:.0f} MB.")
    return data


# --- the summary -----------------------------------------------------------------------------------------------


@dataclass
class ModelResult:
    added: int = 0
    renumbered: int = 0  # of added: under a new id, the fixture's id being taken
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> objects

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())


@dataclass
class ImportSummary:
    models: dict[str, ModelResult] = field(default_factory=dict)
    kept_out: Counter[str] = field(default_factory=Counter)  # "model.field: reason" -> objects
    filled: Counter[str] = field(default_factory=Counter)  # "model.field: what was filled" -> objects
    unknown_models: Counter[str] = field(default_factory=Counter)
    links_added: int = 0  # group and permission memberships of added users and groups
    naive_datetimes: int = 0
    missing_files: list[str] = field(default_factory=list)
    media_root: Path | None = None

    def result(self, model: str) -> ModelResult:
        return self.models.setdefault(model, ModelResult())

    @property
    def added(self) -> int:
        return sum(r.added for r in self.models.values())

    @property
    def skipped(self) -> int:
        return sum(r.skipped_total for r in self.models.values())

    def lines(self) -> list[str]:
        """The summary as the CLI prints it."""
        out = [f"{self.added} object(s) added, {self.skipped} skipped."]
        for model in IMPORT_ORDER:
            if model not in self.models:
                continue
            r = self.models[model]
            renumbered = f" ({r.renumbered} under a new id: the fixture's id was taken)" if r.renumbered else ""
            out.append(f"  {model}: {r.added} added{renumbered}, {r.skipped_total} skipped")
            out.extend(f"      skipped {n}: {reason}" for reason, n in sorted(r.skipped.items()))
        if self.links_added:
            out.append(f"  {self.links_added} group/permission membership(s) added for the added users and groups")
        if self.unknown_models:
            out.append("Skipped models this importer does not know:")
            out.extend(f"  {model}: {n} object(s)" for model, n in sorted(self.unknown_models.items()))
        if self.kept_out:
            out.append("Kept out (not stored):")
            out.extend(f"  {what} ({n} object(s))" for what, n in sorted(self.kept_out.items()))
        if self.filled:
            out.append("Filled in, as Django would:")
            out.extend(f"  {what} ({n} object(s))" for what, n in sorted(self.filled.items()))
        if self.naive_datetimes:
            out.append(f"{self.naive_datetimes} date/time value(s) had no time zone and were taken as UTC.")
        if self.missing_files:
            out.append(f"Files the challenges refer to that are not in the media root {self.media_root}:")
            out.extend(f"  {line}" for line in self.missing_files)
        return out


# --- import ----------------------------------------------------------------------------------------------------


def import_fixture(db: Database, path: Path, *, media_root: Path, max_bytes: int = MAX_FIXTURE_BYTES) -> ImportSummary:
    """Import a dumpdata fixture file in one transaction; see ``import_fixture_data``."""
    return import_fixture_data(db, read_fixture(path, max_bytes=max_bytes), media_root=media_root)


def import_fixture_data(db: Database, data: bytes, *, media_root: Path) -> ImportSummary:
    """Import a fixture's bytes. Everything is checked first (``parse_fixture``); then, in one transaction
    holding write locks on the tables involved, each model is matched and added. A problem found on the way
    (a reference to nothing, a value the live column cannot take) raises ValidationError and rolls back."""
    return import_parsed(db, parse_fixture(data), media_root=media_root)


def import_parsed(db: Database, parsed: ParsedFixture, *, media_root: Path) -> ImportSummary:
    """The database part of ``import_fixture_data``, for a fixture ``parse_fixture`` accepted."""
    summary = ImportSummary(
        unknown_models=parsed.unknown_models, naive_datetimes=parsed.naive_datetimes, media_root=media_root
    )
    try:
        # No statement time limit: a million scores are staged and matched in a few statements.
        with db.transaction(statement_timeout_ms=0) as conn:
            sql.lock_for_import(conn)
            importer = _Importer(conn, parsed, summary)
            importer.content_types()
            importer.permissions()
            importer.groups()
            importer.users()
            importer.sessions()
            importer.challenges()
            importer.scores()
    except (DataError, IntegrityError) as exc:
        # What the checks above did not foresee (e.g. a value a column of an unusual type refuses): rolled back.
        reason = str(exc.orig or exc).strip().splitlines()[0]
        raise ValidationError(f"The database refused the fixture, so nothing was imported: {reason}") from exc
    summary.missing_files = _missing_files(parsed.of("api.challenge"), media_root)
    return summary


class _Importer:
    """One import's steps, sharing the id maps (fixture pk -> id in this database) of referenced models."""

    def __init__(self, conn: Any, parsed: ParsedFixture, summary: ImportSummary) -> None:
        self.conn = conn
        self.parsed = parsed
        self.summary = summary
        self.content_type_ids: dict[int, int] = {}
        self.permission_ids: dict[int, int] = {}
        self.group_ids: dict[int, int] = {}

    # Small models: matched row by row against their natural key.

    def _filled(self, obj: FixtureObject) -> dict[str, Any]:
        """The object's known fields, with Django's defaults for those it leaves out (counted)."""
        values = {}
        for name in MODELS[obj.model]:
            if name in obj.fields:
                values[name] = obj.fields[name]
            elif name in DEFAULTS[obj.model]:
                values[name] = DEFAULTS[obj.model][name]
                self.summary.filled[f"{obj.model}.{name}: missing, filled with {values[name]!r}"] += 1
            else:
                values[name] = None
        for name in obj.fields:
            if name not in MODELS[obj.model]:
                self.summary.kept_out[f"{obj.model}.{name}: the database has no column {name}"] += 1
        return values

    def _add(self, table: str, model: str, rows: list[tuple[FixtureObject, dict[str, Any]]]) -> dict[int, int]:
        """Insert rows keeping each fixture pk that is free (then the id sequence moves past them), the others
        under new ids. Returns the new id of every row, keyed by ``id()`` of its object."""
        result = self.summary.result(model)
        pks = [obj.pk for obj, _ in rows if obj.pk is not None]
        taken = sql.existing_keys(self.conn, table, "id", pks)
        keep = [(obj, values) for obj, values in rows if obj.pk is not None and obj.pk not in taken]
        sql.insert_many(self.conn, table, [{"id": obj.pk, **values} for obj, values in keep])
        if keep:
            sql.move_sequence_past_max(self.conn, table)
        ids = {id(obj): obj.pk for obj, _ in keep}
        for obj, values in rows:
            if id(obj) not in ids:
                ids[id(obj)] = sql.insert_returning_id(self.conn, table, values)
                result.renumbered += obj.pk is not None
        result.added += len(rows)
        return ids

    @staticmethod
    def _by_pk(rows: list[tuple[FixtureObject, dict[str, Any]]], ids: dict[int, int]) -> dict[int, int]:
        """Fixture pk -> id here, for the rows that had a pk (what references in the fixture use)."""
        return {obj.pk: ids[id(obj)] for obj, _ in rows if obj.pk is not None}

    def content_types(self) -> None:
        model = "contenttypes.contenttype"
        if not self.parsed.of(model):
            return
        result = self.summary.result(model)
        existing = sql.content_types(self.conn)
        to_add = []
        for obj in self.parsed.of(model):
            values = self._filled(obj)
            key = (values["app_label"], values["model"])
            if key in existing:
                if obj.pk is not None:
                    self.content_type_ids[obj.pk] = existing[key]
                result.skipped["already in the database (same app_label and model)"] += 1
            else:
                to_add.append((obj, values))
        self.content_type_ids.update(self._by_pk(to_add, self._add("django_content_type", model, to_add)))

    def _content_type(self, obj: FixtureObject, ref: int | tuple[str, ...], natural: dict[tuple[str, str], int]) -> int:
        if isinstance(ref, int):
            # An id of the fixture's own content types; one the fixture does not list means this database's
            # row with that id, as Django's loaddata would take it.
            if ref in self.content_type_ids:
                return self.content_type_ids[ref]
            if ref in natural.values():
                return ref
            raise ValidationError(
                f"{obj.where}: content type {ref} is neither in the fixture nor in the database; nothing was imported."
            )
        if ref in natural:
            return natural[ref]  # type: ignore[index]
        raise ValidationError(f"{obj.where}: content type {list(ref)} does not exist; nothing was imported.")

    def permissions(self) -> None:
        model = "auth.permission"
        if not self.parsed.of(model):
            return
        result = self.summary.result(model)
        natural = sql.content_types(self.conn)
        existing = sql.permissions(self.conn)
        seen: dict[tuple[int, str], int] = {}
        to_add = []
        for obj in self.parsed.of(model):
            values = self._filled(obj)
            values["content_type_id"] = self._content_type(obj, values.pop("content_type"), natural)
            key = (values["content_type_id"], values["codename"])
            if key in seen:
                raise ValidationError(
                    f"{obj.where}: the same content type and codename as object {seen[key]}; nothing was imported."
                )
            seen[key] = obj.position
            if key in existing:
                if obj.pk is not None:
                    self.permission_ids[obj.pk] = existing[key]
                result.skipped["already in the database (same content type and codename)"] += 1
            else:
                to_add.append((obj, values))
        self.permission_ids.update(self._by_pk(to_add, self._add("auth_permission", model, to_add)))

    def _resolve(
        self,
        obj: FixtureObject,
        refs: list[int | tuple[str, ...]],
        *,
        what: str,
        fixture_ids: dict[int, int],
        live_ids: set[int],
        natural: dict[tuple[str, ...], int],
    ) -> list[int]:
        resolved = []
        for ref in refs:
            if isinstance(ref, int):
                if ref in fixture_ids:
                    resolved.append(fixture_ids[ref])
                elif ref in live_ids:
                    resolved.append(ref)
                else:
                    raise ValidationError(
                        f"{obj.where}: {what} {ref} is neither in the fixture nor in the database; nothing was "
                        "imported."
                    )
            elif ref in natural:
                resolved.append(natural[ref])
            else:
                raise ValidationError(f"{obj.where}: {what} {list(ref)} does not exist; nothing was imported.")
        return resolved

    def _permission_lookup(self) -> tuple[set[int], dict[tuple[str, ...], int]]:
        natural = sql.permission_natural_keys(self.conn)
        return set(natural.values()), dict(natural)

    def groups(self) -> None:
        model = "auth.group"
        if not self.parsed.of(model):
            return
        result = self.summary.result(model)
        objs = self.parsed.of(model)
        existing = sql.ids_by_key(self.conn, "auth_group", "name", [o.fields["name"] for o in objs])
        live_permissions, natural_permissions = self._permission_lookup()
        to_add, links = [], []
        for obj in objs:
            values = self._filled(obj)
            refs = values.pop("permissions")
            if values["name"] in existing:
                # Left exactly as it is, permissions included: an import never changes what a group may do.
                if obj.pk is not None:
                    self.group_ids[obj.pk] = existing[values["name"]]
                result.skipped["a group with this name exists (kept as it is, permissions included)"] += 1
                continue
            permission_ids = self._resolve(
                obj, refs, what="permission", fixture_ids=self.permission_ids, live_ids=live_permissions,
                natural=natural_permissions,
            )  # fmt: skip
            to_add.append((obj, values))
            links.append((obj, permission_ids))
        added = self._add("auth_group", model, to_add)
        self.group_ids.update(self._by_pk(to_add, added))
        self.summary.links_added += sql.add_links(
            self.conn, "auth_group_permissions", "group_id", "permission_id",
            [(added[id(obj)], p) for obj, ids in links for p in ids],
        )  # fmt: skip

    def users(self) -> None:
        model = "auth.user"
        if not self.parsed.of(model):
            return
        result = self.summary.result(model)
        objs = self.parsed.of(model)
        existing = sql.existing_keys(self.conn, "auth_user", "username", [o.fields["username"] for o in objs])
        live_permissions, natural_permissions = self._permission_lookup()
        group_names = sql.ids_by_key(self.conn, "auth_group", "name", self._group_names(objs))
        live_groups = sql.existing_keys(self.conn, "auth_group", "id", self._group_ids(objs))
        to_add, memberships = [], []
        for obj in objs:
            values = self._filled(obj)
            group_refs, permission_refs = values.pop("groups"), values.pop("user_permissions")
            if values["username"] in existing:
                # Matched exactly, as Django matches usernames. The account here stays as it is: its password,
                # flags, groups and permissions are never overwritten by a fixture.
                result.skipped["a user with this username exists (kept as it is)"] += 1
                continue
            if values["date_joined"] is None:
                values["date_joined"] = dt.datetime.now(dt.UTC)
                self.summary.filled[f"{model}.date_joined: missing, filled with the time of the import"] += 1
            groups = self._resolve(
                obj, group_refs, what="group", fixture_ids=self.group_ids, live_ids=live_groups,
                natural={(name,): gid for name, gid in group_names.items()},
            )  # fmt: skip
            permissions = self._resolve(
                obj, permission_refs, what="permission", fixture_ids=self.permission_ids,
                live_ids=live_permissions, natural=natural_permissions,
            )  # fmt: skip
            to_add.append((obj, values))
            memberships.append((obj, groups, permissions))
        added = self._add("auth_user", model, to_add)
        self.summary.links_added += sql.add_links(
            self.conn, "auth_user_groups", "user_id", "group_id",
            [(added[id(obj)], g) for obj, groups, _ in memberships for g in groups],
        )  # fmt: skip
        self.summary.links_added += sql.add_links(
            self.conn, "auth_user_user_permissions", "user_id", "permission_id",
            [(added[id(obj)], p) for obj, _, permissions in memberships for p in permissions],
        )  # fmt: skip

    @staticmethod
    def _group_names(objs: list[FixtureObject]) -> list[str]:
        return sorted({ref[0] for o in objs for ref in o.fields.get("groups", []) if isinstance(ref, tuple)})

    @staticmethod
    def _group_ids(objs: list[FixtureObject]) -> list[int]:
        return sorted({ref for o in objs for ref in o.fields.get("groups", []) if isinstance(ref, int)})

    def sessions(self) -> None:
        model = "sessions.session"
        objs = self.parsed.of(model)
        if not objs:
            return
        result = self.summary.result(model)
        existing = sql.existing_keys(self.conn, "django_session", "session_key", [o.pk for o in objs])
        rows = []
        for obj in objs:
            values = self._filled(obj)
            if obj.pk in existing:
                result.skipped["a session with this key exists (kept as it is)"] += 1
                continue
            rows.append({"session_key": obj.pk, **values})
        sql.insert_many(self.conn, "django_session", rows)
        result.added += len(rows)

    # api tables: the columns come from the live table, which depends on the upstream version.

    def _rows_for_live_table(
        self, model: str, table: str, objs: list[FixtureObject]
    ) -> tuple[list[str], list[list[Any]]]:
        """(columns to write, one row per object: id then the columns). Fields without a column are kept out;
        a column nobody gives is left to its default or NULL; a required one is filled as Django would."""
        live = {c.name: c for c in live_columns(self.conn, table) if c.name != "id"}
        given = {name for obj in objs for name in obj.fields}
        for obj in objs:
            for name in obj.fields:
                if name not in live:
                    self.summary.kept_out[f"{model}.{name}: the database has no column {name}"] += 1
        columns = [c for c in live.values() if c.name in given or not (c.nullable or c.has_default)]
        rows = []
        for obj in objs:
            row: list[Any] = [obj.pk]
            for column in columns:
                row.append(self._value(model, obj, column))
            rows.append(row)
        return [c.name for c in columns], rows

    def _value(self, model: str, obj: FixtureObject, column: LiveColumn) -> Any:
        name = column.name
        if name in obj.fields:
            value = obj.fields[name]
            if name not in MODELS[model]:
                value = _by_column_type(obj, column, value)
        elif name in DEFAULTS[model]:
            value = DEFAULTS[model][name]
            self.summary.filled[f"{model}.{name}: missing, filled with {value!r}"] += 1
        elif column.nullable:
            value = None
        else:
            raise ValidationError(
                f"{obj.where}: the database requires a value for {name} (NOT NULL, no default), which the fixture "
                "does not give and Django would not fill; nothing was imported."
            )
        if value is None and not column.nullable:
            if name in FILE_FIELDS:
                self.summary.filled[f"{model}.{name}: null stored as '' (the column is NOT NULL)"] += 1
                return ""
            raise ValidationError(
                f"{obj.where}: field {name!r} is null, but this database's column requires a value; nothing was "
                "imported."
            )
        if isinstance(value, str) and column.max_length is not None and len(value) > column.max_length:
            raise ValidationError(
                f"{obj.where}: field {name!r} has {len(value)} characters; this database's column takes at most "
                f"{column.max_length}. Nothing was imported."
            )
        return value

    def challenges(self) -> None:
        model, table = "api.challenge", "api_challenge"
        objs = self.parsed.of(model)
        if not objs:
            return
        result = self.summary.result(model)
        columns, rows = self._rows_for_live_table(model, table, objs)
        staging = sql.stage(self.conn, table, columns, rows)
        sql.match_staged_challenges(self.conn, staging)
        actions = sql.staged_actions(self.conn, staging)
        sql.insert_staged(self.conn, staging, table, columns)
        result.added += actions.get("keep_id", 0) + actions.get("new_id", 0) + actions.get("no_id", 0)
        result.renumbered += actions.get("new_id", 0)
        if actions.get("exists"):
            result.skipped["a challenge with this challenge_id exists (kept as it is)"] += actions["exists"]

    def scores(self) -> None:
        model, table = "api.score", "api_score"
        objs = self.parsed.of(model)
        if not objs:
            return
        result = self.summary.result(model)
        live = {c.name: c for c in live_columns(self.conn, table)}
        has_status = "status" in live
        score_required = "score" in live and not live["score"].nullable
        kept = []
        for obj in objs:
            status = obj.fields.get("status", "completed")
            if not has_status and status != "completed":
                # Without a status column every row ranks: a failed or pending run would count as a result.
                result.skipped[f"status {status!r}, and this database has no status column (it would rank)"] += 1
                continue
            if score_required and obj.fields.get("score") is None:
                if obj.fields.get("emd_score") is not None:
                    # Upstream's primary value is emd_score when set; this database only has score.
                    obj.fields["score"] = obj.fields["emd_score"]
                    self.summary.filled[f"{model}.score: null, filled with emd_score (the column is NOT NULL)"] += 1
                else:
                    result.skipped["no score value, and this database's score column requires one"] += 1
                    continue
            kept.append(obj)
        if not kept:
            return
        columns, rows = self._rows_for_live_table(model, table, kept)
        staging = sql.stage(self.conn, table, columns, rows)
        sql.match_staged_scores(self.conn, staging)
        actions = sql.staged_actions(self.conn, staging)
        sql.insert_staged(self.conn, staging, table, columns)
        result.added += actions.get("keep_id", 0) + actions.get("new_id", 0) + actions.get("no_id", 0)
        result.renumbered += actions.get("new_id", 0)
        if actions.get("same_id"):
            result.skipped["already in the database (same id, user, challenge, time and score)"] += actions["same_id"]
        if actions.get("same_row"):
            result.skipped["already in the database under another id (same user, challenge, time and score)"] += (
                actions["same_row"]
            )


def _by_column_type(obj: FixtureObject, column: LiveColumn, value: Any) -> Any:
    """A field no upstream version has, for a column this database has: checked against the column's type."""
    kind = column.data_type
    where = f"{obj.where}: field {column.name!r}"
    checks: dict[str, Callable[[Any], Any]] = {
        "text": Text(None, True).check,
        "character varying": Text(None, True).check,
        "character": Text(None, True).check,
        "boolean": lambda v: None if v is None else Flag().check(v),
        "double precision": Number(True).check,
        "real": Number(True).check,
        "smallint": lambda v: _whole(v, 2**15 - 1),
        "integer": lambda v: _whole(v, _INT4_MAX),
        "bigint": lambda v: _whole(v, _INT8_MAX),
        "numeric": _decimal,
        "timestamp with time zone": Moment(True).check,
        "timestamp without time zone": lambda v: None if v is None else Moment().check(v).replace(tzinfo=None),
        "date": _date,
        "uuid": _uuid,
        "json": lambda v: None if v is None else json.dumps(v),
        "jsonb": lambda v: None if v is None else json.dumps(v),
        "bytea": _bytes,
    }
    if kind not in checks:
        raise ValidationError(
            f"{where}: the column has type {kind}, which this importer does not handle; nothing was imported."
        )
    try:
        return checks[kind](value)
    except _Bad as bad:
        raise ValidationError(f"{where} {bad}; nothing was imported.") from None


def _whole(value: Any, highest: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Bad(f"must be a whole number, not {_kind(value)}")
    if not -highest - 1 <= value <= highest:
        raise _Bad(f"{value} is out of range")
    return value


def _decimal(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _Bad(f"must be a decimal number, not {_kind(value)}")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise _Bad(f"is not a decimal number: {_preview(value)}") from None
    if not number.is_finite():
        raise _Bad("must be a finite decimal number")
    return str(number)


def _date(value: Any) -> dt.date | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Bad(f"must be a date as text, not {_kind(value)}")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise _Bad(f"is not an ISO 8601 date: {_preview(value)}") from None


def _uuid(value: Any) -> str | None:
    if value is None:
        return None
    try:
        return str(uuid.UUID(value))
    except (TypeError, ValueError, AttributeError):
        raise _Bad(f"is not a UUID: {_preview(value)}") from None


def _bytes(value: Any) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Bad(f"must be base64 text, not {_kind(value)}")
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        raise _Bad("is not base64") from None


def _missing_files(challenges: list[FixtureObject], media_root: Path) -> list[str]:
    """Files the fixture's challenges name that the media root lacks (a backup of the database is not one of
    the media folder). Reported only: the rows are useful without them, and the files can be copied later."""
    root = media_root.resolve()
    missing = []
    for obj in challenges:
        for name in FILE_FIELDS:
            relative = obj.fields.get(name)
            if not isinstance(relative, str) or not relative:
                continue
            label = f"{obj.fields.get('challenge_id')} {name}: {relative}"
            candidate = (root / relative).resolve()
            if Path(relative).is_absolute() or not candidate.is_relative_to(root):
                missing.append(f"{label} (outside the media root; the app will not serve it)")
            elif not candidate.is_file():
                missing.append(label)
    return missing


# --- export ----------------------------------------------------------------------------------------------------


@dataclass
class ExportSummary:
    counts: dict[str, int] = field(default_factory=dict)  # model -> objects written

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def lines(self) -> list[str]:
        parts = ", ".join(f"{model} {n}" for model, n in self.counts.items())
        return [f"Exported {self.total} object(s): {parts}."]


def format_datetime(value: dt.datetime | None) -> str | None:
    """Django's serializer format (ISO 8601 in UTC with "Z", milliseconds) -- with all six digits when the value
    has finer precision than milliseconds, which Django would cut (the export is lossless; loaddata reads both)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    value = value.astimezone(dt.UTC)
    text = value.replace(tzinfo=None).isoformat()
    if value.microsecond and value.microsecond % 1000 == 0:
        text = text[:23]
    return text + "Z"


def _json_value(value: Any) -> Any:
    """A database value as Django's JSON encoder writes it."""
    if isinstance(value, dt.datetime):
        return format_datetime(value)
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, (bytes, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dt.timedelta):
        return str(value.total_seconds())
    return value


class _FixtureWriter:
    """Writes objects one by one as dumpdata does: "[", objects separated by ",", "]"."""

    def __init__(self, out: TextIO, indent: int | None) -> None:
        self.out = out
        self.indent = indent
        self.first = True
        # As Django's serializer: no ASCII escaping; with an indent no trailing spaces after commas.
        self.options: dict[str, Any] = {"ensure_ascii": False}
        if indent:
            self.options.update(indent=indent, separators=(",", ": "))
        out.write("[\n" if indent else "[")

    def write(self, model: str, pk: Any, fields: dict[str, Any]) -> None:
        if not self.first:
            self.out.write(",\n" if self.indent else ", ")
        self.first = False
        self.out.write(json.dumps({"model": model, "pk": pk, "fields": fields}, **self.options))

    def close(self) -> None:
        self.out.write("\n]\n" if self.indent else "]\n")


def _export_objects(conn: Any, *, sessions: bool) -> Iterator[tuple[str, Any, dict[str, Any]]]:
    for row in sql.stream_content_types(conn):
        yield "contenttypes.contenttype", row["id"], {"app_label": row["app_label"], "model": row["model"]}
    for row in sql.stream_permissions(conn):
        fields = {"name": row["name"], "content_type": row["content_type_id"], "codename": row["codename"]}
        yield "auth.permission", row["id"], fields
    for row in sql.stream_groups(conn):
        yield "auth.group", row["id"], {"name": row["name"], "permissions": list(row["permissions"])}
    for row in sql.stream_users(conn):
        fields = {name: _json_value(row[name]) for name in MODELS["auth.user"] if name in row}
        fields["groups"], fields["user_permissions"] = list(row["groups"]), list(row["user_permissions"])
        yield "auth.user", row["id"], fields
    if sessions:
        for row in sql.stream_sessions(conn):
            fields = {"session_data": row["session_data"], "expire_date": format_datetime(row["expire_date"])}
            yield "sessions.session", row["session_key"], fields
    for model, table in (("api.challenge", "api_challenge"), ("api.score", "api_score")):
        # Every live column, so upstream's extra fields (status, emd_score, created_by, ...) come along.
        columns = [c.name for c in live_columns(conn, table)]
        for row in sql.stream_table(conn, table, columns):
            yield model, row["id"], {name: _json_value(row[name]) for name in columns if name != "id"}


def export_fixture(db: Database, out: TextIO, *, sessions: bool = False, indent: int | None = None) -> ExportSummary:
    """Write every object of the shared Django tables to ``out`` as a dumpdata fixture, from one snapshot,
    streaming (rows are fetched in chunks and written as they come). Sessions only when asked: their keys are
    the Django site's login cookies."""
    summary = ExportSummary()
    writer = _FixtureWriter(out, indent)
    with sql.export_snapshot(db) as conn:
        for model, pk, fields in _export_objects(conn, sessions=sessions):
            writer.write(model, pk, fields)
            summary.counts[model] = summary.counts.get(model, 0) + 1
    writer.close()
    return summary


def export_fixture_file(
    db: Database, path: Path, *, sessions: bool = False, indent: int | None = None
) -> ExportSummary:
    """``export_fixture`` into a file that appears complete or not at all (written beside it, then renamed)."""
    directory = path.resolve().parent
    if not directory.is_dir():
        raise ValidationError(f"No such folder: {directory}")
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed below, renamed only when complete
        "w", encoding="utf-8", dir=directory, prefix=f".{path.name}.", suffix=".partial", delete=False
    )
    try:
        with handle:
            summary = export_fixture(db, handle, sessions=sessions, indent=indent)
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
    return summary

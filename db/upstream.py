"""Which version of upstream's api tables this database has, read from its live columns, and the SQL that adapts
our reads and writes to it (../shared/spec/upstream-schema-versions.md; docs/upstream-versions.md).

Upstream (the Django app) kept adding columns after the spec was captured: a score may be pending, running or
failed, its primary value is ``emd_score`` when set, else ``score``, and a challenge may need its creator. We
never alter those tables; instead ``db/read_models.sql`` and the insert functions are generated for the columns
found, so every reader and writer (ours, and the triggers serving Django's own writes) agrees on what counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

SPEC_SCORE_COLUMNS = frozenset({"id", "username", "challenge_id", "score", "created_at"})
SPEC_CHALLENGE_COLUMNS = frozenset(
    {"id", "challenge_id", "title", "description", "created_at", "mlmodel", "dataset", "xaimethod"}
)
_SCORE_EXTRAS_2025_07 = frozenset(
    {"emd_score", "emd_std", "ima_score", "ima_std", "method_name", "status", "error_message"}
)
# Columns whose values we know how to fill when they are NOT NULL without a database default (as Django would).
_FILLABLE = {
    ("api_score", "status"),
    ("api_challenge", "created_by"),
    ("api_challenge", "creator"),
    ("api_challenge", "mlmodel"),
    ("api_challenge", "dataset"),
    ("api_challenge", "xaimethod"),
}
KNOWN_VERSIONS = ("spec", "2025-07", "2026-05")


class IncompatibleSchema(Exception):
    """The api tables have a required column this app cannot fill: said at start, not at the first write."""

    def __init__(self, columns: tuple[str, ...]) -> None:
        self.columns = columns
        names = ", ".join(columns)
        super().__init__(
            f"The database's Exact tables have required column(s) this version of the app does not know how to "
            f"fill: {names} (NOT NULL, no default). Every new score or challenge would fail. Give the column(s) a "
            f"database default, or run the app version that matches this database's Django migrations."
        )


@dataclass(frozen=True)
class LiveColumn:
    name: str
    data_type: str  # information_schema's data_type: 'character varying', 'double precision', ...
    nullable: bool
    has_default: bool  # a database default or an identity
    max_length: int | None


def live_columns(conn: Connection, table: str) -> list[LiveColumn]:
    """The table's columns as they are in this database (upstream versions differ), in table order."""
    query = sa.text(
        """
        SELECT column_name, data_type, is_nullable = 'YES' AS nullable,
               column_default IS NOT NULL OR is_identity = 'YES' AS has_default, character_maximum_length
        FROM information_schema.columns
        WHERE table_schema = current_schema() AND table_name = :table
        ORDER BY ordinal_position
        """
    )
    return [LiveColumn(r[0], r[1], bool(r[2]), bool(r[3]), r[4]) for r in conn.execute(query, {"table": table}).all()]


@dataclass(frozen=True)
class UpstreamSchema:
    version: str  # one of KNOWN_VERSIONS, or "unknown" (the columns are still adapted to one by one)
    score_columns: dict[str, LiveColumn]
    challenge_columns: dict[str, LiveColumn]

    @property
    def has_status(self) -> bool:
        return "status" in self.score_columns

    @property
    def has_emd_score(self) -> bool:
        return "emd_score" in self.score_columns

    @property
    def challenge_owner_columns(self) -> tuple[str, ...]:
        """Where upstream records who created a challenge (a username)."""
        return tuple(c for c in ("created_by", "creator") if c in self.challenge_columns)

    @property
    def unknown_columns(self) -> tuple[str, ...]:
        """Columns of neither the spec nor a known version (reported on the administrator page)."""
        known_score = SPEC_SCORE_COLUMNS | _SCORE_EXTRAS_2025_07 | {"plot_base64"}
        known_challenge = SPEC_CHALLENGE_COLUMNS | {"created_by", "closes_on", "creator"}
        return tuple(
            [f"api_score.{c}" for c in sorted(self.score_columns) if c not in known_score]
            + [f"api_challenge.{c}" for c in sorted(self.challenge_columns) if c not in known_challenge]
        )

    @property
    def problems(self) -> tuple[str, ...]:
        """Required columns (NOT NULL, no database default) this app cannot fill: every write would fail."""
        found = []
        for table, columns, spec in (
            ("api_score", self.score_columns, SPEC_SCORE_COLUMNS),
            ("api_challenge", self.challenge_columns, SPEC_CHALLENGE_COLUMNS),
        ):
            for column in columns.values():
                required = not column.nullable and not column.has_default
                if required and column.name not in spec and (table, column.name) not in _FILLABLE:
                    found.append(f"{table}.{column.name}")
        return tuple(found)

    def primary_score(self, alias: str | None) -> str:
        """The SQL of a row's primary value: upstream's ``emd_score`` if set, else ``score`` (no alias: for an
        index expression)."""
        prefix = f"{alias}." if alias else ""
        if self.has_emd_score:
            return f"COALESCE({prefix}emd_score, {prefix}score)"
        return f"{prefix}score"

    def ranked(self, alias: str | None) -> str:
        """The SQL condition for a row that may rank: completed (when there is a status) and with a value (also on
        the spec, where it costs nothing: a column added by a later upstream migration may hold NULLs before the
        app's next start regenerates this)."""
        prefix = f"{alias}." if alias else ""
        status = f"{prefix}status = 'completed' AND " if self.has_status else ""
        return f"{status}{self.primary_score(alias)} IS NOT NULL"

    @property
    def is_spec_rule(self) -> bool:
        """Every row ranks by its score: no status, no emd_score."""
        return not self.has_status and not self.has_emd_score

    def score_insert_function(self) -> str:
        """``exact_insert_score(username, challenge_id, score, created_at, method_name, std)``: fills the columns
        this version has as upstream's Django would (status 'completed', emd_score mirroring score)."""
        columns = ["username", "challenge_id", "score", "created_at"]
        values = ["p_username", "p_challenge_id", "p_score", "COALESCE(p_created_at, now())"]
        extra = {
            "status": "'completed'",
            "emd_score": "p_score",
            "emd_std": "p_std",
            "method_name": "left(p_method_name, 100)",
        }
        for name, value in extra.items():
            if name in self.score_columns:
                columns.append(name)
                values.append(value)
        # PL/pgSQL, not SQL: it keeps its plan for the session (a SQL function's INSERT is planned on every call).
        return f"""
CREATE OR REPLACE FUNCTION exact_insert_score(
    p_username varchar, p_challenge_id varchar, p_score double precision, p_created_at timestamptz,
    p_method_name varchar, p_std double precision
) RETURNS TABLE (id bigint, username varchar, challenge_id varchar, score double precision,
                 created_at timestamptz)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    INSERT INTO api_score AS s ({", ".join(columns)})
    VALUES ({", ".join(values)})
    RETURNING s.id, s.username, s.challenge_id, {self.primary_score("s")}, s.created_at
    INTO id, username, challenge_id, score, created_at;
    RETURN NEXT;
END $$;
"""

    def challenge_insert_function(self) -> str:
        """``exact_insert_challenge(...)``: also records the creator where upstream has a column for it."""
        columns = ["challenge_id", "title", "description", "created_at", "mlmodel", "dataset", "xaimethod"]
        values = ["p_challenge_id", "p_title", "p_description", "now()", "p_mlmodel", "p_dataset", "p_xaimethod"]
        for name in self.challenge_owner_columns:
            columns.append(name)
            values.append("left(p_owner, 150)")
        return f"""
CREATE OR REPLACE FUNCTION exact_insert_challenge(
    p_challenge_id varchar, p_title varchar, p_description text, p_mlmodel varchar, p_dataset varchar,
    p_xaimethod varchar, p_owner varchar
) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    new_id bigint;
BEGIN
    INSERT INTO api_challenge ({", ".join(columns)})
    VALUES ({", ".join(values)})
    RETURNING id INTO new_id;
    RETURN new_id;
END $$;
"""

    def ranked_view(self) -> str:
        """``exact_ranked_score``: the rows that may rank, with their primary value as ``score``."""
        return f"""
CREATE OR REPLACE VIEW exact_ranked_score AS
SELECT s.id, s.username, s.challenge_id, {self.primary_score("s")} AS score, s.created_at
FROM api_score s WHERE {self.ranked("s")};
"""


def detect(conn: Connection) -> UpstreamSchema:
    """Read the live columns of api_score and api_challenge (they must exist) and name the version."""
    score = {c.name: c for c in live_columns(conn, "api_score")}
    challenge = {c.name: c for c in live_columns(conn, "api_challenge")}
    return UpstreamSchema(_version(score, challenge), score, challenge)


def _version(score: dict[str, LiveColumn], challenge: dict[str, LiveColumn]) -> str:
    score_names, challenge_names = set(score), set(challenge)
    if score_names == SPEC_SCORE_COLUMNS and challenge_names == SPEC_CHALLENGE_COLUMNS:
        return "spec"
    if score_names == SPEC_SCORE_COLUMNS | _SCORE_EXTRAS_2025_07 and challenge_names == SPEC_CHALLENGE_COLUMNS | {
        "created_by",
        "closes_on",
    }:
        return "2025-07"
    if score_names == SPEC_SCORE_COLUMNS | _SCORE_EXTRAS_2025_07 | {"plot_base64"} and challenge_names == (
        SPEC_CHALLENGE_COLUMNS | {"creator"}
    ):
        return "2026-05"
    return "unknown"

"""Apply ``schema.sql``: the 12 Django tables (created only when missing, never altered) plus our ``exact_*`` tables."""

from __future__ import annotations

import hashlib
import re

import sqlalchemy as sa

from db import upstream
from db.database import Database
from exact import PROJECT_ROOT

SCHEMA_FILE = PROJECT_ROOT / "schema.sql"
# Tables kept up to date by triggers on api_score / exact_moderation (docs/architecture.md, "Read models").
READ_MODELS_FILE = PROJECT_ROOT / "db" / "read_models.sql"
# The api tables as each later upstream version creates them (init-db --django-schema), applied before schema.sql.
DJANGO_SCHEMAS_DIR = PROJECT_ROOT / "db" / "django_schemas"
# Any constant works; it only has to be the same for every process applying the schema.
_SCHEMA_LOCK_KEY = 0x45584143  # "EXAC"


def apply_schema(db: Database, *, django_schema: str = "spec") -> upstream.UpstreamSchema:
    """Idempotent: safe on an empty database, on one we created, and on one Django created with data in it.

    ``django_schema`` only matters for tables that do not exist yet: they are created as that upstream version's
    migrations would create them. On any database, the api tables' live columns decide how scores are read and
    written (db/upstream.py); a required column the app cannot fill raises IncompatibleSchema before anything is
    changed.
    """
    if django_schema not in upstream.KNOWN_VERSIONS:
        known = ", ".join(upstream.KNOWN_VERSIONS)
        raise ValueError(f"Unknown Django schema {django_schema!r}; choose one of {known}.")
    sql = SCHEMA_FILE.read_text()
    # No statement time limit here: the first run on a large adopted database fills the read models in one pass.
    with db.transaction(statement_timeout_ms=0) as conn:
        # Two processes starting at once (app + CLI) must not race on CREATE ... IF NOT EXISTS.
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK_KEY})
        if django_schema != "spec":
            conn.exec_driver_sql((DJANGO_SCHEMAS_DIR / f"{django_schema}.sql").read_text())
        conn.exec_driver_sql(sql)
        found = upstream.detect(conn)
        if found.problems:
            raise upstream.IncompatibleSchema(found.problems)  # rolls back: nothing created or changed
        for statement in (found.ranked_view(), found.score_insert_function(), found.challenge_insert_function()):
            conn.exec_driver_sql(statement)
        # Right after the tables exist; on its first run it fills the read models from api_score (one pass).
        conn.exec_driver_sql(read_models_sql(found))
        _refill_if_the_ranking_rule_changed(conn, found)
    return found


def _refill_if_the_ranking_rule_changed(conn: sa.Connection, found: upstream.UpstreamSchema) -> None:
    """Set-based passes read exact_ranked_score, which follows the columns found at start. When upstream's
    migrations have changed the rule since the last start (a status or emd_score column appeared), refill the
    read models once under the new one. Read models filled before rules were recorded used the spec's rule."""
    rule = "rule:" + hashlib.sha256(f"{found.primary_score('s')} / {found.ranked('s')}".encode()).hexdigest()[:32]
    known = set(conn.execute(sa.text("SELECT name FROM exact_read_model_state WHERE name LIKE 'rule:%'")).scalars())
    if rule in known:
        return
    just_filled = conn.execute(
        sa.text("SELECT filled_at = now() FROM exact_read_model_state WHERE name = 'scores'")
    ).scalar_one_or_none()
    if not just_filled and (known or not found.is_spec_rule):
        conn.execute(sa.text("SELECT exact_rebuild_read_models()"))
    conn.execute(sa.text("DELETE FROM exact_read_model_state WHERE name LIKE 'rule:%'"))
    conn.execute(sa.text("INSERT INTO exact_read_model_state (name) VALUES (:rule)"), {"rule": rule})


def read_models_sql(found: upstream.UpstreamSchema) -> str:
    """db/read_models.sql with the all-submissions indexes on this database's primary value (@index_* filled in).
    The triggers themselves do not depend on the columns (exact_may_rank reads the row as JSON)."""
    text = READ_MODELS_FILE.read_text()
    where = found.ranked(None)
    key = found.primary_score(None)
    plain = found.is_spec_rule
    # The spec keeps its original index names; any other rule gets names carrying the rule, so a changed rule
    # (status first, emd_score in a later migration) builds new indexes rather than keeping a stale one.
    rule = hashlib.sha256(f"{key} / {where}".encode()).hexdigest()[:8]
    text = re.sub(
        r"@index_name\((\w+)\)",
        lambda m: f"exact_score_challenge_{m.group(1)}_idx" if plain else f"exact_score_rank_{rule}_{m.group(1)}_idx",
        text,
    )
    text = text.replace("@index_score", "score" if plain else f"({key})")
    return text.replace("@index_where", "" if plain else f"WHERE {where}")

"""Apply ``schema.sql``: the 12 Django tables (created only when missing, never altered) plus our ``exact_*`` tables."""

from __future__ import annotations

import sqlalchemy as sa

from db.database import Database
from exact import PROJECT_ROOT

SCHEMA_FILE = PROJECT_ROOT / "schema.sql"
# Tables kept up to date by triggers on api_score / exact_moderation (docs/architecture.md, "Read models").
READ_MODELS_FILE = PROJECT_ROOT / "db" / "read_models.sql"
# Any constant works; it only has to be the same for every process applying the schema.
_SCHEMA_LOCK_KEY = 0x45584143  # "EXAC"


def apply_schema(db: Database) -> None:
    """Idempotent: safe on an empty database, on one we created, and on one Django created with data in it."""
    sql = SCHEMA_FILE.read_text()
    read_models = READ_MODELS_FILE.read_text()
    # No statement time limit here: the first run on a large adopted database fills the read models in one pass.
    with db.transaction(statement_timeout_ms=0) as conn:
        # Two processes starting at once (app + CLI) must not race on CREATE ... IF NOT EXISTS.
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK_KEY})
        conn.exec_driver_sql(sql)
        # Right after the tables exist; on its first run it fills the read models from api_score (one pass).
        conn.exec_driver_sql(read_models)

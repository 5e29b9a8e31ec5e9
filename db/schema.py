"""Apply ``schema.sql``: the 12 Django tables (created only when missing, never altered) plus our ``exact_*`` tables."""

from __future__ import annotations

import sqlalchemy as sa

from db.database import Database
from exact import PROJECT_ROOT

SCHEMA_FILE = PROJECT_ROOT / "schema.sql"
# Any constant works; it only has to be the same for every process applying the schema.
_SCHEMA_LOCK_KEY = 0x45584143  # "EXAC"


def apply_schema(db: Database) -> None:
    """Idempotent: safe on an empty database, on one we created, and on one Django created with data in it."""
    sql = SCHEMA_FILE.read_text()
    with db.transaction() as conn:
        # Two processes starting at once (app + CLI) must not race on CREATE ... IF NOT EXISTS.
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK_KEY})
        conn.exec_driver_sql(sql)

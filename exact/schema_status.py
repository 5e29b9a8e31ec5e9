"""What the administrator's Database page shows: which upstream schema version the api tables have, how the app
adapts to it, and what it could not map (db/upstream.py decides; docs/upstream-versions.md explains)."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from db import upstream
from db.database import Database
from exact.accounts import require_user
from exact.errors import PermissionDenied

# What the app writes into each extra column it knows (shown to the administrator).
_FILLED = {
    "api_score.status": "'completed' for every score the app stores",
    "api_score.emd_score": "the same value as score (upstream mirrors them)",
    "api_score.method_name": "the method name of a scored submission; empty for typed scores",
    "api_score.emd_std": "left empty (a per-sample spread is not published)",
    "api_score.ima_score": "left empty",
    "api_score.ima_std": "left empty",
    "api_score.error_message": "left empty",
    "api_score.plot_base64": "left empty",
    "api_challenge.created_by": "the organiser's username",
    "api_challenge.creator": "the organiser's username",
    "api_challenge.closes_on": "left empty (the app keeps its own phases)",
}


@dataclass(frozen=True)
class SchemaStatus:
    version: str
    ranking_rule: str  # which rows rank and by which value, in words
    extra_columns: dict[str, str]  # column -> what the app writes there
    unknown_columns: tuple[str, ...]  # neither spec nor a known version: kept as they are, never written
    api_migrations: tuple[str, ...]  # django_migrations rows of the api app


def schema_status(db: Database, actor_id: int | None) -> SchemaStatus:
    with db.connect() as conn:
        user = require_user(conn, actor_id, "see the database's schema")
        if not user.is_admin:
            raise PermissionDenied("Only administrators may see the database's schema.")
        found = upstream.detect(conn)
        migrations = tuple(
            conn.execute(sa.text("SELECT name FROM django_migrations WHERE app = 'api' ORDER BY name")).scalars()
        )
    extras = [f"api_score.{c}" for c in found.score_columns if c not in upstream.SPEC_SCORE_COLUMNS] + [
        f"api_challenge.{c}" for c in found.challenge_columns if c not in upstream.SPEC_CHALLENGE_COLUMNS
    ]
    value = "emd_score if set, else score" if found.has_emd_score else "score"
    status = ", only with status 'completed'" if found.has_status else ""
    rule = f"Rows rank by {value}{status}, never without a value"
    return SchemaStatus(
        version=found.version,
        ranking_rule=rule + ".",
        extra_columns={c: _FILLED[c] for c in sorted(extras) if c in _FILLED},
        unknown_columns=found.unknown_columns,
        api_migrations=migrations,
    )

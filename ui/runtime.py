"""Process-wide resources (settings, database, media storage), created once per server process."""

from __future__ import annotations

import logging
import os

import streamlit as st

from db.database import Database
from db.schema import apply_schema
from exact.config import Settings, ensure_local_secret_key, load_settings
from exact.storage import MediaStorage

log = logging.getLogger("exact")

_SECRET_NAMES = (
    "DATABASE_URL",
    "EXACT_SECRET_KEY",
    "EXACT_MEDIA_ROOT",
    "EXACT_PRIVATE_ROOT",
    "EXACT_MAX_UPLOAD_MB",
    "EXACT_DATA_DIR",
    "EXACT_HOST",
    "EXACT_SESSION_DAYS",
    "EXACT_MAX_QUEUED_PER_USER",
    "EXACT_SCORING_SECONDS",
    "EXACT_SCORING_PROCESSES",
    "EXACT_STATEMENT_TIMEOUT_MS",
    "EXACT_DB_POOL_SIZE",
    "EXACT_API_RATE_PER_MINUTE",
)


def _environment_with_secrets() -> dict[str, str]:
    """Environment variables, with Streamlit secrets (.streamlit/secrets.toml) filling the gaps."""
    env = dict(os.environ)
    try:
        for name in _SECRET_NAMES:
            if name not in env and name in st.secrets:
                env[name] = str(st.secrets[name])
    except (FileNotFoundError, KeyError):
        pass
    except Exception:  # no secrets file is the normal case; a malformed one must not stop the app
        log.warning("could not read Streamlit secrets", exc_info=True)
    return env


@st.cache_resource(show_spinner=False)
def get_settings() -> Settings:
    return load_settings(_environment_with_secrets())


@st.cache_resource(show_spinner=False)
def _database(url: str) -> Database:
    settings = get_settings()
    # Every statement of the app is bounded in time; the pool holds db_pool_size connections (plus a burst).
    db = Database(url, pool_size=settings.db_pool_size, statement_timeout_ms=settings.statement_timeout_ms)
    # Raises DatabaseUnavailable when unreachable; cache_resource keeps no failed result, so the next run retries.
    apply_schema(db)
    return db


@st.cache_resource(show_spinner="Starting the embedded database…")
def _embedded_url(pgdata: str) -> str:
    from pathlib import Path

    from db.embedded import start_embedded_server

    return start_embedded_server(Path(pgdata))


def get_db() -> Database:
    settings = get_settings()
    url = settings.database_url or _embedded_url(str(settings.embedded_pgdata))
    return _database(url)


def get_storage() -> MediaStorage:
    return get_settings().stores()[0]


def get_private_storage() -> MediaStorage:
    """Ground-truth files: read by the scorer only, never offered for download."""
    return get_settings().stores()[1]


@st.cache_resource(show_spinner=False)
def get_secret_key() -> str:
    settings = get_settings()
    return settings.secret_key or ensure_local_secret_key(settings.data_dir)


@st.cache_resource(show_spinner=False)
def _worker_for(url: str):
    """EXACT_SCORING_PROCESSES scoring processes and, with the optional PyTorch extra, one training process,
    supervised by a thread of this server process."""
    from exact.trained_models import models_available
    from exact.worker import ScoringProcesses, WorkerConfig

    settings = get_settings()
    config = WorkerConfig(
        database_url=url,
        media_root=settings.media_root,
        private_root=settings.private_root,
        max_bytes=settings.max_upload_bytes,
        time_budget=settings.scoring_seconds,
        statement_timeout_ms=settings.statement_timeout_ms,
    )
    trainers = 1 if models_available() else 0
    return ScoringProcesses(config, settings.scoring_processes, trainers=trainers).start()


def ensure_worker() -> None:
    """One set of background scorers per server process (EXACT_WORKER=off disables it, e.g. when they run
    separately with ``python -m exact worker``)."""
    if os.environ.get("EXACT_WORKER", "on").lower() in {"off", "0", "false", "no"}:
        return
    _worker_for(get_db().url)


def announce_setup_token() -> None:
    """Make sure this process has a set-up token and has printed it (once per token) on its console and log."""
    from exact.accounts import setup_token

    _announce_setup_token(setup_token())


@st.cache_resource(show_spinner=False)
def _announce_setup_token(token: str) -> None:
    # Like Jupyter's token: whoever can read the server's console or log may create the first administrator.
    address = st.get_option("server.address") or get_settings().host
    if address in {"0.0.0.0", "::", ""}:  # noqa: S104 - only compared: the server itself is reachable on loopback
        address = "127.0.0.1"
    if ":" in address:
        address = f"[{address}]"
    line = f"Exact set-up token: {token} (open http://{address}:{st.get_option('server.port')}/?setup_token={token})"
    print(line, flush=True)
    log.warning("%s", line)

"""The process-wide resources the HTTP routes share with the pages: the same database pool, storages, settings
and secret key (created once per process by ui.runtime), and the background scorers."""

from __future__ import annotations

from db.database import Database
from exact.config import Settings
from exact.storage import MediaStorage


def settings() -> Settings:
    from ui.runtime import get_settings

    return get_settings()


def database() -> Database:
    from ui.runtime import ensure_worker, get_db

    db = get_db()
    ensure_worker()  # a server used only through the API must still score what it takes in
    return db


def media() -> MediaStorage:
    from ui.runtime import get_storage

    return get_storage()


def secret_key() -> str:
    from ui.runtime import get_secret_key

    return get_secret_key()

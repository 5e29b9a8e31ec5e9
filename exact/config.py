"""Settings, read from the environment (or Streamlit secrets, merged in by the UI layer).

Every setting has a default that works on a fresh clone; see README "Configuration".
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from exact import PROJECT_ROOT

if TYPE_CHECKING:
    from exact.storage import MediaStorage

DEFAULT_MAX_UPLOAD_MB = 200
SECRET_KEY_MIN_LENGTH = 32


@dataclass(frozen=True)
class Settings:
    database_url: str | None
    data_dir: Path
    media_root: Path
    private_root: Path
    max_upload_mb: int
    secret_key: str | None
    session_days: int
    host: str = "127.0.0.1"
    max_queued_per_user: int = 3
    scoring_seconds: int = 900
    statement_timeout_ms: int = 5000
    db_pool_size: int = 10
    scoring_processes: int = 1
    api_rate_per_minute: int = 120  # requests per token (or client address) per minute (docs/api.md)

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024

    def stores(self) -> tuple[MediaStorage, MediaStorage]:
        """(media, private) storages for these settings."""
        from exact.storage import media_and_private

        return media_and_private(self.media_root, self.private_root, max_bytes=self.max_upload_bytes)

    @property
    def embedded_pgdata(self) -> Path:
        return self.data_dir / "postgres"


def _int_env(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a whole number, not {raw!r}") from exc
    if value <= 0:
        raise ValueError(f"{name} must be positive, not {value}")
    return value


def load_settings(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    data_dir = Path(env.get("EXACT_DATA_DIR") or PROJECT_ROOT / ".data").resolve()
    media_root = Path(env.get("EXACT_MEDIA_ROOT") or PROJECT_ROOT / "media").resolve()
    # Ground-truth masks: outside the media root, which a web server (e.g. Django's) may serve publicly.
    private_root = Path(env.get("EXACT_PRIVATE_ROOT") or data_dir / "private").resolve()
    if private_root.is_relative_to(media_root) or media_root.is_relative_to(private_root):
        raise ValueError("EXACT_PRIVATE_ROOT must not be inside EXACT_MEDIA_ROOT (or the other way round)")
    secret_key = env.get("EXACT_SECRET_KEY") or None
    if secret_key is not None and len(secret_key) < SECRET_KEY_MIN_LENGTH:
        # A short key can be guessed offline from one signed cookie, and then every session can be forged.
        raise ValueError(
            f"EXACT_SECRET_KEY must be at least {SECRET_KEY_MIN_LENGTH} characters long (it has {len(secret_key)}); "
            'generate one with: python -c "import secrets; print(secrets.token_urlsafe(48))"'
        )
    return Settings(
        database_url=env.get("DATABASE_URL") or None,
        data_dir=data_dir,
        media_root=media_root,
        private_root=private_root,
        max_upload_mb=_int_env(env, "EXACT_MAX_UPLOAD_MB", DEFAULT_MAX_UPLOAD_MB),
        secret_key=secret_key,
        session_days=_int_env(env, "EXACT_SESSION_DAYS", 14),
        host=(env.get("EXACT_HOST") or "127.0.0.1").strip(),
        max_queued_per_user=_int_env(env, "EXACT_MAX_QUEUED_PER_USER", 3),
        scoring_seconds=_int_env(env, "EXACT_SCORING_SECONDS", 900),
        statement_timeout_ms=_int_env(env, "EXACT_STATEMENT_TIMEOUT_MS", 5000),
        db_pool_size=_int_env(env, "EXACT_DB_POOL_SIZE", 10),
        scoring_processes=_int_env(env, "EXACT_SCORING_PROCESSES", os.cpu_count() or 1),
        api_rate_per_minute=_int_env(env, "EXACT_API_RATE_PER_MINUTE", 120),
    )


def ensure_local_secret_key(data_dir: Path) -> str:
    """Return the secret kept in ``<data_dir>/secret_key``, creating it on first use.

    Used only when no EXACT_SECRET_KEY is configured, so a local install works with no set-up
    while the key still never lives in the code or the repository.
    """
    path = data_dir / "secret_key"
    if path.exists():
        key = path.read_text().strip()
        if len(key) >= SECRET_KEY_MIN_LENGTH:
            return key
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key

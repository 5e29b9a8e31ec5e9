"""Test-only Django settings: the reference implementation of the schema Exact shares with the Django app.

The database comes from ``EXACT_DJANGO_DB_URL`` (the SQLAlchemy URL the test fixtures hand out, e.g.
``postgresql+psycopg://postgres@127.0.0.1:5432/db`` or, for a Unix socket,
``postgresql+psycopg://postgres:@/db?host=/path/to/socketdir``).

``EXACT_DJANGO_SCHEMA`` picks the upstream version whose models and migrations are installed
(../shared/spec/upstream-schema-versions.md): ``spec`` (default, the contract: ``api`` beside this file),
``2025-07`` (``versions/v2025_07``: one generated ``api.0001_initial`` plus the ``user_api`` app) or ``2026-05``
(``versions/v2026_05``: ``api.0001`` to ``0004``). Each version's apps are plain packages named ``api`` (and
``user_api``) in their own folder, put first on ``sys.path``, so labels, migration names and imports are upstream's.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit


def database_from_url(url: str) -> dict[str, object]:
    parts = urlsplit(url)
    if not parts.scheme.startswith(("postgresql", "postgres")):
        raise ValueError(f"not a PostgreSQL URL: {parts.scheme}://...")
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    host = query.pop("host", None) or unquote(parts.hostname or "")
    port = query.pop("port", None) or (str(parts.port) if parts.port else "")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": host,
        "PORT": port,
        "OPTIONS": query,
    }


SECRET_KEY = "test-only-not-secret"
DEBUG = False
ALLOWED_HOSTS: list[str] = []

HERE = Path(__file__).resolve().parent
# version -> (folder holding its apps, or None for the ones beside this file; its apps after the built-in ones)
SCHEMA_VERSIONS: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "spec": (None, ("api.apps.ApiConfig",)),
    "2025-07": ("v2025_07", ("api.apps.ApiConfig", "user_api.apps.UserApiConfig")),
    "2026-05": ("v2026_05", ("api.apps.ApiConfig",)),
}
SCHEMA_VERSION = os.environ.get("EXACT_DJANGO_SCHEMA") or "spec"
if SCHEMA_VERSION not in SCHEMA_VERSIONS:
    raise ValueError(f"EXACT_DJANGO_SCHEMA={SCHEMA_VERSION!r}: choose one of {', '.join(SCHEMA_VERSIONS)}")
_folder, _apps = SCHEMA_VERSIONS[SCHEMA_VERSION]
if _folder is not None:
    # Before this folder's own ``api``: settings load before any app is imported.
    sys.path.insert(0, str(HERE / "versions" / _folder))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    *_apps,
]

# Only what the admin's system checks require; nothing is served.
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": database_from_url(os.environ["EXACT_DJANGO_DB_URL"])}

# Built-in apps pin AutoField themselves; the api (and user_api) apps use BigAutoField through their AppConfig.
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

USE_TZ = True
TIME_ZONE = "UTC"

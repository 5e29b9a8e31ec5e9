"""Test-only Django settings: the reference implementation of the schema Exact shares with the Django app.

The database comes from ``EXACT_DJANGO_DB_URL`` (the SQLAlchemy URL the test fixtures hand out, e.g.
``postgresql+psycopg://postgres@127.0.0.1:5432/db`` or, for a Unix socket,
``postgresql+psycopg://postgres:@/db?host=/path/to/socketdir``).
"""

from __future__ import annotations

import os
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

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "api.apps.ApiConfig",
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

# Built-in apps pin AutoField themselves; the api app uses BigAutoField through its AppConfig.
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

USE_TZ = True
TIME_ZONE = "UTC"

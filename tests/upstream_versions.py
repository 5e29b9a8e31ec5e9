"""Run the test-only Django project (tests/django_project) at one upstream schema version, in a subprocess.

Versions (../shared/spec/upstream-schema-versions.md): ``spec`` (the contract, db-schema.md), ``2025-07`` and
``2026-05``; ``EXACT_DJANGO_SCHEMA`` tells tests/django_project/settings.py which models and migrations to load.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from exact import PROJECT_ROOT

VERSIONS = ("spec", "2025-07", "2026-05")
UPSTREAM_VERSIONS = VERSIONS[1:]
RUN_DJANGO = Path(__file__).resolve().parent / "django_project" / "run_django.py"
DJANGO_SCHEMAS_DIR = PROJECT_ROOT / "db" / "django_schemas"

# Tables Django's migrations create at each version (built-in apps + api, plus user_api in 2025-07).
SPEC_TABLES = (
    "api_challenge",
    "api_score",
    "auth_group",
    "auth_group_permissions",
    "auth_permission",
    "auth_user",
    "auth_user_groups",
    "auth_user_user_permissions",
    "django_admin_log",
    "django_content_type",
    "django_migrations",
    "django_session",
)
TABLES = {
    "spec": SPEC_TABLES,
    "2025-07": tuple(sorted((*SPEC_TABLES, "user_api_company"))),
    "2026-05": SPEC_TABLES,
}


def schema_file(version: str) -> Path:
    """db/django_schemas/<version>.sql: the tables that version creates differently, run before schema.sql."""
    if version not in UPSTREAM_VERSIONS:
        raise ValueError(f"no schema file for {version!r}")
    return DJANGO_SCHEMAS_DIR / f"{version}.sql"


def run_django(
    url: str, version: str, *args: str, check: bool = True, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``run_django.py <args>`` against ``url`` with that version's models; fails the test on a non-zero exit."""
    if version not in VERSIONS:
        raise ValueError(f"unknown schema version {version!r}")
    env = {
        **os.environ,
        "EXACT_DJANGO_DB_URL": url,
        "EXACT_DJANGO_SCHEMA": version,
        "DJANGO_SETTINGS_MODULE": "settings",
        "PYTHONWARNINGS": "ignore",
    }
    result = subprocess.run(
        [sys.executable, str(RUN_DJANGO), *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"django [{version}] {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result


def django_migrate(url: str, version: str) -> None:
    """Build ``url``'s schema with that version's own migrations (Django's ``migrate``)."""
    run_django(url, version, "migrate", "--no-input", "-v", "0")


def django_shell(url: str, version: str, code: str, *, marker: str = "RESULT") -> list[str]:
    """Run ``code`` in ``manage.py shell -c``; the lines it printed that start with ``marker`` (minus the marker).

    (Django 5.2's shell also prints how many objects it auto-imported; only marked lines count.)
    """
    out = run_django(url, version, "shell", "-c", code).stdout
    return [line[len(marker) :].strip() for line in out.splitlines() if line.startswith(marker)]

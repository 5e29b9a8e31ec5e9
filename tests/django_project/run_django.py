"""Run one Django management command against ``EXACT_DJANGO_DB_URL`` in its own process.

Usage: ``python tests/django_project/run_django.py <command> [args...]`` — or ``shell -c "<python>"``.
Kept out of the pytest process so Django's global setup never leaks into the tests.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> None:
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["run_django.py", *argv])


if __name__ == "__main__":
    main(sys.argv[1:])

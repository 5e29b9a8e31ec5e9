"""Helpers for the Streamlit AppTest page tests (tests/test_pages.py): finding widgets, logging in, reading the DB."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from db.database import Database
from exact.sessions import start_session

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "app.py"
SECRET_KEY = "test-secret-key-for-the-page-tests-0123456789abcdef"

VISITOR_PAGES = {
    "app_pages/home.py",
    "app_pages/challenges.py",
    "app_pages/challenge.py",
    "app_pages/leaderboard.py",
    "app_pages/login.py",
    "app_pages/register.py",
    "app_pages/result.py",  # hidden from the menu, reached from leaderboards and submissions
    "app_pages/compare.py",
    "app_pages/present.py",  # hidden: the workshop presentation view, reached by its deep link
}
BROWSE_PAGES = VISITOR_PAGES - {"app_pages/login.py", "app_pages/register.py"}
PARTICIPANT_PAGES = BROWSE_PAGES | {"app_pages/submit.py", "app_pages/profile.py", "app_pages/logout.py"}
ORGANISER_PAGES = PARTICIPANT_PAGES | {"app_pages/manage_challenge.py", "app_pages/dashboard.py"}
SUPERUSER_PAGES = ORGANISER_PAGES | {"app_pages/users.py", "app_pages/database.py"}
ALL_PAGES = {f"app_pages/{p.name}" for p in (REPO / "app_pages").glob("*.py") if p.name != "__init__.py"}

# The title each page shows (challenge.py shows the challenge's own title).
PAGE_TITLES = {
    "app_pages/home.py": "Exact",
    "app_pages/challenges.py": "Challenges",
    "app_pages/leaderboard.py": "Leaderboard",
    "app_pages/login.py": "Log in",
    "app_pages/register.py": "Register",
    "app_pages/submit.py": "Submit a score",
    "app_pages/profile.py": "Profile",
    "app_pages/manage_challenge.py": "Create / edit challenge",
    "app_pages/users.py": "Users",
    "app_pages/database.py": "Database",
    "app_pages/setup.py": "Welcome to Exact",
    "app_pages/result.py": "Submission result",
    "app_pages/compare.py": "Compare methods",
    "app_pages/present.py": "Presentation",
    "app_pages/dashboard.py": "Challenge dashboard",
}


def new_app() -> AppTest:
    return AppTest.from_file(str(APP), default_timeout=30)


def log_in_state(at: AppTest, db: Database, user_id: int) -> str:
    """Put a real, live session of the user into the AppTest's session state (what a login leaves behind)."""
    session_id, _cookie = start_session(db, user_id, secret_key=SECRET_KEY, days=1)
    at.session_state["auth_user_id"] = user_id
    at.session_state["auth_session_id"] = session_id
    return session_id


def run(at: AppTest) -> AppTest:
    """Run the app and fail on any exception element (the app's own error boxes are checked by the tests)."""
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def open_page(app, db: Database, user, page: str, **query: str) -> AppTest:
    """A fresh browser session of ``user`` (None: a visitor) on ``page`` with the given query string."""
    at = app()
    if user is not None:
        log_in_state(at, db, user.id)
    run(at)
    at.query_params.clear()
    for name, value in query.items():
        at.query_params[name] = value
    return run(at.switch_page(page))


def goto(at: AppTest, page: str) -> AppTest:
    """Open a page as its navigation link does (the link carries no query string) and run."""
    at.query_params.clear()
    return run(at.switch_page(page))


def offered_pages(at: AppTest) -> set[str]:
    """The pages the last run's st.navigation offered, as paths relative to the repository."""
    pages = set()
    for info in at._registered_pages.values():  # AppTest keeps the navigation registry of the last run
        script = info.get("script_path")
        if script:
            pages.add(Path(str(script)).resolve().relative_to(REPO).as_posix())
    return pages


def title(at: AppTest) -> str:
    assert at.title, "the page shows no title"
    return at.title[0].value


def one(elements: Any, label: str) -> Any:
    """The single widget with this label (forms here use labels, not keys)."""
    found = [element for element in elements if element.label == label]
    assert len(found) == 1, f"expected one widget labelled {label!r}, found {[e.label for e in elements]}"
    return found[0]


def click(at: AppTest, label: str) -> AppTest:
    one(at.button, label).click()
    return run(at)


def values(elements: Any) -> list[str]:
    return [str(element.value) for element in elements]


def messages(at: AppTest) -> dict[str, list[str]]:
    return {
        "error": values(at.error),
        "warning": values(at.warning),
        "info": values(at.info),
        "success": values(at.success),
    }


def scalar(db: Database, query: str, **params: Any) -> Any:
    with db.connect() as conn:
        return conn.execute(sa.text(query), params).scalar()


def rows(db: Database, query: str, **params: Any) -> list[dict[str, Any]]:
    with db.connect() as conn:
        return [dict(row) for row in conn.execute(sa.text(query), params).mappings()]

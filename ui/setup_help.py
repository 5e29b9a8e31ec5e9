"""The page shown instead of a traceback when the database is missing or unreachable."""

from __future__ import annotations

import streamlit as st
from sqlalchemy.engine import make_url

from db.upstream import IncompatibleSchema
from exact.errors import DatabaseUnavailable


def _describe_target() -> str:
    from ui.runtime import get_settings

    settings = get_settings()
    if not settings.database_url:
        return f"the embedded PostgreSQL server in `{settings.embedded_pgdata}`"
    try:
        url = make_url(settings.database_url)
        return f"`{url.render_as_string(hide_password=True)}` (from `DATABASE_URL`)"
    except Exception:
        return "the server in `DATABASE_URL`, which is not a valid database URL"


def render_database_help(exc: BaseException) -> None:
    from ui.runtime import get_settings

    try:
        get_settings()
    except Exception as settings_error:  # a malformed setting, not the database, is the problem
        st.title("Exact's configuration has an error")
        st.error(str(settings_error))
        st.markdown("Fix the setting (environment variable or `.streamlit/secrets.toml`) and restart the app.")
        return
    if isinstance(exc, IncompatibleSchema):  # reachable, but its tables need what this app cannot write
        st.title("Exact cannot use this database")
        st.error(str(exc))
        st.markdown(f"Exact tried {_describe_target()}. Nothing was changed in it.")
        return
    st.title("Exact cannot reach its database")
    unavailable = isinstance(exc, DatabaseUnavailable)
    st.error(
        ("The database is unavailable right now." if unavailable else "The database could not be opened.")
        + f" Exact tried {_describe_target()}."
    )
    st.markdown(
        """
**What to check**

- To use your own PostgreSQL server, set `DATABASE_URL`, for example
  `DATABASE_URL=postgresql+psycopg://USER:PASSWORD@HOST:5432/DBNAME`, and make sure the server is running.
- To use the embedded server instead, unset `DATABASE_URL` and start the app with `make run`.
- If the database was only restarted, this page recovers by itself: reload in a moment.
"""
    )
    if st.button("Try again", type="primary"):
        st.rerun()

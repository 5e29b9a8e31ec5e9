"""How errors reach the user: their own mistakes as messages, ours as an apology with a reference."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from exact.errors import DatabaseUnavailable, QueryTooSlow, UserError

log = logging.getLogger("exact")

DATABASE_UNAVAILABLE = (
    "The database is unavailable right now. Your last action was not saved; please try again in a moment."
)


def show_too_slow(exc: QueryTooSlow, *, where: str) -> None:
    """A statement hit its time limit: the user may retry or ask for less; the log says which query it was."""
    log.warning("query too slow in %s (limit %s ms): %s", where, exc.timeout_ms, exc.statement)
    st.error(QueryTooSlow.MESSAGE)


def show_unexpected(exc: BaseException, *, where: str) -> str:
    reference = uuid.uuid4().hex[:8]
    log.error("unexpected error in %s (reference %s)", where, reference, exc_info=exc)
    st.error(f"Sorry, something went wrong on our side. If it keeps happening, quote reference **{reference}**.")
    return reference


@contextmanager
def user_errors(where: str = "page") -> Iterator[None]:
    """Show UserError text in the page; anything unexpected as an apology. Script control (rerun) passes through."""
    try:
        yield
    except UserError as exc:
        st.error(str(exc))
    except QueryTooSlow as exc:
        show_too_slow(exc, where=where)
    except DatabaseUnavailable:
        log.warning("database unavailable in %s", where)
        st.error(DATABASE_UNAVAILABLE)
    except Exception as exc:
        show_unexpected(exc, where=where)

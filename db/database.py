"""The Database class owns the SQLAlchemy engine; every query goes through ``connect``/``transaction``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from exact.errors import DatabaseUnavailable


def normalise_url(url: str) -> str:
    """Accept the URL forms people paste (postgres://, postgresql://) and use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class Database:
    def __init__(self, url: str, *, pool_size: int = 10, max_overflow: int = 40) -> None:
        self.url = normalise_url(url)
        # pre_ping: a connection that died with a database restart is replaced instead of failing a page.
        self.engine: Engine = sa.create_engine(
            self.url,
            pool_pre_ping=True,
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_timeout=10,
            connect_args={"connect_timeout": 5},
        )

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection for reads (autocommit-free, rolled back at the end)."""
        try:
            with self.engine.connect() as conn:
                yield conn
        except (OperationalError, InterfaceError) as exc:
            if _is_connection_problem(exc):
                raise DatabaseUnavailable(str(exc.orig or exc)) from exc
            raise

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A connection inside one transaction: committed on success, rolled back on any exception."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except (OperationalError, InterfaceError) as exc:
            if _is_connection_problem(exc):
                raise DatabaseUnavailable(str(exc.orig or exc)) from exc
            raise

    def ping(self) -> None:
        with self.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()


def _is_connection_problem(exc: DBAPIError) -> bool:
    return bool(exc.connection_invalidated) or isinstance(exc, (OperationalError, InterfaceError))

"""The Database class owns the SQLAlchemy engine; every query goes through ``connect``/``transaction``.

Every connection carries a ``statement_timeout`` (EXACT_STATEMENT_TIMEOUT_MS in the app), so no query can hold a
page, a pooled connection or a lock for long. A statement cancelled by it raises ``QueryTooSlow``; a lost or
unreachable server raises ``DatabaseUnavailable``. Long maintenance lifts the limit for one transaction
(``unbounded()`` or ``transaction(statement_timeout_ms=...)``), never for the whole engine.

Reads run in autocommit: under READ COMMITTED every statement has its own snapshot anyway, so a read-only
``BEGIN`` … ``ROLLBACK`` only added two round trips. A page run shares one read connection (``shared_reads``), so
its dozen service calls check out, pre-ping and return a connection once instead of a dozen times.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from exact.errors import DatabaseUnavailable, QueryTooSlow

# SQLSTATE query_canceled: statement_timeout (or a cancel request) stopped the statement; the connection is fine.
_QUERY_CANCELED = "57014"
# Enough of the statement to tell which query it was in the log; parameters are never logged (passwords, tokens).
_STATEMENT_LOG_CHARS = 300


def normalise_url(url: str) -> str:
    """Accept the URL forms people paste (postgres://, postgresql://) and use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class Database:
    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        max_overflow: int = 40,
        statement_timeout_ms: int | None = None,
        pool_timeout_s: float = 10,
    ) -> None:
        """``statement_timeout_ms``: the limit of every statement on every connection (None: the server's own,
        which is no limit by default; the app and the CLI always pass EXACT_STATEMENT_TIMEOUT_MS)."""
        if statement_timeout_ms is not None and (
            isinstance(statement_timeout_ms, bool) or not isinstance(statement_timeout_ms, int)
        ):
            raise TypeError("statement_timeout_ms must be a whole number of milliseconds or None")
        if statement_timeout_ms is not None and statement_timeout_ms <= 0:
            raise ValueError("statement_timeout_ms must be positive (None for the server's default)")
        self.url = normalise_url(url)
        self.statement_timeout_ms = statement_timeout_ms
        connect_args: dict[str, object] = {"connect_timeout": 5}
        if statement_timeout_ms is not None:
            # A startup option, so it is the session default of every new connection: a pooled connection keeps
            # it across checkouts, and SET LOCAL (see transaction) falls back to it at the end of a transaction.
            given = sa.engine.make_url(self.url).query.get("options") or ""
            given = given if isinstance(given, str) else " ".join(given)
            connect_args["options"] = f"{given} -c statement_timeout={statement_timeout_ms}".strip()
        # pre_ping: a connection that died with a database restart is replaced instead of failing a page.
        self.engine: Engine = sa.create_engine(
            self.url,
            pool_pre_ping=True,
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_timeout=pool_timeout_s,
            connect_args=connect_args,
        )
        self._reads: Engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._shared: ContextVar[_SharedReads | None] = ContextVar(f"exact_shared_reads_{id(self)}", default=None)

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection for reads (autocommit: nothing written through it could be rolled back; use
        ``transaction`` to write). Inside ``shared_reads`` it is that block's one connection."""
        shared = self._shared.get()
        if shared is not None and shared.usable():
            with _translated_errors(self.statement_timeout_ms):
                conn = shared.connection()
                shared.in_use += 1
                try:
                    yield conn
                except DBAPIError:
                    shared.after_error()
                    raise
                finally:
                    shared.in_use -= 1
            return
        with _translated_errors(self.statement_timeout_ms), self._reads.connect() as conn:
            yield conn

    def release_reads(self) -> None:
        """Hand this thread's shared read connection back to the pool before slow work that needs none
        (password hashing): a burst of logins then holds no connection each. The next read checks one out."""
        shared = self._shared.get()
        if shared is not None and shared.usable():
            shared.release()

    @contextmanager
    def streaming(self) -> Iterator[Connection]:
        """A read connection inside a transaction (rolled back at the end), for server-side cursors
        (``stream_results``), which PostgreSQL only keeps within a transaction block."""
        with _translated_errors(self.statement_timeout_ms), self.engine.connect() as conn:
            yield conn

    @contextmanager
    def shared_reads(self) -> Iterator[None]:
        """Every ``connect()`` of this thread inside the block uses one pooled connection, checked out on first
        use and returned at the end (the app wraps each page run in it). Writes still get their own
        ``transaction()``."""
        shared = _SharedReads(self._reads)
        token = self._shared.set(shared)
        try:
            yield
        finally:
            self._shared.reset(token)
            shared.close()

    @contextmanager
    def transaction(self, *, statement_timeout_ms: int | None = None) -> Iterator[Connection]:
        """A connection inside one transaction: committed on success, rolled back on any exception.

        ``statement_timeout_ms`` replaces the engine's limit for this transaction only (``SET LOCAL``); 0 means
        no limit (PostgreSQL's meaning). For scoring workers and long maintenance, not for page requests.
        """
        if statement_timeout_ms is not None and (
            isinstance(statement_timeout_ms, bool) or not isinstance(statement_timeout_ms, int)
        ):
            raise TypeError("statement_timeout_ms must be a whole number of milliseconds")
        if statement_timeout_ms is not None and statement_timeout_ms < 0:
            raise ValueError("statement_timeout_ms must be 0 (no limit) or positive")
        shared = self._shared.get()
        if shared is not None and shared.usable() and not shared.in_use:
            # A write in a page run: hand the run's read connection back first, so a run never holds two.
            shared.release()
        with _translated_errors(statement_timeout_ms or self.statement_timeout_ms), self.engine.begin() as conn:
            if statement_timeout_ms is not None:
                # set_config(..., is_local => true) is SET LOCAL with a bound parameter.
                conn.execute(
                    sa.text("SELECT set_config('statement_timeout', :ms, true)"),
                    {"ms": str(statement_timeout_ms)},
                )
            yield conn

    @contextmanager
    def unbounded(self) -> Iterator[Connection]:
        """One transaction without a statement time limit (schema application and its initial fill, the demo)."""
        with self.transaction(statement_timeout_ms=0) as conn:
            yield conn

    def ping(self) -> None:
        with self.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()


class _SharedReads:
    """One autocommit read connection for one thread's block of work (see ``Database.shared_reads``)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._thread = threading.get_ident()
        self._conn: Connection | None = None
        self._closed = False
        self.in_use = 0  # connect() blocks open on it right now (a write inside one must not take it away)

    def usable(self) -> bool:
        # A context copied into another thread (or kept past the block) must not share this connection.
        return not self._closed and threading.get_ident() == self._thread

    def connection(self) -> Connection:
        if self._conn is None:
            self._conn = self._engine.connect()
        return self._conn

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def after_error(self) -> None:
        """After a failed read the next one starts on a fresh connection (the old one may be broken)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - a broken connection is dropped either way
                conn.invalidate()

    def close(self) -> None:
        self._closed = True
        self.release()


@contextmanager
def _translated_errors(timeout_ms: int | None) -> Iterator[None]:
    """Driver errors the pages explain: a cancelled statement (QueryTooSlow), an unreachable server."""
    try:
        yield
    except PoolTimeout as exc:  # every pooled connection busy for pool_timeout: the server is there, but busy
        raise QueryTooSlow("waiting for a free database connection", timeout_ms=timeout_ms) from exc
    except (OperationalError, InterfaceError) as exc:
        if _is_query_canceled(exc):
            raise QueryTooSlow(_statement_text(exc), timeout_ms=timeout_ms) from exc
        if _is_connection_problem(exc):
            raise DatabaseUnavailable(str(exc.orig or exc)) from exc
        raise


def _is_query_canceled(exc: DBAPIError) -> bool:
    return getattr(exc.orig, "sqlstate", None) == _QUERY_CANCELED


def _statement_text(exc: DBAPIError) -> str:
    statement = " ".join(str(exc.statement or "").split())
    if len(statement) > _STATEMENT_LOG_CHARS:
        statement = statement[:_STATEMENT_LOG_CHARS] + "…"
    return statement


def _is_connection_problem(exc: DBAPIError) -> bool:
    """Lost or unreachable server: an invalidated connection, a connection exception (SQLSTATE class 08), the
    server shutting down (57P), or no SQLSTATE at all (the driver could not talk to it). A deadlock or a
    serialisation failure is an OperationalError too, but not an outage: it stays an unexpected error."""
    if exc.connection_invalidated or isinstance(exc, InterfaceError):
        return True
    sqlstate = getattr(exc.orig, "sqlstate", None)
    return sqlstate is None or sqlstate.startswith(("08", "57P"))

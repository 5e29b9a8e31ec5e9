"""Bounded work: every statement has a time limit (a timeout is "this took too long", not "database unavailable"),
the pool size comes from the settings, and password hashing never runs inside an open transaction."""

from __future__ import annotations

import logging

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from db.database import Database
from exact import accounts, passwords
from exact.errors import AuthenticationFailed, DatabaseUnavailable, QueryTooSlow, ValidationError
from tests.conftest import make_user
from tests.pages_helpers import goto, log_in_state, one, run, scalar, title, values

SLEEP = "SELECT pg_sleep(5)"  # far past every limit used here; cancelled after the limit, so never waited out


def _show_timeout(conn) -> str:
    return conn.execute(sa.text("SHOW statement_timeout")).scalar_one()


# --- the limit on every statement -----------------------------------------------------------------------------


def test_a_statement_past_the_limit_raises_query_too_slow_and_rolls_back(db_url):
    database = Database(db_url, pool_size=1, max_overflow=0, statement_timeout_ms=100)
    try:
        with pytest.raises(QueryTooSlow) as caught, database.connect() as conn:
            conn.execute(sa.text(SLEEP))
        assert not isinstance(caught.value, DatabaseUnavailable)
        assert caught.value.timeout_ms == 100 and caught.value.statement == SLEEP
        assert QueryTooSlow.MESSAGE == "This took too long; please try again or narrow your search."

        with pytest.raises(QueryTooSlow), database.transaction() as conn:
            conn.execute(sa.text("UPDATE auth_user SET first_name = 'written' WHERE id = 0"))
            conn.execute(sa.text("INSERT INTO django_content_type (app_label, model) VALUES ('t', 'slow')"))
            conn.execute(sa.text(SLEEP))
        # The transaction was rolled back, and its (only) pooled connection still works.
        assert scalar(database, "SELECT count(*) FROM django_content_type WHERE model = 'slow'") == 0
        with database.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
            assert _show_timeout(conn) == "100ms"
    finally:
        database.dispose()


def test_every_pooled_connection_carries_the_limit(db_url):
    database = Database(db_url, pool_size=3, max_overflow=0, statement_timeout_ms=2500)
    try:
        with database.connect() as a, database.connect() as b, database.connect() as c:
            pids = {conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one() for conn in (a, b, c)}
            assert len(pids) == 3
            assert [_show_timeout(conn) for conn in (a, b, c)] == ["2500ms"] * 3
            # RESET goes back to the connection's start-up value, which is the limit, not "no limit".
            a.execute(sa.text("RESET statement_timeout"))
            assert _show_timeout(a) == "2500ms"
    finally:
        database.dispose()


def test_options_already_in_the_url_are_kept(db_url):
    url = make_url(db_url).update_query_dict({"options": "-c search_path=public,pg_catalog"})
    database = Database(url.render_as_string(hide_password=False), pool_size=1, statement_timeout_ms=700)
    try:
        with database.connect() as conn:
            assert _show_timeout(conn) == "700ms"
            assert conn.execute(sa.text("SHOW search_path")).scalar_one() == "public,pg_catalog"
    finally:
        database.dispose()


def test_one_transaction_may_lift_or_change_the_limit_and_the_next_has_it_again(db_url):
    database = Database(db_url, pool_size=1, max_overflow=0, statement_timeout_ms=100)
    try:
        with database.unbounded() as conn:
            assert _show_timeout(conn) == "0"
            conn.execute(sa.text("SELECT pg_sleep(0.3)"))  # three times the engine's limit
            pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        with database.transaction(statement_timeout_ms=60_000) as conn:
            assert _show_timeout(conn) == "1min"
        with pytest.raises(QueryTooSlow) as caught, database.transaction(statement_timeout_ms=20) as conn:
            conn.execute(sa.text(SLEEP))
        assert caught.value.timeout_ms == 20
        with database.connect() as conn:  # the same (only) connection, back to the engine's limit
            assert conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one() == pid
            assert _show_timeout(conn) == "100ms"
    finally:
        database.dispose()


def test_limits_must_be_whole_positive_milliseconds(db_url):
    for bad in (0, -5):
        with pytest.raises(ValueError, match="positive"):
            Database(db_url, statement_timeout_ms=bad)
    for bad in (1.5, "100", True):
        with pytest.raises(TypeError):
            Database(db_url, statement_timeout_ms=bad)
    database = Database(db_url, pool_size=1, statement_timeout_ms=100)
    try:
        with pytest.raises(ValueError), database.transaction(statement_timeout_ms=-1):
            pass
    finally:
        database.dispose()


def test_a_busy_pool_is_too_slow_and_a_deadlock_is_no_outage(db_url):
    database = Database(db_url, pool_size=1, max_overflow=0, pool_timeout_s=0.2)
    try:
        with database.connect() as held:
            held.execute(sa.text("SELECT 1"))
            with pytest.raises(QueryTooSlow) as caught, database.transaction():
                pass  # every connection is in use: waiting for one is "took too long", not an outage
            assert caught.value.statement == "waiting for a free database connection"
    finally:
        database.dispose()
    # A real deadlock between two transactions: reported as itself, not as "the database is unavailable".
    import threading

    database = Database(db_url, pool_size=2, max_overflow=0)
    try:
        with database.transaction() as conn:
            conn.execute(
                sa.text("CREATE TABLE deadlock_probe (id int PRIMARY KEY); INSERT INTO deadlock_probe VALUES (1), (2)")
            )
        barrier, errors = threading.Barrier(2), []

        def lock(first: int, second: int) -> None:
            try:
                with database.transaction() as conn:
                    conn.execute(sa.text("SELECT 1 FROM deadlock_probe WHERE id = :i FOR UPDATE"), {"i": first})
                    barrier.wait()
                    conn.execute(sa.text("SELECT 1 FROM deadlock_probe WHERE id = :i FOR UPDATE"), {"i": second})
            except Exception as exc:  # noqa: BLE001 - the test looks at what was raised
                errors.append(exc)

        threads = [threading.Thread(target=lock, args=pair) for pair in ((1, 2), (2, 1))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(errors) == 1 and not isinstance(errors[0], DatabaseUnavailable)
        assert getattr(errors[0].orig, "sqlstate", None) == "40P01"
    finally:
        database.dispose()


def test_an_unreachable_server_is_still_database_unavailable():
    database = Database("postgresql://nobody@127.0.0.1:1/nothing", pool_size=1, statement_timeout_ms=100)
    try:
        with pytest.raises(DatabaseUnavailable):
            database.ping()
    finally:
        database.dispose()


# --- one read connection per page run -----------------------------------------------------------------------------


def _checkouts(database: Database) -> list[int]:
    seen: list[int] = []
    sa.event.listen(database.engine, "checkout", lambda *_: seen.append(1))
    return seen


def test_reads_inside_shared_reads_use_one_connection_without_a_transaction(db_url):
    database = Database(db_url, pool_size=2, max_overflow=0, statement_timeout_ms=100)
    try:
        checkouts = _checkouts(database)
        with database.shared_reads():
            pids = set()
            for _ in range(12):  # a page's dozen service calls
                with database.connect() as conn:
                    pids.add(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())
                    # autocommit: a read leaves no transaction open between statements
                    status = conn.connection.dbapi_connection.info.transaction_status
                    assert status == psycopg.pq.TransactionStatus.IDLE
            assert len(pids) == 1 and len(checkouts) == 1
            with pytest.raises(QueryTooSlow), database.connect() as conn:
                conn.execute(sa.text(SLEEP))
            with database.connect() as conn:  # after a failed read: a fresh connection that works
                assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
            with database.transaction():  # a write hands the run's read connection back first: never two at once
                assert database.engine.pool.checkedout() == 1
        assert database.engine.pool.checkedout() == 0  # returned at the end of the block
        with database.connect() as conn:  # outside the block: a connection per call again
            conn.execute(sa.text("SELECT 1"))
        assert len(checkouts) == 4  # the block, the fresh one after the error, the transaction, this read
        # A write inside a read block keeps the read connection it is using.
        with database.shared_reads(), database.connect() as conn:
            pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
            with database.transaction():
                assert database.engine.pool.checkedout() == 2
            assert conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one() == pid
    finally:
        database.dispose()


def test_another_thread_never_shares_the_block_connection(db_url):
    import threading

    database = Database(db_url, pool_size=2, max_overflow=0)
    try:
        pids: dict[str, int] = {}

        def read(name: str) -> None:
            with database.connect() as conn:
                pids[name] = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()

        with database.shared_reads():
            read("block")
            import contextvars

            context = contextvars.copy_context()  # a copied context still carries the block's holder
            worker = threading.Thread(target=context.run, args=(read, "thread"))
            worker.start()
            worker.join()
        assert pids["block"] != pids["thread"]
    finally:
        database.dispose()


def test_a_page_run_checks_out_one_connection(app, db):
    from exact.scores import submit_score
    from ui.runtime import get_db

    make_user(db, "root", superuser=True)
    pat, ann = make_user(db, "pat"), make_user(db, "ann")
    with db.transaction() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO api_challenge (challenge_id, title, description, created_at, mlmodel, dataset, xaimethod)"
                " VALUES ('busy', 'Busy', 'd', now(), '', '', '')"
            )
        )
    for user, score in ((pat, 0.4), (ann, 0.6), (pat, 0.7)):
        submit_score(db, user.id, "busy", score)
    at = app()
    log_in_state(at, db, pat.id)
    at.query_params["challenge"] = "busy"
    run(at)
    checkouts = _checkouts(get_db())
    for page in ("app_pages/home.py", "app_pages/challenges.py", "app_pages/leaderboard.py", "app_pages/submit.py"):
        checkouts.clear()
        goto(at, page)
        assert not at.exception and len(checkouts) == 1, page
        if page.endswith("leaderboard.py"):  # the whole board was read: table and its three charts
            assert at.dataframe[0].value["username"].tolist() == ["pat", "ann"] and len(at.get("plotly_chart")) == 3


# --- the app's engine -------------------------------------------------------------------------------------------


def test_the_app_engine_uses_the_configured_pool_size_and_limit(app, monkeypatch):
    from ui.runtime import get_db

    monkeypatch.setenv("EXACT_DB_POOL_SIZE", "3")
    monkeypatch.setenv("EXACT_STATEMENT_TIMEOUT_MS", "4321")
    run(app())
    engine = get_db().engine
    assert engine.pool.size() == 3
    with get_db().connect() as conn:
        assert _show_timeout(conn) == "4321ms"


def test_the_app_engine_defaults_to_ten_connections_and_five_seconds(app, monkeypatch):
    from ui.runtime import get_db

    monkeypatch.delenv("EXACT_DB_POOL_SIZE", raising=False)
    monkeypatch.delenv("EXACT_STATEMENT_TIMEOUT_MS", raising=False)
    run(app())
    assert get_db().engine.pool.size() == 10
    with get_db().connect() as conn:
        assert _show_timeout(conn) == "5s"


def test_a_slow_page_says_it_took_too_long_and_logs_the_query(app, db, monkeypatch, caplog):
    monkeypatch.setenv("EXACT_STATEMENT_TIMEOUT_MS", "1000")
    admin = make_user(db, "root", superuser=True)

    def slow_listing(database, actor_id, **_):
        with database.connect() as conn:  # the app's own Database, so the app's own limit
            conn.execute(sa.text(SLEEP))

    monkeypatch.setattr(accounts, "list_users", slow_listing)
    at = app()
    log_in_state(at, db, admin.id)
    run(at)
    with caplog.at_level(logging.WARNING, logger="exact"):
        goto(at, "app_pages/users.py")
    assert values(at.error) == ["This took too long; please try again or narrow your search."]
    assert title(at) == "Users"  # the page, not the "cannot reach its database" help
    logged = [r.getMessage() for r in caplog.records if "too slow" in r.getMessage()]
    assert logged == [f"query too slow in page Users (limit 1000 ms): {SLEEP}"]


def test_a_slow_action_inside_a_form_says_it_took_too_long(app, db, monkeypatch):
    admin = make_user(db, "root", superuser=True)
    make_user(db, "pat")

    def slow_flags(database, actor_id, user_id, **_):
        with database.transaction(statement_timeout_ms=50) as conn:
            conn.execute(sa.text(SLEEP))

    monkeypatch.setattr(accounts, "set_user_flags", slow_flags)
    at = app()
    log_in_state(at, db, admin.id)
    run(at)
    goto(at, "app_pages/users.py")
    one(at.button, "Save").click()
    run(at)
    assert values(at.error) == ["This took too long; please try again or narrow your search."]
    assert not at.success


# --- password hashing outside transactions ------------------------------------------------------------------------


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class HashingWatch:
    """Wraps every PBKDF2 and records what the app held open at that moment, seen from a separate connection."""

    def __init__(self, db: Database, db_url: str) -> None:
        self.db = db
        self.observer = psycopg.connect(_libpq(db_url), autocommit=True)
        self.seen: list[tuple[int, int]] = []  # (connections checked out of the pool, backends inside a transaction)
        self.during_first_hash = None  # optional: something another session does while the first hash runs

    def open_transactions(self) -> int:
        query = (
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND (state LIKE 'idle in transaction%' OR backend_xid IS NOT NULL)"
        )
        return self.observer.execute(query).fetchone()[0]

    def wrap(self, real):
        def watched(password: str, salt: str, iterations: int) -> str:
            self.seen.append((self.db.engine.pool.checkedout(), self.open_transactions()))
            if self.during_first_hash is not None:
                action, self.during_first_hash = self.during_first_hash, None
                action()
            return real(password, salt, iterations)

        return watched

    def take(self) -> list[tuple[int, int]]:
        seen, self.seen = self.seen, []
        return seen


@pytest.fixture
def watch(db, db_url, monkeypatch):
    hashing = HashingWatch(db, db_url)
    monkeypatch.setattr(passwords, "_pbkdf2", hashing.wrap(passwords._pbkdf2))
    yield hashing
    hashing.observer.close()


NOTHING_OPEN = (0, 0)
PASSWORD = "violet-otter-canoe-42"


def test_logging_in_hashes_with_no_transaction_and_no_connection_held(db, watch):
    make_user(db, "alice", password=PASSWORD)
    watch.take()
    assert accounts.authenticate(db, "alice", PASSWORD).username == "alice"
    assert watch.take() == [NOTHING_OPEN]
    with pytest.raises(AuthenticationFailed):
        accounts.authenticate(db, "alice", "wrong password")
    assert watch.take() == [NOTHING_OPEN]
    with pytest.raises(AuthenticationFailed):
        accounts.authenticate(db, "nobody", PASSWORD)  # unknown: the same cost, the same freedom
    assert watch.take() == [NOTHING_OPEN]


def test_the_rehash_on_login_hashes_outside_the_transaction_that_stores_it(db, watch):
    user = make_user(db, "old", password=PASSWORD)
    old_hash = passwords.make_password(PASSWORD, iterations=passwords.DEFAULT_ITERATIONS // 2)
    with db.transaction() as conn:
        conn.execute(sa.text("UPDATE auth_user SET password = :p WHERE id = :i"), {"p": old_hash, "i": user.id})
    watch.take()
    accounts.authenticate(db, "old", PASSWORD)
    assert watch.take() == [NOTHING_OPEN, NOTHING_OPEN]  # checking the old hash, making the new one
    stored = scalar(db, "SELECT password FROM auth_user WHERE id = :i", i=user.id)
    assert stored.split("$")[1] == str(passwords.DEFAULT_ITERATIONS)
    assert passwords.check_password(PASSWORD, stored)


def test_changing_the_password_hashes_with_nothing_open(db, watch):
    user = make_user(db, "alice", password=PASSWORD)
    watch.take()
    accounts.change_password(
        db, user.id, current_password=PASSWORD, new_password="new-heron-lake-77", new_password_again="new-heron-lake-77"
    )
    assert watch.take() == [NOTHING_OPEN, NOTHING_OPEN]  # checking the current one, hashing the new one
    assert accounts.authenticate(db, "alice", "new-heron-lake-77").id == user.id


def test_registering_and_creating_users_hash_with_nothing_open(db, watch):
    accounts.register(db, username="newbie", password=PASSWORD, password_again=PASSWORD)
    assert watch.take() == [NOTHING_OPEN]
    accounts.create_user(db, username="cli-made", password=PASSWORD)
    assert watch.take() == [NOTHING_OPEN]
    accounts.create_first_admin(
        db, username="boss", password=PASSWORD, password_again=PASSWORD, setup_token=accounts.setup_token()
    )
    assert watch.take() == [NOTHING_OPEN]


def test_inside_a_page_run_hashing_hands_the_shared_read_connection_back(db, watch):
    """A page run reads on one shared connection (Database.shared_reads); PBKDF2 must not pin it."""
    make_user(db, "alice", password=PASSWORD)
    watch.take()
    with db.shared_reads():
        with db.connect() as conn:  # what a page run has read before the form (session, first-run check)
            conn.execute(sa.text("SELECT 1"))
        assert db.engine.pool.checkedout() == 1
        assert accounts.authenticate(db, "alice", PASSWORD).username == "alice"
        assert watch.take() == [NOTHING_OPEN]
        with db.connect() as conn:  # the next read checks a connection out again
            conn.execute(sa.text("SELECT 1"))
        accounts.register(db, username="newbie", password=PASSWORD, password_again=PASSWORD)
        assert watch.take() == [NOTHING_OPEN]
        user_id = accounts.authenticate(db, "alice", PASSWORD).id
        accounts.change_password(
            db, user_id, current_password=PASSWORD, new_password=PASSWORD + "x", new_password_again=PASSWORD + "x"
        )
        assert watch.take() == [NOTHING_OPEN, NOTHING_OPEN, NOTHING_OPEN]


def _set_hash_elsewhere(db_url: str, username: str, password_hash: str):
    def action() -> None:
        with psycopg.connect(_libpq(db_url), autocommit=True) as conn:
            conn.execute("UPDATE auth_user SET password = %s WHERE username = %s", (password_hash, username))

    return action


def test_a_password_changed_during_the_login_check_refuses_the_login(db, db_url, watch):
    user = make_user(db, "alice", password=PASSWORD)
    other_hash = passwords.make_password("changed-in-django-99")
    watch.during_first_hash = _set_hash_elsewhere(db_url, "alice", other_hash)
    with pytest.raises(AuthenticationFailed):
        accounts.authenticate(db, "alice", PASSWORD)
    assert scalar(db, "SELECT password FROM auth_user WHERE id = :i", i=user.id) == other_hash
    assert scalar(db, "SELECT last_login FROM auth_user WHERE id = :i", i=user.id) is None


def test_a_deactivation_during_the_rehash_stores_nothing(db, db_url, watch):
    user = make_user(db, "old", password=PASSWORD)
    old_hash = passwords.make_password(PASSWORD, iterations=passwords.DEFAULT_ITERATIONS // 2)
    with db.transaction() as conn:
        conn.execute(sa.text("UPDATE auth_user SET password = :p WHERE id = :i"), {"p": old_hash, "i": user.id})

    def deactivate() -> None:
        with psycopg.connect(_libpq(db_url), autocommit=True) as conn:
            conn.execute("UPDATE auth_user SET is_active = false WHERE id = %s", (user.id,))

    watch.during_first_hash = deactivate
    with pytest.raises(AuthenticationFailed):
        accounts.authenticate(db, "old", PASSWORD)
    assert scalar(db, "SELECT password FROM auth_user WHERE id = :i", i=user.id) == old_hash


def test_a_password_changed_elsewhere_during_a_change_is_not_overwritten(db, db_url, watch):
    user = make_user(db, "alice", password=PASSWORD)
    other_hash = passwords.make_password("changed-in-django-99")
    session = scalar(db, "SELECT count(*) FROM exact_session")
    watch.during_first_hash = _set_hash_elsewhere(db_url, "alice", other_hash)
    with pytest.raises(ValidationError, match="changed meanwhile"):
        accounts.change_password(
            db,
            user.id,
            current_password=PASSWORD,
            new_password="new-heron-lake-77",
            new_password_again="new-heron-lake-77",
        )
    assert scalar(db, "SELECT password FROM auth_user WHERE id = :i", i=user.id) == other_hash
    assert scalar(db, "SELECT count(*) FROM exact_session") == session

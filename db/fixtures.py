"""SQL for importing and exporting Django ``dumpdata`` fixtures; exact/fixtures.py decides what goes where.

Table and column names put into statements come from our constants or from the live catalog, never from a
fixture, and are quoted anyway. Scores (possibly a million) go through a temporary staging table filled with
COPY and are matched and inserted set-based; the other models are small and go row by row.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from db.database import Database

# Every table an import may write, in one fixed order so two imports (or an import and anything else locking
# several of them) queue instead of deadlocking.
IMPORT_TABLES = (
    "django_content_type",
    "auth_permission",
    "auth_group",
    "auth_group_permissions",
    "auth_user",
    "auth_user_groups",
    "auth_user_user_permissions",
    "django_session",
    "api_challenge",
    "api_score",
)
# Rows fetched per round trip when exporting: bounded memory whatever the table size.
EXPORT_CHUNK = 2000


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def lock_for_import(conn: Connection) -> None:
    """Writers wait until the import commits (readers do not): ids the import keeps must not be taken meanwhile
    by an insert that drew them from a sequence the import has not moved yet, and two imports must not race."""
    conn.execute(sa.text(f"LOCK TABLE {', '.join(IMPORT_TABLES)} IN SHARE ROW EXCLUSIVE MODE"))


def existing_keys(conn: Connection, table: str, column: str, values: Sequence[Any]) -> set[Any]:
    """Which of ``values`` the column already holds."""
    if not values:
        return set()
    query = sa.text(f"SELECT {quote(column)} FROM {quote(table)} WHERE {quote(column)} = ANY(:values)")
    return {row[0] for row in conn.execute(query, {"values": list(values)})}


def ids_by_key(conn: Connection, table: str, column: str, values: Sequence[Any]) -> dict[Any, int]:
    if not values:
        return {}
    query = sa.text(f"SELECT {quote(column)}, id FROM {quote(table)} WHERE {quote(column)} = ANY(:values)")
    return {row[0]: row[1] for row in conn.execute(query, {"values": list(values)})}


def content_types(conn: Connection) -> dict[tuple[str, str], int]:
    """(app_label, model) -> id of every content type (one row per model of every app: a small table)."""
    rows = conn.execute(sa.text("SELECT app_label, model, id FROM django_content_type"))
    return {(r[0], r[1]): r[2] for r in rows}


def permissions(conn: Connection) -> dict[tuple[int, str], int]:
    """(content_type_id, codename) -> id of every permission (four per model: a small table)."""
    rows = conn.execute(sa.text("SELECT content_type_id, codename, id FROM auth_permission"))
    return {(r[0], r[1]): r[2] for r in rows}


def permission_natural_keys(conn: Connection) -> dict[tuple[str, str, str], int]:
    """(codename, app_label, model) -> id: Django's natural key of a permission."""
    query = sa.text(
        "SELECT p.codename, ct.app_label, ct.model, p.id FROM auth_permission p "
        "JOIN django_content_type ct ON ct.id = p.content_type_id"
    )
    return {(r[0], r[1], r[2]): r[3] for r in conn.execute(query)}


def insert_many(conn: Connection, table: str, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows that all have the same keys (explicit ids included when given)."""
    if not rows:
        return
    names = list(rows[0])
    query = sa.text(
        f"INSERT INTO {quote(table)} ({', '.join(quote(n) for n in names)}) "
        f"VALUES ({', '.join(f':p{i}' for i in range(len(names)))})"
    )
    conn.execute(query, [{f"p{i}": row[n] for i, n in enumerate(names)} for row in rows])


def insert_returning_id(conn: Connection, table: str, row: dict[str, Any]) -> int:
    names = list(row)
    query = sa.text(
        f"INSERT INTO {quote(table)} ({', '.join(quote(n) for n in names)}) "
        f"VALUES ({', '.join(f':p{i}' for i in range(len(names)))}) RETURNING id"
    )
    return conn.execute(query, {f"p{i}": row[n] for i, n in enumerate(names)}).scalar_one()


def move_sequence_past_max(conn: Connection, table: str) -> None:
    """After rows with explicit ids: the id sequence (serial or identity) continues after the highest id, so the
    next ordinary insert does not collide. It never moves backwards: ids of deleted rows are not handed out again
    (other tables may still name them, e.g. moderation rows of a deleted score)."""
    query = sa.text(
        f"""
        SELECT setval(seq::regclass, GREATEST((SELECT COALESCE(max(id), 0) FROM {quote(table)}),
                                    COALESCE(pg_sequence_last_value(seq::regclass), 0)) + 1, false)
        FROM (SELECT pg_get_serial_sequence(:table, 'id') AS seq) s
        WHERE seq IS NOT NULL
        """
    )
    conn.execute(query, {"table": table})


def add_links(conn: Connection, table: str, left: str, right: str, pairs: Iterable[tuple[int, int]]) -> int:
    """Rows of a many-to-many table (already present pairs are left alone); returns how many were added."""
    pairs = sorted(set(pairs))
    if not pairs:
        return 0
    query = sa.text(
        f"INSERT INTO {quote(table)} ({quote(left)}, {quote(right)}) "
        f"SELECT l, r FROM unnest(CAST(:lefts AS integer[]), CAST(:rights AS integer[])) AS v (l, r) "
        f"ON CONFLICT DO NOTHING"
    )
    result = conn.execute(query, {"lefts": [p[0] for p in pairs], "rights": [p[1] for p in pairs]})
    return result.rowcount or 0


# --- api tables through a staging table --------------------------------------------------------------------


def stage(conn: Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A temporary copy of ``table``'s ``id`` and ``columns`` (same types, no constraints), filled by COPY with
    ``rows`` (id, *columns) in fixture order, plus ``exact_action`` for the matching step. Dropped at commit."""
    staging = f"exact_import_{table}"
    names = ["id", *columns]
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {quote(staging)}")
    conn.exec_driver_sql(
        f"CREATE TEMPORARY TABLE {quote(staging)} ON COMMIT DROP AS "
        f"SELECT {', '.join(quote(n) for n in names)} FROM {quote(table)} WITH NO DATA"
    )
    conn.exec_driver_sql(f"ALTER TABLE {quote(staging)} ADD COLUMN exact_ord bigint, ADD COLUMN exact_action text")
    raw = conn.connection.driver_connection  # psycopg's own connection, inside the same transaction
    copy_sql = f"COPY {quote(staging)} ({', '.join(quote(n) for n in [*names, 'exact_ord'])}) FROM STDIN"
    with raw.cursor() as cursor, cursor.copy(copy_sql) as copy:
        for ord_, row in enumerate(rows):
            copy.write_row([*row, ord_])
    conn.exec_driver_sql(f"ANALYZE {quote(staging)}")
    return staging


def match_staged_challenges(conn: Connection, staging: str) -> None:
    """A challenge is the one already there when its challenge_id is (the business key scores refer to)."""
    conn.exec_driver_sql(
        f"UPDATE {quote(staging)} st SET exact_action = 'exists' "
        f"WHERE EXISTS (SELECT 1 FROM api_challenge c WHERE c.challenge_id = st.challenge_id)"
    )
    _choose_ids(conn, staging, "api_challenge")


def match_staged_scores(conn: Connection, staging: str) -> None:
    """A score is already there when the row with its id holds the same (username, challenge_id, created_at,
    score), or else when a row that existed before this import does (e.g. imported earlier under a new id)."""
    same = (
        "s.username = st.username AND s.challenge_id = st.challenge_id AND s.created_at = st.created_at "
        "AND s.score IS NOT DISTINCT FROM st.score"
    )
    conn.exec_driver_sql(
        f"UPDATE {quote(staging)} st SET exact_action = 'same_id' FROM api_score s WHERE s.id = st.id AND {same}"
    )
    # One statement, so "existed before" holds: nothing of this import is inserted yet.
    conn.exec_driver_sql(
        f"UPDATE {quote(staging)} st SET exact_action = 'same_row' "
        f"WHERE st.exact_action IS NULL AND EXISTS (SELECT 1 FROM api_score s WHERE {same})"
    )
    _choose_ids(conn, staging, "api_score")


def _choose_ids(conn: Connection, staging: str, table: str) -> None:
    """Rows still to insert keep their fixture id when it is free ('keep_id'), else get a new one ('new_id'; or
    'no_id' when the fixture gave none)."""
    conn.exec_driver_sql(
        f"UPDATE {quote(staging)} st SET exact_action = CASE WHEN st.id IS NULL THEN 'no_id' "
        f"WHEN NOT EXISTS (SELECT 1 FROM {quote(table)} t WHERE t.id = st.id) THEN 'keep_id' ELSE 'new_id' END "
        f"WHERE st.exact_action IS NULL"
    )


def staged_actions(conn: Connection, staging: str) -> dict[str, int]:
    rows = conn.exec_driver_sql(f"SELECT exact_action, count(*) FROM {quote(staging)} GROUP BY exact_action")
    return {r[0]: r[1] for r in rows}


def insert_staged(conn: Connection, staging: str, table: str, columns: Sequence[str]) -> None:
    """Insert the staged rows to add: those keeping their id first, then the sequence is moved past the highest
    id, then the others draw new ids (in fixture order). Two statements, so the triggers work set-based."""
    listed = ", ".join(quote(c) for c in columns)
    conn.exec_driver_sql(
        f"INSERT INTO {quote(table)} (id, {listed}) SELECT id, {listed} FROM {quote(staging)} "
        f"WHERE exact_action = 'keep_id' ORDER BY exact_ord"
    )
    move_sequence_past_max(conn, table)
    conn.exec_driver_sql(
        f"INSERT INTO {quote(table)} ({listed}) SELECT {listed} FROM {quote(staging)} "
        f"WHERE exact_action IN ('new_id', 'no_id') ORDER BY exact_ord"
    )


# --- export -----------------------------------------------------------------------------------------------------


@contextmanager
def export_snapshot(db: Database) -> Iterator[Connection]:
    """A read-only transaction seeing one snapshot (users, their groups and scores exported consistently), with
    no statement time limit (a million scores are one cursor), for server-side cursors."""
    with db.streaming() as conn:
        conn.execute(sa.text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
        conn.execute(sa.text("SELECT set_config('statement_timeout', '0', true)"))
        yield conn
        conn.rollback()


def _stream(conn: Connection, query: str) -> Iterator[dict[str, Any]]:
    result = conn.execution_options(stream_results=True, yield_per=EXPORT_CHUNK).execute(sa.text(query))
    for row in result.mappings():
        yield dict(row)


def stream_content_types(conn: Connection) -> Iterator[dict[str, Any]]:
    return _stream(conn, "SELECT id, app_label, model FROM django_content_type ORDER BY id")


def stream_permissions(conn: Connection) -> Iterator[dict[str, Any]]:
    return _stream(conn, "SELECT id, name, content_type_id, codename FROM auth_permission ORDER BY id")


def stream_groups(conn: Connection) -> Iterator[dict[str, Any]]:
    return _stream(
        conn,
        "SELECT g.id, g.name, ARRAY(SELECT gp.permission_id FROM auth_group_permissions gp "
        "WHERE gp.group_id = g.id ORDER BY gp.permission_id) AS permissions FROM auth_group g ORDER BY g.id",
    )


def stream_users(conn: Connection) -> Iterator[dict[str, Any]]:
    return _stream(
        conn,
        """
        SELECT u.id, u.password, u.last_login, u.is_superuser, u.username, u.first_name, u.last_name, u.email,
               u.is_staff, u.is_active, u.date_joined,
               ARRAY(SELECT ug.group_id FROM auth_user_groups ug WHERE ug.user_id = u.id
                     ORDER BY ug.group_id) AS groups,
               ARRAY(SELECT up.permission_id FROM auth_user_user_permissions up WHERE up.user_id = u.id
                     ORDER BY up.permission_id) AS user_permissions
        FROM auth_user u ORDER BY u.id
        """,
    )


def stream_sessions(conn: Connection) -> Iterator[dict[str, Any]]:
    return _stream(conn, "SELECT session_key, session_data, expire_date FROM django_session ORDER BY session_key")


def stream_table(conn: Connection, table: str, columns: Sequence[str]) -> Iterator[dict[str, Any]]:
    """Every row of an api table with the given live columns, in id order."""
    listed = ", ".join(quote(c) for c in columns)
    return _stream(conn, f"SELECT {listed} FROM {quote(table)} ORDER BY id")

"""Every difference between SQLite and PostgreSQL lives here (service_practices.md §2.4).

- SQLite connections get WAL, ``synchronous=NORMAL``, ``foreign_keys=ON`` and a busy timeout, and
  SQLAlchemy (not the sqlite3 module) emits ``BEGIN``: ``BEGIN IMMEDIATE`` for write transactions,
  so a transaction that reads and then writes waits for the lock instead of failing with
  "database is locked".
- PostgreSQL engines ping pooled connections before use (a restarted server costs nothing).
- ``INSERT … ON CONFLICT`` needs the dialect's own ``insert()``; partial-index predicates are spelled
  differently (``superseded = 0`` vs ``superseded = false``).
- Concurrent ``alembic upgrade`` runs are serialised by ``BEGIN IMMEDIATE`` on SQLite and by a
  transaction-scoped advisory lock on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, Table, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import TextClause

SQLITE = "sqlite"
POSTGRESQL = "postgresql"

# Execution option read by the ``begin`` listener: which BEGIN a SQLite transaction gets.
SQLITE_BEGIN_OPTION = "ocec_sqlite_begin"
BEGIN_IMMEDIATE = "IMMEDIATE"
BEGIN_DEFERRED = "DEFERRED"
NO_BEGIN = ""  # reads of one statement each: SQLite gives each its own snapshot, no BEGIN needed

# Any constant: the key of the PostgreSQL advisory lock held while migrating.
_MIGRATION_LOCK_KEY = 0x0CEC_10B5


def is_sqlite_url(url: str) -> bool:
    return make_url(url).get_backend_name() == SQLITE


def engine_kwargs(url: str) -> dict[str, Any]:
    """Keyword arguments for ``create_engine`` on this URL's backend."""
    if is_sqlite_url(url):
        return {}
    return {"pool_pre_ping": True}


def configure_sqlite(engine: Engine, *, busy_timeout_ms: int, foreign_keys: bool = True) -> None:
    """Install the pragma and BEGIN listeners on a SQLite engine (no-op for other backends)."""
    if engine.dialect.name != SQLITE:
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN; pysqlite's own implicit BEGIN is deferred.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")  # before WAL: may wait
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute(f"PRAGMA foreign_keys = {'ON' if foreign_keys else 'OFF'}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get(SQLITE_BEGIN_OPTION, BEGIN_DEFERRED)
        if mode != NO_BEGIN:
            connection.exec_driver_sql(f"BEGIN {mode}")


def write_bind(engine: Engine) -> Engine:
    """The engine to bind write sessions to: same pool, ``BEGIN IMMEDIATE`` on SQLite."""
    if engine.dialect.name != SQLITE:
        return engine
    return engine.execution_options(**{SQLITE_BEGIN_OPTION: BEGIN_IMMEDIATE})


def where_false(column: str) -> dict[str, Any]:
    """Partial-index ``WHERE <column> is false`` for both dialects (pass as ``Index(**…)``)."""
    return {"sqlite_where": text(f"{column} = 0"), "postgresql_where": text(f"{column} = false")}


def _where_false_clause(dialect_name: str, column: str) -> TextClause:
    clause: TextClause = where_false(column)[f"{dialect_name}_where"]
    return clause


def _insert(dialect_name: str, table: Table) -> Any:
    if dialect_name == SQLITE:
        return sqlite.insert(table)
    if dialect_name == POSTGRESQL:
        return postgresql.insert(table)
    raise NotImplementedError(f"unsupported database dialect {dialect_name!r}")


def _values(stmt: Any, values: Mapping[str, Any] | None) -> Any:
    return stmt if values is None else stmt.values(**values)


def insert_ignore(
    dialect_name: str,
    table: Table,
    values: Mapping[str, Any] | None,
    *,
    index_elements: Sequence[str],
    where_false_column: str | None = None,
) -> Insert:
    """``INSERT … ON CONFLICT (index_elements) [WHERE col is false] DO NOTHING``.

    ``where_false_column`` names the partial unique index's predicate column (see ``where_false``).
    ``values`` None: the values come with each execution (a statement built once and reused).
    """
    index_where = _where_false_clause(dialect_name, where_false_column) if where_false_column else None
    stmt = _values(_insert(dialect_name, table), values)
    result: Insert = stmt.on_conflict_do_nothing(index_elements=list(index_elements), index_where=index_where)
    return result


def upsert(
    dialect_name: str,
    table: Table,
    values: Mapping[str, Any] | None,
    *,
    index_elements: Sequence[str],
    update: Sequence[str],
) -> Insert:
    """``INSERT … ON CONFLICT (index_elements) DO UPDATE SET <update columns> = excluded.<column>``
    (``values`` None: as for ``insert_ignore``)."""
    stmt = _values(_insert(dialect_name, table), values)
    result: Insert = stmt.on_conflict_do_update(
        index_elements=list(index_elements), set_={name: stmt.excluded[name] for name in update}
    )
    return result


def lock_for_migration(connection: Connection) -> None:
    """Serialise concurrent migrators; call inside the migration transaction."""
    if connection.dialect.name == POSTGRESQL:
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
    # SQLite: the migration transaction starts with BEGIN IMMEDIATE (see migrations/env.py).

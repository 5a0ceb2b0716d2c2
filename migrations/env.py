"""Alembic environment for jobstore's tables.

The URL comes from, in order: ``-x url=...``, ``config.attributes["database_url"]`` (set by
``jobstore.migrate``), ``sqlalchemy.url`` in the ini, and finally jobstore settings (DATABASE_URL,
or the SQLite file under OCEC_HOME). A caller may also hand over an open connection in
``config.attributes["connection"]``.

SQLite: batch mode (ALTER TABLE by table copy), foreign keys off while migrating (a table copy must
not cascade), and the transaction starts with BEGIN IMMEDIATE. PostgreSQL: an advisory lock. Either
way two processes upgrading at once (``ocec-jobs up`` starting the API and a worker) take turns and
the second finds the schema at head.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection

from jobstore.db import make_engine
from jobstore.dialect import SQLITE, lock_for_migration, write_bind
from jobstore.models import metadata
from jobstore.settings import get_settings, normalize_database_url

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = metadata
MIGRATION_WAIT_MS = 300_000


def _database_url() -> str:
    url = (
        context.get_x_argument(as_dictionary=True).get("url")
        or config.attributes.get("database_url")
        or config.get_main_option("sqlalchemy.url")
        or get_settings().database_url
    )
    return normalize_database_url(str(url))


def _configure(**kwargs: object) -> None:
    context.configure(target_metadata=target_metadata, compare_type=True, **kwargs)


def run_migrations_offline() -> None:
    url = _database_url()
    _configure(url=url, literal_binds=True, render_as_batch=url.startswith(SQLITE))
    with context.begin_transaction():
        context.run_migrations()


def _run_on(connection: Connection) -> None:
    _configure(connection=connection, render_as_batch=connection.dialect.name == SQLITE)
    with context.begin_transaction():
        lock_for_migration(connection)
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
        return
    # A SQLite migrator waits for the one migrating before it (BEGIN IMMEDIATE) for as long as the
    # whole chain may take on a loaded machine, not the 30 s a request would wait.
    engine = make_engine(_database_url(), sqlite_foreign_keys=False, busy_timeout_ms=MIGRATION_WAIT_MS)
    try:
        with write_bind(engine).connect() as connection:
            _run_on(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

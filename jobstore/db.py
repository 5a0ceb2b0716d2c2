"""Engines and sessions.

Rules for callers (API routes, worker hooks, the reaper):

- Every write goes through ``write_transaction(engine)``: one short transaction, committed when the
  block exits, rolled back on an exception. On SQLite it starts with ``BEGIN IMMEDIATE``.
- Reads may use ``read_session(engine)``; keep it short (a SQLite reader pins a WAL snapshot).
- Sessions do not expire objects on commit, so a ``Job`` returned from a transaction stays readable
  after it (as a detached snapshot).
- In a forked child (Celery prefork), call ``dispose_after_fork(engine)`` before first use.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import partial
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.engine import make_url
from sqlmodel import Session

from jobstore.dialect import (
    NO_BEGIN,
    SQLITE_BEGIN_OPTION,
    configure_sqlite,
    engine_kwargs,
    is_sqlite_url,
    write_bind,
)
from jobstore.settings import Settings, normalize_database_url

TransactionFactory = Callable[[], AbstractContextManager[Session]]

_MEMORY = ("", ":memory:")


def make_engine(url: str, *, busy_timeout_ms: int = 30_000, sqlite_foreign_keys: bool = True) -> Engine:
    """An engine with the backend's settings applied; a SQLite file's directory is created."""
    url = normalize_database_url(url)
    if is_sqlite_url(url):
        _ensure_sqlite_dir(url)
    engine = create_engine(url, **engine_kwargs(url))
    configure_sqlite(engine, busy_timeout_ms=busy_timeout_ms, foreign_keys=sqlite_foreign_keys)
    return engine


def engine_from_settings(settings: Settings) -> Engine:
    return make_engine(settings.database_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms)


def _ensure_sqlite_dir(url: str) -> None:
    database = make_url(url).database or ""
    if database not in _MEMORY and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    """A session for reads; whatever it did is rolled back when the block exits."""
    with Session(engine, expire_on_commit=False) as session:
        yield session


@contextmanager
def read_connection(engine: Engine) -> Iterator[Connection]:
    """A connection for hot reads of plain rows whose statements need no common snapshot (the key
    look-up, a job's status): no ORM session, and on SQLite no BEGIN and ROLLBACK around them —
    each statement reads a consistent snapshot by itself, and the two would double its cost."""
    with engine.connect() as connection:
        yield connection.execution_options(**{SQLITE_BEGIN_OPTION: NO_BEGIN})


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Session]:
    """One write transaction: commits at the end of the block, rolls back on an exception."""
    with Session(write_bind(engine), expire_on_commit=False) as session, session.begin():
        yield session


def transaction_factory(engine: Engine) -> TransactionFactory:
    """``write_transaction`` bound to an engine, for code that opens its own transactions (the reaper)."""
    return partial(write_transaction, engine)


def dispose_after_fork(engine: Engine) -> None:
    """Drop pooled connections inherited from the parent without closing the parent's sockets."""
    engine.dispose(close=False)

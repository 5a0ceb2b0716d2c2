"""Shared fixtures: databases (SQLite and PostgreSQL at Alembic head) and Redis.

Package-specific fixtures live in ``tests/<package>/conftest.py``.

Databases
    ``db_url``           parametrized ``sqlite`` / ``postgres``: a database at head with empty tables,
                         fresh for each test (SQLite: a copy of a migrated template file;
                         PostgreSQL: the session database, every table emptied first).
    ``migrated_engine``  a jobstore engine on ``db_url`` (disposed after the test).
    ``session``          a session on it; write with ``jobstore.db.write_transaction(migrated_engine)``.
    ``sqlite_url``       an empty SQLite file URL in the test's tmp dir (no tables).
    ``pg_url``           this test session's PostgreSQL database, at head, shared (not emptied).
    ``pg_database_factory``  makes further empty PostgreSQL databases (dropped at session end).

Redis
    ``redis_url``        ``TEST_REDIS_URL`` (default redis://127.0.0.1:6379/0), checked reachable.
    ``unique_queue``     a Celery queue name no other test uses. Never FLUSHDB a shared Redis.

Environment
    ``TEST_PG_ADMIN_URL``  server on which per-session databases are created
                           (default postgresql+psycopg://postgres@127.0.0.1:5432/postgres).
    ``OCEC_TEST_SKIP_PG=1`` skip PostgreSQL tests when the server is down (default: they fail).
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlmodel import Session

from jobstore.db import make_engine
from jobstore.migrate import upgrade_to_head
from jobstore.models import metadata

pytest_plugins = [
    "tests.browser",  # the session's one headless Chromium
    "tests.scheduling",  # groups for pytest-xdist, long groups first
    "tests.faults.report",  # the fault figures, also when the faults ran on an xdist worker
    "tests.process_leaks",  # fails the run when a process a test started outlives the session
]

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SKIP_PG = os.environ.get("OCEC_TEST_SKIP_PG") == "1"


def _libpq(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL as a plain libpq one (for psycopg.connect)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_database_factory() -> Iterator[Callable[[], str]]:
    try:
        psycopg.connect(_libpq(PG_ADMIN_URL), connect_timeout=3).close()
    except psycopg.Error as exc:
        message = (
            f"PostgreSQL is not reachable at TEST_PG_ADMIN_URL={PG_ADMIN_URL}: {exc}. "
            "Start it (.ci/run does) or set OCEC_TEST_SKIP_PG=1 to skip the PostgreSQL tests."
        )
        if SKIP_PG:
            pytest.skip(message)
        pytest.fail(message, pytrace=False)
    created: list[str] = []

    def create() -> str:
        name = f"ocec_test_{os.getpid()}_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(_libpq(PG_ADMIN_URL), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)

    yield create
    with psycopg.connect(_libpq(PG_ADMIN_URL), autocommit=True) as conn:
        for name in created:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_url(pg_database_factory: Callable[[], str]) -> str:
    url = pg_database_factory()
    upgrade_to_head(url)
    return url


@pytest.fixture(scope="session")
def _pg_cleaner(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    upgrade_to_head(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'empty.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("_sqlite_template")
        target = tmp_path / "ocec.db"
        with sqlite3.connect(template) as source, sqlite3.connect(target) as copy:
            source.backup(copy)  # a consistent copy, WAL included
        return f"sqlite:///{target}"
    url: str = request.getfixturevalue("pg_url")
    _empty_tables(request.getfixturevalue("_pg_cleaner"))
    return url


def _empty_tables(engine: Engine) -> None:
    """DELETE (not TRUNCATE: that would wait for other idle connections) children first."""
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(text(f'DELETE FROM "{table.name}"'))


@pytest.fixture
def migrated_engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(migrated_engine: Engine) -> Iterator[Session]:
    with Session(migrated_engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3, socket_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis is not reachable at TEST_REDIS_URL={REDIS_URL}: {exc}. Start it (.ci/run does).")
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def unique_queue() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"

"""Programmatic Alembic: upgrade to head, inspect the revision, compare models with migrations.

``ocec-jobs up``, the embedded API start and the tests call ``upgrade_to_head``; a PostgreSQL
deployment runs it (or ``alembic upgrade head``) once before starting its processes. Concurrent
callers are safe: they take turns (see migrations/env.py) and the later ones find nothing to do.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from jobstore.db import make_engine
from jobstore.dialect import SQLITE
from jobstore.errors import JobStoreError
from jobstore.models import metadata
from jobstore.settings import normalize_database_url

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
# Alembic's ``context`` is process-global: one migration at a time per process (threads take turns).
_ALEMBIC_LOCK = threading.Lock()


class SchemaDriftError(JobStoreError):
    """The models and the migrations (or the database) disagree."""

    code = "schema-drift"

    def __init__(self, diffs: list[Any]) -> None:
        super().__init__(f"models and migrations differ: {diffs}")
        self.diffs = diffs


def alembic_config(url: str) -> Config:
    """An Alembic config for ``url`` that needs no alembic.ini and leaves logging alone."""
    if not (MIGRATIONS_DIR / "env.py").is_file():
        raise FileNotFoundError(f"migrations not found at {MIGRATIONS_DIR}")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = normalize_database_url(url)
    config.attributes["configure_logging"] = False
    return config


def upgrade_to_head(url: str) -> None:
    with _ALEMBIC_LOCK:
        command.upgrade(alembic_config(url), "head")


def downgrade(url: str, revision: str = "base") -> None:
    with _ALEMBIC_LOCK:
        command.downgrade(alembic_config(url), revision)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def current_revision(url: str) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def is_at_head(url: str) -> bool:
    """True when the database's revision is the newest migration (readiness checks use this)."""
    return current_revision(url) == head_revision()


def schema_diff(url: str) -> list[Any]:
    """Differences between the models and the database's actual schema (empty when they agree)."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={"compare_type": True, "render_as_batch": connection.dialect.name == SQLITE},
            )
            diffs: list[Any] = compare_metadata(context, metadata)
            return diffs
    finally:
        engine.dispose()


def check_models_match(url: str) -> None:
    """Raise ``SchemaDriftError`` unless a database at ``url`` (at head) matches the models."""
    diffs = schema_diff(url)
    if diffs:
        raise SchemaDriftError(diffs)

"""The embedded default's database, straight from the settings, for commands that work with the
server stopped (``ocec-jobs keys``, ``ocec-jobs gc``): refused unless its schema is at head."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from jobstore.settings import Settings


def settings_for(args: argparse.Namespace) -> Settings:
    from jobstore.settings import Settings

    return Settings(home=args.home) if args.home else Settings()


class DatabaseUnusableError(Exception):
    """The settings' database cannot be used (unreachable, or its schema is not at head)."""


@contextmanager
def local_engine(settings: Settings) -> Iterator[Engine]:
    """An engine on the settings' database once it is known to be at head; disposed after."""
    from jobstore.db import engine_from_settings
    from jobstore.migrate import is_at_head

    try:
        ready = is_at_head(settings.database_url)
    except Exception as exc:  # unreachable server, unreadable file...
        raise DatabaseUnusableError(f"cannot read the database: {type(exc).__name__}: {exc}") from exc
    if not ready:
        raise DatabaseUnusableError(
            "the database has no ocec-jobs schema at the newest migration: "
            "start `ocec-jobs up` once (or run the migrations) first"
        )
    engine = engine_from_settings(settings)
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def local_database(args: argparse.Namespace, *, write: bool) -> Iterator[Any]:
    """A session on the settings' database (a write transaction if ``write``)."""
    from jobstore.db import read_session, write_transaction

    with (
        local_engine(settings_for(args)) as engine,
        write_transaction(engine) if write else read_session(engine) as session,
    ):
        yield session

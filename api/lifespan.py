"""What the app holds while it runs: a database engine and a Celery client, built and disposed here."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from api.dispatch import Dispatcher
from api.settings import ApiSettings
from jobstore.db import engine_from_settings
from jobstore.migrate import is_at_head

log = logging.getLogger(__name__)


@dataclass
class Resources:
    settings: ApiSettings
    engine: Engine
    dispatcher: Dispatcher


def open_resources(settings: ApiSettings) -> Resources:
    return Resources(
        settings=settings,
        engine=engine_from_settings(settings),
        dispatcher=Dispatcher(settings.broker_url, settings.queue),
    )


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: ApiSettings = app.state.settings
    resources = open_resources(settings)
    app.state.resources = resources
    log.info(
        "ocec-jobs api: database %s, broker %s, queue %s",
        _safe(settings.database_url),
        _safe(settings.broker_url),
        settings.queue,
    )
    if not _at_head(settings.database_url):
        log.warning("the database schema is not at the newest migration: /readyz answers 503 until it is")
    if getattr(app.state, "freeze_heap", False):
        # A served process keeps what it built at start for its whole life: out of the collector's
        # sight, a full collection (set off by the many objects of a 500-row page) no longer walks
        # it, which held such a read up to 200 ms (benchmarks/read_paths.py, docs/performance.md).
        # Not in-process apps (tests, embedders): their heap is not the app's alone.
        gc.collect()
        gc.freeze()
    try:
        yield
    finally:
        resources.dispatcher.close()
        resources.engine.dispose()


def _safe(url: str) -> str:
    """A URL without its password, for logs."""
    return make_url(url).render_as_string(hide_password=True)


def _at_head(url: str) -> bool:
    try:
        return is_at_head(url)
    except Exception:  # unreachable now; /readyz reports it, the app still starts
        log.warning("database not reachable at startup", exc_info=True)
        return False

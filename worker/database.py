"""The worker process's database engine: one per process, created on first use.

A prefork child inherits the parent's engine (the reaper loop uses one in the parent); the
``worker_process_init`` handler calls ``dispose_inherited`` so the child opens its own connections
and never shares a socket with its parent.
"""

from __future__ import annotations

import threading

from sqlalchemy import Engine

from jobstore.db import dispose_after_fork, engine_from_settings
from jobstore.settings import Settings

_lock = threading.Lock()
_engines: dict[str, Engine] = {}


def get_engine(settings: Settings) -> Engine:
    """The engine for ``settings.database_url`` (cached per URL for the life of the process)."""
    with _lock:
        engine = _engines.get(settings.database_url)
        if engine is None:
            engine = _engines[settings.database_url] = engine_from_settings(settings)
        return engine


def dispose_inherited() -> None:
    """Forget the pooled connections inherited across ``fork`` (keeps the parent's sockets open).

    Runs in the freshly forked child, where only the forking thread exists: the lock is replaced,
    not taken, because a parent thread may have held it at the moment of the fork.
    """
    global _lock
    _lock = threading.Lock()
    for engine in _engines.values():
        dispose_after_fork(engine)

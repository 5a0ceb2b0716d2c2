"""Fenced writes of a running attempt, retried through database outages.

A hook must not return before its row is committed (the next epoch may not start unrecorded), so a
write that fails because the database is unreachable — a PostgreSQL restart, a SQLite lock held too
long — is retried with backoff instead of failing the job. While it waits, training waits. If the
outage outlasts the lease, the reaper re-queues the job elsewhere and the next attempt of this write
is refused (``FencedOutError``): this attempt then stops without writing anything else.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import Session

from jobstore.db import write_transaction

log = logging.getLogger(__name__)

T = TypeVar("T")

FIRST_WAIT = 0.2
MAX_WAIT = 5.0


def is_transient(exc: BaseException) -> bool:
    """A connection-level failure worth retrying (not a constraint or programming error)."""
    if isinstance(exc, OperationalError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def write_retrying(
    db: Engine,
    work: Callable[[Session], T],
    *,
    give_up_after: float,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``work`` in one write transaction; retry transient failures for ``give_up_after`` seconds."""
    deadline = time.monotonic() + give_up_after
    wait = FIRST_WAIT
    while True:
        try:
            with write_transaction(db) as session:
                return work(session)
        except Exception as exc:
            if not is_transient(exc) or time.monotonic() + wait > deadline:
                raise
            log.warning("%s: database unavailable (%s); retrying in %.1fs", what, _short(exc), wait)
            sleep(wait)
            wait = min(wait * 2, MAX_WAIT)


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__

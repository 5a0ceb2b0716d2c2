"""How an operator command reaches the engine at the next batch or epoch boundary, whatever the
heartbeat period.

The heartbeat hands commands over only every ``heartbeat_seconds`` (10 s): with sub-second epochs a
force would land many epochs late, or the run would end first and the command expire. So every
``poll_commands`` of the engine asks the database itself: at each epoch boundary always, between
batches at most every ``command_check_seconds``. The question is one indexed read on a connection the
attempt keeps (under a millisecond on SQLite and PostgreSQL: ``benchmarks/command_latency.py``
prints it); only when a command is pending does the fenced hand-over run (a heartbeat: lease
renewal, commands marked delivered and queued for the engine).

A failed read only logs: the heartbeat still delivers, as before.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from jobstore.repo.commands import has_pending

log = logging.getLogger(__name__)


class CommandProbe:
    """``probe(boundary)``: look for pending commands now (a boundary) or if ``every`` seconds have
    passed since the last look, and hand them over with ``deliver`` when there are some."""

    def __init__(
        self,
        db: Engine,
        job_id: str,
        *,
        every: float,
        deliver: Callable[[], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._job_id = job_id
        self._every = every
        self._deliver = deliver
        self._clock = clock
        self._last: float | None = None
        self._connection: Connection | None = None
        self.reads = 0  # database reads made (tests and the benchmark count them)

    def __call__(self, boundary: bool) -> None:
        now = self._clock()
        if not boundary and self._last is not None and now - self._last < self._every:
            return
        self._last = now
        if self._pending():
            self._deliver()

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _pending(self) -> bool:
        self.reads += 1
        try:
            if self._connection is None:
                # AUTOCOMMIT: on PostgreSQL each read sees the latest commits and no transaction stays
                # open; SQLite still begins one (our BEGIN listener), so the rollback ends it.
                self._connection = self._db.connect().execution_options(isolation_level="AUTOCOMMIT")
            found = has_pending(self._connection, job_id=self._job_id)
            self._connection.rollback()
            return found
        except SQLAlchemyError as exc:  # a database blip: the heartbeat still delivers
            log.warning("job %s: command check failed (%s); retrying at the next check", self._job_id, exc)
            self.close()
            return False

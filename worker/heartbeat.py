"""The heartbeat thread of a running attempt: lease renewal, command delivery, self-fencing.

Every ``heartbeat_seconds`` it calls ``beat()`` — jobstore's fenced lease renewal, which also hands
over the job's pending operator commands — and queues the commands for the engine's next
``poll_commands``. The engine's own checks (``worker.command_probe``) call ``beat_once`` as soon as
a command is pending, so a command does not wait for the next beat. When the renewal reports the
attempt fenced out (the reaper gave the job to a new attempt, or an operator ended it), it raises the
stop flag so the run ends without another write.

A database outage only logs: the lease simply runs out, the reaper re-queues the job elsewhere, and
the next successful beat reports the fencing. A cancel the engine does not honour within
``cancel_deadline`` seconds makes the thread call ``on_overdue`` (the runner ends the process).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from jobstore.errors import FencedOutError

log = logging.getLogger(__name__)

T = TypeVar("T")


class LeaseLostError(Exception):
    """``beat()`` found that this attempt no longer owns the job."""


class Heartbeat(threading.Thread, Generic[T]):
    def __init__(
        self,
        beat: Callable[[], Sequence[T]],
        interval: float,
        *,
        is_cancel: Callable[[T], bool],
        cancel_deadline: float,
        on_overdue: Callable[[], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(name="ocec-heartbeat", daemon=True)
        self._beat = beat
        self._interval = interval
        self._is_cancel = is_cancel
        self._cancel_deadline = cancel_deadline
        self._on_overdue = on_overdue
        self._clock = clock
        self._halt = threading.Event()
        self._inbox: deque[T] = deque()
        self._cancel_since: float | None = None
        self.fenced: str | None = None  # why this attempt lost the job, once it has
        self.cancels: list[T] = []  # cancel commands delivered so far

    def run(self) -> None:
        while True:
            self.beat_once()
            if self.fenced or self._halt.wait(self._interval):
                return

    def stop(self) -> None:
        self._halt.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout=self._interval + 5)

    def beat_once(self) -> None:
        """One renewal; safe to call from any thread."""
        try:
            commands = self._beat()
        except (FencedOutError, LeaseLostError) as exc:
            self.fenced = str(exc)
            log.warning("heartbeat: %s; stopping without further writes", exc)
            return
        except Exception:  # a DB blip: keep beating; the lease covers a few missed beats
            log.exception("heartbeat: lease renewal failed; retrying in %.1fs", self._interval)
        else:
            self._receive(commands)
        self._check_cancel_deadline()

    def _receive(self, commands: Sequence[T]) -> None:
        for command in commands:
            self._inbox.append(command)
            if self._is_cancel(command):
                self.cancels.append(command)
                if self._cancel_since is None:
                    self._cancel_since = self._clock()

    def take_commands(self) -> list[T]:
        """Commands fetched since the last call, oldest first (the engine's ``poll_commands``)."""
        taken: list[T] = []
        while self._inbox:
            taken.append(self._inbox.popleft())
        return taken

    def _check_cancel_deadline(self) -> None:
        if self._cancel_since is None or self._halt.is_set():
            return
        if self._clock() - self._cancel_since >= self._cancel_deadline:
            log.error("heartbeat: cancel not honoured within %.0fs", self._cancel_deadline)
            self._on_overdue()

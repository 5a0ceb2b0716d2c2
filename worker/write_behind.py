"""``WriteBehind``: one thread that commits an attempt's per-epoch rows, in order, off the training thread.

An epoch's metrics row and its epoch/last/best checkpoint records cost a few database commits
(milliseconds each on SQLite); with epochs of a tenth of a second that would be a large share of
the run. The hooks hand those writes to this thread and go on; every other write (a stage change,
a gate read, a command result, an interrupt or stage-entry checkpoint, the end of the run) first
waits for everything handed over before it, so the database sees the writes in the order the engine
made them. ``wait(upto)`` bounds the lag: the hooks wait, at each epoch end, for the previous
epoch's writes, so a kill loses at most the last epoch's rows (that epoch is recomputed, with the
same result, by the next attempt). The first error stops the writing; it is raised on the training
thread at its next ``submit`` or ``wait``.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

Write = Callable[[], object]


class WriteBehind:
    """Runs the submitted writes one by one on a daemon thread (see the module docstring)."""

    def __init__(self, name: str = "write-behind") -> None:
        self._items: deque[Write] = deque()
        self._cond = threading.Condition()
        self._error: BaseException | None = None
        self._closed = False
        self.submitted = 0  # writes handed over so far (``wait(upto=...)`` takes such a count)
        self._done = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, write: Write) -> None:
        with self._cond:
            self._raise()
            if self._closed:
                raise RuntimeError("write-behind closed")
            self._items.append(write)
            self.submitted += 1
            self._cond.notify_all()

    def wait(self, upto: int | None = None) -> None:
        """Block until the first ``upto`` writes (default: all submitted) are done; raise the error."""
        with self._cond:
            target = self.submitted if upto is None else upto
            while self._done < target and self._error is None:
                self._cond.wait()
            self._raise()

    def close(self) -> BaseException | None:
        """Finish the writes still queued (none after an error), stop the thread; the error, if any."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()
        return self._error

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._items and not self._closed:
                    self._cond.wait()
                if not self._items:
                    return
                write, failed = self._items[0], self._error is not None
            try:
                if not failed:
                    write()
            except BaseException as exc:  # handed to the training thread, which decides
                with self._cond:
                    self._error = exc
            with self._cond:
                self._items.popleft()
                self._done += 1
                self._cond.notify_all()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

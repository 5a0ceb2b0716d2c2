"""The preemption flag of a pool child: why this process was asked to yield its job, if it was.

While a job runs (``preempt_on_sigterm``, entered by the task), the first SIGTERM only records the
request (``preempt_reason``): the engine sees it through ``should_stop`` at the next batch boundary,
writes its INTERRUPT checkpoint, the attempt ends ``preempted`` and the job is re-queued. A second
SIGTERM goes to billiard's own handler (the child exits). The handler cannot be installed in
``worker_process_init``: billiard resets the terminate signals right after that signal runs.
The Celery wiring that sends the SIGTERM lives in ``worker.signals``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType

PREEMPT_SIGNAL = signal.SIGTERM
SHUTDOWN_REASON = "worker shutting down"

_preempt: str | None = None  # set by the signal handler; read by the running job's should_stop
_in_pool_child = False


def preempt_reason() -> str | None:
    """Why this process was asked to yield its job, or None."""
    return _preempt


def request_preempt(reason: str) -> None:
    global _preempt
    _preempt = reason


def clear_preempt() -> None:
    global _preempt
    _preempt = None


def enter_pool_child() -> None:
    """This process is a pool child (``worker_process_init``): ``preempt_on_sigterm`` may take SIGTERM."""
    global _in_pool_child
    _in_pool_child = True
    clear_preempt()


@contextlib.contextmanager
def preempt_on_sigterm() -> Iterator[None]:
    """While the block runs, the first SIGTERM requests preemption (pool child, main thread only)."""
    if not _in_pool_child or threading.current_thread() is not threading.main_thread():
        yield  # the worker's own process (solo pool, tests): leave Celery's handlers alone
        return
    previous = signal.getsignal(PREEMPT_SIGNAL)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        if _preempt is None:
            request_preempt(f"{SHUTDOWN_REASON} ({signal.Signals(signum).name})")
            return
        signal.signal(signum, previous)  # asked twice: exit the way billiard would
        if callable(previous):
            previous(signum, frame)
        else:
            os.kill(os.getpid(), signum)

    signal.signal(PREEMPT_SIGNAL, on_sigterm)
    try:
        yield
    finally:
        signal.signal(PREEMPT_SIGNAL, previous)

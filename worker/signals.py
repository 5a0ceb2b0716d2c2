"""Process-level wiring: fork safety in the pool child, preemption on shutdown, the reaper loop.

Parent (Celery's MainProcess, never touches CUDA):

- ``worker_ready``: remember the pool; start the reaper loop unless ``OCEC_WORKER_REAPER=0``.
- ``worker_shutting_down`` (SIGTERM / first SIGINT = warm shutdown): send SIGTERM to the pool child.
  Celery's warm shutdown then waits for the running task, which ends within one batch.
- ``worker_shutdown``: stop the reaper loop.

Pool child (one per job: ``worker_max_tasks_per_child=1``):

- ``worker_process_init``: drop the database connections inherited across ``fork`` and install a
  SIGTERM handler. The first SIGTERM asks the running job to yield (``preempt_reason``): the
  engine writes its INTERRUPT checkpoint at the next batch boundary, the attempt ends ``preempted``
  and the job is re-queued. A second SIGTERM kills the child as the default action would.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from dataclasses import dataclass
from types import FrameType
from typing import Any

from celery import Celery
from celery.signals import worker_process_init, worker_ready, worker_shutdown, worker_shutting_down

from jobstore.settings import Settings
from worker import database
from worker.reaper import ReaperLoop, reaper_enabled

log = logging.getLogger(__name__)

PREEMPT_SIGNAL = signal.SIGTERM
SHUTDOWN_REASON = "worker shutting down"

_preempt: str | None = None  # set by the signal handler; read by the running job's should_stop


def preempt_reason() -> str | None:
    """Why this process was asked to yield its job, or None."""
    return _preempt


def request_preempt(reason: str) -> None:
    global _preempt
    _preempt = reason


def clear_preempt() -> None:
    global _preempt
    _preempt = None


def _on_child_sigterm(signum: int, _frame: FrameType | None) -> None:
    if _preempt is not None:  # asked twice: die now, as SIGTERM's default would
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    request_preempt(f"{SHUTDOWN_REASON} ({signal.Signals(signum).name})")


def install_child_handlers() -> None:
    """Fork hygiene and the preemption handler for a pool child (or any process that runs jobs)."""
    database.dispose_inherited()
    clear_preempt()
    signal.signal(PREEMPT_SIGNAL, _on_child_sigterm)


@dataclass
class _Parent:
    """What the parent process holds between its signals."""

    pool: Any = None
    reaper: ReaperLoop | None = None


def connect(app: Celery, settings: Settings) -> None:
    """Connect the handlers for workers of ``app`` (idempotent per app)."""
    parent = _Parent()
    uid = f"ocec.{id(app)}"

    def on_child_start(**_: Any) -> None:
        install_child_handlers()

    def on_ready(sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", None) is not app:
            return
        parent.pool = getattr(sender, "pool", None)
        if reaper_enabled():
            parent.reaper = ReaperLoop(app, settings)
            parent.reaper.start()

    def on_shutting_down(**_: Any) -> None:
        for pid in _pool_pids(parent.pool):
            log.warning("shutdown: asking pool process %d to checkpoint and yield its job", pid)
            _kill_quietly(pid, PREEMPT_SIGNAL)

    def on_shutdown(sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", None) is app and parent.reaper is not None:
            parent.reaper.stop()

    worker_process_init.connect(on_child_start, weak=False, dispatch_uid=f"{uid}.child")
    worker_ready.connect(on_ready, weak=False, dispatch_uid=f"{uid}.ready")
    worker_shutting_down.connect(on_shutting_down, weak=False, dispatch_uid=f"{uid}.shutting_down")
    worker_shutdown.connect(on_shutdown, weak=False, dispatch_uid=f"{uid}.shutdown")


def _pool_pids(pool: Any) -> list[int]:
    """The pids of a prefork pool's processes (none for the solo/threads pools)."""
    try:
        pids = pool.info.get("processes", []) if pool is not None else []
    except Exception:  # a pool that is already closing may not answer
        log.exception("cannot list the pool processes")
        return []
    return [int(pid) for pid in pids if pid and pid != os.getpid()]


def _kill_quietly(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)

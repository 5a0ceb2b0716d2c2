"""Celery signal wiring: fork safety in the pool child, preemption on shutdown, the reaper companion.

Parent (Celery's MainProcess, never touches CUDA):

- ``worker_init`` (before the pool starts): import what every job's child imports, so each fork
  inherits it (``worker.pool_refill``; nothing that loads torch).
- ``worker_ready``: remember the pool and have it replace a finished child at once
  (``worker.pool_refill``); start the companion process (``worker.reaper``): it beats this node's
  presence, and reaps unless ``OCEC_WORKER_REAPER=0``.
- ``worker_shutting_down`` (SIGTERM / first SIGINT = warm shutdown): send SIGTERM to the pool child
  running a job.
  Celery's warm shutdown then waits for the running task, which ends within one batch.
- ``worker_shutdown``: stop the companion.

Pool child (one per job: ``worker_max_tasks_per_child=1``):

- ``worker_process_init``: die with the main process (SIGKILL as parent-death signal: a main
  process killed outright must not leave its job running in an orphan; the job's lease runs out and
  the reaper re-queues it); drop the database connections inherited across ``fork``; from now on
  a running job takes its first SIGTERM as a request to yield (``worker.preemption``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
from dataclasses import dataclass
from typing import Any

from celery import Celery
from celery.signals import (
    worker_init,
    worker_process_init,
    worker_ready,
    worker_shutdown,
    worker_shutting_down,
)
from celery.worker import state as worker_state

from jobstore.parent_death import die_with_parent
from worker import database, pool_refill, preemption
from worker.preemption import PREEMPT_SIGNAL
from worker.reaper import reaper_enabled, start_companion, stop_companion

log = logging.getLogger(__name__)


def install_child_handlers(main_pid: int) -> None:
    """Fork hygiene for a pool child (``worker_process_init``) of the main process ``main_pid``."""
    die_with_parent(signal.SIGKILL, main_pid)
    database.dispose_inherited()
    preemption.enter_pool_child()


@dataclass
class _Parent:
    """What the parent process holds between its signals."""

    pool: Any = None
    reaper: subprocess.Popen[bytes] | None = None


def connect(app: Celery) -> None:
    """Connect the handlers for workers of ``app`` (idempotent per app)."""
    parent = _Parent()
    uid = f"ocec.{id(app)}"
    main_pid = os.getpid()  # pool children are forked from the main process's main thread

    def on_child_start(**_: Any) -> None:
        install_child_handlers(main_pid)

    def on_init(sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", None) is app:
            missing = pool_refill.preload_for_children()
            if missing:
                log.info("not preloaded (not installed): %s", ", ".join(missing))

    def on_ready(sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", None) is not app:
            return
        parent.pool = getattr(sender, "pool", None)
        pool_refill.refill_promptly(sender)
        node = str(getattr(sender, "hostname", None) or f"worker@{os.getpid()}")
        parent.reaper = start_companion(node, reap=reaper_enabled())

    def on_shutting_down(**_: Any) -> None:
        for pid in _busy_pids(parent.pool):
            log.warning("shutdown: asking pool process %d to checkpoint and yield its job", pid)
            _kill_quietly(pid, PREEMPT_SIGNAL)

    def on_shutdown(sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", None) is app and parent.reaper is not None:
            stop_companion(parent.reaper)

    worker_init.connect(on_init, weak=False, dispatch_uid=f"{uid}.init")
    worker_process_init.connect(on_child_start, weak=False, dispatch_uid=f"{uid}.child")
    worker_ready.connect(on_ready, weak=False, dispatch_uid=f"{uid}.ready")
    worker_shutting_down.connect(on_shutting_down, weak=False, dispatch_uid=f"{uid}.shutting_down")
    worker_shutdown.connect(on_shutdown, weak=False, dispatch_uid=f"{uid}.shutdown")


def _busy_pids(pool: Any) -> list[int]:
    """The pool processes running a task: those to ask to yield.

    Idle ones are left alone (they exit with the pool; a SIGTERM would only make Celery log an
    error). A task handed to the pool but not yet accepted by a process has no pid yet; then every
    process is signalled, so that a job starting during the shutdown does not run to its end.
    """
    requests = [*worker_state.reserved_requests, *worker_state.active_requests]
    if any(not getattr(r, "worker_pid", None) for r in requests):
        return _pool_pids(pool)
    return sorted({int(r.worker_pid) for r in requests})


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

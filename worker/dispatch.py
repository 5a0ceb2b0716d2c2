"""Publishing ``run_job(job_id, attempt)`` from inside the worker (re-queue after preemption, reaper)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from celery import Celery

from jobstore.tasknames import TASK_RUN_JOB

log = logging.getLogger(__name__)

Dispatch = Callable[[str, int], None]


def make_dispatch(app: Celery, queue: str) -> Dispatch:
    """A function that sends one message for ``(job_id, attempt)`` to ``queue``."""

    def dispatch(job_id: str, attempt: int) -> None:
        app.send_task(TASK_RUN_JOB, args=(job_id, attempt), queue=queue, retry=True)
        log.info("dispatched job %s attempt %d to %s", job_id, attempt, queue)

    return dispatch

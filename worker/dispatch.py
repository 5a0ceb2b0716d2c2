"""Publishing ``run_job(job_id, attempt)`` from inside the worker (re-queue after preemption, reaper)."""

from __future__ import annotations

import logging

from celery import Celery

from jobstore.tasknames import TASK_RUN_JOB, Dispatch

log = logging.getLogger(__name__)


def publisher(broker_url: str) -> Celery:
    """A Celery client that only sends messages: no task, no worker signals (the reaper's)."""
    return Celery("ocec_worker_publisher", broker=broker_url, set_as_current=False)


def make_dispatch(app: Celery, queue: str) -> Dispatch:
    """A function that sends one message for ``(job_id, attempt)`` to ``queue``."""

    def dispatch(job_id: str, attempt: int) -> None:
        app.send_task(TASK_RUN_JOB, args=(job_id, attempt), queue=queue, retry=True)
        log.info("dispatched job %s attempt %d to %s", job_id, attempt, queue)

    return dispatch

"""Publishing ``run_job(job_id, attempt)`` and ``run_evaluation(evaluation_id)`` from inside the worker
(re-queue after preemption, the reaper)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from celery import Celery

from jobstore.tasknames import TASK_RUN_EVALUATION, TASK_RUN_JOB, Dispatch

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


def make_evaluation_dispatch(app: Celery, queue: str) -> Callable[[str], None]:
    """A function that sends one ``run_evaluation(evaluation_id)`` message to ``queue``."""

    def dispatch(evaluation_id: str) -> None:
        app.send_task(TASK_RUN_EVALUATION, args=(evaluation_id,), queue=queue, retry=True)
        log.info("dispatched evaluation %s to %s", evaluation_id, queue)

    return dispatch

"""A thin Celery *client*: publish ``run_job(job_id, attempt)`` by task name, never import the worker.

The database is the source of truth; a message only says "look at this job" (or evaluation). A lost
message is repaired by the reaper re-dispatching queued jobs and evaluations, so publishing is
retried briefly and then given up rather than holding an HTTP request hostage to a broker outage.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery

from jobstore.tasknames import TASK_RUN_EVALUATION, TASK_RUN_JOB

log = logging.getLogger(__name__)

PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}


class Dispatcher:
    def __init__(self, broker_url: str, queue: str) -> None:
        self.queue = queue
        self.celery = Celery("ocec-jobs-api", broker=broker_url, set_as_current=False)
        self.celery.conf.update(
            task_ignore_result=True,
            broker_connection_retry_on_startup=False,
            broker_connection_timeout=3,
            task_publish_retry_policy=PUBLISH_RETRY,
            broker_transport_options=_transport_options(broker_url),
        )

    def dispatch(self, job_id: str, attempt: int) -> str:
        """Publish one run of ``job_id`` at ``attempt`` (the fencing token); return the message id."""
        result = self.celery.send_task(TASK_RUN_JOB, args=(job_id, attempt), queue=self.queue, retry=True)
        return str(result.id)

    def dispatch_evaluation(self, evaluation_id: str) -> str:
        """Publish one run of an evaluation (its claim, queued → running, refuses a duplicate)."""
        args = (evaluation_id,)
        result = self.celery.send_task(TASK_RUN_EVALUATION, args=args, queue=self.queue, retry=True)
        return str(result.id)

    def ping(self) -> None:
        """Raise unless the broker accepts a connection (readiness)."""
        with self.celery.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, timeout=3)

    def close(self) -> None:
        self.celery.close()


def _transport_options(broker_url: str) -> dict[str, Any]:
    if broker_url.startswith("redis"):
        return {"socket_connect_timeout": 3, "socket_timeout": 5}
    return {}


def dispatch_after_commit(dispatcher: Dispatcher, job_id: str, attempt: int) -> None:
    """Send the run message; on a broker outage the job stays queued and the reaper re-sends it."""
    try:
        dispatcher.dispatch(job_id, attempt)
    except Exception:
        log.exception("dispatch of job %s attempt %d failed; the reaper will re-send it", job_id, attempt)

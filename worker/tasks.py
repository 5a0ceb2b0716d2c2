"""The Celery task: a thin shim that hands ``(job_id, attempt)`` to ``worker.runner``.

The message carries nothing but the job's id and the attempt it was sent for; the database says
what to run. The engine (and through it torch) is imported inside the task, in the pool child, so
the worker's parent process never loads torch or CUDA; the torch-free runner is imported here too,
but a worker's parent has already loaded it before forking (``worker.pool_refill``).
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from jobstore.settings import Settings
from jobstore.tasknames import TASK_RUN_EVALUATION, TASK_RUN_JOB
from worker import preemption
from worker.dispatch import make_dispatch


def register(app: Celery, settings: Settings) -> None:
    """Register ``run_job`` and ``run_evaluation`` on ``app``; they run with ``settings``."""
    dispatch = make_dispatch(app, settings.queue)

    def run_job(task: Any, job_id: str, attempt: int) -> str:
        from worker.runner import current_identity, run_attempt

        identity = current_identity(str(task.request.hostname or "worker"))
        with preemption.preempt_on_sigterm():
            status = run_attempt(
                job_id, int(attempt), settings=settings, dispatch=dispatch, identity=identity
            )
        return status.value

    app.task(name=TASK_RUN_JOB, bind=True, ignore_result=True, acks_late=False, shared=False)(run_job)

    def run_evaluation(task: Any, evaluation_id: str) -> str:
        from worker.evaluation import run_evaluation as run

        return run(str(evaluation_id), settings=settings, worker=str(task.request.hostname or "worker"))

    app.task(name=TASK_RUN_EVALUATION, bind=True, ignore_result=True, acks_late=False, shared=False)(
        run_evaluation
    )

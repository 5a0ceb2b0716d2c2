"""Celery task names shared by the publisher (api, reaper) and the consumer (worker).

A message names its task by this string, so the API can dispatch without importing the worker.
"""

from __future__ import annotations

from collections.abc import Callable

TASK_RUN_JOB = "ocec.run_job"  # args: (job_id: str, attempt: int)
TASK_RUN_EVALUATION = "ocec.run_evaluation"  # args: (evaluation_id: str,)

Dispatch = Callable[[str, int], None]  # sends one run_job(job_id, attempt) message

# Read by the worker's companion, set by `ocec-jobs worker` and `up`: "0" = beat presence, do not reap.
REAPER_ENV = "OCEC_WORKER_REAPER"

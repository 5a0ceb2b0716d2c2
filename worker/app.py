"""The Celery app of the GPU worker: configuration A of service_practices.md §1.3.

Early ack, no prefetch, one job per process, a fresh child process per job, no result backend. The
database lease (``jobstore``) — not the broker — decides who runs a job, so a message that is
delivered twice, or lost, costs nothing (the claim refuses duplicates; the reaper re-dispatches).

Run with ``celery -A worker.app worker`` (or ``ocec-jobs worker``, which adds GPU pinning). Importing
this module reads settings only: no database connection, no torch, no CUDA.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from jobstore.settings import Settings, get_settings
from jobstore.tasknames import TASK_RUN_EVALUATION, TASK_RUN_JOB
from jobstore.text import escape_log_records
from worker import signals, tasks

SOFT_SHUTDOWN_SECONDS = 60.0  # SIGQUIT (cold) shutdown: time a running job gets to checkpoint


def is_redis(broker_url: str) -> bool:
    return broker_url.startswith(("redis://", "rediss://", "redis+socket://"))


def celery_config(settings: Settings) -> dict[str, Any]:
    """The settings of configuration A; the worker CLI flags only add the node name and queue."""
    return {
        "broker_url": settings.broker_url,
        "broker_connection_retry_on_startup": True,
        "task_default_queue": settings.queue,
        "task_routes": {name: {"queue": settings.queue} for name in (TASK_RUN_JOB, TASK_RUN_EVALUATION)},
        "task_ignore_result": True,
        "task_acks_late": False,  # early ack: Redis would re-deliver an hours-long unacked task
        "task_track_started": False,
        "worker_pool": "prefork",  # the parent stays responsive and never touches CUDA
        "worker_concurrency": 1,  # one job per GPU process
        "worker_prefetch_multiplier": 1,
        # A busy worker must hold no second job in reserve while another GPU idles (Redis only;
        # Celery ignores it, with a warning, on other transports).
        "worker_disable_prefetch": is_redis(settings.broker_url),
        "worker_max_tasks_per_child": 1,  # a fresh process per job frees the CUDA context
        "worker_soft_shutdown_timeout": SOFT_SHUTDOWN_SECONDS,
        "worker_send_task_events": False,
    }


def create_app(settings: Settings | None = None) -> Celery:
    """A Celery app bound to ``settings`` (default: the environment), with the job task registered."""
    settings = settings or get_settings()
    escape_log_records()  # job names and reasons in log lines show escapes (jobstore.text)
    app = Celery("ocec_worker", set_as_current=False)
    app.conf.update(celery_config(settings))
    tasks.register(app, settings)
    signals.connect(app)
    return app


app = create_app()

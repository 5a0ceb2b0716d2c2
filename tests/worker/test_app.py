"""The Celery app: configuration A, the task registered by its shared name, a light parent process."""

from __future__ import annotations

import subprocess
import sys
import warnings

from worker_harness import REPO

from jobstore.settings import Settings
from jobstore.tasknames import TASK_RUN_JOB
from worker.app import celery_config, create_app


def test_configuration_a_on_redis() -> None:
    conf = celery_config(Settings(broker_url="redis://127.0.0.1:6379/0", queue="gpu"))
    assert conf["task_acks_late"] is False and conf["task_ignore_result"] is True
    single = ("worker_concurrency", "worker_prefetch_multiplier", "worker_max_tasks_per_child")
    assert [conf[name] for name in single] == [1, 1, 1]
    assert conf["worker_pool"] == "prefork" and conf["worker_disable_prefetch"] is True
    assert conf["task_default_queue"] == "gpu" and conf["task_routes"][TASK_RUN_JOB] == {"queue": "gpu"}
    assert conf["worker_soft_shutdown_timeout"] > 0


def test_no_prefetch_switch_only_where_celery_supports_it() -> None:
    conf = celery_config(Settings(broker_url="sqla+sqlite:///broker.db"))
    assert conf["worker_disable_prefetch"] is False  # Redis only; Celery would warn and ignore it


def test_each_app_registers_its_own_task_under_the_shared_name() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. DuplicateTaskNameWarning: a second app must not clash
        apps = [create_app(Settings(broker_url="redis://127.0.0.1:6379/0", queue=q)) for q in ("a", "b")]
    tasks = [app.tasks[TASK_RUN_JOB] for app in apps]
    assert all(t.ignore_result and not t.acks_late for t in tasks)
    assert tasks[0].run is not tasks[1].run  # each app runs jobs with its own settings


def test_importing_the_app_loads_neither_torch_nor_the_engine() -> None:
    code = (
        "import sys, worker.app\n"
        "print([m for m in sys.modules if m.split('.')[0] in ('torch', 'ocec_engine')])"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

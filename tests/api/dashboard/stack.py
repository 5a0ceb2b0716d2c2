"""The real stack for the browser tests: uvicorn serving the app, a Celery worker, Redis, SQLite.

The API runs in a thread of the test process (``create_app`` on a temp SQLite database at head);
the worker is a real ``celery -A worker.app worker`` subprocess from the worker tests' harness,
running the fake engine (``tests/worker/fake_engine.py``) on a Celery queue of its own on the
shared Redis. Datasets are fake-engine scripts, so each job's per-epoch delay and F1 curve are
chosen by the test.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "worker"))  # the worker harness

from worker_harness import Harness, make_harness

from api.settings import ApiSettings
from jobstore.db import make_engine, write_transaction
from jobstore.repo import keys
from jobstore.repo.keys import Role
from tests.api.conftest import forget_queue
from tests.live_api import serve

OPERATOR = "alice"  # the operator the browser signs in as


@dataclass
class Stack:
    url: str
    harness: Harness
    http: httpx.Client  # with the operator's key as a bearer token
    key: str  # the operator's API key (the browser signs in with it)
    actor: str  # how the API records the operator's actions: "alice (key 1a2b3c4d)"

    def submit(self, **body: Any) -> dict[str, Any]:
        response = self.http.post("/jobs", json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def status(self, job_id: str) -> dict[str, Any]:
        response = self.http.get(f"/jobs/{job_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def wait_state(self, job_id: str, *states: str, timeout: float = 30.0) -> dict[str, Any]:
        self.harness.wait_state(job_id, *states, timeout=timeout)
        return self.status(job_id)

    def wait_epoch(self, job_id: str, epoch: int, timeout: float = 30.0) -> None:
        self.harness.wait_epoch(job_id, epoch, timeout=timeout)

    def dataset(self, name: str, **script: Any) -> str:
        return self.harness.dataset(name, **script)


@contextmanager
def running_stack(tmp: Path, db_url: str, redis_url: str) -> Iterator[Stack]:
    """API + one worker on a queue no other test uses; everything is stopped and its keys deleted after."""
    queue = f"test-ui-{uuid.uuid4().hex[:12]}"
    db = make_engine(db_url)
    harness = make_harness(tmp, db_url, redis_url, queue, db)
    settings = ApiSettings(
        home=harness.settings.home,
        database_url=db_url,
        broker_url=redis_url,
        queue=queue,
        stream_poll_seconds=0.2,
        stream_keepalive_seconds=5,
        stream_retry_ms=500,
    )
    with write_transaction(db) as session:
        made = keys.create_key(session, name=OPERATOR, role=Role.OPERATOR)
        secret, actor = made.secret, keys.actor_label(made.record)
    auth = {"Authorization": f"Bearer {secret}"}
    try:
        harness.start_worker("ui", OCEC_EVALUATOR="fake_evaluator:evaluate_to_dir")
        with serve(settings) as url, httpx.Client(base_url=url, headers=auth, timeout=10) as http:
            yield Stack(url, harness, http, secret, actor)
    finally:
        harness.stop_workers()
        db.dispose()
        forget_queue(redis_url, queue)  # only this queue's keys: never FLUSHDB

"""One real stack for the client tests: uvicorn serving the API (auth on) on a free port, one real
Celery worker running the fast fake engine on a queue of its own (shared Redis), a migrated SQLite
database; and ``ocec-jobs`` run as a subprocess, as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "worker"))  # the worker harness

from worker_harness import Harness, make_harness, wait_for

from api.settings import ApiSettings
from jobstore.db import make_engine, write_transaction
from jobstore.migrate import upgrade_to_head
from jobstore.repo import keys
from jobstore.repo.keys import Role
from tests.api.conftest import forget_queue
from tests.live_api import serve

CLIENT_ENV = ("OCEC_URL", "OCEC_API_KEY", "DATABASE_URL", "REDIS_URL", "OCEC_HOME")


@dataclass
class Stack:
    url: str
    harness: Harness
    operator: str  # API keys
    viewer: str

    def cli(
        self, *argv: str, key: str | None = "operator", url: str | None = None, timeout: float = 120
    ) -> Result:
        """``ocec-jobs <argv>`` as a subprocess with OCEC_URL / OCEC_API_KEY set (``key=None``: no key)."""
        env = {k: v for k, v in os.environ.items() if k not in CLIENT_ENV}
        env["OCEC_URL"] = url or self.url
        if key is not None:
            env["OCEC_API_KEY"] = getattr(self, key, key)
        command = [sys.executable, "-m", "ocec_jobs.cli.main", *argv]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, check=False)
        return Result(done.returncode, done.stdout, done.stderr)

    def dataset(self, name: str, **script: Any) -> str:
        return self.harness.dataset(name, **script)

    def wait_state(self, job_id: str, *states: str) -> Any:
        return self.harness.wait_state(job_id, *states, timeout=60)


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


def _key(db_url: str, name: str, role: Role) -> str:
    engine = make_engine(db_url)
    try:
        with write_transaction(engine) as session:
            return keys.create_key(session, name=name, role=role).secret
    finally:
        engine.dispose()


@pytest.fixture(scope="package")  # one stack for the CLI and the Python client tests (tests/scheduling.py)
def stack(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("client")
    db_url = f"sqlite:///{tmp / 'ocec.db'}"
    upgrade_to_head(db_url)
    queue = f"test-cli-{uuid.uuid4().hex[:12]}"
    db = make_engine(db_url)
    harness = make_harness(tmp, db_url, redis_url, queue, db)
    settings = ApiSettings(
        home=harness.settings.home, database_url=db_url, broker_url=redis_url, queue=queue,
        stream_poll_seconds=0.05, stream_keepalive_seconds=1.0,
    )  # fmt: skip
    try:
        harness.start_worker("cli", OCEC_EVALUATOR="fake_evaluator:evaluate_to_dir")  # evaluate
        with serve(settings) as url:
            yield Stack(
                url, harness, _key(db_url, "cli-user", Role.OPERATOR), _key(db_url, "watcher", Role.VIEWER)
            )
    finally:
        harness.stop_workers()
        db.dispose()
        forget_queue(redis_url, queue)  # only this module's keys: never FLUSHDB


__all__ = ["Result", "Stack", "wait_for"]

"""Test harness for the worker: settings and env for a test, real Celery worker subprocesses, jobs.

Nothing here replaces a product component: jobs are created with jobstore, messages go through a
real Celery publisher to the real Redis (or the embedded SQLite broker), and workers are real
``celery -A worker.app worker`` processes (prefork, -c 1) running the fake engine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from celery import Celery
from fake_engine import write_script
from sqlalchemy import Engine
from sqlmodel import col, select

from jobstore.db import read_session, write_transaction
from jobstore.models import Attempt, CheckpointRecord, EpochMetric, Job, JobEvent
from jobstore.repo.jobs import create_job
from jobstore.settings import Settings
from jobstore.spec import JobCreate
from worker.dispatch import make_dispatch

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
T = TypeVar("T")

FAST = {
    "OCEC_HEARTBEAT_SECONDS": "0.3",
    "OCEC_LEASE_SECONDS": "2",
    "OCEC_REAPER_INTERVAL_SECONDS": "0.5",
}


def wait_for(check: Callable[[], T | None], timeout: float = 30.0, what: str = "condition") -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.1)


@dataclass
class Harness:
    """One test's world: settings, database engine, a publisher, and the workers it started."""

    settings: Settings
    db: Engine
    env: dict[str, str]
    workers: list[WorkerProcess] = field(default_factory=list)

    # ---- data and jobs -------------------------------------------------------------------------
    def dataset(self, name: str = "setB", **script: Any) -> str:
        write_script(self.settings.data_root / name, **script)
        return name

    def create(self, *, name: str = "job", dispatch: bool = True, **spec: Any) -> str:
        spec.setdefault("data_root", "setB")
        with write_transaction(self.db) as session:
            job = create_job(session, create=JobCreate(name=name, **spec)).job
            job_id, attempt = job.id, job.attempt
        if dispatch:
            self.dispatch(job_id, attempt)
        return job_id

    @contextmanager
    def publisher(self) -> Iterator[Callable[[str, int], None]]:
        app = Celery("ocec-test-publisher", broker=self.settings.broker_url, set_as_current=False)
        try:
            yield make_dispatch(app, self.settings.queue)
        finally:
            app.close()

    def dispatch(self, job_id: str, attempt: int) -> None:
        with self.publisher() as send:
            send(job_id, attempt)

    # ---- reading back ------------------------------------------------------------------------
    def job(self, job_id: str) -> Job:
        with read_session(self.db) as session:
            job = session.get(Job, job_id)
            assert job is not None
            return job

    def wait_state(self, job_id: str, *states: str, timeout: float = 30.0) -> Job:
        def check() -> Job | None:
            job = self.job(job_id)
            return job if job.state in states else None

        return self._wait(check, timeout, f"job {job_id} to become {'/'.join(states)}", job_id)

    def wait_epoch(self, job_id: str, epoch: int, timeout: float = 30.0) -> Job:
        return self._wait(
            lambda: (j := self.job(job_id)).epoch >= epoch and j, timeout, f"epoch {epoch}", job_id
        )

    def _wait(self, check: Callable[[], T | None], timeout: float, what: str, job_id: str) -> T:
        try:
            return wait_for(check, timeout, what)
        except AssertionError as exc:  # say where things stand: the job, its events, the worker logs
            job = self.job(job_id)
            events = [f"{e.seq} {e.kind} {e.to_state or ''} {e.reason[:120]}" for e in self.events(job_id)]
            logs = [f"--- {w.name} ---\n{w.log()[-4000:]}" for w in self.workers]
            detail = "\n".join([f"state={job.state} attempt={job.attempt} epoch={job.epoch}", *events, *logs])
            raise AssertionError(f"{exc}\n{detail}") from None

    def metrics(self, job_id: str, *, live: bool = True) -> list[EpochMetric]:
        with read_session(self.db) as session:
            query = select(EpochMetric).where(EpochMetric.job_id == job_id)
            if live:
                query = query.where(col(EpochMetric.superseded).is_(False))
            return list(session.exec(query.order_by(col(EpochMetric.epoch), col(EpochMetric.id))).all())

    def events(self, job_id: str, kind: str | None = None) -> list[JobEvent]:
        with read_session(self.db) as session:
            query = select(JobEvent).where(JobEvent.job_id == job_id)
            if kind is not None:
                query = query.where(JobEvent.kind == kind)
            return list(session.exec(query.order_by(col(JobEvent.seq))).all())

    def attempts(self, job_id: str) -> list[Attempt]:
        with read_session(self.db) as session:
            query = select(Attempt).where(Attempt.job_id == job_id).order_by(col(Attempt.number))
            return list(session.exec(query).all())

    def checkpoints(self, job_id: str) -> list[CheckpointRecord]:
        with read_session(self.db) as session:
            query = select(CheckpointRecord).where(CheckpointRecord.job_id == job_id)
            return list(session.exec(query.order_by(col(CheckpointRecord.id))).all())

    # ---- workers --------------------------------------------------------------------------------
    def start_worker(self, name: str | None = None, *, reaper: bool = False, **env: str) -> WorkerProcess:
        name = name or f"w{uuid.uuid4().hex[:8]}"
        env = {**self.env, "OCEC_WORKER_REAPER": "1" if reaper else "0", **env}
        proc = WorkerProcess(name, self.settings.queue, env, self.settings.home / f"{name}.log")
        self.workers.append(proc)
        proc.start()
        return proc

    def stop_workers(self) -> None:
        for proc in self.workers:
            proc.kill()


def make_harness(tmp_path: Path, db_url: str, broker_url: str, queue: str, db: Engine, **env: str) -> Harness:
    home = tmp_path / "home"
    values = {
        "DATABASE_URL": db_url,
        "OCEC_BROKER_URL": broker_url,
        "OCEC_QUEUE": queue,
        "OCEC_HOME": str(home),
        "OCEC_ENGINE": "fake_engine:train",
        "PYTHONPATH": os.pathsep.join([str(REPO), str(HERE)]),
        **FAST,
        **env,
    }
    full_env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL",)} | values
    settings = Settings(
        home=home,
        database_url=db_url,
        broker_url=broker_url,
        queue=queue,
        heartbeat_seconds=float(values["OCEC_HEARTBEAT_SECONDS"]),
        lease_seconds=float(values["OCEC_LEASE_SECONDS"]),
        reaper_interval_seconds=float(values["OCEC_REAPER_INTERVAL_SECONDS"]),
    )
    for root in (settings.data_root, settings.model_root, settings.runs_root):
        root.mkdir(parents=True, exist_ok=True)
    return Harness(settings, db, full_env)


class WorkerProcess:
    """``celery -A worker.app worker`` in a subprocess (configuration A; prefork, one child)."""

    def __init__(self, name: str, queue: str, env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.node = f"{name}@%h"
        self.queue = queue
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        argv = [
            sys.executable, "-m", "celery", "-A", "worker.app", "worker", "--pool", "prefork",
            "--concurrency", "1", "--max-tasks-per-child", "1", "--queues", self.queue,
            "--hostname", self.node, "--loglevel", "INFO", "--without-gossip", "--without-mingle",
        ]  # fmt: skip
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(argv, env=self.env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        wait_for(self._ready, timeout, f"worker {self.name} to be ready")

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"worker {self.name} exited ({self.proc.returncode}):\n{self.log()}")
        return " ready." in self.log()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def stop(self, timeout: float = 30.0) -> int:
        """Warm shutdown (SIGTERM), as a deployment would; returns the exit code."""
        self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

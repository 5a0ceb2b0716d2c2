"""Fixtures for the jobstore tests: job factories on the parametrized (SQLite | PostgreSQL) engine."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import Engine

from jobstore import repo
from jobstore.db import read_session, write_transaction
from jobstore.models import Job
from jobstore.spec import JobCreate

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LEASE = 30.0

NewJob = Callable[..., Job]
StartJob = Callable[..., tuple[str, int]]


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def at() -> Callable[[float], datetime]:
    """A fixed test clock: ``at(s)`` is T0 + s seconds (T0 is also when ``new_job`` creates jobs)."""
    return _at


def job_create(**overrides: Any) -> JobCreate:
    return JobCreate.model_validate({"data_root": "dataset_B", "epochs": 10, **overrides})


@pytest.fixture
def engine(migrated_engine: Engine) -> Engine:
    return migrated_engine


@pytest.fixture
def new_job(engine: Engine) -> NewJob:
    """``new_job(name=..., priority=..., owner=..., now=...)``: a committed queued job."""

    def make(*, owner: str = "", now: datetime | None = None, **fields: Any) -> Job:
        with write_transaction(engine) as session:
            return repo.create_job(session, create=job_create(**fields), owner=owner, now=now or T0).job

    return make


@pytest.fixture
def start_job(engine: Engine, new_job: NewJob) -> StartJob:
    """``start_job()``: a new job claimed by worker "w1"; returns ``(job_id, attempt)``."""

    def start(job: Job | None = None, *, worker: str = "w1", now: datetime | None = None) -> tuple[str, int]:
        job = job or new_job()
        with write_transaction(engine) as session:
            claimed = repo.claim(
                session, job_id=job.id, attempt=job.attempt, worker=worker, pid=1, gpu="0",
                lease_seconds=LEASE, now=now or T0,
            )  # fmt: skip
        assert claimed is not None
        return job.id, job.attempt

    return start


@pytest.fixture
def load(engine: Engine) -> Callable[[str], Job]:
    """``load(job_id)``: the committed job row, read in a fresh session."""

    def read(job_id: str) -> Job:
        with read_session(engine) as session:
            return repo.get_job(session, job_id)

    return read


R = TypeVar("R")


def _concurrently(*calls: Callable[[], R]) -> list[R]:
    """Run the calls in threads at once; re-raise the first error, else return their results."""
    results: list[R] = []
    errors: list[BaseException] = []

    def run(call: Callable[[], R]) -> None:
        try:
            results.append(call())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


@pytest.fixture
def concurrently() -> Callable[..., list[Any]]:
    """``concurrently(f, g, ...)``: call each in its own thread at once; results in completion order."""
    return _concurrently

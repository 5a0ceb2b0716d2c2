from __future__ import annotations

import pytest
from sqlalchemy import Engine, update

from jobstore import repo
from jobstore.db import read_session, write_transaction
from jobstore.errors import JobNotFoundError
from jobstore.models import Attempt, Job, WorkerPresence, utcnow
from tests.jobstore.conftest import NewJob, StartJob


def test_status_rows_bring_the_current_attempt_its_worker_and_whether_it_was_forked(
    engine: Engine, new_job: NewJob, start_job: StartJob
) -> None:
    job_id, attempt = start_job()
    child = new_job(name="child")
    with write_transaction(engine) as session:
        repo.beat_worker(session, name="w1", pid=7)
        repo.beat_worker(session, name="w2", pid=8)
        session.execute(update(Job).where(Job.id == child.id).values(parent_job_id=job_id))  # type: ignore[arg-type]
    with read_session(engine) as session:
        rows = repo.status_rows(session, job_id)
        queued = repo.status_rows(session, child.id)
    assert rows.job.id == job_id and rows.attempt is not None and rows.worker is not None
    assert (rows.attempt.number, rows.worker.name, rows.worker.pid, rows.forked) == (attempt, "w1", 7, True)
    assert queued.attempt is None and queued.worker is None and not queued.forked  # not claimed, no lease
    with read_session(engine) as session:  # the rows as the session loads its objects
        job, current, worker = (
            session.get(Job, job_id),
            session.get(Attempt, (job_id, attempt)),
            session.get(WorkerPresence, "w1"),
        )
    assert job is not None and current is not None and worker is not None
    assert (rows.job.model_dump(), rows.attempt.model_dump(), rows.worker.model_dump()) == (
        job.model_dump(),
        current.model_dump(),
        worker.model_dump(),
    )

    with write_transaction(engine) as session:
        session.execute(update(Job).where(Job.id == child.id).values(deleted_at=utcnow()))  # type: ignore[arg-type]
    with read_session(engine) as session:
        assert not repo.status_rows(session, job_id).forked  # a deleted fork is not listed
        with pytest.raises(JobNotFoundError):
            repo.status_rows(session, "f" * 32)

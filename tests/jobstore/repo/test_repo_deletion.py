"""Deleting a job leaves a tombstone: refused while it or a fork needing it is not finished."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from jobstore import repo
from jobstore.db import read_session, write_transaction
from jobstore.errors import DeleteRefusedError, JobDeletedError
from jobstore.repo.deletion import delete_job
from jobstore.settings import Settings
from tests.jobstore.conftest import NewJob, StartJob, _at
from tests.jobstore.runs import finish, train


def delete(engine: Engine, job_id: str) -> bool:
    with write_transaction(engine) as session:
        return delete_job(session, job_id, actor="op", reason="tidy", disk_bytes=123, now=_at(50))[1]


def test_a_tombstone_once_the_job_and_the_forks_that_need_it_are_finished(
    engine: Engine, start_job: StartJob, new_job: NewJob, tmp_path: Path
) -> None:
    settings = Settings(home=tmp_path)
    running = new_job()
    job_id, attempt = start_job(running)
    train(settings, engine, job_id, attempt, range(1, 3))

    with pytest.raises(DeleteRefusedError, match=r"is running.*cancel it first"):
        delete(engine, job_id)
    finish(engine, job_id, attempt)
    with write_transaction(engine) as session:
        fork = repo.fork_job(session, parent_id=job_id, selector="epoch:1", actor="op", reason="").job
    with pytest.raises(DeleteRefusedError, match=f"fork\\(s\\) {fork.id} still restore"):
        delete(engine, job_id)
    with write_transaction(engine) as session:
        repo.request_cancel(session, job_id=fork.id, actor="op", reason="not needed")

    assert delete(engine, job_id) is True
    assert delete(engine, job_id) is False  # again: nothing changes

    with read_session(engine) as session:
        job = repo.get_job(session, job_id)
        [event] = [e for e in repo.list_events(session, job_id=job_id) if e.kind == "deleted"]
        records = repo.list_checkpoints(session, job_id=job_id)
        listed = [j.id for j in repo.list_jobs(session).items]
        everything = [j.id for j in repo.list_jobs(session, include_deleted=True).items]
        with pytest.raises(JobDeletedError, match="was deleted at"):
            repo.request_resume(session, job, actor="op", reason="")
    assert job.deleted_at == _at(50) and job.state == "succeeded"
    assert (event.actor, event.reason, event.evidence["bytes"]) == ("op", "tidy", 123)
    assert records and all(r.pruned_at == _at(50) for r in records)
    assert job_id not in listed and job_id in everything and fork.id in listed

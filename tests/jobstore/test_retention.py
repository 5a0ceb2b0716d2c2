"""The retention pass on the real database (SQLite and PostgreSQL) and real files: which epoch
checkpoints go, what is never touched, and what a resume or fork of a pruned one is told."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import col, select

from jobstore import repo, retention
from jobstore.db import read_session, transaction_factory, write_transaction
from jobstore.errors import CheckpointPrunedError
from jobstore.models import CheckpointRecord, JobEvent
from jobstore.settings import Settings
from tests.jobstore.conftest import NewJob, StartJob, _at
from tests.jobstore.runs import finish, train

EPOCHS = 5


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", keep_epoch_checkpoints=2)


def files(settings: Settings, job_id: str) -> list[str]:
    return sorted(
        p.relative_to(settings.runs_root / job_id).as_posix()
        for p in (settings.runs_root / job_id).rglob("*.pt")
    )


def prune(engine: Engine, settings: Settings) -> retention.PruneReport:
    return retention.prune(transaction_factory(engine), settings=settings, now=_at(100))


def finished_job(
    engine: Engine, settings: Settings, start_job: StartJob, new_job: NewJob, **spec: object
) -> str:
    job_id, attempt = start_job(new_job(**spec))
    train(settings, engine, job_id, attempt, range(1, EPOCHS + 1))
    finish(engine, job_id, attempt)
    return job_id


def test_a_finished_job_keeps_its_k_newest_epochs_and_every_other_kind(
    engine: Engine, settings: Settings, start_job: StartJob, new_job: NewJob
) -> None:
    job_id = finished_job(engine, settings, start_job, new_job)
    with read_session(engine) as session:
        planned = retention.plan(session, settings)

    report = prune(engine, settings)

    assert [d.epoch for d in planned] == [d.epoch for d in report.pruned] == [3, 2, 1]
    assert report.bytes == 101 + 102 + 103 and report.errors == 0
    assert files(settings, job_id) == [
        "best.pt", "epochs/epoch_0004.pt", "epochs/epoch_0005.pt", "last.pt", "stage1_entry.pt",
    ]  # fmt: skip
    with read_session(engine) as session:
        gone = session.exec(
            select(CheckpointRecord).where(col(CheckpointRecord.pruned_at).is_not(None))
        ).all()
        [event] = session.exec(
            select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.kind == "pruned")
        ).all()
        assert sorted(r.epoch for r in gone) == [1, 2, 3] and all(r.kind == "epoch" for r in gone)
        assert (event.actor, event.evidence["keep"], event.evidence["bytes"]) == ("retention", 2, 306)
        assert repo.find_checkpoint(session, job_id=job_id, selector="epoch:4") is not None
        with pytest.raises(CheckpointPrunedError, match=r"epoch:2.*pruned at 2026-03-01T12:01:40"):
            repo.require_checkpoint(session, job_id=job_id, selector="epoch:2")
    assert prune(engine, settings).pruned == []  # nothing left to do


def test_the_spec_keep_epochs_overrides_the_server_default(
    engine: Engine, settings: Settings, start_job: StartJob, new_job: NewJob
) -> None:
    job_id = finished_job(engine, settings, start_job, new_job, keep_epochs=0)

    assert len(prune(engine, settings).pruned) == EPOCHS
    assert files(settings, job_id) == ["best.pt", "last.pt", "stage1_entry.pt"]
    with read_session(engine) as session:
        last = repo.find_checkpoint(session, job_id=job_id, selector="last")
    assert last is not None and (last.epoch, last.kind) in {
        (EPOCHS, "last"),
        (EPOCHS, "best"),
    }  # never pruned


def test_a_checkpoint_a_fork_restores_from_is_kept(
    engine: Engine, settings: Settings, start_job: StartJob, new_job: NewJob
) -> None:
    parent = finished_job(engine, settings, start_job, new_job)
    with write_transaction(engine) as session:
        repo.fork_job(session, parent_id=parent, selector="epoch:1", actor="op", reason="try")

    assert [d.epoch for d in prune(engine, settings).pruned] == [3, 2]
    assert "epochs/epoch_0001.pt" in files(settings, parent)


def test_a_running_job_loses_only_epochs_it_finished_after_its_restore(
    engine: Engine, settings: Settings, start_job: StartJob, new_job: NewJob
) -> None:
    queued = new_job()
    job_id, attempt = start_job()
    train(settings, engine, job_id, attempt, range(1, 5))

    assert [d.epoch for d in prune(engine, settings).pruned] == [2, 1]
    assert [d.epoch for d in prune(engine, settings).pruned] == []
    with read_session(engine) as session:
        assert retention.doomed(session, repo.get_job(session, queued.id), settings) == []

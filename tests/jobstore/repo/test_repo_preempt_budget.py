"""The preempt budget: a clean preemption is free, but a loop of them without progress is bounded.

More than ``preempt_budget`` preemptions in a row without a completed epoch (since the last epoch
row or operator resume) fail the job; an epoch completed in between, or an operator resume, starts
the count again; without a budget (``None``) preemptions never fail a job.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine

from jobstore import repo
from jobstore.db import write_transaction
from jobstore.models import Job
from jobstore.records import CheckpointRow, EpochRow
from jobstore.states import AttemptOutcome

Clock = Callable[[float], datetime]


def _preempt(engine: Engine, job_id: str, attempt: int, now: datetime, budget: int | None) -> repo.Finish:
    with write_transaction(engine) as session:
        return repo.finish_attempt(
            session, job_id=job_id, attempt=attempt, outcome=AttemptOutcome.PREEMPTED,
            reason="worker shutting down (SIGTERM)", preempt_budget=budget, now=now,
        )  # fmt: skip


def _claim(engine: Engine, job_id: str, attempt: int, now: datetime) -> None:
    with write_transaction(engine) as session:
        claimed = repo.claim(
            session, job_id=job_id, attempt=attempt, worker="w", pid=1, gpu=None, lease_seconds=30, now=now
        )
    assert claimed is not None


def _epoch(engine: Engine, job_id: str, attempt: int, epoch: int, now: datetime) -> None:
    with write_transaction(engine) as session:
        repo.record_epoch(
            session, job_id=job_id, attempt=attempt, row=EpochRow(epoch=epoch, stage=1), now=now
        )
        repo.record_checkpoint(
            session, job_id=job_id, attempt=attempt, now=now,
            row=CheckpointRow(path="last.pt", kind="last", epoch=epoch, stage=1),
        )  # fmt: skip


def test_preemptions_without_an_epoch_past_the_budget_fail_the_job(
    engine: Engine, new_job: Callable[..., Job], load: Callable[[str], Job], at: Clock
) -> None:
    job_id = new_job().id
    for attempt in (1, 2):
        _claim(engine, job_id, attempt, at(10 * attempt))
        assert _preempt(engine, job_id, attempt, at(10 * attempt + 5), budget=2).dispatch == (
            job_id,
            attempt + 1,
        )
    _claim(engine, job_id, 3, at(30))

    assert _preempt(engine, job_id, 3, at(35), budget=2).dispatch is None
    job = load(job_id)
    assert job.state == "failed" and job.infra_retries == 0
    assert job.state_reason.startswith(
        "preempted 3 times in a row without completing an epoch (preempt budget 2)"
    )


def test_an_epoch_between_preemptions_starts_the_count_again(
    engine: Engine, new_job: Callable[..., Job], load: Callable[[str], Job], at: Clock
) -> None:
    job_id = new_job().id
    for attempt in (1, 2, 3, 4):
        _claim(engine, job_id, attempt, at(10 * attempt))
        _epoch(engine, job_id, attempt, attempt, at(10 * attempt + 2))
        assert _preempt(engine, job_id, attempt, at(10 * attempt + 5), budget=1).dispatch is not None
    assert load(job_id).state == "queued"


def test_an_operator_resume_starts_the_count_again(
    engine: Engine, new_job: Callable[..., Job], load: Callable[[str], Job], at: Clock
) -> None:
    job_id = new_job().id
    _claim(engine, job_id, 1, at(1))
    _epoch(engine, job_id, 1, 1, at(2))
    for attempt in (1, 2):
        if attempt > 1:
            _claim(engine, job_id, attempt, at(10 * attempt))
        _preempt(engine, job_id, attempt, at(10 * attempt + 5), budget=1)
    assert load(job_id).state == "failed"
    with write_transaction(engine) as session:
        _, attempt = repo.request_resume(session, load(job_id), actor="op", reason="fixed the deploy loop")
    _claim(engine, job_id, attempt, at(40))

    assert _preempt(engine, job_id, attempt, at(45), budget=1).dispatch is not None
    assert load(job_id).state == "queued"


def test_without_a_budget_preemptions_never_fail_a_job(
    engine: Engine, new_job: Callable[..., Job], load: Callable[[str], Job], at: Clock
) -> None:
    job_id = new_job().id
    for attempt in (1, 2, 3):
        _claim(engine, job_id, attempt, at(10 * attempt))
        _preempt(engine, job_id, attempt, at(10 * attempt + 5), budget=None)
    assert load(job_id).state == "queued"

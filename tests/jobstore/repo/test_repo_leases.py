from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import partial

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from jobstore import repo
from jobstore.db import read_session, write_transaction
from jobstore.errors import FencedOutError
from jobstore.events import EventKind
from jobstore.kinds import CommandKind, CommandStatus
from jobstore.models import Attempt, Job
from jobstore.records import CheckpointRow, EpochRow
from jobstore.repo import leases
from jobstore.states import AttemptOutcome, JobState

Clock = Callable[[float], datetime]
Start = Callable[..., tuple[str, int]]


def claim(engine: Engine, job_id: str, attempt: int, worker: str = "w2", now: datetime | None = None):  # type: ignore[no-untyped-def]
    with write_transaction(engine) as session:
        return repo.claim(
            session, job_id=job_id, attempt=attempt, worker=worker, pid=7, gpu="1", lease_seconds=30, now=now
        )


def finish(engine: Engine, job_id: str, attempt: int, outcome: AttemptOutcome, **kw):  # type: ignore[no-untyped-def]
    with write_transaction(engine) as session:
        return repo.finish_attempt(session, job_id=job_id, attempt=attempt, outcome=outcome, reason="r", **kw)


def test_claim_starts_the_attempt(engine: Engine, new_job: Callable[..., Job], at: Clock) -> None:
    job = new_job()
    claimed = claim(engine, job.id, 1, now=at(3))
    assert claimed is not None
    assert (claimed.job.state, claimed.job.lease_owner, claimed.job.lease_expires_at) == (
        "running",
        "w2",
        at(33),
    )
    assert (claimed.attempt.number, claimed.attempt.worker, claimed.attempt.pid, claimed.attempt.gpu) == (
        1,
        "w2",
        7,
        "1",
    )
    with read_session(engine) as session:
        [event] = repo.list_events(session, job_id=job.id, kinds=[EventKind.STATE_CHANGE])
    assert (event.to_state, event.actor, event.evidence["worker"]) == ("running", "worker:w2", "w2")


def test_duplicate_and_stale_deliveries_touch_nothing(engine: Engine, start_job: Start, load) -> None:  # type: ignore[no-untyped-def]
    job_id, attempt = start_job()
    before = load(job_id)
    assert claim(engine, job_id, attempt) is None  # the same message delivered twice
    assert claim(engine, job_id, attempt + 1) is None  # a message for an attempt that does not exist
    assert claim(engine, "missing", 1) is None
    after = load(job_id)
    assert (after.event_seq, after.lease_owner, after.updated_at) == (
        before.event_seq,
        "w1",
        before.updated_at,
    )


def test_concurrent_claims_have_one_winner(
    engine: Engine, new_job: Callable[..., Job], concurrently: Callable[..., list[object]]
) -> None:
    job = new_job()
    results = concurrently(*(partial(claim, engine, job.id, 1, f"w{n}") for n in range(4)))
    assert sum(result is not None for result in results) == 1
    with read_session(engine) as session:
        assert len(session.exec(select(Attempt)).all()) == 1


def test_heartbeat_renews_and_reports_fencing(engine: Engine, start_job: Start, at: Clock) -> None:
    job_id, attempt = start_job()
    with write_transaction(engine) as session:
        beat = repo.heartbeat(session, job_id=job_id, attempt=attempt, lease_seconds=30, now=at(100))
        stale = repo.heartbeat(session, job_id=job_id, attempt=attempt + 1, lease_seconds=30, now=at(100))
    assert not beat.fenced_out and beat.lease_expires_at == at(130)
    with read_session(engine) as session:
        stored = repo.get_job(session, job_id)
    assert (stored.lease_expires_at, stored.heartbeat_at) == (at(130), at(100))
    assert stale.fenced_out and "fenced out" in stale.reason
    finish(engine, job_id, attempt, AttemptOutcome.COMPLETED)
    with write_transaction(engine) as session:
        assert repo.heartbeat(session, job_id=job_id, attempt=attempt, lease_seconds=30).fenced_out


@pytest.mark.parametrize(
    ("outcome", "state"),
    [
        (AttemptOutcome.COMPLETED, JobState.SUCCEEDED),
        (AttemptOutcome.STOPPED, JobState.SUCCEEDED),
        (AttemptOutcome.FAILED, JobState.FAILED),
        (AttemptOutcome.CANCELLED, JobState.CANCELLED),
        (AttemptOutcome.PAUSED, JobState.PAUSED),
    ],
)
def test_finish_moves_the_job(
    engine: Engine, start_job: Start, load, outcome: AttemptOutcome, state: JobState
) -> None:  # type: ignore[no-untyped-def]
    job_id, attempt = start_job()
    result = finish(engine, job_id, attempt, outcome, best_checkpoint="b.pt", onnx_path="m.onnx")
    job = load(job_id)
    assert result.dispatch is None
    assert (job.state, job.attempt, job.best_checkpoint, job.onnx_path, job.lease_owner) == (
        state, attempt, "b.pt", "m.onnx", None
    )  # fmt: skip
    with read_session(engine) as session:
        row = session.get(Attempt, (job_id, attempt))
    assert row is not None and row.outcome == outcome and row.ended_at is not None
    with pytest.raises(FencedOutError):  # the attempt is over: no more writes
        finish(engine, job_id, attempt, outcome)


def test_awaiting_decision_keeps_the_gate_and_expires_open_commands(
    engine: Engine, start_job: Start, load
) -> None:  # type: ignore[no-untyped-def]
    job_id, attempt = start_job()
    with write_transaction(engine) as session:
        repo.request_command(session, job_id=job_id, kind=CommandKind.PAUSE, actor="op", reason="later")
    gate = {"stage": 2, "f1": 0.74, "threshold": 0.8, "passed": False}
    finish(engine, job_id, attempt, AttemptOutcome.AWAITING_DECISION, gate=gate)
    job = load(job_id)
    assert (job.state, job.gate) == ("awaiting_decision", gate)
    with read_session(engine) as session:
        [command] = repo.list_commands(session, job_id=job_id)
        assert repo.list_events(session, job_id=job_id, kinds=[EventKind.COMMAND_EXPIRED])
    assert command.status == CommandStatus.EXPIRED


def test_preemption_requeues_a_new_attempt_from_the_last_checkpoint(
    engine: Engine, start_job: Start, load
) -> None:  # type: ignore[no-untyped-def]
    job_id, attempt = start_job()
    with write_transaction(engine) as session:
        repo.record_checkpoint(
            session,
            job_id=job_id,
            attempt=attempt,
            row=CheckpointRow(path="i.pt", kind="interrupt", epoch=3, stage=1, batch=5),
        )
        repo.request_command(
            session, job_id=job_id, kind=CommandKind.FORCE_STAGE, params={"stage": 2}, actor="op", reason="go"
        )
        repo.heartbeat(session, job_id=job_id, attempt=attempt, lease_seconds=30)  # delivered, not applied
    result = finish(engine, job_id, attempt, AttemptOutcome.PREEMPTED)
    job = load(job_id)
    assert result.dispatch == (job_id, attempt + 1)
    assert (job.state, job.attempt, job.infra_retries) == ("queued", attempt + 1, 0)
    assert (job.resume_from["checkpoint"], job.resume_from["epoch"], job.resume_from["batch"]) == (
        "i.pt",
        3,
        5,
    )
    with read_session(engine) as session:
        [command] = repo.list_commands(session, job_id=job_id)
    assert command.status == CommandStatus.PENDING  # carried to the next attempt


@pytest.mark.parametrize(
    ("kind", "state"), [(CommandKind.CANCEL, "cancelled"), (CommandKind.PAUSE, "paused")]
)
def test_preemption_with_a_pending_stop_applies_it(
    engine: Engine, start_job: Start, load, kind: CommandKind, state: str
) -> None:  # type: ignore[no-untyped-def]
    job_id, attempt = start_job()
    with write_transaction(engine) as session:
        repo.request_command(session, job_id=job_id, kind=kind, actor="op", reason="stop it")
    assert finish(engine, job_id, attempt, AttemptOutcome.PREEMPTED).dispatch is None
    assert load(job_id).state == state
    with read_session(engine) as session:
        assert repo.list_commands(session, job_id=job_id)[0].status == CommandStatus.APPLIED


def test_lost_is_the_reapers_outcome(engine: Engine, start_job: Start) -> None:
    job_id, attempt = start_job()
    with pytest.raises(ValueError, match="reaper"):
        finish(engine, job_id, attempt, AttemptOutcome.LOST)


def test_restore_confirmation_supersedes_later_rows(engine: Engine, start_job: Start, load) -> None:  # type: ignore[no-untyped-def]
    job_id, attempt = start_job()
    with write_transaction(engine) as session:
        for epoch in (1, 2, 3):
            repo.record_epoch(
                session, job_id=job_id, attempt=attempt, row=EpochRow(epoch=epoch, stage=1, val_f1=0.5)
            )
            repo.record_checkpoint(
                session, job_id=job_id, attempt=attempt,
                row=CheckpointRow(path=f"e{epoch}.pt", kind="epoch", epoch=epoch, stage=1),
            )  # fmt: skip
        repo.transition(session, repo.get_job(session, job_id), JobState.PAUSED, actor="w", reason="pause")
    with write_transaction(engine) as session:
        _, new_attempt = repo.request_resume(
            session, repo.get_job(session, job_id), selector="epoch:1", actor="op", reason="redo"
        )
    claim(engine, job_id, new_attempt)
    with write_transaction(engine) as session:
        restore = repo.record_restore(
            session, job_id=job_id, attempt=new_attempt, stage=1, epoch=1, resumed_from="e1.pt"
        )
        wrong = repo.record_restore(
            session, job_id=job_id, attempt=new_attempt, stage=1, epoch=2, resumed_from="e2.pt"
        )
    assert (restore.matches, restore.superseded) == (True, 2)
    assert not wrong.matches
    assert load(job_id).epoch == 2  # the last confirmation is the truth
    with read_session(engine) as session:
        row = session.get(Attempt, (job_id, new_attempt))
        live = [c.path for c in repo.list_checkpoints(session, job_id=job_id, include_superseded=False)]
        events = repo.list_events(session, job_id=job_id, kinds=[EventKind.RESTORED])
    assert row is not None and (row.restored_epoch, row.restored_stage, row.resumed_from) == (2, 1, "e2.pt")
    assert live == ["e1.pt"]
    assert events[0].evidence["matches"] and "MISMATCH" in events[1].reason


def claim_next(engine: Engine, job_id: str, attempt: int) -> str | None:
    """What the worker does with the message ``(job_id, attempt)``: claim the next claimable job."""
    with write_transaction(engine) as session:
        job = leases.next_claimable(session, job_id=job_id, attempt=attempt)
        if job is None:
            return None
        claimed = repo.claim(
            session, job_id=job.id, attempt=job.attempt, worker="w3", pid=7, gpu=None, lease_seconds=30,
            run_dir=job.id,
        )  # fmt: skip
        assert claimed is not None
        return claimed.job.id


def test_a_message_claims_its_job_unless_a_higher_priority_waits(
    engine: Engine, new_job: Callable[..., Job], at: Clock
) -> None:
    low, same, high, later_high = (
        new_job(priority=0, now=at(0)),
        new_job(priority=0, now=at(1)),
        new_job(priority=5, now=at(2)),
        new_job(priority=5, now=at(3)),
    )
    assert claim_next(engine, same.id, 1) == high.id  # the highest priority first, longest queued first
    assert claim_next(engine, low.id, 1) == later_high.id
    assert claim_next(engine, same.id, 1) == same.id  # equal priority: the message's own job
    assert claim_next(engine, same.id, 1) == low.id  # not claimable any more: the first in line
    assert claim_next(engine, low.id, 1) is None  # nothing queued: nothing written
    with read_session(engine) as session:
        jobs = session.exec(select(Job)).all()
        attempts = session.exec(select(Attempt)).all()
    assert {job.state for job in jobs} == {"running"}
    assert sorted(a.job_id for a in attempts) == sorted(job.id for job in jobs)
    assert {job.run_dir for job in jobs} == {job.id for job in jobs}

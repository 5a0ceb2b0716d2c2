from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest
from sqlalchemy import Engine

from jobstore import repo
from jobstore.db import read_session, write_transaction
from jobstore.errors import (
    CommandNotFoundError,
    FencedOutError,
    IdempotencyConflictError,
    InvalidCommandError,
    JobNotRunningError,
)
from jobstore.events import EventKind
from jobstore.kinds import CommandKind, CommandStatus
from jobstore.models import Job
from jobstore.states import IllegalTransitionError, JobState

Clock = Callable[[float], datetime]
Start = Callable[..., tuple[str, int]]


def force(engine: Engine, job_id: str, stage: int = 2, key: str | None = None, at: datetime | None = None):  # type: ignore[no-untyped-def]
    with write_transaction(engine) as session:
        return repo.request_command(
            session, job_id=job_id, kind=CommandKind.FORCE_STAGE, params={"stage": stage},
            actor="alice", reason="F1 is fine", command_key=key, now=at,
        )  # fmt: skip


def test_commands_reach_running_jobs_only(engine: Engine, new_job: Callable[..., Job]) -> None:
    job = new_job()
    with pytest.raises(JobNotRunningError):
        force(engine, job.id)


def test_request_is_logged_and_idempotent(engine: Engine, start_job: Start) -> None:
    job_id, _ = start_job()
    first = force(engine, job_id, key="k1")
    assert first.created and first.command.status == CommandStatus.PENDING
    assert force(engine, job_id, key="k1").command.id == first.command.id  # same key
    assert not force(engine, job_id).created  # same open command, no key: still one
    with pytest.raises(IdempotencyConflictError):
        force(engine, job_id, stage=3, key="k1")
    with read_session(engine) as session:
        assert len(repo.list_commands(session, job_id=job_id)) == 1
        [event] = repo.list_events(session, job_id=job_id, kinds=[EventKind.COMMAND_REQUESTED])
    assert (event.actor, event.reason, event.command_id) == ("alice", "F1 is fine", first.command.id)


@pytest.mark.parametrize(
    ("kind", "params"),
    [(CommandKind.FORCE_STAGE, {"stage": 1}), (CommandKind.FORCE_STAGE, {}), (CommandKind.PAUSE, {"x": 1})],
)
def test_invalid_parameters(
    engine: Engine, start_job: Start, kind: CommandKind, params: dict[str, int]
) -> None:
    job_id, _ = start_job()
    with pytest.raises(InvalidCommandError), write_transaction(engine) as session:
        repo.request_command(session, job_id=job_id, kind=kind, params=params, actor="a", reason="")


def test_heartbeat_hands_each_command_over_once(engine: Engine, start_job: Start, at: Clock) -> None:
    job_id, attempt = start_job()
    command = force(engine, job_id).command
    with write_transaction(engine) as session:
        beat = repo.heartbeat(session, job_id=job_id, attempt=attempt, lease_seconds=30, now=at(10))
    assert not beat.fenced_out and beat.lease_expires_at == at(40)
    assert [(c.id, c.kind, c.params, c.actor) for c in beat.commands] == [
        (command.id, CommandKind.FORCE_STAGE, {"stage": 2}, "alice")
    ]
    with write_transaction(engine) as session:
        assert (
            repo.heartbeat(session, job_id=job_id, attempt=attempt, lease_seconds=30, now=at(20)).commands
            == []
        )
    with read_session(engine) as session:
        [stored] = repo.list_commands(session, job_id=job_id)
        assert (stored.status, stored.delivered_at) == (CommandStatus.DELIVERED, at(10))
        assert repo.pending_commands(session, job_id=job_id) == []


def test_result_is_recorded_once_with_evidence(engine: Engine, start_job: Start, at: Clock) -> None:
    job_id, attempt = start_job()
    command = force(engine, job_id, at=at(1)).command
    with write_transaction(engine) as session:
        repo.mark_result(
            session, job_id=job_id, attempt=attempt, command_id=command.id, applied=True,
            reason="entered stage 2", epoch=4, evidence={"val_f1": 0.81}, now=at(9),
        )  # fmt: skip
        again = repo.mark_result(
            session, job_id=job_id, attempt=attempt, command_id=command.id, applied=False, reason="x", epoch=5
        )
    assert (again.status, again.applied_epoch, again.applied_at) == (CommandStatus.APPLIED, 4, at(9))
    with read_session(engine) as session:
        [event] = repo.list_events(session, job_id=job_id, kinds=[EventKind.COMMAND_APPLIED])
    assert (event.actor, event.reason, event.epoch) == ("alice", "F1 is fine", 4)
    assert event.evidence["val_f1"] == 0.81 and event.evidence["result"] == "entered stage 2"
    assert event.evidence["requested_at"] == at(1).isoformat()


def test_refusal_and_unknown_command(engine: Engine, start_job: Start) -> None:
    job_id, attempt = start_job()
    command = force(engine, job_id).command
    with write_transaction(engine) as session:
        refused = repo.mark_result(
            session, job_id=job_id, attempt=attempt, command_id=command.id, applied=False,
            reason="already in stage 2", epoch=3,
        )  # fmt: skip
    assert refused.status == CommandStatus.REFUSED
    with pytest.raises(CommandNotFoundError), write_transaction(engine) as session:
        repo.mark_result(
            session, job_id=job_id, attempt=attempt, command_id="nope", applied=True, reason="", epoch=1
        )


def test_stale_attempt_cannot_report(engine: Engine, start_job: Start) -> None:
    job_id, attempt = start_job()
    command = force(engine, job_id).command
    with pytest.raises(FencedOutError), write_transaction(engine) as session:
        repo.mark_result(
            session,
            job_id=job_id,
            attempt=attempt + 1,
            command_id=command.id,
            applied=True,
            reason="",
            epoch=1,
        )
    with read_session(engine) as session:
        assert repo.list_commands(session, job_id=job_id)[0].status == CommandStatus.PENDING


def test_cancel_by_state(engine: Engine, new_job: Callable[..., Job], start_job: Start) -> None:
    queued = new_job()
    running_id, _ = start_job()
    with write_transaction(engine) as session:
        now = repo.request_cancel(session, job_id=queued.id, actor="bob", reason="not needed")
        later = repo.request_cancel(session, job_id=running_id, actor="bob", reason="stop", command_key="c")
    assert now.command is None and now.job.state == JobState.CANCELLED
    assert later.command is not None and later.command.kind == CommandKind.CANCEL and later.created
    with write_transaction(engine) as session:
        again = repo.request_cancel(session, job_id=running_id, actor="bob", reason="stop", command_key="c")
    assert again.command is not None and again.command.id == later.command.id and not again.created
    with pytest.raises(IllegalTransitionError), write_transaction(engine) as session:
        repo.request_cancel(session, job_id=queued.id, actor="bob", reason="twice")

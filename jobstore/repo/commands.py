"""Operator commands for a running job: force_stage, pause, cancel.

Life of a command: ``request_command`` stores it (pending) → the worker finds it (``has_pending``, at
the engine's next check) and a heartbeat hands it over once, marked delivered → the worker applies or
refuses it at its next safe point (``mark_result``).
If the attempt ends first, ``settle_open_commands`` expires it — or, when the job is being
re-queued, carries a force_stage over to the next attempt and turns a pending cancel or pause into
the job's next state instead of a re-queue. Every step writes an event with actor and reason.

Idempotency: the same ``command_key`` returns the first command (a different request with that key
is an ``IdempotencyConflictError``); an identical command that is still open is returned too, so
a force-stage sent twice has one effect — the second request is *merged* into the first and logged
(``command_merged``, with its own actor and reason). A force-stage the job cannot take (a stage not
ahead of its current one, a stage it does not configure) is stored already refused and logged
(``command_requested`` + ``command_refused``), so the refusal is in the audit trail too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam
from sqlmodel import Session, col, select

from jobstore.errors import (
    CommandNotFoundError,
    IdempotencyConflictError,
    InvalidCommandError,
    JobNotRunningError,
)
from jobstore.events import EventKind
from jobstore.kinds import OPEN_COMMAND_STATUSES, CommandKind, CommandStatus
from jobstore.models import Command, Job
from jobstore.repo._base import clip, fence, lock_job, now_or
from jobstore.repo.events import append_event
from jobstore.repo.transitions import transition
from jobstore.states import JobState

FORCEABLE_STAGES = (2, 3)


@dataclass(frozen=True)
class CommandView:
    """A detached copy of a command, as a heartbeat hands it to the worker."""

    id: str
    kind: CommandKind
    params: dict[str, Any] = field(default_factory=dict)
    actor: str = ""
    reason: str = ""

    @classmethod
    def of(cls, command: Command) -> CommandView:
        return cls(command.id, CommandKind(command.kind), dict(command.params), command.actor, command.reason)


@dataclass(frozen=True)
class CommandRequest:
    command: Command
    created: bool  # False: an earlier identical request (same key, or same open command)
    merged: bool = False  # a new request joined an identical open command (logged as command_merged)

    @property
    def refused(self) -> bool:
        return self.command.status == CommandStatus.REFUSED


@dataclass(frozen=True)
class CancelResult:
    job: Job
    command: Command | None  # the cancel command for a running job; None when cancelled at once
    created: bool
    merged: bool = False


def request_command(
    session: Session,
    *,
    job_id: str,
    kind: CommandKind,
    actor: str,
    reason: str,
    params: Mapping[str, Any] | None = None,
    command_key: str | None = None,
    now: datetime | None = None,
    allow_queued: bool = False,
) -> CommandRequest:
    """Store a command for a running job (``JobNotRunningError`` otherwise) and log it.

    ``allow_queued``: a queued job may take it too; it stays pending until the attempt that claims
    the job first looks for commands (as a force_stage carried over a re-queue does).
    """
    now = now_or(now)
    params = dict(params or {})
    _validate(kind, params)
    job = lock_job(session, job_id)
    earlier = _earlier(session, job_id, kind, params, command_key)
    if earlier is not None:
        if command_key is not None and earlier.command_key == command_key:
            return CommandRequest(earlier, False)  # a replay: nothing new happened
        _log_merge(session, job, earlier, actor, reason, command_key, now)
        return CommandRequest(earlier, False, merged=True)
    if job.state != JobState.RUNNING and not (allow_queued and job.state == JobState.QUEUED):
        raise JobNotRunningError(job_id, job.state)
    command = Command(
        job_id=job_id,
        kind=kind.value,
        params=params,
        actor=clip(actor, 255),
        reason=clip(reason),
        command_key=command_key,
        requested_at=now,
    )
    session.add(command)
    session.flush()
    append_event(
        session,
        job,
        EventKind.COMMAND_REQUESTED,
        actor=actor,
        reason=reason,
        evidence={"kind": kind.value, "params": params},
        command_id=command.id,
        now=now,
    )
    refusal = force_refusal(job, params) if kind == CommandKind.FORCE_STAGE else None
    if refusal is not None:
        evidence = {"stage": job.stage, "epoch": job.epoch, "val_f1": job.latest_metrics.get("val_f1")}
        _resolve(session, job, command, CommandStatus.REFUSED, refusal, epoch=job.epoch, now=now,
                 evidence=evidence, by="api")  # fmt: skip
    return CommandRequest(command, True)


def force_refusal(job: Job, params: Mapping[str, Any]) -> str | None:
    """Why the job cannot take a force to ``params["stage"]`` now, or None (the engine checks again
    at the boundary: the stage may move in between, and then the engine refuses it)."""
    target = int(params["stage"])
    spec = dict(job.spec)
    if not spec.get("freeze_backbone", True):
        return "a full fine-tune (freeze_backbone off) has no stages"
    if target == 3 and not spec.get("stage3"):
        return "stage 3 is not configured for this job (no stage3 section); fork it with one"
    if target <= job.stage:
        return f"already in stage {job.stage}; stage {target} is not ahead"
    return None


def _log_merge(
    session: Session,
    job: Job,
    earlier: Command,
    actor: str,
    reason: str,
    command_key: str | None,
    now: datetime,
) -> None:
    append_event(
        session, job, EventKind.COMMAND_MERGED, actor=actor, reason=reason,
        evidence={"kind": earlier.kind, "params": earlier.params, "merged_into": earlier.id,
                  "first_actor": earlier.actor, "first_reason": earlier.reason, "command_key": command_key},
        command_id=earlier.id, now=now,
    )  # fmt: skip


def _validate(kind: CommandKind, params: Mapping[str, Any]) -> None:
    if kind == CommandKind.FORCE_STAGE:
        stage = params.get("stage")
        if set(params) != {"stage"} or isinstance(stage, bool) or stage not in FORCEABLE_STAGES:
            raise InvalidCommandError(f"force_stage takes {{'stage': 2 or 3}}, got {dict(params)}")
    elif params:
        raise InvalidCommandError(f"{kind.value} takes no parameters, got {dict(params)}")


def _earlier(
    session: Session, job_id: str, kind: CommandKind, params: dict[str, Any], command_key: str | None
) -> Command | None:
    if command_key is not None:
        keyed = session.exec(
            select(Command).where(Command.job_id == job_id, Command.command_key == command_key)
        ).first()
        if keyed is not None:
            if keyed.kind != kind or keyed.params != params:
                raise IdempotencyConflictError(command_key, keyed.id)
            return keyed
    for command in open_commands(session, job_id=job_id):
        if command.kind == kind and command.params == params:
            return command
    return None


def request_cancel(
    session: Session,
    *,
    job_id: str,
    actor: str,
    reason: str,
    command_key: str | None = None,
    now: datetime | None = None,
) -> CancelResult:
    """Cancel: a running job gets a cancel command (it checkpoints first); any other job that may be
    cancelled is cancelled at once; a finished one raises ``IllegalTransitionError``."""
    job = lock_job(session, job_id)
    if job.state == JobState.RUNNING:
        request = request_command(
            session, job_id=job_id, kind=CommandKind.CANCEL, actor=actor, reason=reason,
            command_key=command_key, now=now,
        )  # fmt: skip
        return CancelResult(job, request.command, request.created, request.merged)
    transition(session, job, JobState.CANCELLED, actor=actor, reason=reason, now=now)
    settle_open_commands(session, job, requeueing=False, actor=actor, reason="the job was cancelled", now=now)
    return CancelResult(job, None, True)


def open_commands(session: Session, *, job_id: str) -> list[Command]:
    """Commands not yet applied, refused or expired, oldest first."""
    query = select(Command).where(
        Command.job_id == job_id, col(Command.status).in_([status.value for status in OPEN_COMMAND_STATUSES])
    )
    return list(session.exec(query.order_by(col(Command.requested_at), col(Command.id))).all())


def pending_commands(session: Session, *, job_id: str) -> list[Command]:
    """Commands not yet handed to a worker, oldest first."""
    query = select(Command).where(Command.job_id == job_id, Command.status == CommandStatus.PENDING)
    return list(session.exec(query.order_by(col(Command.requested_at), col(Command.id))).all())


def has_pending(connection: Connection, *, job_id: str) -> bool:
    """Whether a command waits to be handed to the worker: one indexed read, no lock (the worker asks
    at every epoch boundary and between batches, so it must cost next to nothing: the statement is
    built once)."""
    return connection.execute(_PENDING, {"job_id": job_id}).first() is not None


_PENDING = (
    select(Command.id)
    .where(Command.job_id == bindparam("job_id"), Command.status == CommandStatus.PENDING)
    .limit(1)
)


def list_commands(session: Session, *, job_id: str) -> list[Command]:
    query = select(Command).where(Command.job_id == job_id)
    return list(session.exec(query.order_by(col(Command.requested_at), col(Command.id))).all())


def mark_delivered(
    session: Session, *, job_id: str, attempt: int, command_ids: Sequence[str], now: datetime | None = None
) -> list[Command]:
    """Fenced: mark pending commands as handed to ``attempt``; returns the ones that were pending."""
    now = now_or(now)
    job = fence(session, job_id=job_id, attempt=attempt)
    delivered = []
    for command in pending_commands(session, job_id=job_id):
        if command.id not in command_ids:
            continue
        command.status = CommandStatus.DELIVERED.value
        command.delivered_at = now
        session.add(command)
        append_event(
            session, job, EventKind.COMMAND_DELIVERED, actor=command.actor, reason=command.reason,
            evidence={"kind": command.kind, "params": command.params}, command_id=command.id, now=now,
        )  # fmt: skip
        delivered.append(command)
    return delivered


def mark_result(
    session: Session,
    *,
    job_id: str,
    attempt: int,
    command_id: str,
    applied: bool,
    reason: str,
    epoch: int,
    evidence: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> Command:
    """Fenced: the worker applied (or refused) a command at ``epoch``. A second report is ignored."""
    job = fence(session, job_id=job_id, attempt=attempt)
    command = session.get(Command, command_id)
    if command is None or command.job_id != job_id:
        raise CommandNotFoundError(job_id, command_id)
    if command.status not in OPEN_COMMAND_STATUSES:
        return command
    status = CommandStatus.APPLIED if applied else CommandStatus.REFUSED
    _resolve(session, job, command, status, reason, epoch=epoch, evidence=evidence, now=now_or(now))
    return command


def settle_open_commands(
    session: Session, job: Job, *, requeueing: bool, actor: str, reason: str, now: datetime | None = None
) -> CommandKind | None:
    """Close the commands left open when an attempt ends; returns the stop the job should make instead.

    Not re-queueing: all expire. Re-queueing: a cancel (else a pause) is applied by the caller instead
    of the re-queue — it is marked applied and its kind returned; a force_stage goes back to pending
    for the next attempt.
    """
    now = now_or(now)
    commands = open_commands(session, job_id=job.id)
    kinds = {CommandKind(command.kind) for command in commands}
    stop = next(
        (kind for kind in (CommandKind.CANCEL, CommandKind.PAUSE) if requeueing and kind in kinds), None
    )
    for command in commands:
        kind = CommandKind(command.kind)
        if requeueing and kind == CommandKind.FORCE_STAGE:
            command.status = CommandStatus.PENDING.value
            command.delivered_at = None
            session.add(command)
        elif kind == stop:
            result = f"the attempt ended ({reason}); applied instead of re-queueing"
            _resolve(session, job, command, CommandStatus.APPLIED, result, epoch=job.epoch, now=now, by=actor)
        else:
            result = f"the attempt ended ({reason}) before the command was applied"
            _resolve(session, job, command, CommandStatus.EXPIRED, result, epoch=job.epoch, now=now, by=actor)
    return stop


_EVENT_OF = {
    CommandStatus.APPLIED: EventKind.COMMAND_APPLIED,
    CommandStatus.REFUSED: EventKind.COMMAND_REFUSED,
    CommandStatus.EXPIRED: EventKind.COMMAND_EXPIRED,
}


def _resolve(
    session: Session,
    job: Job,
    command: Command,
    status: CommandStatus,
    result: str,
    *,
    epoch: int,
    now: datetime,
    evidence: Mapping[str, Any] | None = None,
    by: str | None = None,
) -> None:
    command.status = status.value
    command.applied_at = now
    command.applied_epoch = epoch
    command.result = {"reason": result, **dict(evidence or {})}
    session.add(command)
    append_event(
        session,
        job,
        _EVENT_OF[status],
        actor=command.actor,  # who asked; ``by`` says who settled it when not the worker
        reason=command.reason,
        evidence={
            "kind": command.kind,
            "params": command.params,
            "result": result,
            "requested_at": command.requested_at.isoformat(),
            "applied_at": now.isoformat(),
            **({"by": by} if by else {}),
            **dict(evidence or {}),
        },
        epoch=epoch,
        command_id=command.id,
        now=now,
    )

"""Operator control: force a stage, pause, cancel, resume, fork (and decide: ``api.routes.decide``).
Every action is logged with its actor (docs/steering.md).

Commands for a running job (force stage, pause, cancel) are stored and applied by the worker at its
next safe point — a force at the first epoch boundary after the commit, a pause or cancel at the end
of the batch then running (the worker asks the database itself; docs/steering.md): 202 with the
command. A repeat with the same key (``Idempotency-Key`` header or
body ``command_id``) returns that command (200); a different request for an identical command still
open is merged into it (200, ``merged: true``, logged). A force to a stage the job cannot take (not
ahead of its stage, not configured) is refused at once (409, the refused command in the body) and
logged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Header, Response, status

from api.created import REPLAY, answer_created
from api.deps import Actor, ActorDep, DispatcherDep, IdempotencyKey, SessionDep, SettingsDep, TransactionDep
from api.dispatch import dispatch_after_commit
from api.errors import ApiError, ProblemType, Responses, conflict, invalid_field, with_problems
from api.routes import decide
from api.schemas import (
    CommandPublic,
    ControlRequest,
    ControlResult,
    ForkRequest,
    JobStatus,
    ResumeRequest,
    StageRequest,
)
from api.status import load_status, public
from jobstore import repo
from jobstore.db import TransactionFactory
from jobstore.kinds import CommandKind
from jobstore.models import Command, Job
from jobstore.states import RESUMABLE, TERMINAL, JobState

router = APIRouter(prefix="/jobs", tags=["control"])
router.include_router(decide.router)

CommandKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key", min_length=1, max_length=255, description="a repeat returns the same command"
    ),
]
ACCEPTED: Responses = {
    202: {
        "model": ControlResult,
        "description": "command stored; the worker applies it at its next safe point (force: the next epoch "
        "boundary; pause, cancel: the end of the running batch)",
    }
}


def command_key(header: str | None, body_key: str | None) -> str | None:
    if header and body_key and header != body_key:
        raise invalid_field("command_id", "differs from the Idempotency-Key header", "key_mismatch")
    return body_key or header


def result(
    response: Response, job: Job, command: Command | None, created: bool, merged: bool = False
) -> ControlResult:
    response.status_code = status.HTTP_202_ACCEPTED if command is not None and created else status.HTTP_200_OK
    return ControlResult(
        job=public(job), command=CommandPublic.model_validate(command) if command else None, merged=merged
    )


@dataclass(frozen=True)
class CommandOrder:
    kind: CommandKind
    reason: str
    key: str | None
    params: dict[str, Any] = field(default_factory=dict)


def send_command(
    transaction: TransactionFactory,
    response: Response,
    job_id: str,
    actor: Actor,
    order: CommandOrder,
    allow_queued: bool = False,
) -> ControlResult:
    """Store a command for the worker (or find the earlier identical one) and answer with the job."""
    with transaction() as tx:
        stored = repo.request_command(
            tx, job_id=job_id, kind=order.kind, actor=actor.name, reason=order.reason,
            params=order.params, command_key=order.key, allow_queued=allow_queued,
        )  # fmt: skip
        job = repo.get_job(tx, job_id)
    if stored.refused:  # stored and logged as refused; a replay of its key is refused the same way
        command = CommandPublic.model_validate(stored.command)
        detail = f"{order.kind.value} refused: {command.result.get('reason', '')}"
        raise ApiError(
            409, ProblemType.CONFLICT, detail, "Conflict with the job's state", job_id=job.id,
            state=job.state, command=command.model_dump(mode="json"),
        )  # fmt: skip
    return result(response, job, stored.command, stored.created, stored.merged)


@router.post("/{job_id}/stage", response_model=ControlResult, responses=with_problems(ACCEPTED))
def force_stage(
    job_id: str,
    body: StageRequest,
    response: Response,
    session: SessionDep,
    transaction: TransactionDep,
    actor: ActorDep,
    key: CommandKeyHeader = None,
) -> ControlResult:
    """Force stage 2 or 3 at the next epoch boundary of a running (or queued) job."""
    job = repo.get_job(session, job_id)
    state = JobState(job.state)
    if state is JobState.AWAITING_DECISION:
        raise conflict(
            job.id,
            state,
            f'the job waits at a failed gate: POST /jobs/{job.id}/decide {{"action": "proceed"}}',
        )
    if state in RESUMABLE - TERMINAL:
        raise conflict(
            job.id, state, f'a {state} job is not running: POST /jobs/{job.id}/resume with "stage"'
        )
    if state in TERMINAL:
        raise conflict(job.id, state, f'a {state} job cannot change stage; resume or fork it with "stage"')
    order = CommandOrder(
        CommandKind.FORCE_STAGE, body.reason, command_key(key, body.command_id), {"stage": body.stage}
    )
    return send_command(transaction, response, job.id, actor, order, allow_queued=True)


@router.post("/{job_id}/pause", response_model=ControlResult, responses=with_problems(ACCEPTED))
def pause_job(
    job_id: str,
    response: Response,
    session: SessionDep,
    transaction: TransactionDep,
    actor: ActorDep,
    body: ControlRequest | None = None,
    key: CommandKeyHeader = None,
) -> ControlResult:
    """Pause a running job: it checkpoints at the end of the running batch and waits for /resume."""
    body = body or ControlRequest()
    job = repo.get_job(session, job_id)
    if JobState(job.state) is not JobState.RUNNING:
        hint = "; cancel it instead" if job.state == JobState.QUEUED else ""
        raise conflict(job.id, job.state, f"only a running job can be paused; this one is {job.state}{hint}")
    order = CommandOrder(CommandKind.PAUSE, body.reason, command_key(key, body.command_id))
    return send_command(transaction, response, job.id, actor, order)


@router.post("/{job_id}/cancel", response_model=ControlResult, responses=with_problems(ACCEPTED))
def cancel_job(
    job_id: str,
    response: Response,
    transaction: TransactionDep,
    actor: ActorDep,
    body: ControlRequest | None = None,
    key: CommandKeyHeader = None,
) -> ControlResult:
    """Cancel a job: a running one checkpoints first (202); an unfinished other one is cancelled now (200)."""
    body = body or ControlRequest()
    with transaction() as tx:
        cancel = repo.request_cancel(
            tx, job_id=job_id, actor=actor.name, reason=body.reason or "cancelled by operator",
            command_key=command_key(key, body.command_id),
        )  # fmt: skip
        job = repo.get_job(tx, job_id)
    return result(response, job, cancel.command, cancel.created, cancel.merged)


@router.post(
    "/{job_id}/resume",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobStatus,
    responses=with_problems({}),
)
def resume_job(
    job_id: str,
    session: SessionDep,
    transaction: TransactionDep,
    dispatcher: DispatcherDep,
    actor: ActorDep,
    body: ResumeRequest | None = None,
) -> JobStatus:
    """Resume a paused, awaiting, interrupted, failed or cancelled job from a checkpoint (same job id)."""
    body = body or ResumeRequest()
    with transaction() as tx:
        job, attempt = repo.request_resume(
            tx, repo.get_job(tx, job_id), selector=body.from_, overrides=body.overrides(),
            actor=actor.name, reason=body.reason,
        )  # fmt: skip
    dispatch_after_commit(dispatcher, job.id, attempt)
    return load_status(session, repo.get_job(session, job_id))


@router.post(
    "/{job_id}/fork",
    status_code=status.HTTP_201_CREATED,
    response_model=JobStatus,
    responses=with_problems(REPLAY),
)
def fork_job(
    job_id: str,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    transaction: TransactionDep,
    dispatcher: DispatcherDep,
    actor: ActorDep,
    body: ForkRequest | None = None,
    idempotency_key: IdempotencyKey = None,
) -> JobStatus:
    """Start a new job from a checkpoint of this one with other stage-2 settings, linked to its parent."""
    body = body or ForkRequest()
    with transaction() as tx:
        fork = repo.fork_job(
            tx, parent_id=job_id, selector=body.from_, overrides=body.overrides(), name=body.name,
            owner=actor.owner, actor=actor.name, reason=body.reason, idempotency_key=idempotency_key,
            max_queued=settings.max_queued_jobs_per_key if actor.owner else None,
        )  # fmt: skip
    if fork.created:
        dispatch_after_commit(dispatcher, fork.job.id, fork.job.attempt)
    answer_created(response, fork.job, created=fork.created)
    return load_status(session, repo.get_job(session, fork.job.id))

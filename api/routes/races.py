"""A race of stage-2 recipes (docs/race.md): its status, and an operator's stop, promote, extend, add.

``POST /jobs`` with a ``race`` section creates the race (``api.routes.jobs``). Each command here is
applied at once under the race's lock and logged as a ``race_command`` event on the parent job with
its actor and reason; cancelling a candidate goes through the normal cancel command of its job.
A repeat with the same ``Idempotency-Key`` answers the race as it is now (200); the same key with
another request is refused (422).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response, status

from api.deps import ActorDep, DispatcherDep, IdempotencyKey, JobDep, SessionDep, TransactionDep
from api.dispatch import dispatch_after_commit
from api.errors import PROBLEM_RESPONSES, Responses, with_problems
from api.schemas import RaceAddRequest, RaceCandidateRequest, RaceCommandRequest, RaceStatus
from jobstore import repo
from jobstore.models import Job
from jobstore.race_service import retention_f1
from jobstore.repo import RaceCommand

router = APIRouter(prefix="/jobs", tags=["races"])

APPLIED: Responses = {
    202: {"model": RaceStatus, "description": "applied; cancels reach running jobs at their next batch"}
}


def _status(session: SessionDep, job_id: str) -> RaceStatus:
    session.expire_all()
    view = repo.race_view(session, repo.get_race(session, job_id))
    for entry in view["leaderboard"]:  # what the retention floor reads (docs/race.md)
        job = session.get(Job, entry["job_id"]) if entry["job_id"] else None
        entry["retention_f1"] = retention_f1(job) if job else None
    return RaceStatus.model_validate(view)


def _command(
    job_id: str, kind: RaceCommand, params: dict[str, Any], reason: str, context: _Context
) -> RaceStatus:
    with context.transaction() as tx:
        change = repo.command_race(
            tx, job_id=job_id, kind=kind, actor=context.actor.name, reason=reason, params=params,
            key=context.key,
        )  # fmt: skip
    for sent_id, attempt in change.sends:
        dispatch_after_commit(context.dispatcher, sent_id, attempt)
    context.response.status_code = status.HTTP_202_ACCEPTED if change.created else status.HTTP_200_OK
    return _status(context.session, job_id)


class _Context:
    """What every command route passes on (its dependencies), to keep each route a few lines."""

    def __init__(
        self,
        response: Response,
        session: SessionDep,
        transaction: TransactionDep,
        dispatcher: DispatcherDep,
        actor: ActorDep,
        key: IdempotencyKey = None,
    ) -> None:
        self.response, self.session, self.transaction = response, session, transaction
        self.dispatcher, self.actor, self.key = dispatcher, actor, key


ContextDep = Annotated[_Context, Depends()]


@router.get("/{job_id}/race", response_model=RaceStatus, responses=PROBLEM_RESPONSES)
def get_race(session: SessionDep, job: JobDep) -> RaceStatus:
    """A race's leaderboard, budget (sample-epochs used / total), rung decisions, and the winner and why."""
    return _status(session, job.id)


@router.post("/{job_id}/race/stop", response_model=RaceStatus, responses=with_problems(APPLIED))
def stop_race(job_id: str, context: ContextDep, body: RaceCommandRequest | None = None) -> RaceStatus:
    """Stop the race: cancel every candidate still in play (and stage 1); a finished one may still win."""
    body = body or RaceCommandRequest()
    return _command(job_id, RaceCommand.STOP, {}, body.reason, context)


@router.post("/{job_id}/race/promote", response_model=RaceStatus, responses=with_problems(APPLIED))
def promote_candidate(job_id: str, body: RaceCandidateRequest, context: ContextDep) -> RaceStatus:
    """Make a candidate the sole survivor: every other one is cut; it wins when it finishes."""
    return _command(job_id, RaceCommand.PROMOTE, {"candidate": body.candidate}, body.reason, context)


@router.post("/{job_id}/race/extend", response_model=RaceStatus, responses=with_problems(APPLIED))
def extend_candidate(job_id: str, body: RaceCandidateRequest, context: ContextDep) -> RaceStatus:
    """Let a candidate through the next rung whatever its rank (a cut one is resumed from its last
    checkpoint)."""
    return _command(job_id, RaceCommand.EXTEND, {"candidate": body.candidate}, body.reason, context)


@router.post("/{job_id}/race/candidates", response_model=RaceStatus, responses=with_problems(APPLIED))
def add_candidate(job_id: str, body: RaceAddRequest, context: ContextDep) -> RaceStatus:
    """Add a candidate: forked from stage 1 now if it is done (a full fine-tune starts at once)."""
    params = body.model_dump(mode="json", exclude={"reason"})
    return _command(job_id, RaceCommand.ADD, params, body.reason, context)

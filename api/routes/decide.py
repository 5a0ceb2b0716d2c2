"""POST /jobs/{id}/decide: the operator's decision at a failed stage gate (docs/steering.md).

A job whose gate policy is ``pause`` waits in ``awaiting_decision``; its status shows the failed
read (``pending_decision``: F1, threshold, epoch, the options). The decision re-queues the same job
as a new attempt (202, the status) — proceed, extend, retry or stop, as ``jobstore.repo.decisions``
describes — and is logged as a ``decision`` event before the resume it leads to. Included by
``api.routes.control`` (same tag, same auth).
"""

from __future__ import annotations

from fastapi import APIRouter, status

from api.deps import ActorDep, DispatcherDep, SessionDep, TransactionDep
from api.dispatch import dispatch_after_commit
from api.errors import conflict, with_problems
from api.schemas import DecideRequest, JobStatus
from api.status import load_status
from jobstore import repo
from jobstore.repo.decisions import Decision
from jobstore.states import JobState

router = APIRouter()


@router.post(
    "/{job_id}/decide",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobStatus,
    responses=with_problems({}),
)
def decide(
    job_id: str,
    body: DecideRequest,
    session: SessionDep,
    transaction: TransactionDep,
    dispatcher: DispatcherDep,
    actor: ActorDep,
) -> JobStatus:
    """Decide a failed gate: proceed to the next stage, extend the current one, retry it with another
    lr, or stop with the best model exported."""
    decision = Decision(body.action, epochs=body.epochs, lr=body.lr)
    with transaction() as tx:
        job = repo.get_job(tx, job_id)
        if JobState(job.state) is not JobState.AWAITING_DECISION:
            detail = f"only a job awaiting a gate decision can be decided; this one is {job.state}"
            raise conflict(job.id, job.state, detail)
        job, attempt = repo.decide(tx, job, decision=decision, actor=actor.name, reason=body.reason)
    dispatch_after_commit(dispatcher, job.id, attempt)
    return load_status(session, repo.get_job(session, job_id))

"""The steering parts of a job's status: the decision a gate waits for, what the current attempt
restored, and the jobs forked from it."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from api.schemas import ForkSummary, RestoreStatus
from jobstore import repo
from jobstore.models import Attempt, Job
from jobstore.repo.decisions import DecisionAction
from jobstore.states import JobState

MAX_FORKS_LISTED = 50  # the rest: GET /jobs?parent=<id>


def pending_decision(job: Job) -> dict[str, Any] | None:
    """Why an ``awaiting_decision`` job waits (the failed gate read) and what each decision does."""
    if JobState(job.state) is not JobState.AWAITING_DECISION:
        return None
    gate = dict(job.gate)
    target = int(gate.get("stage") or job.stage + 1)
    at = int(gate.get("epoch") or job.epoch + 1)
    current = target - 1
    best = f"F1 {job.best_f1:.4f} at epoch {job.best_epoch}" if job.best_f1 is not None else "none yet"
    options = [
        (DecisionAction.PROCEED, [], f"enter stage {target} at epoch {at}, from the paused checkpoint"),
        (DecisionAction.EXTEND, ["epochs"],
         f"train stage {current} N more epochs from the paused checkpoint, then read the gate again at "
         f"epoch {at} + N; the epoch budget grows by N"),
        (DecisionAction.RETRY, ["lr"],
         f"restart stage {current} from its entry checkpoint (stage:{current}) at a new lr; "
         "the epochs since are superseded"),
        (DecisionAction.STOP, [], f"end the job as succeeded and export the best model ({best})"),
    ]  # fmt: skip
    return {
        **gate,
        "decide": f"/jobs/{job.id}/decide",
        "options": [{"action": a.value, "needs": needs, "does": does} for a, needs, does in options],
    }


def restore_of(attempt: Attempt | None, job: Job) -> RestoreStatus | None:
    """The current attempt's confirmed restore (null while it has not confirmed one)."""
    if attempt is None or attempt.restored_at is None:
        return None
    return RestoreStatus(
        attempt=attempt.number,
        stage=attempt.restored_stage,
        epoch=attempt.restored_epoch,
        batch=attempt.restored_batch,
        checkpoint=attempt.resumed_from,
        requested=job.resume_from.get("from"),
        at=attempt.restored_at,
    )


def forks_of(session: Session, job: Job) -> list[ForkSummary]:
    children = repo.fork_rows(session, parent_job_id=job.id, limit=MAX_FORKS_LISTED)
    return [ForkSummary(**child, link=f"/jobs/{child['id']}") for child in children]

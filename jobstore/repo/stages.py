"""A running job's stage: transitions applied by the engine and the gate checks behind them (fenced)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from jobstore.events import Actor, EventKind
from jobstore.models import JobEvent
from jobstore.records import GateCheckRow, StageChange
from jobstore.repo._base import clip, fence, now_or
from jobstore.repo.events import append_event
from jobstore.repo.notifications import enqueue


def record_stage_change(
    session: Session, *, job_id: str, attempt: int, change: StageChange, now: datetime | None = None
) -> JobEvent:
    """Fenced: the job entered ``change.to_stage`` at ``change.epoch``; logged with its evidence.

    A change within the stage (``from_stage == to_stage``: a new stage lr on resume) is logged but
    leaves the job's ``stage_since_epoch`` and ``stage_reason`` (the stage's entry) as they are.

    The actor is the operator for a forced stage (``change.actor``), else the worker. A new stage
    writes its notification outbox row (``jobstore.repo.notifications``).
    """
    job = fence(session, job_id=job_id, attempt=attempt)
    job.stage = change.to_stage
    if change.from_stage != change.to_stage:  # an lr change within the stage keeps since/why
        job.stage_since_epoch = change.epoch
        job.stage_reason = clip(change.reason)
    session.add(job)
    event = append_event(
        session,
        job,
        EventKind.STAGE_CHANGE,
        actor=change.actor or Actor.worker(job.lease_owner or ""),
        reason=change.reason,
        evidence={
            "trigger": str(change.trigger),
            "lrs": dict(change.lrs),
            "unfrozen": list(change.unfrozen),
            "trainable_params": change.trainable_params,
            **dict(change.evidence),
        },
        epoch=change.epoch,
        stage=change.to_stage,
        from_stage=change.from_stage,
        to_stage=change.to_stage,
        command_id=change.command_id,
        now=now_or(now),
    )
    enqueue(session, job, event)  # the webhooks' outbox row, in the same transaction
    return event


def record_gate_check(
    session: Session, *, job_id: str, attempt: int, check: GateCheckRow, now: datetime | None = None
) -> JobEvent:
    """Fenced: a gate was read; kept as ``job.gate`` (the status shows the next gate) and logged."""
    job = fence(session, job_id=job_id, attempt=attempt)
    job.gate = check.as_dict()
    session.add(job)
    return append_event(
        session,
        job,
        EventKind.GATE_CHECK,
        actor=Actor.worker(job.lease_owner or ""),
        reason=check.reason,
        evidence=check.as_dict(),
        epoch=check.epoch,
        now=now_or(now),
    )

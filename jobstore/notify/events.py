"""Which audit events are told to webhooks, under which type, and the JSON body they get.

One notification per event, under its most specific type: a state change into
``awaiting_decision`` is ``job.awaiting_decision``, into a terminal state ``job.finished``, any
other ``job.state_changed``; a stage change (a new stage, not an lr change within one) is
``job.stage_changed`` (a run starting in its first stage is not). The body is fixed when the
event is recorded, so it tells the job as it was.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from jobstore.events import EventKind
from jobstore.models import Job, JobEvent
from jobstore.states import TERMINAL, JobState


class NotifyType(StrEnum):
    STATE_CHANGED = "job.state_changed"
    STAGE_CHANGED = "job.stage_changed"
    AWAITING_DECISION = "job.awaiting_decision"
    FINISHED = "job.finished"  # succeeded, failed or cancelled


def notify_type(event: JobEvent) -> NotifyType | None:
    """The type ``event`` is told under, or None when it is not told."""
    if event.kind == EventKind.STAGE_CHANGE:
        # a run's start (from no stage) and an lr change within a stage are not news
        moved = event.from_stage is not None and event.from_stage != event.to_stage
        return NotifyType.STAGE_CHANGED if moved else None
    if event.kind != EventKind.STATE_CHANGE or event.to_state is None:
        return None
    target = JobState(event.to_state)
    if target == JobState.AWAITING_DECISION:
        return NotifyType.AWAITING_DECISION
    return NotifyType.FINISHED if target in TERMINAL else NotifyType.STATE_CHANGED


def payload(job: Job, event: JobEvent, kind: NotifyType) -> dict[str, Any]:
    """The body's fields other than its ``id`` (the outbox row's id, added when it is sent)."""
    return {
        "type": kind.value,
        "at": event.at.isoformat(),
        "job": {
            "id": job.id,
            "name": job.name,
            "state": job.state,
            "state_reason": job.state_reason,
            "stage": job.stage,
            "epoch": job.epoch,
            "epochs": job.epochs,
            "attempt": job.attempt,
            "best_f1": job.best_f1,
            "pending_decision": dict(job.gate) if job.state == JobState.AWAITING_DECISION else None,
            "path": f"/jobs/{job.id}",
        },
        "event": {
            "seq": event.seq,
            "kind": event.kind,
            "actor": event.actor,
            "reason": event.reason,
            "epoch": event.epoch,
            "from_state": event.from_state,
            "to_state": event.to_state,
            "from_stage": event.from_stage,
            "to_stage": event.to_stage,
        },
    }

"""State changes of a job: checked against ``jobstore.states.TRANSITIONS``, logged, time-stamped.

``transition`` is the only function that writes ``Job.state``. It locks and re-reads the job first,
so two racing callers (an operator's cancel and a worker's finish) are applied one after the other
and the second is checked against the state the first left: one wins, the other gets
``IllegalTransitionError`` (the API answers 409).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlmodel import Session

from jobstore.events import EventKind
from jobstore.models import Job, JobEvent
from jobstore.repo._base import clip, lock_job, now_or
from jobstore.repo.events import append_event
from jobstore.repo.notifications import enqueue
from jobstore.states import TERMINAL, JobState, check_transition


def transition(
    session: Session,
    job: Job,
    target: JobState,
    *,
    actor: str,
    reason: str,
    evidence: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> JobEvent:
    """Move ``job`` to ``target`` or raise ``IllegalTransitionError``; returns the state_change event.

    Maintains: ``started_at`` (first time running), ``finished_at`` (set on entering a terminal
    state, cleared on leaving it), ``queued_at`` (each time queued), the lease (cleared on leaving
    running), the pending gate (cleared on leaving awaiting_decision), ``state_reason``, ``updated_at``.
    ``job`` may be any copy: the session's own instance is locked, refreshed and changed.
    Writes the notification outbox row of the change (``jobstore.repo.notifications``).
    """
    now = now_or(now)
    job = lock_job(session, job.id)
    current = JobState(job.state)
    check_transition(current, target)
    _leave(job, current)
    _enter(job, target, now)
    job.state = target.value
    job.state_reason = clip(reason)
    job.updated_at = now
    session.add(job)
    event = append_event(
        session,
        job,
        EventKind.STATE_CHANGE,
        actor=actor,
        reason=reason,
        evidence=evidence,
        now=now,
        from_state=current.value,
        to_state=target.value,
    )
    enqueue(session, job, event)  # the webhooks' outbox row, committed with the change or not at all
    return event


def _leave(job: Job, current: JobState) -> None:
    if current == JobState.RUNNING:
        job.lease_owner = None
        job.lease_expires_at = None
    if current == JobState.AWAITING_DECISION:
        job.gate = {}


def _enter(job: Job, target: JobState, now: datetime) -> None:
    if target == JobState.RUNNING and job.started_at is None:
        job.started_at = now
    if target == JobState.QUEUED:
        job.queued_at = now
    job.finished_at = now if target in TERMINAL else None


def requeue(
    session: Session,
    job: Job,
    *,
    resume_from: Mapping[str, Any],
    actor: str,
    reason: str,
    evidence: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> int:
    """Back to ``queued`` as a new attempt: bump the fencing token, set the resume point, mark dispatched.

    Returns the new attempt number. The caller sends ``(job.id, attempt)`` to the broker *after*
    committing; if that send is lost, the reaper sends it again (``Job.dispatched_at``).
    """
    now = now_or(now)
    job = lock_job(session, job.id)
    check_transition(JobState(job.state), JobState.QUEUED)
    job.attempt += 1
    job.resume_from = dict(resume_from)
    mark_dispatched(job, now)
    transition(session, job, JobState.QUEUED, actor=actor, reason=reason, evidence=evidence, now=now)
    return job.attempt


def mark_dispatched(job: Job, now: datetime) -> None:
    """Record that a first message for the job's current attempt is about to be sent."""
    job.dispatched_at = now
    job.dispatch_count = 1

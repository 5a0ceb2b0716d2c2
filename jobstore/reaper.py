"""The reaper: turns lost workers into interrupted jobs and re-sends lost task messages.

One pass (``reap``), run every ``reaper_interval_seconds`` by ``worker.reaper``: the companion
process of a Celery worker (unless ``OCEC_WORKER_REAPER=0``), ``ocec-jobs up``'s own reaper child, or
``python -m worker.reaper`` started anywhere:

1. **Expired leases.** A running job whose lease ran out (its worker was killed, its host vanished,
   it hung hard enough to stop heartbeating) becomes ``interrupted`` with the reason
   "worker lost: lease expired at …, last heartbeat at …", and its attempt ends as ``lost``. Then:
   a pending cancel → ``cancelled``; a pending pause → it stays ``interrupted`` (resumable by hand);
   otherwise, within ``infra_retry_budget``, it is re-queued as a new attempt resuming from its last
   checkpoint and dispatched; past the budget it is ``failed``.
2. **Lost messages.** A queued job whose message is plausibly lost (the broker lost it, e.g. Redis
   restarted, or the sender died before sending) is dispatched again with the same attempt. Waiting
   longer than ``redispatch_after_seconds`` is not enough: the queue must also have stalled (no claim
   for that long) with a worker idle, or no worker live; ``jobstore.resend`` holds the rule and why.
   A duplicate message is harmless: ``claim`` lets exactly one delivery through.

Each job is handled in its own short transaction that re-checks the condition under the row lock, so
several reapers (one per worker host, plus any standalone one) can run at once: each change happens
once. Messages are sent after the commit. jobstore never imports Celery: the caller passes
``dispatch(job_id, attempt)`` (``jobstore.tasknames.Dispatch``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Protocol

from sqlalchemy import or_
from sqlmodel import Session, col, select

from jobstore.db import TransactionFactory
from jobstore.events import Actor, EventKind
from jobstore.kinds import CommandKind
from jobstore.models import Attempt, Job
from jobstore.repo._base import clip, lock_job
from jobstore.repo.commands import settle_open_commands
from jobstore.repo.events import append_event
from jobstore.repo.leases import QUEUE_ORDER
from jobstore.repo.resume import automatic_resume_point
from jobstore.repo.transitions import requeue, transition
from jobstore.repo.workers import queue_view
from jobstore.resend import ResendRule, Waiting
from jobstore.settings import Settings
from jobstore.states import AttemptOutcome, JobState
from jobstore.tasknames import Dispatch

log = logging.getLogger(__name__)

BATCH = 200


@dataclass
class ReapReport:
    interrupted: int = 0  # leases found expired
    requeued: int = 0  # ... re-queued within the budget
    failed: int = 0  # ... past the budget
    cancelled: int = 0  # ... a cancel was pending
    left_interrupted: int = 0  # ... a pause was pending
    redispatched: int = 0  # queued jobs whose message was sent again
    dispatch_errors: int = 0  # sends that raised (the job stays queued; retried next time)
    errors: int = 0  # jobs whose handling raised (logged; retried next pass)
    dispatched: list[tuple[str, int]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {k: v for k, v in asdict(self).items() if isinstance(v, int)}


def reap(
    session_factory: TransactionFactory, *, now: datetime, settings: Settings, dispatch: Dispatch
) -> ReapReport:
    """One pass over expired leases and stale dispatches; see the module docstring."""
    run = _Pass(session_factory, now, settings, dispatch, ReapReport())
    for job_id in run.expired():
        run.guarded(partial(run.reap_lost, job_id))
    for job_id in run.stale_dispatches():
        run.guarded(partial(run.redispatch, job_id))
    return run.report


@dataclass
class _Pass:
    session_factory: TransactionFactory
    now: datetime
    settings: Settings
    dispatch: Dispatch
    report: ReapReport

    def guarded(self, step: Callable[[], None]) -> None:
        guarded_step(self.report, step, "reaper step failed")

    def send(self, job_id: str, attempt: int) -> None:
        try:
            self.dispatch(job_id, attempt)
        except Exception:  # broker down: the job stays queued and is re-sent on a later pass
            self.report.dispatch_errors += 1
            log.exception("dispatch of %s attempt %s failed", job_id, attempt)
            return
        self.report.dispatched.append((job_id, attempt))

    def expired(self) -> list[str]:
        with self.session_factory() as session:
            query = select(Job.id).where(
                Job.state == JobState.RUNNING,
                or_(col(Job.lease_expires_at).is_(None), col(Job.lease_expires_at) < self.now),
            )
            return list(session.exec(query.limit(BATCH)).all())

    def reap_lost(self, job_id: str) -> None:
        with self.session_factory() as session:
            job = lock_job(session, job_id)
            if job.state != JobState.RUNNING or (job.lease_expires_at and job.lease_expires_at >= self.now):
                return  # renewed, finished, or handled by another reaper since the scan
            send = _interrupt_and_decide(session, job, self.now, self.settings, self.report)
        if send is not None:
            self.send(*send)

    @property
    def rule(self) -> ResendRule:
        return resend_rule(self.settings)

    def stale_dispatches(self) -> list[str]:
        """The queued jobs whose message ``jobstore.resend`` deems lost (the longest waiting first in
        line first, so a batch takes the head of the queue)."""
        earliest = self.now - self.rule.after
        with self.session_factory() as session:
            query = select(Job.id, Job.dispatched_at, Job.dispatch_count).where(
                Job.state == JobState.QUEUED,
                or_(col(Job.dispatched_at).is_(None), col(Job.dispatched_at) <= earliest),
            )
            waiting = [Waiting(*row) for row in session.exec(query.order_by(*QUEUE_ORDER).limit(BATCH)).all()]
            if not waiting:
                return []
            view = queue_view(session, now=self.now, after=self.rule.after, fresh=self.settings.lease_seconds)
        return self.rule.to_resend(waiting, view, self.now)

    def redispatch(self, job_id: str) -> None:
        with self.session_factory() as session:
            job = lock_job(session, job_id)
            if job.state != JobState.QUEUED or not self.rule.backoff_due(
                job.dispatched_at, job.dispatch_count, self.now
            ):
                return  # claimed, cancelled, or re-sent by another reaper since the scan
            _mark_redispatched(session, job, self.now)
            send = (job.id, job.attempt)
        self.report.redispatched += 1
        self.send(*send)


class CountsErrors(Protocol):
    errors: int


def guarded_step(report: CountsErrors, step: Callable[[], None], what: str) -> None:
    """Run ``step``; an error is logged and counted in ``report``, never raised: one bad row must not
    stop a pass (it is retried on the next)."""
    try:
        step()
    except Exception:
        report.errors += 1
        log.exception(what)


def redispatch_due(
    settings: Settings, dispatched_at: datetime | None, dispatch_count: int, now: datetime
) -> bool:
    """Whether a message sent ``dispatch_count`` times, last at ``dispatched_at``, is due again: after
    ``redispatch_after_seconds``, doubling with each send up to ``redispatch_max_seconds`` (the one
    backoff rule, ``jobstore.resend.ResendRule.backoff_due``; evaluations use it too)."""
    return resend_rule(settings).backoff_due(dispatched_at, dispatch_count, now)


def resend_rule(settings: Settings) -> ResendRule:
    return ResendRule(
        after=timedelta(seconds=settings.redispatch_after_seconds),
        cap=timedelta(seconds=settings.redispatch_max_seconds),
    )


def _mark_redispatched(session: Session, job: Job, now: datetime) -> None:
    waited = (now - job.dispatched_at).total_seconds() if job.dispatched_at else None
    job.dispatched_at = now
    job.dispatch_count += 1
    session.add(job)
    reason = (
        f"attempt {job.attempt} not claimed {waited:.0f} s after dispatch; message sent again"
        if waited is not None
        else f"attempt {job.attempt} was never dispatched; sending it"
    )
    append_event(
        session,
        job,
        EventKind.REDISPATCHED,
        actor=Actor.REAPER,
        reason=reason,
        evidence={"dispatch_count": job.dispatch_count, "waited_seconds": waited},
        now=now,
    )


def _interrupt_and_decide(
    session: Session, job: Job, now: datetime, settings: Settings, report: ReapReport
) -> tuple[str, int] | None:
    lost = _lost_reason(job)
    row = session.get(Attempt, (job.id, job.attempt))
    if row is not None:
        row.ended_at, row.outcome, row.reason = now, AttemptOutcome.LOST.value, clip(lost)
        session.add(row)
    transition(session, job, JobState.INTERRUPTED, actor=Actor.REAPER, reason=lost, now=now)
    report.interrupted += 1
    stop = settle_open_commands(
        session, job, requeueing=True, actor=Actor.REAPER, reason="worker lost", now=now
    )
    if stop == CommandKind.CANCEL:
        transition(
            session, job, JobState.CANCELLED, actor=Actor.REAPER, reason=f"cancel requested; {lost}", now=now
        )
        report.cancelled += 1
        return None
    if stop == CommandKind.PAUSE:
        report.left_interrupted += 1  # the pending pause was applied: resumable by hand, not re-queued
        return None
    if job.infra_retries >= settings.infra_retry_budget:
        used = f"{job.infra_retries} of {settings.infra_retry_budget}"
        reason = f"infrastructure retry budget exhausted ({used} automatic re-queues used); last: {lost}"
        transition(session, job, JobState.FAILED, actor=Actor.REAPER, reason=reason, now=now)
        report.failed += 1
        return None
    job.infra_retries += 1
    point = automatic_resume_point(session, job, row)
    reason = f"re-queued after a lost worker (retry {job.infra_retries} of {settings.infra_retry_budget})"
    attempt = requeue(session, job, resume_from=point, actor=Actor.REAPER, reason=reason, now=now)
    report.requeued += 1
    return (job.id, attempt)


def _lost_reason(job: Job) -> str:
    expired = job.lease_expires_at.isoformat() if job.lease_expires_at else "never set"
    beat = job.heartbeat_at.isoformat() if job.heartbeat_at else "never"
    return (
        f"worker lost: lease expired at {expired}, last heartbeat at {beat} "
        f"(worker {job.lease_owner or '?'}, attempt {job.attempt})"
    )

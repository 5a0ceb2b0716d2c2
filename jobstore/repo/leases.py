"""Attempts and leases: claim a queued job, renew the lease, confirm the restore, end the attempt.

Fencing: a job's ``attempt`` number is the token. ``claim`` succeeds only for the attempt the job is
queued for; every later write by that worker passes the same number and is refused
(``FencedOutError``) once the job has moved on — re-queued as a newer attempt, or no longer running.
A duplicate delivery of the same message finds the job already running and gets ``None`` from
``claim`` without writing anything. The lease (``lease_expires_at``) is what the reaper watches.

Priority: the broker hands messages out in the order they were sent (the embedded SQLite broker
knows no priorities, Redis only ten), so the worker claims ``next_claimable``: the message's job,
unless it is not claimable or a job of strictly higher priority waits; then the queued job first in
line — highest priority, then longest queued (``queue_position``'s order). A message is a turn in
the queue: the job it named keeps its turn through the message of the job that ran in its place.
Only a queued job is claimed, at the attempt it is queued for, so none runs twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from jobstore.errors import FencedOutError
from jobstore.events import Actor, EventKind
from jobstore.kinds import CommandKind
from jobstore.models import Attempt, EpochMetric, Job, JobEvent
from jobstore.repo._base import clip, fence, now_or
from jobstore.repo.commands import CommandView, mark_delivered, pending_commands, settle_open_commands
from jobstore.repo.events import append_event
from jobstore.repo.metrics import supersede_after
from jobstore.repo.resume import automatic_resume_point
from jobstore.repo.transitions import requeue, transition
from jobstore.states import OUTCOME_STATE, AttemptOutcome, JobState

# the order of the queue: highest priority, then longest queued (``first_in_line``, the reaper's head)
QUEUE_ORDER = (col(Job.priority).desc(), col(Job.queued_at), col(Job.id))


@dataclass(frozen=True)
class Claim:
    """What a worker needs to start: the job (a detached snapshot) and its attempt row."""

    job: Job
    attempt: Attempt

    @property
    def resume_from(self) -> dict[str, Any]:
        return dict(self.job.resume_from)


@dataclass(frozen=True)
class Heartbeat:
    fenced_out: bool  # True: stop now, this attempt no longer owns the job
    reason: str = ""
    lease_expires_at: datetime | None = None
    commands: list[CommandView] = field(default_factory=list)  # each handed out exactly once


@dataclass(frozen=True)
class Finish:
    job: Job
    dispatch: tuple[str, int] | None  # (job_id, attempt) to send after commit (a clean preemption)


@dataclass(frozen=True)
class Restore:
    matches: bool  # False: the worker restored something other than what the resume asked for
    superseded: int  # metric rows past the restored epoch marked superseded
    expected: dict[str, Any]


def claim(
    session: Session,
    *,
    job_id: str,
    attempt: int,
    worker: str,
    pid: int | None,
    gpu: str | None,
    lease_seconds: float,
    now: datetime | None = None,
    run_dir: str | None = None,
) -> Claim | None:
    """Compare-and-set ``queued → running`` for exactly this attempt; None (and no write) otherwise."""
    now = now_or(now)
    job = session.get(Job, job_id, with_for_update=True, populate_existing=True)
    if job is None or job.state != JobState.QUEUED or job.attempt != attempt:
        return None
    row = Attempt(
        job_id=job_id,
        number=attempt,
        worker=clip(worker, 255),
        pid=pid,
        gpu=gpu,
        started_at=now,
        resumed_from=job.resume_from.get("checkpoint"),
    )
    session.add(row)
    job.lease_owner = clip(worker, 255)
    job.lease_expires_at = now + timedelta(seconds=lease_seconds)
    job.heartbeat_at = now
    job.progress_at = now
    if run_dir is not None:
        job.run_dir = run_dir
    transition(
        session, job, JobState.RUNNING, actor=Actor.worker(worker),
        reason=f"attempt {attempt} claimed by {worker} (pid {pid}, gpu {gpu})",
        evidence={"worker": worker, "pid": pid, "gpu": gpu, "resume_from": dict(job.resume_from)}, now=now,
    )  # fmt: skip
    return Claim(job, row)


def next_claimable(session: Session, *, job_id: str, attempt: int) -> Job | None:
    """The job a worker holding the message ``(job_id, attempt)`` claims (module docstring): that
    job, unless it is not claimable or a strictly higher priority waits; then the queued job first in
    line. Locked; None when nothing is queued. The caller claims it with ``claim``."""
    job = session.get(Job, job_id, with_for_update=True, populate_existing=True)
    own = job if job is not None and job.state == JobState.QUEUED and job.attempt == attempt else None
    return first_in_line(session, above=None if own is None else own.priority) or own


def first_in_line(session: Session, *, above: int | None = None) -> Job | None:
    """The queued job first in line (priority, then queued time), locked; only one of priority >
    ``above`` when given. Rows another transaction holds are skipped (PostgreSQL): that worker is
    claiming them."""
    query = select(Job).where(Job.state == JobState.QUEUED)
    if above is not None:
        query = query.where(col(Job.priority) > above)
    query = query.order_by(*QUEUE_ORDER).limit(1)
    locked = query.with_for_update(skip_locked=True).execution_options(populate_existing=True)
    return session.exec(locked).first()


def heartbeat(
    session: Session, *, job_id: str, attempt: int, lease_seconds: float, now: datetime | None = None
) -> Heartbeat:
    """Renew the lease and hand over pending commands (marked delivered), or report fenced out.

    A late heartbeat still wins if the reaper has not acted yet: expiry alone fences nobody.
    """
    now = now_or(now)
    try:
        job = fence(session, job_id=job_id, attempt=attempt)
    except FencedOutError as exc:
        return Heartbeat(fenced_out=True, reason=str(exc))
    job.lease_expires_at = now + timedelta(seconds=lease_seconds)
    job.heartbeat_at = now
    session.add(job)
    pending = pending_commands(session, job_id=job_id)
    delivered = mark_delivered(
        session, job_id=job_id, attempt=attempt, command_ids=[c.id for c in pending], now=now
    )
    return Heartbeat(False, "", job.lease_expires_at, [CommandView.of(command) for command in delivered])


def record_restore(
    session: Session,
    *,
    job_id: str,
    attempt: int,
    stage: int,
    epoch: int,
    batch: int = 0,
    resumed_from: str | None = None,
    evidence: dict[str, Any] | None = None,
    stage_since_epoch: int | None = None,
    stage_reason: str | None = None,
    now: datetime | None = None,
) -> Restore:
    """Fenced: the worker's confirmation of what it restored (``epoch`` = last completed epoch).

    Stores it on the attempt, sets the job's stage (and, when given, since which epoch and why),
    supersedes metric rows (and checkpoint records)
    past ``epoch``, and logs a ``RESTORED`` event saying whether it matches the request. After this
    the worker may re-record the restored history with ``record_epoch``: rows already there are
    ignored, missing ones (a crash between checkpoint and metrics write) are filled in.
    """
    now = now_or(now)
    job = fence(session, job_id=job_id, attempt=attempt)
    row = session.get(Attempt, (job_id, attempt))
    assert row is not None, "a running attempt always has its row"
    row.restored_stage, row.restored_epoch, row.restored_batch = stage, epoch, batch
    row.resumed_from, row.restored_at = resumed_from, now
    session.add(row)
    expected = dict(job.resume_from)
    matches = _matches(expected, epoch=epoch, batch=batch, path=resumed_from)
    actor = Actor.worker(row.worker)
    superseded = supersede_after(
        session, job_id=job_id, epoch=epoch, actor=actor, keep_checkpoint=resumed_from, now=now
    )
    job.stage = stage
    if stage_since_epoch is not None:  # the restored position: which stage, since when and why
        job.stage_since_epoch = stage_since_epoch
        why = stage_reason or _entry_reason(session, job_id, stage, stage_since_epoch)
        job.stage_reason = clip(why or f"restored in stage {stage} (since epoch {stage_since_epoch})")
    session.add(job)
    what = (
        f"epoch {epoch} (batch {batch}), stage {stage}, from {resumed_from}"
        if resumed_from
        else "a fresh start"
    )
    append_event(
        session, job, EventKind.RESTORED, actor=actor,
        reason=f"restored {what}" + ("" if matches else f"; MISMATCH: the resume asked for {expected}"),
        evidence={"stage": stage, "epoch": epoch, "batch": batch, "checkpoint": resumed_from,
                  "expected": expected, "matches": matches, **(evidence or {})},
        epoch=epoch, stage=stage, now=now,
    )  # fmt: skip
    return Restore(matches, superseded, expected)


def _entry_reason(session: Session, job_id: str, stage: int, epoch: int) -> str | None:
    """The reason logged when the job entered ``stage`` at ``epoch`` (the latest such entry)."""
    query = (
        select(JobEvent)
        .where(
            JobEvent.job_id == job_id,
            JobEvent.kind == EventKind.STAGE_CHANGE,
            JobEvent.to_stage == stage,
            JobEvent.epoch == epoch,
        )
        .order_by(col(JobEvent.seq).desc())
        .limit(1)
    )
    event = session.exec(query).first()
    return event.reason if event is not None else None


def _matches(expected: dict[str, Any], *, epoch: int, batch: int, path: str | None) -> bool:
    if not expected.get("checkpoint"):
        return path is None and epoch == 0
    return (
        expected["checkpoint"] == path
        and expected.get("epoch") == epoch
        and expected.get("batch", 0) == batch
    )


def finish_attempt(
    session: Session,
    *,
    job_id: str,
    attempt: int,
    outcome: AttemptOutcome,
    reason: str,
    gate: dict[str, Any] | None = None,
    best_checkpoint: str | None = None,
    last_checkpoint: str | None = None,
    onnx_path: str | None = None,
    evaluation: dict[str, Any] | None = None,
    preempt_budget: int | None = None,
    now: datetime | None = None,
) -> Finish:
    """Fenced: end the attempt and move the job where ``outcome`` leads (``OUTCOME_STATE``).

    ``failed`` is final for the attempt: errors in the job itself are never retried automatically.
    ``gate`` (the failed gate check behind awaiting_decision or stopped) is kept for the status
    page. ``preempted`` re-queues at once as a new attempt (not counted against the infrastructure
    budget) unless a cancel or pause is pending, which is applied instead; ``Finish.dispatch`` then
    says what to send. A preemption loop is bounded by ``preempt_budget``: more preemptions than
    that in a row without a completed epoch (since the last operator resume) fail the job.
    ``evaluation`` (the run's own before/after summary) goes to ``job.result["evaluation"]``.
    """
    now = now_or(now)
    if outcome == AttemptOutcome.LOST:
        raise ValueError("LOST is the reaper's outcome, not a worker's")
    job = fence(session, job_id=job_id, attempt=attempt)
    row = session.get(Attempt, (job_id, attempt))
    assert row is not None, "a running attempt always has its row"
    row.ended_at, row.outcome, row.reason = now, outcome.value, clip(reason)
    session.add(row)
    for name, value in (("best_checkpoint", best_checkpoint), ("last_checkpoint", last_checkpoint),
                        ("onnx_path", onnx_path)):  # fmt: skip
        if value is not None:
            setattr(job, name, value)
    if evaluation is not None:
        job.result = {**(job.result or {}), "evaluation": dict(evaluation)}
    actor = Actor.worker(row.worker)
    if outcome == AttemptOutcome.PREEMPTED:
        return _after_preemption(session, job, row, actor, reason, now, preempt_budget)
    settle_open_commands(session, job, requeueing=False, actor=actor, reason=outcome.value, now=now)
    if gate is not None:  # the failed gate behind awaiting_decision (or a policy stop)
        job.gate = dict(gate)
    transition(session, job, OUTCOME_STATE[outcome], actor=actor, reason=reason, now=now)
    return Finish(job, None)


def preemptions_without_progress(session: Session, job_id: str) -> int:
    """Preempted attempts since the job's last new epoch row or operator resume, whichever is later."""
    last_epoch = session.exec(
        select(func.max(EpochMetric.recorded_at)).where(
            EpochMetric.job_id == job_id, col(EpochMetric.superseded).is_(False)
        )
    ).one()
    last_resume = session.exec(
        select(func.max(JobEvent.at)).where(
            JobEvent.job_id == job_id, JobEvent.kind == EventKind.RESUME_REQUESTED
        )
    ).one()
    since = max((t for t in (last_epoch, last_resume) if t is not None), default=None)
    query = select(func.count()).where(
        Attempt.job_id == job_id, Attempt.outcome == AttemptOutcome.PREEMPTED.value
    )
    if since is not None:
        query = query.where(col(Attempt.ended_at) > since)
    return int(session.exec(query).one())


def _after_preemption(
    session: Session, job: Job, row: Attempt, actor: str, reason: str, now: datetime, budget: int | None
) -> Finish:
    stop = settle_open_commands(session, job, requeueing=True, actor=actor, reason="preempted", now=now)
    if stop is not None:
        target = JobState.CANCELLED if stop == CommandKind.CANCEL else JobState.PAUSED
        transition(session, job, target, actor=actor, reason=f"{stop.value} requested; {reason}", now=now)
        return Finish(job, None)
    streak = preemptions_without_progress(session, job.id)
    if budget is not None and streak > budget:
        why = (
            f"preempted {streak} times in a row without completing an epoch (preempt budget {budget}): "
            f"find what keeps stopping the workers (a restart loop, spot churn), then resume the job; "
            f"last: {reason}"
        )
        transition(session, job, JobState.FAILED, actor=actor, reason=why, now=now)
        return Finish(job, None)
    point = automatic_resume_point(session, job, row)
    new_attempt = requeue(
        session, job, resume_from=point, actor=actor, reason=f"preempted: {reason}; re-queued", now=now
    )
    return Finish(job, (job.id, new_attempt))

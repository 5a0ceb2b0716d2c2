"""Resume a stopped job from a checkpoint, or fork a new job from one.

A resume continues the *same* job: it resolves the checkpoint now (``NoCheckpointError`` if there is
none), applies spec overrides, bumps the attempt (the new fencing token) and re-queues. The worker
later confirms what it restored (``leases.record_restore``), which supersedes metrics past it.

Overrides: ``lr`` (the base lr; later stages derive from it unless ``stage2.lr`` is set), ``epochs``
(the budget), ``unfreeze_backbone_epoch``, ``stage2`` and ``stage3`` (partial sections) change the
job's spec for good, so an automatic resume after a crash keeps them; ``stage`` is one-shot: the stage
to continue in, instead of the checkpoint's. A gate decision (``jobstore.repo.decisions``) is a resume
with a ``decision`` attached; a ``stop`` decision tells the worker to end the run at the checkpoint.

A fork pins a mutable selector (``last``, ``best``: files the parent rewrites while it runs) to the
immutable per-epoch file of the same state when there is one, so the child starts from what the
operator chose even if the parent moves on before a worker takes the child.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar

from pydantic import ValidationError
from sqlmodel import Session, col, select

from jobstore.errors import InvalidResumeError, JobDeletedError
from jobstore.events import EventKind
from jobstore.kinds import CheckpointKind
from jobstore.models import Attempt, CheckpointRecord, Job
from jobstore.repo._base import lock_job, now_or
from jobstore.repo.checkpoints import Selector, find_checkpoint, parse_selector, require_checkpoint
from jobstore.repo.events import append_event
from jobstore.repo.jobs import CreateResult, create_job, get_job
from jobstore.repo.transitions import requeue
from jobstore.spec import JobCreate, JobSpec, spec_dict
from jobstore.states import RESUMABLE, IllegalTransitionError, JobState

SPEC_OVERRIDES = ("lr", "epochs", "unfreeze_backbone_epoch", "stage2", "stage3")
SECTIONS = ("stage2", "stage3")  # partial overrides: merged into the job's section
STOP = "stop"  # the decision that ends the run at its checkpoint (best model exported)
OVERRIDES = ("stage", *SPEC_OVERRIDES)

S = TypeVar("S", bound=JobSpec)


def request_resume(
    session: Session,
    job: Job,
    *,
    selector: str = "last",
    overrides: Mapping[str, Any] | None = None,
    actor: str,
    reason: str,
    decision: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> tuple[Job, int]:
    """Re-queue a paused / awaiting / interrupted / failed / cancelled job from a checkpoint.

    Returns ``(job, attempt)``; the caller dispatches them after commit. Resets the infrastructure
    retry budget. Raises ``IllegalTransitionError`` (other states), ``InvalidSelectorError``,
    ``NoCheckpointError``, ``InvalidResumeError`` (bad overrides).
    """
    now = now_or(now)
    job = lock_job(session, job.id)
    refuse_deleted(job)
    state = JobState(job.state)
    if state not in RESUMABLE:
        raise IllegalTransitionError(state, JobState.QUEUED)
    chosen = parse_selector(selector)
    record = require_checkpoint(session, job_id=job.id, selector=chosen)
    changes = _checked_overrides(overrides, after_epoch=record.epoch)
    spec = _checked_spec(JobSpec, merge_overrides(job.spec, changes), changes)
    job.spec = spec_dict(spec)
    job.epochs = spec.epochs
    job.infra_retries = 0
    point = resume_point(record, chosen, changes) | operator_point(actor, reason)
    if decision is not None:
        point["decision"] = dict(decision)
    append_event(
        session, job, EventKind.RESUME_REQUESTED, actor=actor, reason=reason, evidence=point, now=now
    )
    attempt = requeue(
        session, job, resume_from=point, actor=actor, reason=reason or f"resume from {chosen}", now=now
    )
    return job, attempt


def fork_job(
    session: Session,
    *,
    parent_id: str,
    selector: str = "best",
    overrides: Mapping[str, Any] | None = None,
    name: str | None = None,
    owner: str = "",
    actor: str,
    reason: str,
    idempotency_key: str | None = None,
    max_queued: int | None = None,
    now: datetime | None = None,
) -> CreateResult:
    """A new job starting from a checkpoint of ``parent_id``, with the parent's spec plus overrides.

    The child is linked (``parent_job_id``, ``fork_from``), starts at the checkpoint's stage and
    epoch (or ``overrides["stage"]``), and the parent gets a ``FORKED`` event. Idempotent like
    ``create_job`` (the key is bound to parent, selector, overrides and name).
    """
    now = now_or(now)
    parent = get_job(session, parent_id)
    refuse_deleted(parent)
    chosen = parse_selector(selector)
    record = _pinned(session, require_checkpoint(session, job_id=parent_id, selector=chosen))
    changes = _checked_overrides(overrides, after_epoch=record.epoch)
    merged = merge_overrides(parent.spec, changes)
    create = _checked_spec(
        JobCreate, {**merged, "name": name or f"{parent.name}-fork", "priority": parent.priority}, changes
    )
    point = resume_point(record, chosen, changes) | operator_point(actor, reason)
    fork_from = {
        "job_id": parent_id, "from": str(chosen), "overrides": changes, "checkpoint": record.path,
        "epoch": record.epoch, "stage": record.stage, "val_f1": record.val_f1,
    }  # fmt: skip
    result = create_job(
        session, create=create, owner=owner, idempotency_key=idempotency_key, actor=actor,
        max_queued=max_queued, parent_job_id=parent_id, now=now, resume_from=point, fork_from=fork_from,
    )  # fmt: skip
    if result.created:
        child = result.job
        child.stage = int(changes.get("stage", record.stage))
        child.epoch = record.epoch
        session.add(child)
        append_event(
            session, parent, EventKind.FORKED, actor=actor, reason=reason,
            evidence={"child_job_id": child.id, **point}, now=now,
        )  # fmt: skip
    return result


def refuse_deleted(job: Job) -> None:
    if job.deleted_at is not None:
        raise JobDeletedError(job.id, job.deleted_at)


def resume_point(
    record: CheckpointRecord, selector: Selector, overrides: Mapping[str, Any]
) -> dict[str, Any]:
    """The ``Job.resume_from`` the worker reads: which file, what it holds, what to change."""
    return {
        "from": str(selector),
        "checkpoint": record.path,
        "job_id": record.job_id,
        "kind": record.kind,
        "epoch": record.epoch,
        "stage": record.stage,
        "batch": record.batch,
        "overrides": dict(overrides),
    }


def operator_point(actor: str, reason: str) -> dict[str, Any]:
    """What an operator's resume or fork adds to the point: who and why, and that commands queued in
    the checkpoint are not carried over (they belong to another timeline or job; open ones of this
    job are delivered again by the heartbeat)."""
    return {"actor": actor, "reason": reason, "drop_queued_commands": True}


def automatic_resume_point(session: Session, job: Job, ended: Attempt | None) -> dict[str, Any]:
    """Where a re-queue after a lost worker or a preemption continues from.

    If the attempt that ended never confirmed its restore, the same point again (its request is
    still unfulfilled); otherwise the job's ``last`` live checkpoint; failing that, the point it had
    (a fork's parent checkpoint), or a fresh start. One-shot overrides (``stage``) are dropped.
    """
    carried = {k: v for k, v in dict(job.resume_from.get("overrides") or {}).items() if k != "stage"}
    if job.resume_from and (ended is None or ended.restored_at is None):
        return {**job.resume_from, "overrides": carried}
    record = find_checkpoint(session, job_id=job.id, selector=Selector("last"))
    if record is not None:
        point = resume_point(record, Selector("last"), carried)
        decision = dict(job.resume_from.get("decision") or {})
        if decision.get("action") == STOP:  # the operator's stop still holds after a lost worker
            point["decision"] = decision
        return point
    if job.resume_from.get("checkpoint"):
        return {**job.resume_from, "overrides": carried}
    return {"from": "last", "checkpoint": None, "epoch": 0, "overrides": carried}


def _pinned(session: Session, record: CheckpointRecord) -> CheckpointRecord:
    """The per-epoch record holding the same state as a ``last`` / ``best`` record, if there is one."""
    if record.kind not in (CheckpointKind.LAST, CheckpointKind.BEST) or record.batch:
        return record
    query = select(CheckpointRecord).where(
        CheckpointRecord.job_id == record.job_id,
        CheckpointRecord.kind == CheckpointKind.EPOCH,
        CheckpointRecord.epoch == record.epoch,
        CheckpointRecord.stage == record.stage,
        CheckpointRecord.batch == 0,
        col(CheckpointRecord.superseded).is_(False),
        col(CheckpointRecord.pruned_at).is_(None),
    )
    return session.exec(query.order_by(col(CheckpointRecord.id).desc()).limit(1)).first() or record


def _checked_spec(model: type[S], values: Mapping[str, Any], changes: Mapping[str, Any]) -> S:
    """The merged spec validated (once), refusing a ``stage`` the resulting job does not have."""
    spec = _validated(model, values)
    stage = changes.get("stage")
    if stage is not None and stage > 1 and not spec.freeze_backbone:
        raise InvalidResumeError(f"stage {stage}: a full fine-tune (freeze_backbone off) has no stages")
    if stage == 3 and spec.stage3 is None:
        raise InvalidResumeError("stage 3 is not configured for this job (no stage3 section)")
    return spec


def _checked_overrides(overrides: Mapping[str, Any] | None, *, after_epoch: int) -> dict[str, Any]:
    changes = {k: v for k, v in dict(overrides or {}).items() if v is not None}
    unknown = sorted(set(changes) - set(OVERRIDES))
    if unknown:
        raise InvalidResumeError(f"unknown override(s) {unknown}; allowed: {list(OVERRIDES)}")
    stage = changes.get("stage")
    if stage is not None and (isinstance(stage, bool) or stage not in (1, 2, 3)):
        raise InvalidResumeError(f"stage must be 1, 2 or 3, not {stage!r}")
    epochs = changes.get("epochs")
    if epochs is not None and (not isinstance(epochs, int) or epochs <= after_epoch):
        raise InvalidResumeError(f"epochs must exceed the checkpoint's epoch {after_epoch}, not {epochs!r}")
    return changes


def merge_overrides(spec: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``spec`` with the spec-level overrides applied (sections merged), not validated yet."""
    merged = dict(spec)
    for key in SPEC_OVERRIDES:
        if key in SECTIONS and key in overrides:
            if key == "stage3" and not merged.get("stage3"):
                raise InvalidResumeError("stage3 overrides need a job with a stage3 section")
            given = {k: v for k, v in dict(overrides[key]).items() if v is not None}
            merged[key] = {**dict(merged.get(key) or {}), **given}
        elif key in overrides:
            merged[key] = overrides[key]
    return merged


def _validated(model: type[S], values: Mapping[str, Any]) -> S:
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise InvalidResumeError(
            f"the overrides make an invalid job spec: {exc}", errors=exc.errors()
        ) from exc

"""Delete a finished job: a tombstone, not a hole in the audit trail.

The job row stays (``deleted_at`` set; lists leave it out unless asked), with its events, metrics
and attempts; its checkpoint records are marked pruned, a ``deleted`` event says who, why and how
much went, and the caller removes the run folder after the commit (``jobstore.disk.remove_tree``).
Only a terminal job (succeeded, failed, cancelled) can go, and only while no fork still restores
from one of its checkpoints. Deleting a deleted job again changes nothing.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlmodel import Session, col, select

from jobstore.errors import DeleteRefusedError
from jobstore.events import EventKind
from jobstore.models import CheckpointRecord, Job
from jobstore.repo._base import lock_job, now_or
from jobstore.repo.events import append_event
from jobstore.states import TERMINAL, JobState

_checkpoint = CheckpointRecord.__table__  # type: ignore[attr-defined]


def delete_job(
    session: Session, job_id: str, *, actor: str, reason: str, disk_bytes: int, now: datetime | None = None
) -> tuple[Job, bool]:
    """Tombstone ``job_id``: ``(job, deleted_now)``; False when it was deleted before.

    Raises ``DeleteRefusedError`` for a job that is not terminal, or whose fork still needs it.
    ``disk_bytes`` (what its run folder holds) goes into the event.
    """
    now = now_or(now)
    job = lock_job(session, job_id)
    if job.deleted_at is not None:
        return job, False
    state = JobState(job.state)
    if state not in TERMINAL:
        raise DeleteRefusedError(
            job.id, state.value,
            f"job {job.id} is {state.value}: only a succeeded, failed or cancelled job can be deleted "
            f"(cancel it first: POST /jobs/{job.id}/cancel)",
        )  # fmt: skip
    waiting = forks_needing(session, job)
    if waiting:
        raise DeleteRefusedError(
            job.id, state.value,
            f"job {job.id} cannot be deleted yet: fork(s) {', '.join(waiting)} still restore from its "
            "checkpoints (wait until they finish, or cancel them)",
        )  # fmt: skip
    job.deleted_at = now
    session.add(job)
    pruned = session.exec(
        update(_checkpoint)
        .where(_checkpoint.c.job_id == job.id, _checkpoint.c.pruned_at.is_(None))
        .values(pruned_at=now)
    ).rowcount
    append_event(
        session, job, EventKind.DELETED, actor=actor,
        reason=reason or "deleted: run folder removed, the job kept as a tombstone",
        evidence={"run_dir": job.run_dir or job.id, "bytes": disk_bytes, "checkpoints": pruned},
        now=now,
    )  # fmt: skip
    return job, True


def forks_needing(session: Session, job: Job) -> list[str]:
    """Forks of ``job`` not finished whose resume point is still one of its checkpoints."""
    forks = session.exec(
        select(Job.id, Job.state, Job.resume_from).where(
            Job.parent_job_id == job.id, col(Job.deleted_at).is_(None)
        )
    ).all()
    return sorted(
        fork_id
        for fork_id, state, point in forks
        if JobState(state) not in TERMINAL and point.get("job_id") == job.id and point.get("checkpoint")
    )

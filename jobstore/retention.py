"""The retention pass: prunes epoch checkpoints beyond each job's keep count, off the training path.

A job keeps ``best``, ``last``, ``interrupt`` and its stage entries always, and at most K epoch
checkpoints (``epochs/epoch_NNNN.pt``): K is its spec's ``keep_epochs``, else the server's
``keep_epoch_checkpoints``. The newest live ones are kept; older ones and those of a timeline a resume
abandoned (superseded) go first. Never pruned:

- the checkpoint the job's own ``resume_from`` names (a queued resume or an automatic re-queue reads
  it), nor the one a fork's ``resume_from`` names in its parent (the fork restores from it);
- anything of a queued job (a worker may claim it at any moment), and, of a running job, anything
  before its worker confirmed the restore or ahead of its last completed epoch (files the worker
  may write again): only epochs it has finished in this timeline go.

Why a background pass and not the engine at the end of an epoch: the database must learn of every
removal (a resume or fork from ``epoch:N`` then says the file was pruned, and when), a slow disk or
a database lock must never hold up a training step, and stopped jobs get pruned too. The pass runs in
the reaper loop (``worker.reaper``: the worker's companion process, ``ocec-jobs up``'s reaper child)
and in ``ocec-jobs gc``; each job in its own short transaction under its row lock, so several hosts
may run it at once. Rows are marked (``pruned_at``) and a ``pruned`` event logged before the files go:
if a removal fails, the file is only left over, never a record naming a missing file as usable.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from jobstore.db import TransactionFactory
from jobstore.disk import file_bytes, folder_bytes, remove_file
from jobstore.events import Actor, EventKind
from jobstore.kinds import CheckpointKind
from jobstore.models import Attempt, CheckpointRecord, Job
from jobstore.paths import within
from jobstore.repo._base import lock_job
from jobstore.repo.events import append_event
from jobstore.settings import Settings
from jobstore.states import JobState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Doomed:
    """A checkpoint file the policy removes."""

    job_id: str
    path: str  # relative to the runs root
    epoch: int
    size_bytes: int
    keep: int  # the job's K


@dataclass
class PruneReport:
    pruned: list[Doomed] = field(default_factory=list)
    errors: int = 0  # jobs whose pass raised, or files that could not be removed (retried next pass)

    @property
    def bytes(self) -> int:
        return sum(d.size_bytes for d in self.pruned)

    def counts(self) -> dict[str, int]:
        return {"pruned files": len(self.pruned), "bytes freed": self.bytes, "errors": self.errors}


def keep_count(spec: Mapping[str, Any], settings: Settings) -> int:
    """A job's K: its spec's ``keep_epochs``, else the server default."""
    own = spec.get("keep_epochs")
    return own if isinstance(own, int) and not isinstance(own, bool) else settings.keep_epoch_checkpoints


def candidates(session: Session, settings: Settings) -> list[str]:
    """Jobs (not deleted) holding more unpruned epoch checkpoints than their K: two aggregate reads;
    ``doomed`` then decides per job under its lock."""
    counts = dict(
        session.exec(
            select(CheckpointRecord.job_id, func.count())
            .where(CheckpointRecord.kind == CheckpointKind.EPOCH, col(CheckpointRecord.pruned_at).is_(None))
            .group_by(col(CheckpointRecord.job_id))
        ).all()
    )
    if not counts:
        return []
    specs = session.exec(
        select(Job.id, Job.spec).where(col(Job.id).in_(list(counts)), col(Job.deleted_at).is_(None))
    ).all()
    return sorted(job_id for job_id, spec in specs if counts[job_id] > keep_count(spec, settings))


def doomed(session: Session, job: Job, settings: Settings) -> list[CheckpointRecord]:
    """The epoch checkpoint records of ``job`` the policy removes now (see the module docstring)."""
    if job.deleted_at is not None or JobState(job.state) is JobState.QUEUED:
        return []
    keep = keep_count(job.spec, settings)
    rows = session.exec(
        select(CheckpointRecord)
        .where(
            CheckpointRecord.job_id == job.id,
            CheckpointRecord.kind == CheckpointKind.EPOCH,
            col(CheckpointRecord.pruned_at).is_(None),
        )
        .order_by(
            col(CheckpointRecord.superseded),  # live ones first: the newest live ones are kept
            col(CheckpointRecord.epoch).desc(),
            col(CheckpointRecord.batch).desc(),
            col(CheckpointRecord.id).desc(),
        )
    ).all()
    beyond = list(rows[keep:])
    if JobState(job.state) is JobState.RUNNING:
        restored = _restored(session, job)
        beyond = [r for r in beyond if restored and not r.superseded and r.epoch <= job.epoch]
    needed = still_needed(session, job)
    return [r for r in beyond if r.path not in needed]


def _restored(session: Session, job: Job) -> bool:
    attempt = session.get(Attempt, (job.id, job.attempt))
    return attempt is not None and attempt.restored_at is not None


def still_needed(session: Session, job: Job) -> set[str]:
    """Checkpoint paths of ``job`` a resume or a fork names: its own resume point, its forks'."""
    forks = session.exec(
        select(Job.resume_from).where(Job.parent_job_id == job.id, col(Job.deleted_at).is_(None))
    ).all()
    points = [job.resume_from, *forks]
    return {str(p["checkpoint"]) for p in points if p.get("checkpoint")}


def plan(session: Session, settings: Settings) -> list[Doomed]:
    """What a pass would remove now (read only: ``ocec-jobs gc --dry-run``)."""
    found: list[Doomed] = []
    for job_id in candidates(session, settings):
        job = session.get(Job, job_id)
        if job is not None:
            keep = keep_count(job.spec, settings)
            found += [_doomed_file(r, settings, keep) for r in doomed(session, job, settings)]
    return found


def prune(session_factory: TransactionFactory, *, settings: Settings, now: datetime) -> PruneReport:
    """One pass: for each job over its K, mark the records pruned, log it, then remove the files."""
    report = PruneReport()
    with session_factory() as session:
        job_ids = candidates(session, settings)
    for job_id in job_ids:
        try:
            removed = _prune_job(session_factory, job_id, settings, now)
        except Exception:  # one bad job must not stop the pass; it is retried next time
            report.errors += 1
            log.exception("retention: pruning job %s failed", job_id)
            continue
        report.errors += _remove_files(removed, settings.runs_root)
        report.pruned += removed
    return report


def _prune_job(
    session_factory: TransactionFactory, job_id: str, settings: Settings, now: datetime
) -> list[Doomed]:
    with session_factory() as session:
        job = lock_job(session, job_id)
        records = doomed(session, job, settings)
        if not records:
            return []
        keep = keep_count(job.spec, settings)
        files = [_doomed_file(r, settings, keep) for r in records]
        for record in records:
            record.pruned_at = now
            session.add(record)
        epochs = sorted(r.epoch for r in records)
        freed = sum(f.size_bytes for f in files)
        append_event(
            session, job, EventKind.PRUNED, actor=Actor.RETENTION,
            reason=f"kept the newest {keep} epoch checkpoint(s); pruned epoch(s) {epochs}",
            evidence={"keep": keep, "paths": [f.path for f in files], "bytes": freed},
            now=now,
        )  # fmt: skip
        return files


@dataclass(frozen=True)
class Leftover:
    """The run folder of a deleted job still on disk (its removal after the delete failed)."""

    job_id: str
    folder: Path
    size_bytes: int
    deleted_at: datetime


def leftovers(session: Session, runs_root: Path) -> list[Leftover]:
    """Deleted jobs whose run folder is still there (``ocec-jobs gc`` removes them)."""
    deleted = session.exec(
        select(Job.id, Job.deleted_at).where(col(Job.deleted_at).is_not(None)).order_by(col(Job.id))
    ).all()
    found = [(job_id, at, runs_root / job_id) for job_id, at in deleted if at is not None]
    return [
        Leftover(job_id, folder, folder_bytes(folder), at) for job_id, at, folder in found if folder.exists()
    ]


def _doomed_file(record: CheckpointRecord, settings: Settings, keep: int) -> Doomed:
    path = within(settings.runs_root, record.path, absolute_ok=False)
    size = file_bytes(path) if path is not None else 0
    return Doomed(record.job_id, record.path, record.epoch, size, keep)


def _remove_files(files: list[Doomed], runs_root: Path) -> int:
    """Remove the files (already marked pruned); how many could not be removed."""
    failed = 0
    for item in files:
        path = within(runs_root, item.path, absolute_ok=False)
        try:
            if path is not None:
                remove_file(path)
        except OSError:
            failed += 1
            log.exception("retention: could not remove %s", item.path)
    return failed

"""Derived status fields: progress, ETA, the next stage gate, links (pure functions of a job row)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from statistics import fmean
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine
from sqlmodel import Session

from api.schemas import BaselineStatus, GateStatus, JobLinks, JobPublic, JobStatus, RaceSummary
from api.steering import forks_of, pending_decision, restore_of
from jobstore import repo
from jobstore.db import read_connection
from jobstore.disk import folder_bytes
from jobstore.gates import gate_epoch, gate_settings
from jobstore.models import Job, utcnow
from jobstore.repo.status_rows import StatusRows, status_rows
from jobstore.repo.workers import presence, row_live
from jobstore.settings import Settings
from jobstore.spec import JobSpec, without_secrets
from jobstore.states import JobState

ETA_WINDOW = 5  # mean of the last few epoch durations: recent enough to follow a stage change
ETA_STATES = frozenset({JobState.RUNNING, JobState.QUEUED})  # the only states with an ETA


def links(job: Job) -> JobLinks:
    base = f"/jobs/{job.id}"
    parent = f"/jobs/{job.parent_job_id}" if job.parent_job_id else None
    return JobLinks(
        self=base,
        metrics=f"{base}/metrics",
        events=f"{base}/events",
        stream=f"{base}/stream",
        checkpoints=f"{base}/checkpoints",
        parent=parent,
    )


def progress(job: Job) -> float:
    if JobState(job.state) is JobState.SUCCEEDED:
        return 1.0
    return min(1.0, job.epoch / job.epochs) if job.epochs > 0 else 0.0


def eta_seconds(job: Job, recent_epoch_seconds: Sequence[float]) -> float | None:
    """Remaining epochs x the mean recent epoch time; None when nothing is left to estimate from."""
    if JobState(job.state) not in ETA_STATES or not recent_epoch_seconds:
        return None
    remaining = max(0, job.epochs - job.epoch)
    return round(remaining * fmean(recent_epoch_seconds[-ETA_WINDOW:]), 1)


def next_gate(job: Job) -> GateStatus | None:
    """The gate between the job's stage and the next one (stage 1→2, or 2→3 if stage 3 is set)."""
    try:
        spec = JobSpec.model_validate(job.spec)
    except ValidationError:  # a row written under an older spec: show the status without its gate
        return None
    target = job.stage + 1
    gate = gate_settings(spec, target)
    if gate is None:
        return None
    check = job.gate if job.gate.get("stage") == target else {}
    last_f1 = _float(check["f1"]) if "f1" in check else _float(job.latest_metrics.get("val_f1"))
    return GateStatus(
        stage=target,
        threshold=gate.gate_f1,
        earliest_epoch=gate_epoch(spec, target),
        policy=str(gate.on_gate_fail),
        deadline_epoch=gate.gate_deadline_epoch,
        last_f1=last_f1,
        passed=_passed(check, last_f1, gate.gate_f1),
        last_check=check or None,
    )


def heartbeat_age(job: Job, now: datetime) -> float | None:
    if JobState(job.state) is not JobState.RUNNING or job.heartbeat_at is None:
        return None
    return round((now - job.heartbeat_at).total_seconds(), 1)


def public(job: Job) -> JobPublic:
    return JobPublic.model_validate(_public_fields(job))


def status(
    job: Job, *, now: datetime, queue_position: int | None, recent_epoch_seconds: Sequence[float]
) -> JobStatus:
    fields = _public_fields(job) | {
        "stage_since_epoch": job.stage_since_epoch,
        "stage_reason": job.stage_reason,
        "eta_seconds": eta_seconds(job, recent_epoch_seconds),
        "latest_metrics": job.latest_metrics,
        "next_gate": next_gate(job),
        "pending_decision": pending_decision(job),
        "queue_position": queue_position if JobState(job.state) is JobState.QUEUED else None,
        "heartbeat_age_seconds": heartbeat_age(job, now),
        "spec": without_secrets(job.spec),
        "fork_from": job.fork_from,
        "resume_from": job.resume_from,
        "baseline": baseline(job),
    }
    return JobStatus.model_validate(fields)


def baseline(job: Job) -> BaselineStatus | None:
    """Model A's val score and whether the best epoch beats it, as the engine reports it with every
    epoch (``extra`` of the latest live row)."""
    extra = job.latest_metrics.get("extra") or {}
    if "beats_baseline" not in extra:
        return None
    beaten = extra["beats_baseline"]
    return BaselineStatus(
        f1=_float(extra.get("baseline_f1")),
        val_loss=_float(extra.get("baseline_val_loss")),
        beaten=beaten if isinstance(beaten, bool) else None,
    )


PUBLIC_COLUMNS = tuple(JobPublic.model_fields.keys() - {"progress", "links"})  # also all these two read


def _public_fields(job: Job) -> dict[str, Any]:
    fields = {name: getattr(job, name) for name in PUBLIC_COLUMNS}
    return fields | {"progress": progress(job), "links": links(job)}


def _passed(check: dict[str, Any], last_f1: float | None, threshold: float) -> bool | None:
    """The worker's verdict when it read this gate, else the latest F1 against the threshold."""
    if "passed" in check:
        return bool(check["passed"])
    return None if last_f1 is None else last_f1 >= threshold


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def worker_fields(
    rows: StatusRows, session: Session, settings: Settings, now: datetime
) -> dict[str, bool | None]:
    """Whether the job's worker lives (running) or any does (queued), and whether its heartbeat is
    stale (older than two heartbeat periods: at least one beat is missing)."""
    job = rows.job
    age = heartbeat_age(job, now)
    stale = None if age is None else age > 2 * settings.heartbeat_seconds
    state = JobState(job.state)
    if state is JobState.RUNNING:
        since = rows.attempt.started_at if rows.attempt is not None else now
        alive: bool | None = row_live(rows.worker, since=since, fresh_seconds=settings.lease_seconds, now=now)
    elif state is JobState.QUEUED:
        alive = bool(presence(session, fresh_seconds=settings.lease_seconds, now=now).live)
    else:
        alive = None
    return {"heartbeat_stale": stale, "worker_alive": alive}


def load_status(session: Session, job: Job, settings: Settings | None = None) -> JobStatus:
    """The full status of ``job``: the row plus its queue position, recent epoch times, what its
    current attempt restored and the jobs forked from it; with ``settings``, its worker's liveness."""
    return rows_status(session, replace(status_rows(session, job.id), job=job), settings)


def rows_status(session: Session, rows: StatusRows, settings: Settings | None = None) -> JobStatus:
    """``load_status`` of rows already read: only the queue position (queued), the recent epoch
    times (running or queued: the ETA) and the forks (if any) take a query more."""
    job, now = rows.job, utcnow()
    seconds: list[float] = []
    if JobState(job.state) in ETA_STATES:
        after = max(0, job.epoch - ETA_WINDOW)
        seconds = repo.recent_epoch_seconds(session, job_id=job.id, after_epoch=after, limit=ETA_WINDOW)
    base = status(
        job, now=now, queue_position=repo.queue_position(session, job), recent_epoch_seconds=seconds
    )
    forks = forks_of(session, job) if rows.forked else []
    update: dict[str, object] = {
        "restore": restore_of(rows.attempt, job), "forks": forks, "race": race_of(rows),
    }  # fmt: skip
    if settings is not None:
        update |= worker_fields(rows, session, settings, now) | {"disk_bytes": disk_bytes(job, settings)}
    return base.model_copy(update=update)


def race_of(rows: StatusRows) -> RaceSummary | None:
    race = rows.race
    if race is None:
        return None
    link = f"/jobs/{rows.job.id}/race"
    return RaceSummary(state=race.state, winner=race.winner, reason=race.reason, link=link)


def read_status(engine: Engine, job_id: str, settings: Settings) -> JobStatus:
    """The status of the job ``job_id`` in a read session of its own (blocking: call it in a worker
    thread), so a route does the whole read in one thread hop (JobNotFoundError: 404)."""
    with read_connection(engine) as connection, Session(connection) as session:
        return rows_status(session, status_rows(connection, job_id), settings)


def disk_bytes(job: Job, settings: Settings) -> int:
    """What the job's run folder holds (``<runs_root>/<job id>``)."""
    return folder_bytes(settings.runs_root / job.id)

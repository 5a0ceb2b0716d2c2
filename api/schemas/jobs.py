"""A job as the API shows it: the list entry, the full status with its gate, baseline, restore
and forks (``*Public`` never leaks lease or hash columns)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from api.schemas.common import _Public
from api.schemas.races import RaceSummary


class JobLinks(BaseModel):
    self: str
    metrics: str
    events: str
    stream: str
    checkpoints: str
    parent: str | None = None


class JobPublic(_Public):
    id: str
    name: str
    state: str
    state_reason: str
    stage: int
    epoch: int
    epochs: int
    progress: float = Field(description="completed epochs / epoch budget, 0-1")
    best_f1: float | None
    best_epoch: int | None
    attempt: int
    priority: int
    parent_job_id: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    deleted_at: datetime | None = Field(
        default=None, description="when it was deleted: its run folder is gone, the row is a tombstone"
    )
    links: JobLinks


class GateStatus(BaseModel):
    """The next stage gate ahead of the job, read against its latest validation F1."""

    stage: int = Field(description="the stage this gate opens")
    threshold: float
    earliest_epoch: int | None = Field(description="first epoch the gate is read at; null: manual only")
    policy: str
    deadline_epoch: int | None
    last_f1: float | None
    passed: bool | None = Field(description="null until a validation F1 exists")
    last_check: dict[str, Any] | None = Field(
        default=None, description="the worker's last reading of this gate"
    )


class BaselineStatus(BaseModel):
    """The starting weights (model A) on the validation split before epoch 1, against the best epoch."""

    f1: float | None
    val_loss: float | None
    beaten: bool | None = Field(
        description="the best epoch so far beats model A (higher val F1, or equal F1 and lower val loss); "
        "false: no epoch did; null: not known yet"
    )


class ForkSummary(BaseModel):
    """A job forked from this one, for comparing the runs."""

    id: str
    name: str
    state: str
    stage: int
    epoch: int
    epochs: int
    best_f1: float | None
    fork_from: dict[str, Any] = Field(description="selector, checkpoint, epoch and stage it started from")
    link: str


class RestoreStatus(BaseModel):
    """What the worker of the current attempt confirmed it restored (null until it has)."""

    attempt: int
    stage: int | None
    epoch: int | None = Field(description="last completed epoch of the restored state")
    batch: int | None = Field(description="batches of the next epoch already done (a mid-epoch state)")
    checkpoint: str | None
    requested: str | None = Field(description="the selector the resume asked for (last, best, stage:N …)")
    at: datetime


class JobStatus(JobPublic):
    stage_since_epoch: int
    stage_reason: str
    eta_seconds: float | None
    latest_metrics: dict[str, Any]
    next_gate: GateStatus | None
    pending_decision: dict[str, Any] | None = Field(description="why an awaiting_decision job waits")
    queue_position: int | None
    heartbeat_age_seconds: float | None
    heartbeat_stale: bool | None = Field(
        default=None, description="running, and no heartbeat for over two heartbeat periods"
    )
    worker_alive: bool | None = Field(
        default=None,
        description="running: its worker still beats; queued: some worker lives; else null",
    )
    spec: dict[str, Any]
    fork_from: dict[str, Any]
    resume_from: dict[str, Any]
    restore: RestoreStatus | None = Field(default=None, description="what the current attempt restored")
    forks: list[ForkSummary] = Field(default_factory=list, description="jobs forked from this one")
    baseline: BaselineStatus | None = Field(default=None, description="model A's score; null before epoch 1")
    disk_bytes: int | None = Field(
        default=None, description="bytes its run folder holds now (checkpoints, logs, exports)"
    )
    race: RaceSummary | None = Field(
        default=None, description="a race's parent: the race's state (the job's own covers stage 1)"
    )


class JobsPage(BaseModel):
    data: list[JobPublic]
    next_cursor: str | None

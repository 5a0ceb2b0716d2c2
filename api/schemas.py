"""Request and response shapes of the HTTP API (``*Public`` never leaks lease or hash columns).

The POST /jobs body is ``jobstore.spec.JobCreate`` itself; the control bodies reuse its field
types so a resume or fork is validated by the same bounds as a submission.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from api.schemas_control import ForkSummary, Reason, RequiredReason, RestoreStatus
from jobstore.spec import Epochs, JobName, LearningRate, StageGateSpec, StageNumber, optional_fields

CHECKPOINT_REF = r"^(last|best|stage:[1-3]|epoch:[0-9]{1,5})$"
CheckpointRef = Annotated[
    str, Field(pattern=CHECKPOINT_REF, description="last | best | stage:N (its entry) | epoch:N")
]
CommandKey = Annotated[str, Field(min_length=1, max_length=255)]
# Cursors (epochs, event seqs) are 32-bit columns: a larger number is a client error, not a
# database overflow (a 500 that schemathesis found).
CURSOR_MAX = 2**31 - 1
OVERRIDE_FIELDS = {"stage", "lr", "epochs", "unfreeze_backbone_epoch", "stage2"}


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class _Public(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# --- requests -------------------------------------------------------------------------------


class StageRequest(_Request):
    stage: Annotated[int, Field(ge=2, le=3)]
    reason: RequiredReason
    command_id: CommandKey | None = Field(
        default=None, description="client key: a repeat returns the same command"
    )


class ControlRequest(_Request):
    """Body of /pause and /cancel (optional)."""

    reason: Reason = ""
    command_id: CommandKey | None = None


class ResumeRequest(_Request):
    from_: CheckpointRef = Field(default="last", alias="from")
    stage: StageNumber | None = Field(default=None, description="continue in this stage (one-shot)")
    lr: LearningRate | None = Field(default=None, description="new base lr (kept for later resumes)")
    epochs: Epochs | None = Field(default=None, description="new epoch budget, past the checkpoint's epoch")
    unfreeze_backbone_epoch: Epochs | None = Field(default=None, description="move the stage-2 gate")
    reason: Reason = ""

    def overrides(self) -> dict[str, Any]:
        """The jobstore overrides this request asks for (unset ones left out)."""
        return self.model_dump(include=OVERRIDE_FIELDS, exclude_none=True, mode="json")


# The stage-2 settings a fork may change, derived from the spec's section (its bounds, every field
# optional); omitted fields keep the parent's value. ``epoch`` is not one: stage 2's gate epoch is
# ``unfreeze_backbone_epoch``.
StageOverrides = create_model(
    "StageOverrides",
    __base__=_Request,
    __doc__="Stage-2 settings a fork may change; omitted fields keep the parent's value.",
    **optional_fields(StageGateSpec, exclude={"epoch"}),
)


class ForkRequest(ResumeRequest):
    from_: CheckpointRef = Field(default="best", alias="from")
    name: JobName | None = None
    stage2: StageOverrides | None = None  # type: ignore[valid-type]  # a model derived at import


# --- responses ------------------------------------------------------------------------------


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


class JobsPage(BaseModel):
    data: list[JobPublic]
    next_cursor: str | None


class MetricPublic(_Public):
    epoch: int
    stage: int
    attempt: int
    superseded: bool
    train_loss: float | None
    val_loss: float | None
    val_f1: float | None
    val_precision: float | None
    val_recall: float | None
    val_accuracy: float | None
    fisher_ratio: float | None
    train_f1: float | None
    lrs: dict[str, Any]
    trainable_params: int | None
    epoch_seconds: float | None
    samples_per_sec: float | None
    extra: dict[str, Any]
    recorded_at: datetime


class MetricsPage(BaseModel):
    data: list[MetricPublic]
    next_after_epoch: int | None


class EventPublic(_Public):
    seq: int
    kind: str
    at: datetime
    actor: str
    reason: str
    attempt: int | None
    epoch: int | None
    stage: int | None
    from_state: str | None
    to_state: str | None
    from_stage: int | None
    to_stage: int | None
    command_id: str | None
    evidence: dict[str, Any]


class EventsPage(BaseModel):
    data: list[EventPublic]
    next_after: int | None


class CommandPublic(_Public):
    id: str
    job_id: str
    kind: str
    params: dict[str, Any]
    actor: str
    reason: str
    command_key: str | None
    status: str
    result: dict[str, Any]
    requested_at: datetime
    delivered_at: datetime | None
    applied_at: datetime | None
    applied_epoch: int | None


class ControlResult(BaseModel):
    """What a control request did: the command queued for the worker (if any) and the job now."""

    job: JobPublic
    command: CommandPublic | None
    merged: bool = Field(default=False, description="this request joined an identical open command")


class CheckpointPublic(_Public):
    kind: str
    path: str
    epoch: int
    stage: int
    attempt: int
    val_f1: float | None
    size_bytes: int
    sha256: str | None
    created_at: datetime
    download: str | None = None


class HealthStatus(BaseModel):
    status: str = Field(description="ok; degraded (/readyz: no live worker, see checks.workers)")
    checks: dict[str, str] = Field(default_factory=dict)

"""SQLModel tables. The database is the source of truth; Celery only dispatches.

Conventions: UUID-string primary keys for jobs; natural keys elsewhere; timestamps are
timezone-aware UTC (``UTCDateTime``); state/stage/kind columns are short strings validated by the
enums in ``jobstore.states`` and friends, so adding a value needs no migration; free-form JSON is
NaN-safe (``SafeJSON``). Every worker write is fenced by ``Job.attempt``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Column, Index, MetaData, UniqueConstraint
from sqlmodel import Field, SQLModel

from jobstore.dialect import where_false
from jobstore.types import SafeJSON, UTCDateTime

# Named constraints so SQLite batch migrations can drop/alter them.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata: MetaData = SQLModel.metadata


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


def _ts(nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable))


def _json() -> Any:
    return Field(default_factory=dict, sa_column=Column(SafeJSON(), nullable=False))


class Job(SQLModel, table=True):
    __tablename__ = "job"
    __table_args__ = (
        Index("ix_job_state_lease", "state", "lease_expires_at"),
        Index("ix_job_created_id", "created_at", "id"),
        Index("ix_job_state_priority_queued", "state", "priority", "queued_at"),
        # the jobs list filtered by state or by parent (a job's forks, in every status), newest first
        Index("ix_job_state_created", "state", "created_at", "id"),
        Index("ix_job_parent_created", "parent_job_id", "created_at", "id"),
        UniqueConstraint("owner", "idempotency_key", name="uq_job_owner_idempotency_key"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    name: str = Field(max_length=200)
    spec: dict[str, Any] = _json()  # jobstore.spec.JobSpec, as JSON
    state: str = Field(default="queued", max_length=32)
    state_reason: str = Field(default="", max_length=2000)
    priority: int = 0
    owner: str = Field(default="", max_length=64)  # api key id that submitted it ("" if auth off)
    idempotency_key: str | None = Field(default=None, max_length=255)
    request_hash: str | None = Field(default=None, max_length=64)
    parent_job_id: str | None = Field(default=None, foreign_key="job.id", max_length=32)
    fork_from: dict[str, Any] = _json()  # {"job": id, "checkpoint": "...", "overrides": {...}}

    # position
    stage: int = 1
    stage_since_epoch: int = 0
    stage_reason: str = Field(default="", max_length=2000)
    epoch: int = 0  # last completed epoch
    epochs: int = 0  # budget
    best_f1: float | None = None
    best_epoch: int | None = None
    latest_metrics: dict[str, Any] = _json()
    gate: dict[str, Any] = _json()  # the pending gate decision, when awaiting_decision

    # attempts, leases, budgets
    attempt: int = 1  # fencing token (attempt numbers start at 1): every worker write matches it
    lease_owner: str | None = Field(default=None, max_length=255)
    lease_expires_at: datetime | None = _ts()
    heartbeat_at: datetime | None = _ts()
    progress_at: datetime | None = _ts()
    queued_at: datetime | None = _ts()  # when it last entered queued (queue order: priority, then this)
    dispatched_at: datetime | None = _ts()  # when the last task message was decided (committed, then sent)
    dispatch_count: int = 0  # messages sent for the current attempt (the re-dispatch backoff doubles)
    infra_retries: int = 0  # interruptions re-queued so far (worker lost, shutdown)
    # {"from": "last|best|stage:N|epoch:N", "checkpoint": path|None, "epoch", "stage", "batch",
    #  "overrides": {...}, "actor", "reason"}; {} for a fresh start
    resume_from: dict[str, Any] = _json()
    last_checkpoint: str | None = Field(default=None, max_length=1024)
    best_checkpoint: str | None = Field(default=None, max_length=1024)
    onnx_path: str | None = Field(default=None, max_length=1024)
    run_dir: str | None = Field(default=None, max_length=1024)
    # what the finished run produced beyond its checkpoints: {"evaluation": the before/after summary}
    result: dict[str, Any] = _json()

    event_seq: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    started_at: datetime | None = _ts()
    finished_at: datetime | None = _ts()
    deleted_at: datetime | None = _ts()  # DELETE /jobs/{id}: run folder removed, the row kept (tombstone)


class Attempt(SQLModel, table=True):
    """One run of a job by one worker process."""

    __tablename__ = "attempt"
    # The reaper's queue view reads the latest claim and the latest end of any attempt
    # (``repo.workers.queue_view``): an index each makes both a lookup, not a scan of every attempt.
    __table_args__ = (
        Index("ix_attempt_started_at", "started_at"),
        Index("ix_attempt_ended_at", "ended_at"),
    )

    job_id: str = Field(foreign_key="job.id", primary_key=True, max_length=32)
    number: int = Field(primary_key=True)
    worker: str = Field(default="", max_length=255)
    pid: int | None = None
    gpu: str | None = Field(default=None, max_length=64)
    started_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    ended_at: datetime | None = _ts()
    outcome: str | None = Field(default=None, max_length=32)
    reason: str = Field(default="", max_length=2000)
    resumed_from: str | None = Field(default=None, max_length=1024)
    restored_epoch: int | None = None
    restored_stage: int | None = None
    restored_batch: int | None = None
    restored_at: datetime | None = _ts()


class EpochMetric(SQLModel, table=True):
    """One row per (job, epoch) among live rows; rows past a restored checkpoint get superseded."""

    __tablename__ = "epoch_metric"
    __table_args__ = (
        Index(
            "uq_epoch_metric_live",
            "job_id",
            "epoch",
            unique=True,
            **where_false("superseded"),
        ),
        # a job's rows in the order every read wants them (epoch, live row first): no sort
        Index("ix_epoch_metric_job_epoch", "job_id", "epoch", "superseded", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(foreign_key="job.id", max_length=32)  # indexed by ix_epoch_metric_job_epoch
    epoch: int
    attempt: int
    stage: int
    superseded: bool = False
    superseded_at: datetime | None = _ts()
    train_loss: float | None = None
    val_loss: float | None = None
    val_f1: float | None = None
    val_precision: float | None = None
    val_recall: float | None = None
    val_accuracy: float | None = None
    fisher_ratio: float | None = None
    train_f1: float | None = None
    lrs: dict[str, Any] = _json()
    trainable_params: int | None = None
    epoch_seconds: float | None = None
    samples_per_sec: float | None = None
    extra: dict[str, Any] = _json()
    recorded_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class JobEvent(SQLModel, table=True):
    """Audit log: state changes, stage transitions, gate checks, operator commands, resumes."""

    __tablename__ = "job_event"
    __table_args__ = (UniqueConstraint("job_id", "seq", name="uq_job_event_job_id_seq"),)

    id: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(foreign_key="job.id", max_length=32)  # indexed by the unique constraint
    seq: int  # from Job.event_seq, bumped in the same transaction
    kind: str = Field(max_length=32)  # jobstore.events.EventKind
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    actor: str = Field(default="system", max_length=255)
    reason: str = Field(default="", max_length=2000)
    attempt: int | None = None
    epoch: int | None = None
    stage: int | None = None
    from_state: str | None = Field(default=None, max_length=32)
    to_state: str | None = Field(default=None, max_length=32)
    from_stage: int | None = None
    to_stage: int | None = None
    command_id: str | None = Field(default=None, max_length=32)
    evidence: dict[str, Any] = _json()


class Command(SQLModel, table=True):
    """An operator command for a running job, applied by the worker at its next safe point."""

    __tablename__ = "command"
    __table_args__ = (UniqueConstraint("job_id", "command_key", name="uq_command_job_id_command_key"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    job_id: str = Field(foreign_key="job.id", max_length=32)  # indexed by the unique constraint
    kind: str = Field(max_length=32)  # jobstore.kinds.CommandKind
    params: dict[str, Any] = _json()
    actor: str = Field(default="operator", max_length=255)
    reason: str = Field(default="", max_length=2000)
    command_key: str | None = Field(default=None, max_length=255)  # client idempotency key
    status: str = Field(default="pending", max_length=32)  # jobstore.kinds.CommandStatus
    result: dict[str, Any] = _json()
    requested_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    delivered_at: datetime | None = _ts()
    applied_at: datetime | None = _ts()
    applied_epoch: int | None = None


class CheckpointRecord(SQLModel, table=True):
    """A checkpoint file a worker wrote; upserted by path (``last.pt`` is rewritten every epoch)."""

    __tablename__ = "checkpoint"
    __table_args__ = (UniqueConstraint("job_id", "path", name="uq_checkpoint_job_id_path"),)

    id: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(foreign_key="job.id", max_length=32)  # indexed by the unique constraint
    kind: str = Field(max_length=32)  # jobstore.kinds.CheckpointKind
    path: str = Field(max_length=1024)  # relative to the runs root
    epoch: int
    stage: int
    batch: int = 0
    attempt: int
    val_f1: float | None = None
    size_bytes: int = Field(default=0, sa_type=BigInteger)
    sha256: str | None = Field(default=None, max_length=64)
    superseded: bool = False  # from a timeline abandoned by a resume to an earlier checkpoint
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    pruned_at: datetime | None = _ts()  # its file was removed (retention, or the job deleted)


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_key"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    name: str = Field(max_length=200)
    role: str = Field(max_length=16)  # viewer | operator | admin
    prefix: str = Field(max_length=16, index=True)  # first characters of the key, for lookup/display
    key_hash: str = Field(max_length=128)  # sha256 hex of the whole key; the key itself is never stored
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    revoked_at: datetime | None = _ts()
    last_used_at: datetime | None = _ts()


class RevokedSession(SQLModel, table=True):
    """A dashboard session signed out before it expired, by its cookie's nonce: refused until then."""

    __tablename__ = "revoked_session"

    nonce: str = Field(primary_key=True, max_length=64)
    key_id: str = Field(max_length=32)
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class Upload(SQLModel, table=True):
    """A model checkpoint or dataset uploaded over HTTP (issue: uploads)."""

    __tablename__ = "upload"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    kind: str = Field(max_length=16)  # model | dataset
    filename: str = Field(max_length=255)
    path: str = Field(max_length=1024)  # relative to the model or data root
    sha256: str = Field(max_length=64, index=True)
    size_bytes: int = Field(sa_type=BigInteger)
    owner: str = Field(default="", max_length=64)
    meta: dict[str, Any] = _json()
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class WorkerPresence(SQLModel, table=True):
    """A worker as last seen alive (its companion beats for it), or a supervisor's note about one.

    ``role`` "worker": ``name`` is the Celery node (``cpu@host``, ``gpu0@host``; a job's
    ``lease_owner``), ``seen_at`` renewed every ``heartbeat_seconds`` while its main process lives.
    ``role`` "supervisor": ``ocec-jobs up`` (``up@host``) says why it stopped restarting its worker.
    """

    __tablename__ = "worker_presence"

    name: str = Field(primary_key=True, max_length=255)
    role: str = Field(default="worker", max_length=32)  # jobstore.repo.workers.PresenceRole
    pid: int | None = None
    started_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    seen_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    stopped_at: datetime | None = _ts()
    reason: str = Field(default="", max_length=2000)


class Notification(SQLModel, table=True):
    """Outbox: a webhook notification, written in the transaction of the event it tells
    (``jobstore.repo.notifications``). The notifier fans it out to deliveries, one per URL."""

    __tablename__ = "notification"
    __table_args__ = (Index("ix_notification_fanned_out", "fanned_out"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)  # the receivers' idempotency key
    job_id: str = Field(foreign_key="job.id", index=True, max_length=32)
    seq: int  # the job_event it tells
    kind: str = Field(max_length=32)  # jobstore.notify.events.NotifyType
    payload: dict[str, Any] = _json()
    fanned_out: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class NotificationDelivery(SQLModel, table=True):
    """One notification to one URL: its attempts (``log``, capped), the outcome and the next try."""

    __tablename__ = "notification_delivery"
    __table_args__ = (
        Index("ix_notification_delivery_due", "status", "next_try_at"),
        Index("ix_notification_delivery_job", "job_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    notification_id: str = Field(foreign_key="notification.id", max_length=32)
    job_id: str = Field(foreign_key="job.id", max_length=32)
    kind: str = Field(max_length=32)
    url: str = Field(max_length=2048)
    scope: str = Field(max_length=16)  # jobstore.repo.notifications.Scope: whose secret signs it
    status: str = Field(default="pending", max_length=16)  # jobstore.repo.notifications.DeliveryStatus
    attempts: int = 0
    next_try_at: datetime | None = _ts()  # null once delivered or failed
    last_status_code: int | None = None
    last_error: str = Field(default="", max_length=500)
    # [{"at", "status_code", "error", "response"}] one entry per attempt (at most notify_max_attempts)
    log: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(SafeJSON(), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    delivered_at: datetime | None = _ts()


class Evaluation(SQLModel, table=True):
    """A model scored on a dataset by a worker (``POST /evaluations``; jobstore.repo.evaluations).

    ``model_root`` says which configured root ``model_path`` is relative to: ``model`` (a file under
    the model root, an uploaded model) or ``runs`` (a job's artifact). The report is stored whole
    (tens of KB: curves and the threshold sweep); its images stay in ``out_dir`` under the runs root.
    """

    __tablename__ = "evaluation"
    __table_args__ = (Index("ix_evaluation_created_id", "created_at", "id"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    name: str = Field(default="", max_length=200)
    state: str = Field(default="queued", max_length=32)  # jobstore.repo.evaluations.EvaluationState
    state_reason: str = Field(default="", max_length=2000)
    owner: str = Field(default="", max_length=64)
    source: dict[str, Any] = _json()  # what the client named: {"model": {...}, "data": {...}}
    model_root: str = Field(max_length=16)  # model | runs
    model_path: str = Field(max_length=1024)
    data_path: str = Field(max_length=1024)  # relative to the data root
    split: str = Field(default="all", max_length=16)
    threshold_rule: str = Field(default="f1", max_length=32)
    threshold_target: float | None = None
    top_k: int = 16
    out_dir: str = Field(default="", max_length=1024)  # relative to the runs root
    progress: dict[str, Any] = _json()  # {"done": n, "total": m}
    report: dict[str, Any] = _json()  # report.json (schema 1) once succeeded
    worker: str = Field(default="", max_length=255)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    started_at: datetime | None = _ts()
    finished_at: datetime | None = _ts()
    # Not lost (jobstore.evaluation_reaper): ``attempt`` is the fencing token of the run that holds it;
    # its worker renews ``lease_expires_at``; a lost one is re-queued, a lost message sent again.
    attempt: int = 1
    pid: int | None = None  # the pool child running the current attempt
    heartbeat_at: datetime | None = _ts()
    lease_expires_at: datetime | None = _ts()
    dispatched_at: datetime | None = _ts()  # when the last message was decided (None: never sent)
    dispatch_count: int = 0
    lost: list[dict[str, Any]] = Field(  # the workers lost so far: [{"attempt", "worker", "pid", "why"}]
        default_factory=list, sa_column=Column(SafeJSON(), nullable=False)
    )


class Race(SQLModel, table=True):
    """A race of stage-2 recipes (docs/race.md): its parent job runs stage 1 once, then one child job
    per candidate; ``jobstore.race_service`` cuts the bottom ones at each rung and names the winner.
    Every change locks the parent job's row first (``jobstore.repo.races``)."""

    __tablename__ = "race"

    job_id: str = Field(foreign_key="job.id", primary_key=True, max_length=32)  # the parent (stage 1)
    state: str = Field(default="stage1", max_length=32)  # jobstore.repo.races.RaceState
    plan: dict[str, Any] = _json()  # {"race": RaceSpec, "spec": the candidates' JobSpec, "stage1_epochs"}
    # [{"name", "stage2", "full_finetune", "job_id", "status", "protected", "reason", "actor"}]
    candidates: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(SafeJSON(), nullable=False)
    )
    rungs: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(SafeJSON(), nullable=False))
    next_rung: int = 0  # index into plan["race"]["rungs"] of the next rung to decide
    winner: str | None = Field(default=None, max_length=40)
    reason: str = Field(default="", max_length=2000)
    sample_epochs: int = Field(default=0, sa_type=BigInteger)  # used so far (stage 1 counted once)
    keys: dict[str, Any] = _json()  # operator commands by Idempotency-Key: {key: {"kind", "hash", "seq"}}
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    finished_at: datetime | None = _ts()

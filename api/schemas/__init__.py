"""Request and response shapes of the HTTP API, one module per noun; every name is re-exported here,
so ``from api.schemas import JobStatus`` works.

- ``common``: shared field types (checkpoint selector, reasons, cursors) and base classes;
- ``jobs``: a job, its status (gate, baseline, restore, forks) and the list page;
- ``control``: force a stage, pause, cancel, resume, fork (``StageOverrides``), commands;
- ``decide``: the gate decision body;
- ``races``: a race's status (leaderboard, budget, winner) and its operator commands;
- ``metrics``, ``events``, ``checkpoints``, ``uploads``, ``health``, ``notifications``: what their
  routes answer.

The POST /jobs body is ``jobstore.spec.JobCreate`` itself.
"""

from api.schemas.checkpoints import CheckpointPublic
from api.schemas.common import (
    CHECKPOINT_REF,
    CURSOR_MAX,
    CheckpointRef,
    CommandKey,
    Epochs,
    Reason,
    RequiredReason,
    StageNumber,
)
from api.schemas.control import (
    OVERRIDE_FIELDS,
    CommandPublic,
    ControlRequest,
    ControlResult,
    ForkRequest,
    ResumeRequest,
    StageOverrides,
    StageRequest,
)
from api.schemas.decide import DECISION_FIELDS, DecideRequest
from api.schemas.evaluations import EvaluationCreate, EvaluationPublic, EvaluationsPage, JobEvaluation
from api.schemas.events import EventPublic, EventsPage
from api.schemas.health import HealthStatus
from api.schemas.jobs import (
    BaselineStatus,
    ForkSummary,
    GateStatus,
    JobLinks,
    JobPublic,
    JobsPage,
    JobStatus,
    RestoreStatus,
)
from api.schemas.metrics import MetricPublic, MetricsPage
from api.schemas.notifications import DeliveryAttempt, NotificationPublic, NotificationsPage
from api.schemas.races import (
    RaceAddRequest,
    RaceCandidateRequest,
    RaceCommandRequest,
    RaceStatus,
    RaceSummary,
)
from api.schemas.uploads import UploadPublic, UploadsPage

__all__ = [
    "CHECKPOINT_REF",
    "CURSOR_MAX",
    "DECISION_FIELDS",
    "OVERRIDE_FIELDS",
    "BaselineStatus",
    "CheckpointPublic",
    "CheckpointRef",
    "CommandKey",
    "CommandPublic",
    "ControlRequest",
    "ControlResult",
    "DecideRequest",
    "DeliveryAttempt",
    "Epochs",
    "EvaluationCreate",
    "EvaluationPublic",
    "EvaluationsPage",
    "EventPublic",
    "EventsPage",
    "ForkRequest",
    "ForkSummary",
    "GateStatus",
    "HealthStatus",
    "JobEvaluation",
    "JobLinks",
    "JobPublic",
    "JobStatus",
    "JobsPage",
    "MetricPublic",
    "MetricsPage",
    "NotificationPublic",
    "NotificationsPage",
    "RaceAddRequest",
    "RaceCandidateRequest",
    "RaceCommandRequest",
    "RaceStatus",
    "RaceSummary",
    "Reason",
    "RequiredReason",
    "RestoreStatus",
    "ResumeRequest",
    "StageNumber",
    "StageOverrides",
    "StageRequest",
    "UploadPublic",
    "UploadsPage",
]

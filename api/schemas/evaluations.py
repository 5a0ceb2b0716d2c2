"""What the evaluation routes take and answer: ``POST /evaluations``, an evaluation, the list page,
and a fine-tune job's own before/after evaluation (``GET /jobs/{id}/evaluation``)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, Field

from api.schemas.common import _Request
from jobstore.repo.evaluations import EvaluationState
from jobstore.spec import SafeText

HEX_ID = r"^[0-9a-f]{32}$"
ARTIFACT = r"^(best|last|onnx|stage:[1-3]|epoch:[0-9]{1,5})$"
UploadId = Annotated[str, Field(pattern=HEX_ID, description="an upload's id (POST /models, /datasets)")]
RootPath = Annotated[SafeText, Field(min_length=1, max_length=1024)]


class Split(StrEnum):
    VAL = "val"
    TEST = "test"
    ALL = "all"


class ThresholdRule(StrEnum):
    FIXED = "fixed"  # target is the threshold itself
    F1 = "f1"  # the F1-optimal threshold; no target
    PRECISION_CLOSED = "precision_closed"  # the threshold reaching this precision for "closed"
    RECALL_CLOSED = "recall_closed"  # the threshold reaching this recall for "closed"


class ModelSource(_Request):
    """Exactly one of ``upload``, ``path`` or ``job`` (with ``artifact``)."""

    upload: UploadId | None = None
    path: RootPath | None = Field(default=None, description="a file under the server's model root")
    job: str | None = Field(default=None, pattern=HEX_ID, description="a job whose artifact to score")
    artifact: str = Field(
        default="best", pattern=ARTIFACT, description="with job: best | last | onnx | stage:N | epoch:N"
    )


class DataSource(_Request):
    """Exactly one of ``upload`` or ``path``."""

    upload: UploadId | None = None
    path: RootPath | None = Field(default=None, description="a dataset folder under the server's data root")


class ThresholdChoice(_Request):
    rule: ThresholdRule = ThresholdRule.F1
    target: float | None = Field(
        default=None, ge=0, le=1, description="fixed: the threshold; precision/recall_closed: the target"
    )


class EvaluationCreate(_Request):
    name: SafeText = Field(default="", max_length=200)
    model: ModelSource
    data: DataSource
    split: Split = Split.ALL
    threshold: ThresholdChoice = Field(default_factory=ThresholdChoice)
    top_k: int = Field(default=16, ge=0, le=64, description="how many confidently wrong crops to keep")


class EvaluationLinks(BaseModel):
    self: str
    worst_png: str
    roc_png: str
    pr_png: str


class EvaluationPublic(BaseModel):
    id: str
    name: str
    state: EvaluationState
    state_reason: str = Field(description="why it failed, or why it was re-queued (its worker was lost)")
    attempt: int = Field(description="1, plus one for each re-queue after a lost worker")
    lost: list[dict[str, Any]] = Field(
        default_factory=list, description='workers lost so far: [{"attempt", "worker", "pid", "why"}]'
    )
    source: dict[str, Any] = Field(description="the model and data as the request named them")
    model_path: str = Field(description="relative to the root named by model_root")
    model_root: str = Field(description="model | runs")
    data_path: str = Field(description="relative to the data root")
    split: Split
    threshold: ThresholdChoice
    top_k: int
    progress: dict[str, int] = Field(description='{"done": images scored, "total": images}')
    summary: dict[str, Any] | None = Field(description="headline numbers of the report, once succeeded")
    report: dict[str, Any] | None = Field(
        default=None, description="the whole report (schema 1; docs/evaluation.md), on GET /evaluations/{id}"
    )
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    links: EvaluationLinks


class EvaluationsPage(BaseModel):
    data: list[EvaluationPublic]
    next_cursor: str | None


class JobEvaluation(BaseModel):
    """A fine-tune job's own evaluation: the before → after summary and each tag's report."""

    job_id: str
    summary: dict[str, Any] | None = Field(
        description="the job result's evaluation table (split, threshold, table, forgetting)"
    )
    reports: dict[str, dict[str, Any]] = Field(description="tag (before_B, after_B, ...) → report")

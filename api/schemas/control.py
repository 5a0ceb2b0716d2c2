"""Operator control: force a stage, pause, cancel, resume, fork (``api.routes.control``).

The control bodies reuse the job spec's field types, so a resume or fork is validated by the same
bounds as a submission."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, create_model

from api.schemas.common import (
    CheckpointRef,
    CommandKey,
    Epochs,
    Reason,
    RequiredReason,
    StageNumber,
    _Public,
    _Request,
)
from api.schemas.jobs import JobPublic
from jobstore.spec import JobName, LearningRate, StageGateSpec, optional_fields

OVERRIDE_FIELDS = {"stage", "lr", "epochs", "unfreeze_backbone_epoch", "stage2"}


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

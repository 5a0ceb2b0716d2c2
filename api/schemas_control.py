"""Shapes of the stage-steering API: the gate decision body, and what the status says about forks,
restores and a pending decision (``api.schemas`` holds the rest)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from jobstore.repo.decisions import DecisionAction
from jobstore.spec import MAX_EPOCHS, LearningRate
from jobstore.text import check_safe

# Reasons go into the audit trail and are shown by the CLI and dashboard: no control or bidi
# characters (jobstore.text), so one line stays one line.
Reason = Annotated[str, Field(max_length=2000), AfterValidator(check_safe)]
RequiredReason = Annotated[
    str, Field(min_length=1, max_length=2000, pattern=r"\S"), AfterValidator(check_safe)
]

# Which extra field each decision takes (and no other decision may send).
DECISION_FIELDS = {DecisionAction.EXTEND: "epochs", DecisionAction.RETRY: "lr"}


class DecideRequest(BaseModel):
    """POST /jobs/{id}/decide: what to do about a failed gate of an ``awaiting_decision`` job."""

    model_config = ConfigDict(extra="forbid")

    action: DecisionAction = Field(
        description="proceed: enter the next stage now; extend: train the current stage `epochs` more "
        "epochs, then read the gate again; retry: restart the current stage from its entry checkpoint "
        "at `lr`; stop: end the job (succeeded) with the best model exported"
    )
    epochs: Annotated[int, Field(ge=1, le=MAX_EPOCHS)] | None = Field(
        default=None, description="extend only: more epochs before the gate is read again"
    )
    lr: LearningRate | None = Field(default=None, description="retry only: the lr the stage restarts with")
    reason: RequiredReason

    @model_validator(mode="after")
    def _fields_fit_the_action(self) -> DecideRequest:
        for action, name in DECISION_FIELDS.items():
            given = getattr(self, name) is not None
            if self.action is action and not given:
                raise ValueError(f"{name} is required for {action.value}")
            if self.action is not action and given:
                raise ValueError(f"{name} is only for {action.value}, not {self.action.value}")
        return self


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

"""The gate decision body of ``POST /jobs/{id}/decide``."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.schemas.common import RequiredReason
from jobstore.repo.decisions import DecisionAction
from jobstore.spec import MAX_EPOCHS, LearningRate

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

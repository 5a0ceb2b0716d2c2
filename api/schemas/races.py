"""A race of stage-2 recipes (``api.routes.races``): its status and the operator's command bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from api.schemas.common import Reason, _Request
from jobstore.repo.races import RaceState
from jobstore.spec import CandidateName, RaceCandidate


class RaceBudget(BaseModel):
    used_sample_epochs: int
    total_sample_epochs: int | None = Field(description="null: no budget")


class RaceEntry(BaseModel):
    """One candidate on the leaderboard (the winner first, then by best val F1)."""

    candidate: str
    job_id: str | None = Field(description="its child job; null while it waits for stage 1")
    status: str = Field(description="waiting | running | finished | cut | failed | winner")
    full_finetune: bool
    stage2: dict[str, Any]
    protected: bool = Field(description="extended by an operator: survives the next rung")
    reason: str
    state: str | None
    epoch: int | None
    val_f1: float | None
    best_f1: float | None
    best_epoch: int | None
    retention_f1: float | None = Field(
        default=None, description="F1 of its best model on the source domain A; null: not evaluated"
    )


RACE_STATES = " | ".join(RaceState)  # for the descriptions: the race's states, named once


class RaceSummary(BaseModel):
    """What a race's parent job is part of: its own state covers the shared stage 1 only."""

    state: str = Field(description=RACE_STATES)
    winner: str | None = Field(description="the winning candidate's name, once there is one")
    reason: str = Field(description="why the winner won (or why there is none)")
    link: str = Field(description="the race's full status: leaderboard, rungs, budget")


class RaceStatus(BaseModel):
    job_id: str = Field(description="the parent job: it ran stage 1 and holds the result")
    state: str = Field(description=RACE_STATES)
    winner: str | None
    reason: str = Field(description="why the winner won (or why there is none)")
    budget: RaceBudget
    rungs: list[int]
    keep_fraction: float
    retention_floor: float | None
    next_rung: int | None
    decisions: list[dict[str, Any]] = Field(description="each rung's kept, cut and numbers")
    leaderboard: list[RaceEntry]
    stage1_epochs: int
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


class RaceCommandRequest(_Request):
    """Body of /race/stop (optional)."""

    reason: Reason = ""


class RaceCandidateRequest(_Request):
    """Body of /race/promote and /race/extend."""

    candidate: CandidateName
    reason: Reason = ""


class RaceAddRequest(RaceCandidate):
    """Body of /race/candidates: a new candidate (a stage-2 plan or a full fine-tune) and why."""

    reason: Reason = ""

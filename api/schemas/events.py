"""A job's audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from api.schemas.common import _Public


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

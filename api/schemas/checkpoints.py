"""A job's checkpoints."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from api.schemas.common import _Public


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
    pruned_at: datetime | None = Field(
        default=None, description="when its file was removed (retention policy, or the job deleted)"
    )
    download: str | None = None

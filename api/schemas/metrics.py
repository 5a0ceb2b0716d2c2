"""A job's per-epoch metrics."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from api.schemas.common import _Public


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

"""Plain records the worker hands to the repository, mirroring ``ocec_engine.hooks`` field for field.

jobstore may not import the engine, so these repeat its payload shapes; the worker converts with
``worker.hooks.record_of`` (a field a record lacks is an error, not dropped), and
tests/worker/test_mirrors.py fails when the two sides differ. Enum values arrive as the engine's
``StrEnum`` members and are stored as strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class EpochRow:
    """One epoch's metrics (``ocec_engine.hooks.EpochMetrics``)."""

    epoch: int
    stage: int
    train_loss: float | None = None
    val_loss: float | None = None
    val_f1: float | None = None
    val_precision: float | None = None
    val_recall: float | None = None
    val_accuracy: float | None = None
    fisher_ratio: float | None = None
    lrs: dict[str, float] = field(default_factory=dict)
    trainable_params: int | None = None
    epoch_seconds: float | None = None
    samples_per_sec: float | None = None
    train_f1: float | None = None
    is_best: bool = False  # the engine's view; jobstore derives the job's best from live rows
    best_f1: float = 0.0
    best_epoch: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def columns(self) -> dict[str, Any]:
        """The values stored in ``epoch_metric`` (the engine's best-tracking fields are not)."""
        return {
            "epoch": self.epoch,
            "stage": self.stage,
            "train_loss": self.train_loss,
            "val_loss": self.val_loss,
            "val_f1": self.val_f1,
            "val_precision": self.val_precision,
            "val_recall": self.val_recall,
            "val_accuracy": self.val_accuracy,
            "fisher_ratio": self.fisher_ratio,
            "train_f1": self.train_f1,
            "lrs": dict(self.lrs),
            "trainable_params": self.trainable_params,
            "epoch_seconds": self.epoch_seconds,
            "samples_per_sec": self.samples_per_sec,
            "extra": dict(self.extra),
        }


@dataclass(frozen=True)
class StageChange:
    """A stage transition applied at an epoch boundary (``ocec_engine.hooks.StageEvent``)."""

    from_stage: int | None
    to_stage: int
    epoch: int  # first epoch trained in the new stage
    trigger: str  # start | gate | policy | forced | resume
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)
    lrs: dict[str, float] = field(default_factory=dict)
    unfrozen: list[str] = field(default_factory=list)
    trainable_params: int = 0
    command_id: str | None = None
    actor: str | None = None  # the operator for a forced stage; None: the worker


@dataclass(frozen=True)
class GateCheckRow:
    """A stage gate read (``ocec_engine.hooks.GateCheck``)."""

    epoch: int
    stage: int  # the stage the gate leads into
    f1: float | None
    threshold: float
    passed: bool
    policy: str
    action: str  # enter | wait | proceed | pause | stop
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "stage": self.stage,
            "f1": self.f1,
            "threshold": self.threshold,
            "passed": self.passed,
            "policy": str(self.policy),
            "action": str(self.action),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class CheckpointRow:
    """A checkpoint file written (``ocec_engine.hooks.CheckpointInfo``); path relative to runs_root."""

    path: str
    kind: str  # jobstore.kinds.CheckpointKind value
    epoch: int
    stage: int
    val_f1: float | None = None
    size_bytes: int = 0
    batch: int = 0
    sha256: str | None = None

"""Everything a run carries between epochs, and its checkpoint form (docs/engine.md, "Checkpoints")."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ocec_engine import rng
from ocec_engine.checkpoint import FORMAT_VERSION, LABEL_MAP
from ocec_engine.config import TrainConfig
from ocec_engine.metrics import BinaryCounts, LossMeter
from ocec_engine.model import ModelConfig
from ocec_engine.normalize import MEAN, STD
from ocec_engine.optim import LrSchedule, group_of, saved_groups
from ocec_engine.stages import StagePlan, StageState, trainability_fingerprint


@dataclass
class Partial:
    """A started epoch: where it stopped and what it accumulated (INTERRUPT checkpoints)."""

    epoch: int
    batch: int = 0  # batches done
    loss: LossMeter = field(default_factory=LossMeter)
    counts: BinaryCounts = field(default_factory=BinaryCounts)
    seconds: float = 0.0
    skipped_steps: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "batch": self.batch,
            "loss_total": self.loss.total,
            "loss_count": self.loss.count,
            "counts": self.counts.to_dict(),
            "seconds": self.seconds,
            "skipped_steps": self.skipped_steps,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Partial:
        return cls(
            epoch=int(data["epoch"]),
            batch=int(data["batch"]),
            loss=LossMeter(float(data["loss_total"]), int(data["loss_count"])),
            counts=BinaryCounts.from_dict(data["counts"]),
            seconds=float(data.get("seconds", 0.0)),
            skipped_steps=int(data.get("skipped_steps", 0)),
        )


@dataclass
class RunState:
    config: TrainConfig
    model_config: ModelConfig
    model: nn.Module
    plan: StagePlan
    stage: StageState
    optimizer: torch.optim.Optimizer
    schedule: LrSchedule
    scaler: torch.amp.GradScaler | None
    completed: int = 0  # last completed epoch
    history: list[dict[str, Any]] = field(default_factory=list)
    best_f1: float | None = None
    best_epoch: int = 0
    best_loss: float | None = None  # val loss of the best epoch (breaks F1 ties: lower wins)
    initial_val: dict[str, Any] | None = None  # evaluation of the starting weights (epoch 0): the baseline
    # what resumes changed: [{"epoch": first epoch under the change, "checkpoint": path, "changes": {...}}]
    setting_changes: list[dict[str, Any]] = field(default_factory=list)
    partial: Partial | None = None
    data_fingerprint: str = ""
    augmentation: dict[str, Any] = field(default_factory=dict)

    @property
    def last_val(self) -> dict[str, Any] | None:
        """Val metrics of the current weights: the last epoch, else the start-of-run evaluation."""
        if self.history:
            row = self.history[-1]
            return {
                "loss": row["val_loss"],
                "f1": row["val_f1"],
                "precision": row["val_precision"],
                "recall": row["val_recall"],
                "accuracy": row["val_accuracy"],
                "fisher_ratio": row["fisher_ratio"],
            }
        return self.initial_val

    def improves(self, f1: float, loss: float) -> bool:
        """Whether an epoch with val ``f1`` / ``loss`` is the new best: higher F1, or equal F1 and
        lower val loss."""
        return is_better(f1, loss, self.best_f1, self.best_loss)

    def beats_baseline(self) -> bool | None:
        """Whether the best epoch beats the starting weights (None: no baseline or no epoch yet)."""
        base = self.initial_val
        if base is None or self.best_f1 is None or self.best_loss is None:
            return None
        return is_better(self.best_f1, self.best_loss, float(base["f1"]), float(base["loss"]))

    @property
    def last_f1(self) -> float | None:
        val = self.last_val
        return None if val is None else float(val["f1"])

    def groups(self) -> dict[str, list[str]]:
        return saved_groups({"param_groups": self.optimizer.param_groups})

    def fingerprint(self) -> str:
        return trainability_fingerprint(self.model, group_of(self.groups()))

    def to_checkpoint(self) -> dict[str, Any]:
        """The full state as plain data + tensors; a superset of OCEC's checkpoint keys."""
        last = self.history[-1] if self.history else None
        return {
            "format_version": FORMAT_VERSION,
            "engine": "ocec_engine",
            # --- OCEC's keys ---
            "model_state": {k: _portable(v) for k, v in self.model.state_dict().items()},
            "model_config": self.model_config.to_dict(),
            "normalization": {
                "mean": list(MEAN),
                "std": list(STD),
                "image_size": list(self.model_config.image_size),
            },
            "label_map": dict(LABEL_MAP),
            "train_config": self.config.to_dict(),
            "epoch": self.completed,
            "optimizer_state": _to_cpu(self.optimizer.state_dict()),
            "scheduler_state": self.schedule.state_dict(),
            "scaler_state": self.scaler.state_dict() if self.scaler is not None else None,
            "train_metrics": _train_metrics(last),
            "val_metrics": self.last_val,
            "amp_enabled": self.scaler is not None,
            # --- ours ---
            "stage_state": self.stage.to_dict(),
            "plan": self.plan.describe(),
            "trainability": self.fingerprint(),
            "history": [dict(row) for row in self.history],
            "best": {"f1": self.best_f1, "epoch": self.best_epoch, "val_loss": self.best_loss},
            "setting_changes": [dict(c) for c in self.setting_changes],
            "initial_val": self.initial_val,
            "rng": rng.capture(),
            "position": self.partial.to_dict() if self.partial else {"epoch": self.completed + 1, "batch": 0},
            "augmentation": self.augmentation,
            "data_fingerprint": self.data_fingerprint,
        }


def is_better(f1: float, loss: float, best_f1: float | None, best_loss: float | None) -> bool:
    """Higher val F1 wins; at equal F1 the lower val loss (a NaN loss never wins a tie)."""
    if best_f1 is None:
        return True
    if f1 != best_f1:
        return f1 > best_f1
    return best_loss is None or loss < best_loss


def _train_metrics(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {"loss": row["train_loss"], "f1": row.get("train_f1")}


def _portable(t: torch.Tensor) -> torch.Tensor:
    """A CPU copy in the default (contiguous) layout, whatever layout training used."""
    return t.detach().to("cpu", memory_format=torch.contiguous_format, copy=True)


def _to_cpu(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return _portable(value)
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_cpu(v) for v in value]
    return value

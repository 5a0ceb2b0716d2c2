"""Helpers for the training-loop tests: a recording hooks object with scripted commands, and configs.

(Not a conftest: engine-core owns tests/ocec_engine/conftest.py, whose ``tiny_parquet`` fixture
these tests use for data.)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ocec_engine.config import AugmentPolicy, DeviceChoice, MarginMethod, StageGateConfig, TrainConfig
from ocec_engine.hooks import (
    CheckpointInfo,
    Command,
    CommandKind,
    CommandResult,
    EpochMetrics,
    GateCheck,
    NullHooks,
    RunInfo,
    StageEvent,
    TrainResult,
)

# Metrics that measure time, not training: excluded when comparing two runs.
TIMING_KEYS = {"epoch_seconds", "samples_per_sec"}
TIMING_EXTRA = {"train_seconds", "val_seconds"}


@dataclass
class RecordingHooks(NullHooks):
    """Records every call; ``script`` maps (epoch, batch) -> commands returned by that poll.

    Polls happen at the epoch boundary (batch 0) and after every ``check_every_batches`` batches.
    ``stop_at`` makes ``should_stop`` return a reason at that (epoch, batch).
    """

    script: dict[tuple[int, int], list[Command]] = field(default_factory=dict)
    repeat: bool = False  # re-deliver scripted commands at every later poll too (like an unacked queue)
    stop_at: tuple[int, int] | None = None
    on_epoch: Callable[[EpochMetrics], None] | None = None
    info: RunInfo | None = None
    epochs: list[EpochMetrics] = field(default_factory=list)
    gates: list[GateCheck] = field(default_factory=list)
    events: list[StageEvent] = field(default_factory=list)
    results: list[CommandResult] = field(default_factory=list)
    checkpoints: list[CheckpointInfo] = field(default_factory=list)
    end: TrainResult | None = None
    calls: list[str] = field(default_factory=list)
    position: tuple[int, int] = (1, 0)
    _delivered: list[Command] = field(default_factory=list)

    def on_train_start(self, info: RunInfo) -> None:
        self.info = info
        self.position = (info.start_epoch, info.restored_batch)
        self.calls.append("train_start")

    def on_epoch_end(self, metrics: EpochMetrics) -> None:
        self.epochs.append(metrics)
        self.position = (metrics.epoch + 1, 0)
        self.calls.append(f"epoch_end:{metrics.epoch}")
        if self.on_epoch:
            self.on_epoch(metrics)

    def on_gate_check(self, check: GateCheck) -> None:
        self.gates.append(check)
        self.calls.append(f"gate:{check.epoch}:{check.action}")

    def on_command_result(self, result: CommandResult) -> None:
        self.results.append(result)
        self.calls.append(f"command:{result.command_id}:{result.applied}")

    def on_stage_change(self, event: StageEvent) -> None:
        self.events.append(event)
        self.calls.append(f"stage:{event.from_stage}->{event.to_stage}@{event.epoch}")

    def on_checkpoint(self, info: CheckpointInfo) -> None:
        self.checkpoints.append(info)
        self.calls.append(f"checkpoint:{info.kind.value}:{info.epoch}")

    def on_train_end(self, result: TrainResult) -> None:
        self.end = result
        self.calls.append("train_end")

    def on_batch_end(self, epoch: int, batch: int, batches: int, loss: float) -> None:
        self.position = (epoch, batch)

    def poll_commands(self) -> list[Command]:
        new = self.script.pop(self.position, [])
        self._delivered.extend(new)
        return list(self._delivered) if self.repeat else new

    def should_stop(self) -> str | None:
        return "worker shutdown" if self.stop_at == self.position else None

    def transitions(self) -> list[StageEvent]:
        """Stage events that changed the stage (not the start event, not lr-only events)."""
        return [e for e in self.events if e.from_stage is not None and e.from_stage != e.to_stage]


def force(stage: int, command_id: str = "c1") -> Command:
    return Command(CommandKind.FORCE_STAGE, command_id, {"stage": stage}, actor="tester", reason="test")


def pause(command_id: str = "p1", kind: CommandKind = CommandKind.PAUSE) -> Command:
    return Command(kind, command_id, {}, actor="tester")


def config(data: Path, out: Path, **overrides: Any) -> TrainConfig:
    """A tiny, fast CPU run: 8 channels, 4 blocks, batch 32, no augmentation and no evaluation of its
    own (tests/ocec_engine/evaluation/test_training.py turns it on) unless asked."""
    stage2 = overrides.pop("stage2", None) or StageGateConfig(gate_f1=0.0)
    values: dict[str, Any] = {
        "data_root": str(data),
        "output_dir": str(out),
        "epochs": 4,
        "batch_size": 32,
        "lr": 2e-3,
        "freeze_backbone": True,
        "unfreeze_backbone_epoch": 3,
        "stage2": stage2,
        "margin_method": MarginMethod.COSFACE,
        "device": DeviceChoice.CPU,
        "base_channels": 8,
        "num_blocks": 4,
        "augment": AugmentPolicy.NONE,
        "check_every_batches": 1,
        "seed": 7,
        "evaluate": False,
    }
    values.update(overrides)
    return TrainConfig(**values)


def metric_rows(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """History rows without timing fields, for exact comparisons."""
    rows = []
    for row in history:
        clean = {k: v for k, v in row.items() if k not in TIMING_KEYS}
        clean["extra"] = {k: v for k, v in row.get("extra", {}).items() if k not in TIMING_EXTRA}
        rows.append(clean)
    return rows


def epoch_rows(metrics: list[EpochMetrics]) -> list[dict[str, Any]]:
    from dataclasses import asdict

    return metric_rows([asdict(m) for m in metrics])


def load_state(path: str | Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)  # type: ignore[no-any-return]


def same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> list[str]:
    """Names whose tensors differ in any bit (empty when identical)."""
    assert a.keys() == b.keys()
    return [k for k in a if not torch.equal(a[k], b[k])]


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15)

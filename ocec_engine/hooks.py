"""The hooks protocol: how a training run talks to whoever runs it.

``train(config, hooks)`` calls these at fixed points, Lightning-callback style. The CLI passes console
hooks (progress bar, metrics.jsonl); the job worker passes DB-backed hooks. Every payload is a small
dataclass of plain values, so a hook implementation never needs torch.

Call order in one run::

    on_train_start(RunInfo)                 once, after data, model, pretrain/resume are loaded
    per epoch:
        poll_commands(), should_stop()      at the epoch start and every ``check_every_batches``
        on_command_result(CommandResult)    for each polled command, once applied or refused
        on_gate_check(GateCheck)            whenever a gate is read (passed or not)
        on_stage_change(StageEvent)         when a transition is applied (at an epoch boundary)
        on_checkpoint(CheckpointInfo)       for each file written this epoch (epoch, last, best, stage entry)
        on_epoch_end(EpochMetrics)          after validation and after the checkpoints are on disk
    on_train_end(TrainResult)               once, whatever the outcome (not on an exception)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol


class CommandKind(StrEnum):
    FORCE_STAGE = "force_stage"  # params: {"stage": 2|3}; applied at the next epoch boundary
    PAUSE = "pause"  # checkpoint at the next batch boundary, end as PAUSED
    CANCEL = "cancel"  # checkpoint at the next batch boundary, end as CANCELLED


class Outcome(StrEnum):
    COMPLETED = "completed"  # epoch budget reached
    STOPPED = "stopped"  # gate policy stop / keep-trying deadline passed; best model kept
    PAUSED = "paused"
    CANCELLED = "cancelled"
    AWAITING_DECISION = "awaiting_decision"  # gate failed with policy "pause"
    PREEMPTED = "preempted"  # should_stop() asked us to yield (worker shutdown); resume later


class StageTrigger(StrEnum):
    START = "start"  # the stage the run starts in
    GATE = "gate"  # the gate opened
    POLICY = "policy"  # gate failed, policy "proceed"
    FORCED = "forced"  # operator command
    RESUME = "resume"  # restored from a checkpoint, or overridden at resume


class CheckpointKind(StrEnum):
    LAST = "last"
    BEST = "best"
    STAGE_ENTRY = "stage_entry"  # state at the start of a stage (before its first epoch)
    INTERRUPT = "interrupt"  # mid-epoch state written on pause / cancel / preempt
    EPOCH = "epoch"  # epochs/epoch_NNNN.pt, the state after that epoch (resume selector epoch:N)


@dataclass(frozen=True)
class Command:
    kind: CommandKind
    command_id: str
    params: dict[str, Any] = field(default_factory=dict)
    actor: str = "operator"
    reason: str = ""


@dataclass(frozen=True)
class CommandResult:
    command_id: str
    kind: CommandKind
    applied: bool
    reason: str  # why it was refused, or what it did
    epoch: int  # the epoch boundary (or the epoch being trained) when it was handled
    evidence: dict[str, Any] = field(default_factory=dict)  # e.g. {"val_f1": 0.81}


@dataclass(frozen=True)
class RunInfo:
    """What the engine actually restored; the worker records it as the confirmation of a resume."""

    stage: int
    start_epoch: int  # first epoch this run will train (1-based)
    epochs: int
    resumed_from: str | None  # checkpoint path, or None for a fresh start
    restored_epoch: int  # last completed epoch in the restored state (0 when fresh)
    restored_batch: int  # batches of ``start_epoch`` already done (mid-epoch resume), else 0
    trainable_params: int
    total_params: int
    device: str
    amp: bool
    pretrain_report: dict[str, Any] | None = None  # loaded / missing / mismatched tensor names
    history: list[dict[str, Any]] = field(default_factory=list)  # EpochMetrics rows so far
    initial_metrics: dict[str, Any] | None = None  # val metrics of the start weights (fresh runs: epoch 0)
    notes: list[str] = field(default_factory=list)  # what a resume changed or found (lr, data, plan)


@dataclass(frozen=True)
class EpochMetrics:
    epoch: int
    stage: int
    train_loss: float
    val_loss: float
    val_f1: float  # binary F1 of "open", margin-free logits
    val_precision: float
    val_recall: float
    val_accuracy: float
    fisher_ratio: float  # textbook Fisher criterion of val embeddings (docs/metrics.md)
    lrs: dict[str, float]  # lr actually used this epoch, per named param group
    trainable_params: int
    epoch_seconds: float
    samples_per_sec: float
    train_f1: float | None = None
    is_best: bool = False
    best_f1: float = 0.0
    best_epoch: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GateCheck:
    epoch: int  # the epoch about to start
    stage: int  # the stage the gate leads into
    f1: float | None  # the previous epoch's val F1 (no margin), None if not yet measured
    threshold: float
    passed: bool
    policy: str  # GateFailPolicy value applied when not passed
    action: str  # "enter", "wait", "proceed", "pause", "stop"
    reason: str


@dataclass(frozen=True)
class StageEvent:
    from_stage: int | None
    to_stage: int
    epoch: int  # first epoch trained in the new stage
    trigger: StageTrigger
    reason: str
    evidence: dict[str, Any]  # e.g. {"val_f1": 0.83, "gate_f1": 0.8, "at_epoch": 10}
    lrs: dict[str, float]  # lr per param group in the new stage
    unfrozen: list[str]  # parameter names made trainable by this transition
    trainable_params: int
    command_id: str | None = None
    actor: str | None = None


@dataclass(frozen=True)
class CheckpointInfo:
    path: str
    kind: CheckpointKind
    epoch: int
    stage: int
    val_f1: float | None
    size_bytes: int
    batch: int = 0  # > 0 only for INTERRUPT checkpoints


@dataclass(frozen=True)
class TrainResult:
    outcome: Outcome
    reason: str
    epoch: int  # last completed epoch
    stage: int
    best_f1: float
    best_epoch: int
    best_checkpoint: str | None
    last_checkpoint: str | None
    onnx_path: str | None = None
    gate: GateCheck | None = None  # the failed gate, for AWAITING_DECISION / STOPPED
    baseline_f1: float | None = None  # val F1 of the starting weights (model A), before epoch 1
    beats_baseline: bool | None = None  # the best epoch beats them (None: no baseline or no epoch)
    # the run's own evaluation summary (ocec_engine/evaluation/training.py), when it ended with a best
    evaluation: dict[str, Any] | None = None


class TrainingHooks(Protocol):
    def on_train_start(self, info: RunInfo) -> None: ...
    def on_epoch_end(self, metrics: EpochMetrics) -> None: ...
    def on_gate_check(self, check: GateCheck) -> None: ...
    def on_command_result(self, result: CommandResult) -> None: ...
    def on_stage_change(self, event: StageEvent) -> None: ...
    def on_checkpoint(self, info: CheckpointInfo) -> None: ...
    def on_train_end(self, result: TrainResult) -> None: ...
    def on_batch_end(self, epoch: int, batch: int, batches: int, loss: float) -> None: ...
    def poll_commands(self) -> list[Command]: ...
    def should_stop(self) -> str | None: ...  # a reason to yield now (PREEMPTED), or None


class NullHooks:
    """Does nothing; subclass and override what you need."""

    def on_train_start(self, info: RunInfo) -> None:
        pass

    def on_epoch_end(self, metrics: EpochMetrics) -> None:
        pass

    def on_gate_check(self, check: GateCheck) -> None:
        pass

    def on_command_result(self, result: CommandResult) -> None:
        pass

    def on_stage_change(self, event: StageEvent) -> None:
        pass

    def on_checkpoint(self, info: CheckpointInfo) -> None:
        pass

    def on_train_end(self, result: TrainResult) -> None:
        pass

    def on_batch_end(self, epoch: int, batch: int, batches: int, loss: float) -> None:
        pass

    def poll_commands(self) -> list[Command]:
        return []

    def should_stop(self) -> str | None:
        return None


class CompositeHooks:
    """Several hooks as one (e.g. the worker's database hooks + TensorBoard): every call goes to each
    in order, so an exception from the first (a fenced-out attempt) stops the others; commands are
    those of all, ``should_stop`` the first reason given."""

    def __init__(self, *hooks: TrainingHooks) -> None:
        self.hooks = hooks

    def on_train_start(self, info: RunInfo) -> None:
        for hook in self.hooks:
            hook.on_train_start(info)

    def on_epoch_end(self, metrics: EpochMetrics) -> None:
        for hook in self.hooks:
            hook.on_epoch_end(metrics)

    def on_gate_check(self, check: GateCheck) -> None:
        for hook in self.hooks:
            hook.on_gate_check(check)

    def on_command_result(self, result: CommandResult) -> None:
        for hook in self.hooks:
            hook.on_command_result(result)

    def on_stage_change(self, event: StageEvent) -> None:
        for hook in self.hooks:
            hook.on_stage_change(event)

    def on_checkpoint(self, info: CheckpointInfo) -> None:
        for hook in self.hooks:
            hook.on_checkpoint(info)

    def on_train_end(self, result: TrainResult) -> None:
        for hook in self.hooks:
            hook.on_train_end(result)

    def on_batch_end(self, epoch: int, batch: int, batches: int, loss: float) -> None:
        for hook in self.hooks:
            hook.on_batch_end(epoch, batch, batches, loss)

    def poll_commands(self) -> list[Command]:
        return [command for hook in self.hooks for command in hook.poll_commands()]

    def should_stop(self) -> str | None:
        return next((reason for hook in self.hooks if (reason := hook.should_stop())), None)

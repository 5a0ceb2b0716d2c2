"""A fast, torch-free fake of ``ocec_engine.train`` that speaks the same hooks protocol.

The worker service tests plug it in with ``OCEC_ENGINE=fake_engine:train`` (``tests/worker`` on
``PYTHONPATH``). Its behaviour is scripted by a ``fake_engine.json`` file inside the job's data root,
so every job in a test can behave differently while one worker process runs them all::

    {"f1": [0.6, 0.75, 0.85], "epoch_seconds": 0.2, "batches": 4, "check_every": 1,
     "fail": {"kind": "nan" | "enospc" | "crash" | "data", "epoch": 2}, "ignore_commands": false,
     "hold": [[2, 4]], "epoch_files": true}

``f1[e-1]`` is the validation F1 of epoch ``e`` (the last value repeats), so the stage-2 gate opens at
a chosen epoch. The gates are read by the engine's own torch-free ``ocec_engine.gates.read_gate``
(a new gate policy needs no change here); the fake has no start-of-run evaluation, so no gate is read
before epoch 2. Checkpoints are small JSON files written atomically and reported through
``on_checkpoint``; a resume reads them back and continues at the recorded epoch and batch, as the real
engine does. ``hold`` lists (epoch, batch) pairs inside which the run waits until the test releases
it (``held`` / ``release`` below): what a test does meanwhile happens during exactly that batch.
A missing or unreadable script raises ``DataError`` naming the file (the "bad dataset").
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ocec_engine.config import TrainConfig
from ocec_engine.errors import CheckpointError, DataError
from ocec_engine.gates import GateAction, read_gate
from ocec_engine.hooks import (
    CheckpointInfo,
    CheckpointKind,
    Command,
    CommandKind,
    CommandResult,
    EpochMetrics,
    GateCheck,
    Outcome,
    RunInfo,
    StageEvent,
    StageTrigger,
    TrainingHooks,
    TrainResult,
)
from ocec_engine.stage_plan import StageState, config_gates

SCRIPT_NAME = "fake_engine.json"
HOLD_SECONDS = 120.0  # a hold nobody releases fails the run after this
TRAINABLE = {1: 321, 2: 7_777, 3: 11_585}


@dataclass
class Script:
    f1: list[float] = field(default_factory=lambda: [0.5, 0.7, 0.85, 0.9])
    epoch_seconds: float = 0.05
    batches: int = 4
    check_every: int = 1
    fail: dict[str, Any] | None = None
    ignore_commands: bool = False
    hold: list[list[int]] = field(default_factory=list)
    baseline_f1: float | None = None  # model A's val F1: reported with every epoch, as the engine does
    epoch_files: bool = False  # also write epochs/epoch_NNNN.pt after every epoch, as the engine does
    # per recipe, for races: "full" (freeze_backbone off) or "<lr_factor>/<unfreeze_ratio>" -> F1 curve
    f1_by: dict[str, list[float]] = field(default_factory=dict)
    train_samples: int = 50

    def f1_at(self, epoch: int, recipe: str = "") -> float:
        curve = self.f1_by.get(recipe) or self.f1
        return curve[min(epoch, len(curve)) - 1]


def recipe_of(config: TrainConfig) -> str:
    """The key of ``Script.f1_by`` a run reads its curve from."""
    if not config.freeze_backbone:
        return "full"
    return f"{config.stage2.lr_factor:g}/{config.stage2.unfreeze_ratio:g}"


def held(run_dir: Path, epoch: int, batch: int) -> Path:
    """Appears when the run waits inside ``batch`` of ``epoch``."""
    return run_dir / f"held-{epoch}-{batch}"


def release(run_dir: Path, epoch: int, batch: int) -> Path:
    """Create it to let the held run finish that batch."""
    return run_dir / f"release-{epoch}-{batch}"


def write_script(data_dir: Path, **values: Any) -> Path:
    """Write a fake dataset (its script) into ``data_dir``; tests call this."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / SCRIPT_NAME
    path.write_text(json.dumps(dataclasses.asdict(Script(**values))))
    return path


@dataclass
class _State:
    """What a checkpoint holds."""

    epoch: int = 0  # last completed epoch
    batch: int = 0  # batches of epoch+1 already done (interrupt checkpoints)
    stages: StageState = field(default_factory=lambda: StageState(stage=1, entered_epoch=1))
    best_f1: float = 0.0
    best_epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def stage(self) -> int:
        return self.stages.stage

    def to_dict(self, **changes: Any) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "stages": self.stages.to_dict(), **changes}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> _State:
        return cls(**{**data, "stages": StageState.from_dict(data["stages"])})


class _RunEndedError(Exception):
    def __init__(self, outcome: Outcome, reason: str, gate: GateCheck | None = None) -> None:
        super().__init__(reason)
        self.outcome, self.reason, self.gate = outcome, reason, gate


def train(config: TrainConfig, hooks: TrainingHooks) -> TrainResult:
    return _Run(config, hooks).run()


class _Run:
    def __init__(self, config: TrainConfig, hooks: TrainingHooks) -> None:
        self.config, self.hooks = config, hooks
        self.script = _load_script(Path(config.data_root))
        self.recipe = recipe_of(config)
        self.out = Path(config.output_dir)
        self.state = _State(stages=StageState(stage=config.stage, entered_epoch=1))
        self.gates = config_gates(config)
        self.pending_stage: Command | None = None
        self.last_ckpt: str | None = None
        self.best_ckpt: str | None = None

    # ---- the loop ------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        self.out.mkdir(parents=True, exist_ok=True)
        if self.config.pretrain and not Path(self.config.pretrain).is_file():
            raise CheckpointError(f"{self.config.pretrain}: pretrain checkpoint not found")
        resumed = self._restore()
        self.hooks.on_train_start(self._run_info(resumed))
        if resumed and self.config.resume_stage and self.config.resume_stage != self.state.stage:
            self._enter(self.config.resume_stage, StageTrigger.RESUME, "stage set at resume", {})
        try:
            for epoch in range(self.state.epoch + 1, self.config.epochs + 1):
                self._epoch_boundary(epoch)
                self._train_batches(epoch)
                self._end_epoch(epoch)
        except _RunEndedError as stop:
            return self._result(stop.outcome, stop.reason, stop.gate)
        onnx = self._write(self.out / "best.onnx", {"onnx_of": self.best_ckpt})
        return self._result(Outcome.COMPLETED, "epoch budget reached", None, onnx)

    def _epoch_boundary(self, epoch: int) -> None:
        self._check(epoch, boundary=True)
        if self.pending_stage is not None:
            self._apply_force(self.pending_stage, epoch)
            self.pending_stage = None
        self._gate(epoch)

    def _train_batches(self, epoch: int) -> None:
        start = self.state.batch
        self.state.batch = 0
        for batch in range(start + 1, self.script.batches + 1):
            self._maybe_fail(epoch, batch)
            time.sleep(self.script.epoch_seconds / self.script.batches)
            self._hold(epoch, batch)
            self.hooks.on_batch_end(epoch, batch, self.script.batches, 1.0 - self._f1(epoch))
            if batch < self.script.batches and batch % self.script.check_every == 0:
                self._check(epoch, boundary=False, batch=batch)

    def _f1(self, epoch: int) -> float:
        # stage 1 is the same head training whatever the stage-2 recipe (a race's forks share it)
        return self.script.f1_at(epoch, self.recipe if self.state.stage > 1 or self.recipe == "full" else "")

    def _end_epoch(self, epoch: int) -> None:
        f1 = self._f1(epoch)
        is_best = f1 > self.state.best_f1
        if is_best:
            self.state.best_f1, self.state.best_epoch = f1, epoch
        row = self._metrics(epoch, f1, is_best)
        self.state.epoch = epoch
        self.state.history.append(dataclasses.asdict(row))
        self.last_ckpt = self._checkpoint("last.pt", CheckpointKind.LAST, epoch, f1)
        if self.script.epoch_files:
            (self.out / "epochs").mkdir(exist_ok=True)
            self._checkpoint(f"epochs/epoch_{epoch:04d}.pt", CheckpointKind.EPOCH, epoch, f1)
        if is_best:
            self.best_ckpt = self._checkpoint("best.pt", CheckpointKind.BEST, epoch, f1)
        self.hooks.on_epoch_end(row)

    def _hold(self, epoch: int, batch: int) -> None:
        if [epoch, batch] not in self.script.hold:
            return
        held(self.out, epoch, batch).touch()
        deadline = time.monotonic() + HOLD_SECONDS
        while True:  # sleep first: a hold always outlasts the worker's command_check_seconds
            time.sleep(0.05)
            if release(self.out, epoch, batch).exists():
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"epoch {epoch}, batch {batch} was held and never released")

    # ---- commands and stop requests ------------------------------------------------------------
    def _check(self, epoch: int, boundary: bool, batch: int = 0) -> None:
        if self.script.ignore_commands:
            return
        for command in self.hooks.poll_commands():
            if command.kind == CommandKind.FORCE_STAGE:
                self.pending_stage = command  # applied at the next epoch boundary
                if boundary:
                    self._apply_force(command, epoch)
                    self.pending_stage = None
            else:
                self._interrupt(epoch, batch)
                self.hooks.on_command_result(
                    CommandResult(command.command_id, command.kind, True, f"{command.kind} applied", epoch)
                )
                outcome = Outcome.PAUSED if command.kind == CommandKind.PAUSE else Outcome.CANCELLED
                raise _RunEndedError(outcome, command.reason or str(command.kind))
        reason = self.hooks.should_stop()
        if reason:
            self._interrupt(epoch, batch)
            raise _RunEndedError(Outcome.PREEMPTED, reason)

    def _apply_force(self, command: Command, epoch: int) -> None:
        target = int(command.params.get("stage", 0))
        applied = target > self.state.stage
        why = f"entered stage {target}" if applied else f"already in stage {self.state.stage}"
        f1 = self._last_f1()
        if applied:
            self._enter(target, StageTrigger.FORCED, command.reason, {"val_f1": f1}, command, epoch)
        self.hooks.on_command_result(
            CommandResult(command.command_id, command.kind, applied, why, epoch, {"val_f1": f1})
        )

    def _gate(self, epoch: int) -> None:
        decision = read_gate(self.gates, self.state.stages, epoch, self.config.epochs, self._last_f1())
        if decision is None:
            return
        check, action = decision.check, decision.action
        self.hooks.on_gate_check(check)
        evidence = {"val_f1": check.f1, "gate_f1": check.threshold, "at_epoch": epoch}
        if action in (GateAction.ENTER, GateAction.PROCEED):
            trigger = StageTrigger.GATE if action is GateAction.ENTER else StageTrigger.POLICY
            self._enter(check.stage, trigger, f"gate {action}", evidence, None, epoch)
        elif action is GateAction.PAUSE:
            self.state.stages.paused_gates.append(check.stage)
            self.state.stages.paused_at[check.stage] = epoch
            self.last_ckpt = self._checkpoint("last.pt", CheckpointKind.LAST, epoch - 1, check.f1)
            raise _RunEndedError(Outcome.AWAITING_DECISION, f"stage-{check.stage} gate not passed", check)
        elif action is GateAction.STOP:
            raise _RunEndedError(Outcome.STOPPED, f"stage-{check.stage} gate not passed", check)

    def _last_f1(self) -> float | None:
        return self.state.history[-1]["val_f1"] if self.state.history else None

    def _enter(
        self,
        stage: int,
        trigger: StageTrigger,
        reason: str,
        evidence: dict[str, Any],
        command: Command | None = None,
        epoch: int | None = None,
    ) -> None:
        previous, epoch = self.state.stage, epoch or self.state.epoch + 1
        self.state.stages.stage, self.state.stages.entered_epoch = stage, epoch
        self.state.stages.trigger, self.state.stages.reason = trigger, reason
        self.hooks.on_stage_change(
            StageEvent(
                previous,
                stage,
                epoch,
                trigger,
                reason,
                evidence,
                self._lrs(),
                [f"features.{stage}.weight"],
                TRAINABLE[stage],
                command.command_id if command else None,
                command.actor if command else None,
            )
        )
        self._checkpoint(f"stage{stage}_entry.pt", CheckpointKind.STAGE_ENTRY, epoch - 1, None)

    # ---- checkpoints -----------------------------------------------------------------------------
    def _restore(self) -> bool:
        if not self.config.resume:
            return False
        path = Path(self.config.resume)
        try:
            self.state = _State.from_dict(json.loads(path.read_text()))
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise CheckpointError(f"{path}: cannot resume from this checkpoint ({exc})") from exc
        return True

    def _interrupt(self, epoch: int, batch: int) -> None:
        self.state.batch = batch
        self._checkpoint("interrupt.pt", CheckpointKind.INTERRUPT, epoch - 1, None, batch)

    def _checkpoint(
        self, name: str, kind: CheckpointKind, epoch: int, f1: float | None, batch: int = 0
    ) -> str:
        path = self._write(self.out / name, self.state.to_dict(epoch=epoch, batch=batch))
        self.hooks.on_checkpoint(
            CheckpointInfo(path, kind, epoch, self.state.stage, f1, os.path.getsize(path), batch)
        )
        return path

    @staticmethod
    def _write(path: Path, data: dict[str, Any]) -> str:
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)
        return str(path)

    # ---- payloads ----------------------------------------------------------------------------------
    def _run_info(self, resumed: bool) -> RunInfo:
        return RunInfo(
            stage=self.state.stage,
            start_epoch=self.state.epoch + 1,
            epochs=self.config.epochs,
            resumed_from=self.config.resume if resumed else None,
            restored_epoch=self.state.epoch,
            restored_batch=self.state.batch,
            trainable_params=TRAINABLE[self.state.stage],
            total_params=TRAINABLE[3],
            device="cpu",
            amp=False,
            history=list(self.state.history),
        )

    def _lrs(self) -> dict[str, float]:
        lrs = {"head": self.config.lr}
        if self.state.stage >= 2:
            lrs["backbone"] = self.config.lr * self.config.stage2.lr_factor
        return lrs

    def _metrics(self, epoch: int, f1: float, is_best: bool) -> EpochMetrics:
        return EpochMetrics(
            epoch=epoch,
            stage=self.state.stage,
            train_loss=1.0 - f1,
            val_loss=1.05 - f1,
            val_f1=f1,
            val_precision=f1,
            val_recall=f1,
            val_accuracy=f1,
            fisher_ratio=2.0 * f1,
            lrs=self._lrs(),
            trainable_params=TRAINABLE[self.state.stage],
            epoch_seconds=self.script.epoch_seconds,
            samples_per_sec=1000.0,
            is_best=is_best,
            best_f1=self.state.best_f1,
            best_epoch=self.state.best_epoch,
            extra=self._baseline(),
        )

    def _baseline(self) -> dict[str, Any]:
        base = self.script.baseline_f1
        samples = {"train_samples": self.script.train_samples}
        if base is None:
            return samples
        beats = self.state.best_f1 > base
        return {**samples, "baseline_f1": base, "baseline_val_loss": 1.05 - base, "beats_baseline": beats}

    def _result(
        self, outcome: Outcome, reason: str, gate: GateCheck | None, onnx: str | None = None
    ) -> TrainResult:
        result = TrainResult(
            outcome=outcome,
            reason=reason,
            epoch=self.state.epoch,
            stage=self.state.stage,
            best_f1=self.state.best_f1,
            best_epoch=self.state.best_epoch,
            best_checkpoint=self.best_ckpt,
            last_checkpoint=self.last_ckpt,
            onnx_path=onnx,
            gate=gate,
        )
        self.hooks.on_train_end(result)
        return result

    def _maybe_fail(self, epoch: int, batch: int) -> None:
        fail = self.script.fail
        if not fail or int(fail.get("epoch", 1)) != epoch or batch != 1:
            return
        kind = fail.get("kind")
        if kind == "nan":
            raise FloatingPointError(f"loss is NaN at epoch {epoch}, batch {batch}")
        if kind == "enospc":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.out / "last.pt"))
        if kind == "data":
            raise DataError(f"{self.config.data_root}/train.parquet: row 7: image bytes cannot be decoded")
        raise RuntimeError(f"scripted crash at epoch {epoch}")


def _load_script(data_root: Path) -> Script:
    path = data_root / SCRIPT_NAME
    try:
        return Script(**json.loads(path.read_text()))
    except FileNotFoundError as exc:
        raise DataError(f"{path}: dataset file not found") from exc
    except (OSError, ValueError, TypeError) as exc:
        raise DataError(f"{path}: cannot read the dataset ({exc})") from exc

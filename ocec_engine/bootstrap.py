"""Everything before the first epoch: device, data, model, pretrain or resume, stage, optimizer.

Fresh run: the model is built from the config (seeded), ``--pretrain`` weights are loaded by name
(engine-core's ``load_pretrain``: mismatches are reported, never silently dropped), the start stage
is applied and the start weights are evaluated once (epoch 0: the F1 a U = 1 gate reads).

Resume (``config.resume``): the architecture comes from the checkpoint's ``model_config``; the run
settings from the passed config (the CLI builds it from the checkpoint's own settings plus the flags
given). Every training setting that differs from the checkpoint's is a recorded change
(``resume_settings.setting_changes``). Model, optimizer (by parameter name), schedule, scaler, RNG,
stage state, history, best and the mid-epoch position are restored. A stage lr that differs under
the new config (``--lr`` or the stage's lr changed) replaces the saved one.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ocec_engine import checkpoint, rng
from ocec_engine.augment import Augmenter
from ocec_engine.config import DeviceChoice, MarginMethod, TrainConfig
from ocec_engine.data import DataSplit, load_dataset
from ocec_engine.errors import CheckpointError, EngineError
from ocec_engine.evaluate import Runtime
from ocec_engine.hooks import StageTrigger
from ocec_engine.model import ModelConfig, build_model
from ocec_engine.optim import LrSchedule, build_optimizer, load_optimizer_state, manifest
from ocec_engine.resume_settings import describe_changes, setting_changes
from ocec_engine.runstate import Partial, RunState
from ocec_engine.stages import PlanKind, StageState, apply_stage, build_plan

log = logging.getLogger("ocec_engine")
CACHE_ENV = "OCEC_DATA_CACHE"  # a shared decoded-data cache folder; default <output_dir>/cache


@dataclass
class Prepared:
    state: RunState
    data: DataSplit
    runtime: Runtime
    augmenter: Augmenter
    resumed_from: str | None = None
    pretrain_report: dict[str, Any] | None = None
    lr_change: tuple[float, float] | None = None  # (saved stage lr, new stage lr) on resume
    notes: list[str] = field(default_factory=list)
    changes: dict[str, dict[str, Any]] = field(default_factory=dict)  # settings a resume changed


def resolve_runtime(config: TrainConfig) -> Runtime:
    choice = DeviceChoice(config.device)
    if choice is DeviceChoice.CUDA and not torch.cuda.is_available():
        raise EngineError("--device cuda: CUDA is not available on this machine")
    use_cuda = choice is DeviceChoice.CUDA or (choice is DeviceChoice.AUTO and torch.cuda.is_available())
    device = torch.device("cuda" if use_cuda else "cpu")
    amp = bool(config.use_amp) and use_cuda
    if config.use_amp and not amp:
        log.warning("AMP requested but training runs on CPU: AMP is CUDA-only, training in fp32")
    # channels_last: measured 1.3-1.9x faster train steps for this model on CPU (docs/engine.md)
    return Runtime(device=device, amp=amp, channels_last=True)


def validate_config(config: TrainConfig) -> None:
    """Fail fast on settings no run can use (EngineError names the field)."""
    checks = [
        (config.epochs >= 1, f"epochs must be >= 1, got {config.epochs}"),
        (config.batch_size >= 2, f"batch_size must be >= 2, got {config.batch_size}"),
        (config.lr > 0, f"lr must be > 0, got {config.lr}"),
        (config.weight_decay >= 0, f"weight_decay must be >= 0, got {config.weight_decay}"),
        (config.warmup_epochs >= 0, f"warmup_epochs must be >= 0, got {config.warmup_epochs}"),
        (
            config.check_every_batches >= 1,
            f"check_every_batches must be >= 1, got {config.check_every_batches}",
        ),
        (config.stage in (1, 2, 3), f"stage must be 1, 2 or 3, got {config.stage}"),
        (
            config.unfreeze_backbone_epoch is None or config.unfreeze_backbone_epoch >= 1,
            f"unfreeze_backbone_epoch must be >= 1, got {config.unfreeze_backbone_epoch}",
        ),
        (config.keep_epoch_checkpoints >= 0, "keep_epoch_checkpoints must be >= 0"),
        (
            0.0 <= config.test_fraction <= 0.5,
            f"test_fraction must be in [0, 0.5], got {config.test_fraction}",
        ),
        (config.checkpoint_every >= 1, f"checkpoint_every must be >= 1, got {config.checkpoint_every}"),
    ]
    for name, gate in (("stage2", config.stage2), ("stage3", config.stage3)):
        if gate is None:
            continue
        checks += [
            (0.0 <= gate.gate_f1 <= 1.0, f"{name}.gate_f1 must be in [0, 1], got {gate.gate_f1}"),
            (
                0.0 < gate.unfreeze_ratio <= 1.0,
                f"{name}.unfreeze_ratio must be in (0, 1], got {gate.unfreeze_ratio}",
            ),
            (gate.lr is None or gate.lr > 0, f"{name}.lr must be > 0, got {gate.lr}"),
            (gate.lr_factor > 0, f"{name}.lr_factor must be > 0, got {gate.lr_factor}"),
        ]
    for ok, message in checks:
        if not ok:
            raise EngineError(message)


def _cache_dir(config: TrainConfig) -> Path:
    shared = os.environ.get(CACHE_ENV, "").strip()
    return Path(shared) if shared else Path(config.output_dir) / "cache"


def _load_data(config: TrainConfig, image_size: tuple[int, int]) -> DataSplit:
    data = load_dataset(
        config.data_root,
        image_size,
        config.val_ratio,
        config.seed,
        _cache_dir(config),
        test_fraction=config.test_fraction,
    )
    if len(data.train_y) < 2 or len(data.val_y) < 1:
        raise EngineError(f"{config.data_root}: need >= 2 train and >= 1 val samples ({data.source})")
    return data


def _report_dict(report: Any) -> dict[str, Any]:
    if report is None:
        return {}
    if hasattr(report, "to_dict"):
        return dict(report.to_dict())
    if dataclasses.is_dataclass(report):
        return dataclasses.asdict(report)  # type: ignore[arg-type]
    return dict(report)


def prepare(config: TrainConfig) -> Prepared:
    validate_config(config)
    if not config.freeze_backbone and config.unfreeze_backbone_epoch is not None:
        log.warning("unfreeze_backbone_epoch is ignored without freeze_backbone: a full fine-tune")
    runtime = resolve_runtime(config)
    if config.resume:
        return _prepare_resume(config, runtime)
    return _prepare_fresh(config, runtime)


def _to_device(model: nn.Module, runtime: Runtime) -> nn.Module:
    model.to(runtime.device)
    if runtime.channels_last:
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return model


def _prepare_fresh(config: TrainConfig, runtime: Runtime) -> Prepared:
    from ocec_engine.weights import load_pretrain

    mcfg = ModelConfig(
        base_channels=config.base_channels,
        num_blocks=config.num_blocks,
        dropout=config.dropout,
        margin_method=config.margin_method,
        image_size=config.image_size,
    )
    data = _load_data(config, mcfg.image_size)
    rng.seed_init(config.seed)
    model = build_model(mcfg)
    report = _report_dict(load_pretrain(model, config.pretrain)) if config.pretrain else None
    _to_device(model, runtime)
    plan = build_plan(model, config)
    spec = plan.spec(config.stage)
    apply_stage(model, plan, config.stage)
    optimizer = build_optimizer(
        model, manifest(model, plan.head, spec.trainable), spec.lr, config.weight_decay
    )
    why = (
        "full fine-tune: every parameter trains"
        if plan.kind is PlanKind.FULL
        else f"start in stage {config.stage}"
    )
    augmenter = Augmenter(config.augment)
    state = RunState(
        config=config,
        model_config=mcfg,
        model=model,
        plan=plan,
        stage=StageState(stage=config.stage, entered_epoch=1, trigger=StageTrigger.START, reason=why),
        optimizer=optimizer,
        schedule=LrSchedule(base_lr=spec.lr, warmup_epochs=config.warmup_epochs),
        scaler=torch.amp.GradScaler("cuda") if runtime.amp else None,
        data_fingerprint=data.fingerprint,
        augmentation=augmenter.describe(),
    )
    return Prepared(state, data, runtime, augmenter, pretrain_report=report)


def _prepare_resume(config: TrainConfig, runtime: Runtime) -> Prepared:
    path = str(config.resume)
    ck = checkpoint.load(path)
    mcfg = ModelConfig.from_dict(ck["model_config"], source=f"{path}: model_config")
    config, notes = _checkpoint_architecture(config, mcfg)
    saved = ck.get("train_config") or {}
    changes = setting_changes(saved, config)
    if changes:
        notes.append(f"settings changed from the checkpoint's: {describe_changes(changes)}")
    data = _load_data(config, mcfg.image_size)
    model = build_model(mcfg)
    try:
        model.load_state_dict(ck["model_state"], strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: model_state does not fit its model_config: {exc}") from exc
    _to_device(model, runtime)
    plan = build_plan(model, config)
    stage = StageState.from_dict(ck["stage_state"])
    if stage.pending_commands and not config.resume_commands:
        dropped = [c.get("command_id") for c in stage.pending_commands]
        notes.append(f"queued command(s) of the checkpoint's run not carried over: {dropped}")
        stage.pending_commands = []
    if stage.stage not in plan.stages:
        raise CheckpointError(
            f"{path}: the checkpoint is in stage {stage.stage}, which the config does not define "
            f"(stages {sorted(plan.stages)}; stage 3 needs stage3 settings)"
        )
    spec = plan.spec(stage.stage)
    apply_stage(model, plan, stage.stage)
    optimizer = build_optimizer(
        model, manifest(model, plan.head, spec.trainable), spec.lr, config.weight_decay
    )
    fresh = load_optimizer_state(optimizer, ck["optimizer_state"], path)
    if fresh:
        notes.append(f"optimizer state started fresh for {len(fresh)} parameter(s) new to the stage: {fresh}")
    schedule = LrSchedule.from_state(ck["scheduler_state"])
    schedule.warmup_epochs = config.warmup_epochs
    lr_change = None
    if not math.isclose(schedule.base_lr, spec.lr, rel_tol=1e-12, abs_tol=0.0):
        lr_change = (schedule.base_lr, spec.lr)
        schedule.rebase(spec.lr)
    scaler = torch.amp.GradScaler("cuda") if runtime.amp else None
    if scaler is not None and ck.get("scaler_state"):
        scaler.load_state_dict(ck["scaler_state"])
    augmenter = Augmenter(config.augment)
    if ck.get("data_fingerprint") and ck["data_fingerprint"] != data.fingerprint:
        notes.append(
            f"data differs from the checkpoint's (fingerprint {ck['data_fingerprint']} -> {data.fingerprint})"
        )
    if ck.get("augmentation") and ck["augmentation"] != augmenter.describe() and "augment" not in changes:
        notes.append("augmentation ops differ from the checkpoint's (same policy, another engine version)")
    position = ck.get("position") or {}
    best = ck.get("best") or {}
    state = RunState(
        config=config,
        model_config=mcfg,
        model=model,
        plan=plan,
        stage=stage,
        optimizer=optimizer,
        schedule=schedule,
        scaler=scaler,
        completed=int(ck["epoch"]),
        history=[dict(r) for r in ck.get("history", [])],
        best_f1=best.get("f1"),
        best_epoch=int(best.get("epoch", 0)),
        best_loss=_best_loss(best, ck.get("history", [])),
        initial_val=ck.get("initial_val"),
        setting_changes=[dict(c) for c in ck.get("setting_changes", [])],
        partial=Partial.from_dict(position) if int(position.get("batch", 0)) > 0 else None,
        data_fingerprint=data.fingerprint,
        augmentation=augmenter.describe(),
    )
    if ck.get("trainability") and ck["trainability"] != state.fingerprint():
        notes.append("the stage's trainable set differs from the checkpoint's (stage settings changed)")
    if changes:
        at = state.partial.epoch if state.partial else state.completed + 1
        state.setting_changes.append({"epoch": at, "checkpoint": path, "changes": changes})
    rng.restore(ck.get("rng"))
    return Prepared(
        state, data, runtime, augmenter, resumed_from=path, lr_change=lr_change, notes=notes, changes=changes
    )


def _checkpoint_architecture(config: TrainConfig, mcfg: ModelConfig) -> tuple[TrainConfig, list[str]]:
    """``config`` with the checkpoint's architecture (what the run really is), and a note for each
    field the config said otherwise."""
    theirs: dict[str, Any] = {
        "base_channels": mcfg.base_channels,
        "num_blocks": mcfg.num_blocks,
        "dropout": mcfg.dropout,
        "margin_method": MarginMethod(mcfg.margin_method),
        "image_size": tuple(mcfg.image_size),
    }
    ours = {name: getattr(config, name) for name in theirs}
    ours["image_size"] = tuple(ours["image_size"])
    notes = [
        f"{name} {theirs[name]} from the checkpoint (config said {ours[name]})"
        for name in theirs
        if ours[name] != theirs[name]
    ]
    return dataclasses.replace(config, **theirs), notes


def _best_loss(best: dict[str, Any], history: list[dict[str, Any]]) -> float | None:
    """The best epoch's val loss (older checkpoints store only its F1 and epoch: from the history)."""
    if best.get("val_loss") is not None:
        return float(best["val_loss"])
    row = next((r for r in history if int(r["epoch"]) == int(best.get("epoch", 0))), None)
    return float(row["val_loss"]) if row is not None else None

"""Run configuration: one typed record for everything a training run needs.

Field names follow the public OCEC CLI flags (``--unfreeze_backbone_epoch`` → ``unfreeze_backbone_epoch``)
so a user's existing command line maps one-to-one. ``to_dict``/``from_dict`` give the plain-data form
that is stored in every checkpoint (``train_config``). The job service's spec (``jobstore.spec``)
declares the same settings, enums and defaults for a job; the engine may not import it, so it keeps
this copy, and the worker's tests (tests/worker/test_mirrors.py) fail when the two drift.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ocec_engine.plain import plain


class MarginMethod(StrEnum):
    NONE = "none"
    COSFACE = "cosface"
    ARCFACE = "arcface"


class GateFailPolicy(StrEnum):
    """What to do when the stage gate has not opened by the unfreeze epoch."""

    KEEP_TRYING = "keep-trying"  # re-check every epoch until the deadline epoch, then stop
    PAUSE = "pause"  # checkpoint, then end the run as AWAITING_DECISION
    PROCEED = "proceed"  # enter the next stage anyway (recorded as such)
    STOP = "stop"  # end the run at once, keeping the best checkpoint


class AugmentPolicy(StrEnum):
    NONE = "none"
    LIGHT = "light"
    OCEC = "ocec"  # the public OCEC set, applied in [0, 1] pixel space before normalisation


class DeviceChoice(StrEnum):
    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"


@dataclass
class StageGateConfig:
    """Settings of one gated stage (stage 2, or the optional stage 3)."""

    gate_f1: float = 0.80
    unfreeze_ratio: float = 0.5  # fraction of the backbone, counted from the back
    lr_factor: float = 0.05  # stage lr = base lr x lr_factor ...
    lr: float | None = None  # ... unless an explicit lr is given
    on_gate_fail: GateFailPolicy = GateFailPolicy.KEEP_TRYING
    gate_deadline_epoch: int | None = None  # keep-trying stops after this epoch (None: last epoch)
    epoch: int | None = None  # earliest epoch (stage 3 only; stage 2 uses unfreeze_backbone_epoch)


def default_stage3() -> StageGateConfig:
    return StageGateConfig(gate_f1=0.85, unfreeze_ratio=1.0, lr_factor=0.025)


@dataclass
class TrainConfig:
    data_root: str
    output_dir: str
    pretrain: str | None = None
    resume: str | None = None
    resume_stage: int | None = None  # on resume: enter this stage at the first epoch (operator)
    # on resume: keep the FORCE_STAGE commands queued in the checkpoint (a run continued after an
    # interrupt). False for a new run from another run's checkpoint (a fork) or an operator's jump to
    # another point: those commands belong to the other run / timeline.
    resume_commands: bool = True
    stage: int = 1  # stage to start in (1 or 2; 3 when stage3 is configured)
    epochs: int = 30  # total epochs, all stages together
    batch_size: int = 256
    lr: float = 1e-4
    weight_decay: float = 1e-4
    warmup_epochs: int = 0
    freeze_backbone: bool = True
    unfreeze_backbone_epoch: int | None = None  # U: first epoch at which the stage-2 gate is read
    stage2: StageGateConfig = field(default_factory=StageGateConfig)
    stage3: StageGateConfig | None = None
    margin_method: MarginMethod = MarginMethod.COSFACE
    use_amp: bool = False
    seed: int = 42
    device: DeviceChoice = DeviceChoice.AUTO
    image_size: tuple[int, int] = (32, 64)  # (H, W)
    base_channels: int = 32
    num_blocks: int = 4
    dropout: float = 0.3
    val_ratio: float = 0.2  # only for data without a predefined split
    augment: AugmentPolicy = AugmentPolicy.OCEC
    check_every_batches: int = 20  # poll commands / should_stop every N batches
    keep_epoch_checkpoints: int = 0  # epochs/epoch_NNNN.pt files kept (newest); 0 = keep all
    # without a test split in the data: this seeded share of each class of train and val becomes one
    test_fraction: float = 0.0
    retention_data_root: str | None = None  # the source domain A, evaluated before and after
    evaluate: bool = True  # the run's own evaluation (evaluation/<tag>/, docs/evaluation.md)
    # epochs/epoch_NNNN.pt after every N-th epoch (and the last of the budget); last.pt, best.pt and
    # the stage entries are written whatever N is, so a resume never goes back more than one epoch
    checkpoint_every: int = 1

    def to_dict(self) -> dict[str, Any]:
        """Plain data (str/int/float/bool/None/list/dict) safe for weights_only checkpoints and JSON."""
        return plain(self)  # type: ignore[no-any-return]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown train_config fields: {', '.join(unknown)}")
        values = dict(data)
        if isinstance(values.get("stage2"), dict):
            values["stage2"] = _gate_from_dict(values["stage2"])
        if isinstance(values.get("stage3"), dict):
            values["stage3"] = _gate_from_dict(values["stage3"])
        if "image_size" in values:
            values["image_size"] = tuple(values["image_size"])
        for name, enum in (
            ("margin_method", MarginMethod),
            ("device", DeviceChoice),
            ("augment", AugmentPolicy),
        ):
            if name in values:
                values[name] = enum(values[name])
        return cls(**values)


def _gate_from_dict(data: dict[str, Any]) -> StageGateConfig:
    values = dict(data)
    if "on_gate_fail" in values:
        values["on_gate_fail"] = GateFailPolicy(values["on_gate_fail"])
    return StageGateConfig(**values)

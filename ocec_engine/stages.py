"""Stages as explicit state: a ``StagePlan`` (what each stage trains, at which lr, behind which gate)
and a ``StageState`` (where the run is), plus ``apply_stage`` which brings a model to a stage.

Units. The backbone is cut into whole units, front to back (``model.backbone_blocks``: the stem,
then ``features.0`` ... ``features.N-1``; a conv and its BatchNorm always move together). Stage 2
makes trainable the *smallest suffix of units whose parameter-element count reaches*
``ratio x backbone elements``; stage 3 the suffix for its own ratio (default 1.0: everything,
stem included), never less than stage 2. For the default model (11,264 backbone elements) ratio
0.5 gives features.3 (4,928) + features.2 (2,528) = 7,456 elements (66.2 %) — the same blocks OCEC
thaws. The live head (``head_parameter_prefixes``: the margin head, or ``head`` for margin none)
trains in every stage; dead parameters (OCEC's unused ``head`` next to a margin head) never train.

Frozen means: ``requires_grad`` False, ``.grad`` None, absent from the optimizer, and every module
of a frozen unit (BatchNorm included) in eval mode — re-applied by ``set_train_mode`` after each
``model.train()``. Because trainable units are always a suffix, the frozen units form a prefix that
the loop runs under ``torch.no_grad()`` (``split_embed``), so no graph is built through it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import torch
from torch import Tensor, nn

from ocec_engine.config import GateFailPolicy, StageGateConfig, TrainConfig
from ocec_engine.errors import EngineError
from ocec_engine.hooks import StageTrigger
from ocec_engine.model import backbone_blocks, dead_parameter_prefixes, head_parameter_prefixes

FULL_STAGE = 1  # a plain full fine-tune (freeze_backbone=False) reports stage 1 with plan kind "full"
LAST_REQUIRED_STAGE = 2  # stages after it (3) are optional: a run that never enters them still completes


def is_optional(stage: int) -> bool:
    return stage > LAST_REQUIRED_STAGE


class BNPolicy(StrEnum):
    FROZEN_EVAL = "frozen-eval"  # BN of frozen units in eval mode (stats fixed); trainable BN trains


class PlanKind(StrEnum):
    PROGRESSIVE = "progressive"
    FULL = "full"


@dataclass(frozen=True)
class Unit:
    name: str
    params: tuple[str, ...]
    elements: int


@dataclass(frozen=True)
class StageSpec:
    stage: int
    trainable_units: tuple[str, ...]  # backbone units that train (a suffix)
    trainable: tuple[str, ...]  # every trainable parameter name, registration order
    lr: float  # base lr of every param group in this stage
    lr_rule: str  # how ``lr`` was derived, for logs and docs
    ratio_requested: float
    ratio_achieved: float  # trainable backbone elements / backbone elements
    gate: StageGateConfig | None = None  # the gate that leads into this stage (2, 3)
    gate_epoch: int | None = None  # earliest epoch the gate is read
    bn_policy: BNPolicy = BNPolicy.FROZEN_EVAL

    def describe(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "trainable_units": list(self.trainable_units),
            "trainable_tensors": len(self.trainable),
            "lr": self.lr,
            "lr_rule": self.lr_rule,
            "ratio_requested": self.ratio_requested,
            "ratio_achieved": round(self.ratio_achieved, 6),
            "gate_f1": self.gate.gate_f1 if self.gate else None,
            "gate_epoch": self.gate_epoch,
            "on_gate_fail": str(self.gate.on_gate_fail) if self.gate else None,
            "bn_policy": str(self.bn_policy),
        }


@dataclass(frozen=True)
class StagePlan:
    kind: PlanKind
    units: tuple[Unit, ...]
    head: tuple[str, ...]  # live head parameter names
    stages: dict[int, StageSpec]
    backbone_elements: int

    @property
    def max_stage(self) -> int:
        return max(self.stages)

    def spec(self, stage: int) -> StageSpec:
        if stage not in self.stages:
            raise EngineError(f"stage {stage} is not configured (stages: {sorted(self.stages)})")
        return self.stages[stage]

    def frozen_prefix(self, stage: int) -> int:
        """How many leading backbone units are frozen in ``stage``."""
        return len(self.units) - len(self.spec(stage).trainable_units)

    def newly_unfrozen(self, from_stage: int | None, to_stage: int) -> list[str]:
        before = set(self.spec(from_stage).trainable) if from_stage in self.stages else set()
        return [name for name in self.spec(to_stage).trainable if name not in before]

    def describe(self) -> dict[str, Any]:
        return {
            "kind": str(self.kind),
            "units": [{"name": u.name, "elements": u.elements} for u in self.units],
            "backbone_elements": self.backbone_elements,
            "head": list(self.head),
            "stages": {str(k): v.describe() for k, v in sorted(self.stages.items())},
        }


def model_units(model: nn.Module) -> tuple[Unit, ...]:
    units = []
    for name, module in backbone_blocks(model):  # type: ignore[arg-type]
        params = tuple(f"{name}.{p}" for p, _ in module.named_parameters())
        units.append(Unit(name, params, sum(p.numel() for p in module.parameters())))
    return tuple(units)


def suffix_for_ratio(units: tuple[Unit, ...], ratio: float) -> tuple[Unit, ...]:
    """The smallest suffix of whole units whose element count reaches ``ratio`` of the total."""
    if not 0.0 < ratio <= 1.0:
        raise EngineError(f"unfreeze ratio must be in (0, 1], got {ratio}")
    total = sum(u.elements for u in units)
    target = ratio * total
    taken = 0
    for k in range(1, len(units) + 1):
        taken += units[-k].elements
        if taken >= target - 1e-9 * total:
            return units[-k:]
    return units


def _stage_lr(config: TrainConfig, gate: StageGateConfig) -> tuple[float, str]:
    if gate.lr is not None:
        return float(gate.lr), f"explicit {gate.lr:g}"
    return config.lr * gate.lr_factor, f"lr x {gate.lr_factor:g} = {config.lr:g} x {gate.lr_factor:g}"


def _spec(
    stage: int,
    plan_units: tuple[Unit, ...],
    suffix: tuple[Unit, ...],
    head: tuple[str, ...],
    order: list[str],
    lr: tuple[float, str],
    ratio: float,
    gate: StageGateConfig | None = None,
    gate_epoch: int | None = None,
) -> StageSpec:
    total = sum(u.elements for u in plan_units)
    names = set(head) | {p for u in suffix for p in u.params}
    return StageSpec(
        stage=stage,
        trainable_units=tuple(u.name for u in suffix),
        trainable=tuple(n for n in order if n in names),
        lr=lr[0],
        lr_rule=lr[1],
        ratio_requested=ratio,
        ratio_achieved=sum(u.elements for u in suffix) / total if total else 0.0,
        gate=gate,
        gate_epoch=gate_epoch,
    )


def build_plan(model: nn.Module, config: TrainConfig) -> StagePlan:
    """The stages of a run, validated before the first epoch (fails fast with EngineError)."""
    order = [n for n, _ in model.named_parameters()]
    units = model_units(model)
    head_prefixes = tuple(head_parameter_prefixes(model))  # type: ignore[arg-type]
    dead = tuple(dead_parameter_prefixes(model))  # type: ignore[arg-type]
    head = tuple(n for n in order if _under(n, head_prefixes) and not _under(n, dead))
    backbone = {p for u in units for p in u.params}
    stray = [n for n in order if n not in backbone and n not in head and not _under(n, dead)]
    if stray:
        raise EngineError(f"parameters outside backbone and head: {stray}")
    elements = sum(u.elements for u in units)
    base = (config.lr, f"lr {config.lr:g}")
    if not config.freeze_backbone:
        if config.stage != 1 or config.stage3 is not None:
            raise EngineError("stage / stage3 settings need freeze_backbone (a full fine-tune has no stages)")
        full = _spec(FULL_STAGE, units, units, head, order, base, 1.0)
        return StagePlan(PlanKind.FULL, units, head, {FULL_STAGE: full}, elements)
    stages = {1: _spec(1, units, (), head, order, base, 0.0)}
    s2 = config.stage2
    suffix2 = suffix_for_ratio(units, s2.unfreeze_ratio)
    stages[2] = _spec(
        2,
        units,
        suffix2,
        head,
        order,
        _stage_lr(config, s2),
        s2.unfreeze_ratio,
        s2,
        config.unfreeze_backbone_epoch,
    )
    if config.stage3 is not None:
        s3 = config.stage3
        suffix3 = suffix_for_ratio(units, s3.unfreeze_ratio)
        if len(suffix3) <= len(suffix2):
            raise EngineError(
                f"stage3 unfreeze_ratio {s3.unfreeze_ratio} unfreezes nothing beyond stage 2 "
                f"({', '.join(u.name for u in suffix2)}); use a larger ratio (1.0 = whole backbone)"
            )
        stages[3] = _spec(
            3, units, suffix3, head, order, _stage_lr(config, s3), s3.unfreeze_ratio, s3, s3.epoch
        )
    if config.stage not in stages:
        raise EngineError(f"cannot start in stage {config.stage}: configured stages are {sorted(stages)}")
    return StagePlan(PlanKind.PROGRESSIVE, units, head, stages, elements)


def _under(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def apply_stage(model: nn.Module, plan: StagePlan, stage: int) -> list[str]:
    """Set requires_grad (and drop grads of frozen params) for ``stage``; idempotent from any state.

    Returns the trainable parameter names. BatchNorm modes are applied by ``set_train_mode``.
    """
    trainable = set(plan.spec(stage).trainable)
    for name, param in model.named_parameters():
        param.requires_grad_(name in trainable)
        if name not in trainable:
            param.grad = None
    return [n for n, _ in model.named_parameters() if n in trainable]


def set_train_mode(model: nn.Module, plan: StagePlan, stage: int, training: bool = True) -> None:
    """``model.train(training)``, then frozen units and dead parameters' modules back to eval."""
    model.train(training)
    if not training:
        return
    trainable_units = set(plan.spec(stage).trainable_units)
    for name, module in backbone_blocks(model):  # type: ignore[arg-type]
        if name not in trainable_units:
            module.eval()
    for prefix in dead_parameter_prefixes(model):  # type: ignore[arg-type]
        model.get_submodule(prefix).eval()


def split_embed(model: nn.Module, x: Tensor, frozen_prefix: int) -> Tensor:
    """``model.embed(x)`` with the first ``frozen_prefix`` backbone units run under no_grad."""
    units = backbone_blocks(model)  # type: ignore[arg-type]
    h = x
    if frozen_prefix > 0:
        with torch.no_grad():
            for _, unit in units[:frozen_prefix]:
                h = unit(h)
    for _, unit in units[frozen_prefix:]:
        h = unit(h)
    return h.mean(dim=(-2, -1))  # the model's global average pool (test_stages checks equality)


def trainability_fingerprint(model: nn.Module, group_names: dict[str, str]) -> str:
    """Hash of (name, requires_grad, group) for every parameter: a resume must reproduce it."""
    digest = hashlib.sha256()
    for name, param in model.named_parameters():
        digest.update(f"{name}:{int(param.requires_grad)}:{group_names.get(name, '-')};".encode())
    return digest.hexdigest()[:16]


@dataclass
class StageState:
    """Where the run is; saved in every checkpoint."""

    stage: int
    entered_epoch: int  # first epoch trained in this stage
    trigger: StageTrigger = StageTrigger.START
    reason: str = ""
    handled_commands: list[str] = field(default_factory=list)  # ids applied or refused (dedupe)
    pending_commands: list[dict[str, Any]] = field(default_factory=list)  # FORCE_STAGE awaiting a boundary
    transitions: list[dict[str, Any]] = field(default_factory=list)  # StageEvent dicts, oldest first
    paused_gates: list[int] = field(default_factory=list)  # stages whose gate already paused the run
    # gate stage -> the epoch whose boundary paused it; moving that gate's epoch past it re-arms the
    # pause (an operator who extends the stage is asked again when the gate is read next)
    paused_at: dict[int, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "entered_epoch": self.entered_epoch,
            "trigger": str(self.trigger),
            "reason": self.reason,
            "handled_commands": list(self.handled_commands),
            "pending_commands": [dict(c) for c in self.pending_commands],
            "transitions": [dict(t) for t in self.transitions],
            "paused_gates": list(self.paused_gates),
            "paused_at": {str(k): v for k, v in self.paused_at.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StageState:
        return cls(
            stage=int(data["stage"]),
            entered_epoch=int(data["entered_epoch"]),
            trigger=StageTrigger(data.get("trigger", StageTrigger.START)),
            reason=str(data.get("reason", "")),
            handled_commands=[str(c) for c in data.get("handled_commands", [])],
            pending_commands=[dict(c) for c in data.get("pending_commands", [])],
            transitions=[dict(t) for t in data.get("transitions", [])],
            paused_gates=[int(s) for s in data.get("paused_gates", [])],
            paused_at={int(k): int(v) for k, v in dict(data.get("paused_at", {})).items()},
        )


def gate_deadline(gate: StageGateConfig, epochs: int) -> int:
    """Last epoch before which a keep-trying gate may still be read (default: the last epoch)."""
    return gate.gate_deadline_epoch if gate.gate_deadline_epoch is not None else epochs


__all__ = [
    "FULL_STAGE",
    "BNPolicy",
    "GateFailPolicy",
    "PlanKind",
    "StagePlan",
    "StageSpec",
    "StageState",
    "Unit",
    "apply_stage",
    "build_plan",
    "gate_deadline",
    "is_optional",
    "model_units",
    "set_train_mode",
    "split_embed",
    "suffix_for_ratio",
    "trainability_fingerprint",
]

"""Stages on a model: ``build_plan`` turns a model and a config into a ``StagePlan`` and
``apply_stage`` brings a model to a stage (the plan and state records themselves, torch-free, live in
``stage_plan``; they are re-exported here).

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

import torch
from torch import Tensor, nn

from ocec_engine.config import GateFailPolicy, StageGateConfig, TrainConfig
from ocec_engine.errors import EngineError
from ocec_engine.model import backbone_blocks, dead_parameter_prefixes, head_parameter_prefixes
from ocec_engine.stage_plan import (
    FULL_STAGE,
    BNPolicy,
    PlanKind,
    StagePlan,
    StageSpec,
    StageState,
    Unit,
    config_gates,
    gate_deadline,
    is_optional,
)


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
    gates = config_gates(config)
    s2 = gates[2].settings
    suffix2 = suffix_for_ratio(units, s2.unfreeze_ratio)
    stages[2] = _spec(
        2, units, suffix2, head, order, _stage_lr(config, s2), s2.unfreeze_ratio, s2, gates[2].epoch
    )
    if 3 in gates:
        s3 = gates[3].settings
        suffix3 = suffix_for_ratio(units, s3.unfreeze_ratio)
        if len(suffix3) <= len(suffix2):
            raise EngineError(
                f"stage3 unfreeze_ratio {s3.unfreeze_ratio} unfreezes nothing beyond stage 2 "
                f"({', '.join(u.name for u in suffix2)}); use a larger ratio (1.0 = whole backbone)"
            )
        stages[3] = _spec(
            3, units, suffix3, head, order, _stage_lr(config, s3), s3.unfreeze_ratio, s3, gates[3].epoch
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


def split_embed(model: nn.Module, x: Tensor, frozen_prefix: int, frozen: nn.Module | None = None) -> Tensor:
    """``model.embed(x)`` with the first ``frozen_prefix`` backbone units run under no_grad
    (``frozen``: those units as one module, e.g. ``fused.fused_prefix``, run in their place)."""
    units = backbone_blocks(model)  # type: ignore[arg-type]
    h = x
    if frozen is not None:
        with torch.no_grad():
            h = frozen(h)
    elif frozen_prefix > 0:
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

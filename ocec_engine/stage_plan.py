"""Stages as plain data, free of torch: the ``StagePlan`` (what each stage trains, at which lr,
behind which gate), the ``StageState`` (where the run is), and the gates a config sets up.

``stages.py`` builds a plan from a model (torch); ``gates.py`` reads the gates. Both, and the tests'
fake engine, take a stage's gate epoch from ``gate_epoch`` here: the one engine copy of that rule
(``jobstore.gates`` holds the service's copy; a test compares the two).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ocec_engine.config import StageGateConfig, TrainConfig
from ocec_engine.errors import EngineError
from ocec_engine.hooks import StageTrigger

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

    @property
    def gates(self) -> dict[int, Gate]:
        """The gates this plan reads, by the stage they lead into (none for a full fine-tune)."""
        if self.kind is not PlanKind.PROGRESSIVE:
            return {}
        return {
            s: Gate(spec.gate, spec.gate_epoch) for s, spec in self.stages.items() if spec.gate is not None
        }

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


@dataclass(frozen=True)
class Gate:
    """The gate that leads into a stage: its settings and the earliest epoch it is read."""

    settings: StageGateConfig
    epoch: int | None  # None: stage 2 is then entered only when forced; stage 3 from any epoch


def gate_epoch(config: TrainConfig, stage: int) -> int | None:
    """The earliest epoch the gate into ``stage`` is read: stage 2's is ``unfreeze_backbone_epoch``,
    stage 3's is ``stage3.epoch`` (None when unset, or for a stage without a gate)."""
    if stage == 2:
        return config.unfreeze_backbone_epoch
    if stage == 3 and config.stage3 is not None:
        return config.stage3.epoch
    return None


def config_gates(config: TrainConfig) -> dict[int, Gate]:
    """The gates of a progressive run by the stage they lead into (none for a full fine-tune)."""
    if not config.freeze_backbone:
        return {}
    sections = {2: config.stage2, 3: config.stage3}
    return {s: Gate(g, gate_epoch(config, s)) for s, g in sections.items() if g is not None}

"""Presets of the new-job form: starting points a user picks instead of typing a recipe.

Each preset is a set of spec values applied over the spec's defaults (dotted names, as the form's inputs);
``True`` for an optional section's name (``race``) switches that section on with its defaults.
The figures behind "recommended" are the progressive-vs-full benchmark's (README, Benchmarks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Preset:
    key: str
    label: str
    why: str
    values: dict[str, Any] = field(default_factory=dict)


# The guide's gate epoch for a 30-epoch budget (the spec leaves it unset: no stage 2 unless asked).
GUIDE = {"unfreeze_backbone_epoch": 11}

PRESETS = (
    Preset(
        "guide",
        "The guide's recipe",
        "Stage 1 trains the head on a frozen backbone; at the gate epoch, if val F1 ≥ 0.80, stage 2 "
        "unfreezes the back half of the backbone at lr x 0.05.",
        GUIDE,
    ),
    Preset(
        "recommended",
        "Progressive, as the benchmark recommends",
        "The guide's stages with stage 2 at lr x 1 (x 0.05 barely moves the model), entered even when "
        "the 0.80 gate stays shut (it never opened at the largest shift).",
        {**GUIDE, "stage2.lr_factor": 1.0, "stage2.on_gate_fail": "proceed"},
    ),
    Preset(
        "full",
        "Full fine-tune",
        "Every layer trains from the first epoch: the benchmark's best final F1 at every shift.",
        {"freeze_backbone": False},
    ),
    Preset(
        "race",
        "Race the recipes (keep the winner)",
        "Stage 1 once, then the guide's recipe, the back half and the whole backbone at lr x 1 and a full "
        "fine-tune from model A race from it; successive halving cuts the weakest at each rung "
        "(docs/race.md). Needs a pretrained model A.",
        {**GUIDE, "race": True},
    ),
)

"""The gate-epoch rule of a job spec: which setting says when the gate into a stage is first read.

Stage 2's gate epoch is ``unfreeze_backbone_epoch``, stage 3's is ``stage3.epoch`` (the spec refuses a
``stage2.epoch``). The engine, which may not import jobstore, keeps its own copy
(``ocec_engine.stage_plan.gate_epoch``); ``tests/worker/test_gate_epoch_mirror.py`` fails when the two
drift.
"""

from __future__ import annotations

from typing import Any

from jobstore.spec import JobSpec, StageGateSpec


def gate_settings(spec: JobSpec, stage: int) -> StageGateSpec | None:
    """The settings of the gate into ``stage`` (2, or 3 when configured); None for any other."""
    return {2: spec.stage2, 3: spec.stage3}.get(stage)


def gate_epoch(spec: JobSpec, stage: int) -> int | None:
    """The earliest epoch the gate into ``stage`` is read (None: unset, or no such gate)."""
    if stage == 2:
        return spec.unfreeze_backbone_epoch
    if stage == 3 and spec.stage3 is not None:
        return spec.stage3.epoch
    return None


def gate_epoch_override(stage: int, epoch: int) -> dict[str, Any]:
    """The resume override that moves the gate into ``stage`` (2 or 3) to ``epoch``."""
    if stage == 2:
        return {"unfreeze_backbone_epoch": epoch}
    if stage == 3:
        return {"stage3": {"epoch": epoch}}
    raise ValueError(f"stage {stage} has no gate (gates lead into stages 2 and 3)")

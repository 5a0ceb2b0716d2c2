"""The gate-epoch rule has two copies, one per side of the import wall: ``jobstore.gates`` (status,
decisions) and ``ocec_engine.stage_plan`` (plan, gates, the fake engine). A spec and the engine config
the worker builds from it must give every stage the same gate epoch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from jobstore import gates
from jobstore.repo.resume import merge_overrides
from jobstore.settings import Settings
from jobstore.spec import JobSpec, spec_dict
from ocec_engine import stage_plan
from worker.engine_config import build_train_config, plan_run

SPECS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "unfreeze epoch": {"unfreeze_backbone_epoch": 3},
    "stage 3 any epoch": {"unfreeze_backbone_epoch": 2, "stage3": {}},
    "stage 3 epoch": {"unfreeze_backbone_epoch": 2, "stage3": {"epoch": 7}},
    "start in stage 2": {"stage": 2, "stage3": {"epoch": 4}, "stage2": {"on_gate_fail": "pause"}},
    "full fine-tune": {"freeze_backbone": False, "unfreeze_backbone_epoch": 5},
}
STAGES = (1, 2, 3)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    s = Settings(home=tmp_path)
    (s.data_root / "setB").mkdir(parents=True)
    return s


def _both(settings: Settings, spec: dict[str, Any]) -> tuple[list[int | None], list[int | None]]:
    """Each stage's gate epoch by the jobstore rule and by the engine rule on the worker's config."""
    config = build_train_config(plan_run(spec, {}), "job1", settings)
    validated = JobSpec.model_validate(spec)
    jobstore_side = [gates.gate_epoch(validated, s) for s in STAGES]
    return jobstore_side, [stage_plan.gate_epoch(config, s) for s in STAGES]


@pytest.mark.parametrize("values", SPECS.values(), ids=SPECS.keys())
def test_jobstore_and_engine_agree_on_the_gate_epoch(settings: Settings, values: dict[str, Any]) -> None:
    jobstore_side, engine_side = _both(settings, {"data_root": "setB", **values})
    assert jobstore_side == engine_side
    assert jobstore_side[1] == values.get("unfreeze_backbone_epoch")  # the table is not all None


@pytest.mark.parametrize("stage", [2, 3])
def test_moving_a_gate_moves_it_on_both_sides(settings: Settings, stage: int) -> None:
    """An ``extend`` decision's override (``gate_epoch_override``) lands where both rules read it."""
    spec = {"data_root": "setB", "unfreeze_backbone_epoch": 2, "stage3": {"epoch": 3}}
    moved = spec_dict(JobSpec.model_validate(merge_overrides(spec, gates.gate_epoch_override(stage, 9))))
    jobstore_side, engine_side = _both(settings, moved)
    assert jobstore_side[stage - 1] == engine_side[stage - 1] == 9
    assert jobstore_side == engine_side

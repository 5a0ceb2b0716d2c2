"""The torch-free half of the stages: gate logic importable without torch, one gate-epoch rule."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ocec_engine.config import GateFailPolicy, StageGateConfig, TrainConfig, default_stage3
from ocec_engine.model import ModelConfig, build_model
from ocec_engine.stage_plan import Gate, config_gates, gate_epoch
from ocec_engine.stages import build_plan

PAUSE = StageGateConfig(on_gate_fail=GateFailPolicy.PAUSE, gate_deadline_epoch=6)
CONFIGS = {
    "defaults": {},
    "unfreeze epoch": {"unfreeze_backbone_epoch": 3},
    "stage 3 any epoch": {"unfreeze_backbone_epoch": 2, "stage3": default_stage3()},
    "stage 3 epoch": {"stage3": StageGateConfig(gate_f1=0.9, unfreeze_ratio=1.0, epoch=7), "stage2": PAUSE},
    "start in stage 2": {"stage": 2, "stage3": StageGateConfig(unfreeze_ratio=1.0, epoch=4)},
    "full fine-tune": {"freeze_backbone": False, "unfreeze_backbone_epoch": 5},
}


def _config(**values: object) -> TrainConfig:
    return TrainConfig(data_root="d", output_dir="o", **values)  # type: ignore[arg-type]


def test_gate_logic_imports_without_torch() -> None:
    code = "import sys, ocec_engine.gates, ocec_engine.stage_plan; assert 'torch' not in sys.modules"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr


@pytest.mark.parametrize("values", CONFIGS.values(), ids=CONFIGS.keys())
def test_a_built_plan_reads_the_gates_its_config_sets_up(values: dict[str, object]) -> None:
    """The engine's plan and the fake engine's ``config_gates`` read the same gates."""
    config = _config(**values)
    assert build_plan(build_model(ModelConfig()), config).gates == config_gates(config)


def test_gate_epoch_of_each_stage() -> None:
    stage3 = StageGateConfig(epoch=7)
    config = _config(unfreeze_backbone_epoch=3, stage2=StageGateConfig(epoch=9), stage3=stage3)
    assert [gate_epoch(config, s) for s in (1, 2, 3)] == [None, 3, 7]  # stage2.epoch plays no part
    assert config_gates(config) == {2: Gate(config.stage2, 3), 3: Gate(stage3, 7)}
    assert gate_epoch(_config(unfreeze_backbone_epoch=3), 3) is None  # no stage 3 configured
    assert config_gates(_config(freeze_backbone=False, unfreeze_backbone_epoch=3)) == {}

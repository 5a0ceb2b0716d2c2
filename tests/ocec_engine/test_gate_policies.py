"""Gate reads and the four gate-failure policies, as decisions and as whole runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from loop_helpers import RecordingHooks, config, load_state

from ocec_engine.config import GateFailPolicy, StageGateConfig, TrainConfig, default_stage3
from ocec_engine.gates import GateAction, read_gate
from ocec_engine.hooks import Outcome, StageTrigger
from ocec_engine.loop import train
from ocec_engine.model import ModelConfig, build_model
from ocec_engine.stages import StagePlan, StageState, build_plan

NEVER = 1.0  # no tiny run reaches val F1 1.0 in a few head-only epochs (asserted where it matters)


def _plan(policy: GateFailPolicy = GateFailPolicy.KEEP_TRYING, **kw: object) -> StagePlan:
    gate = StageGateConfig(gate_f1=0.8, on_gate_fail=policy, gate_deadline_epoch=kw.pop("deadline", None))  # type: ignore[arg-type]
    cfg = TrainConfig(data_root="d", output_dir="o", unfreeze_backbone_epoch=3, stage2=gate, **kw)  # type: ignore[arg-type]
    return build_plan(build_model(ModelConfig()), cfg)


def _state(stage: int = 1, entered: int = 1, trigger: StageTrigger = StageTrigger.START) -> StageState:
    return StageState(stage=stage, entered_epoch=entered, trigger=trigger)


def test_no_read_before_the_unfreeze_epoch_or_without_one() -> None:
    assert read_gate(_plan().gates, _state(), 2, 10, 0.9) is None
    no_u = build_plan(build_model(ModelConfig()), TrainConfig(data_root="d", output_dir="o"))
    assert read_gate(no_u.gates, _state(), 5, 10, 0.9) is None


def test_gate_opens_on_the_previous_f1() -> None:
    decision = read_gate(_plan().gates, _state(), 3, 10, 0.8)
    assert decision is not None and decision.action is GateAction.ENTER
    assert (decision.check.stage, decision.check.f1, decision.check.passed) == (2, 0.8, True)
    assert "0.8000 >= 0.8" in decision.check.reason


@pytest.mark.parametrize(
    ("policy", "epoch", "action"),
    [
        (GateFailPolicy.KEEP_TRYING, 3, GateAction.WAIT),
        (GateFailPolicy.KEEP_TRYING, 10, GateAction.WAIT),  # default deadline: the last epoch
        (GateFailPolicy.KEEP_TRYING, 11, GateAction.STOP),
        (GateFailPolicy.PAUSE, 3, GateAction.PAUSE),
        (GateFailPolicy.PROCEED, 3, GateAction.PROCEED),
        (GateFailPolicy.STOP, 3, GateAction.STOP),
    ],
)
def test_failed_gate_follows_the_policy(policy: GateFailPolicy, epoch: int, action: GateAction) -> None:
    decision = read_gate(_plan(policy).gates, _state(), epoch, 10, 0.5)
    assert decision is not None
    assert decision.action is action
    assert decision.check.passed is False
    assert decision.check.policy == policy.value
    assert decision.check.action == action.value


def test_keep_trying_deadline_epoch() -> None:
    plan = _plan(deadline=4)
    assert read_gate(plan.gates, _state(), 4, 10, 0.5).action is GateAction.WAIT  # type: ignore[union-attr]
    assert read_gate(plan.gates, _state(), 5, 10, 0.5).action is GateAction.STOP  # type: ignore[union-attr]


def test_pause_happens_once_then_keeps_trying() -> None:
    state = _state()
    state.paused_gates.append(2)
    decision = read_gate(_plan(GateFailPolicy.PAUSE).gates, state, 4, 10, 0.5)
    assert decision is not None and decision.action is GateAction.WAIT
    assert "keep trying" in decision.check.reason


def test_moving_the_gate_epoch_past_the_pause_re_arms_it() -> None:
    state = _state()
    state.paused_gates.append(2)
    state.paused_at[2] = 3  # paused at the boundary before epoch 3 = the plan's gate epoch
    assert read_gate(_plan(GateFailPolicy.PAUSE).gates, state, 4, 10, 0.5).action is GateAction.WAIT  # type: ignore[union-attr]
    gate = StageGateConfig(gate_f1=0.8, on_gate_fail=GateFailPolicy.PAUSE)
    moved = TrainConfig(data_root="d", output_dir="o", unfreeze_backbone_epoch=5, stage2=gate)
    extended = build_plan(build_model(ModelConfig()), moved)  # the operator extended stage 1
    assert read_gate(extended.gates, state, 4, 10, 0.5) is None
    assert read_gate(extended.gates, state, 5, 10, 0.5).action is GateAction.PAUSE  # type: ignore[union-attr]


def test_stage3_gate_needs_a_stage2_epoch() -> None:
    plan = _plan(stage3=StageGateConfig(gate_f1=0.85, unfreeze_ratio=1.0, lr_factor=0.025))
    entered_now = _state(stage=2, entered=5, trigger=StageTrigger.GATE)
    assert read_gate(plan.gates, entered_now, 5, 10, 0.99) is None
    decision = read_gate(plan.gates, entered_now, 6, 10, 0.9)
    assert decision is not None and decision.action is GateAction.ENTER and decision.check.stage == 3


def test_starting_stage_may_open_on_the_start_evaluation() -> None:
    plan = _plan()
    object.__setattr__(plan.spec(2), "gate_epoch", 1)
    decision = read_gate(plan.gates, _state(), 1, 10, 0.95)
    assert decision is not None and decision.action is GateAction.ENTER


# ------------------------------------------------------------------ whole runs


def _gate_cfg(data: Path, out: Path, policy: GateFailPolicy, **kw: object) -> TrainConfig:
    deadline = kw.pop("deadline", None)
    gate = StageGateConfig(gate_f1=NEVER, on_gate_fail=policy, gate_deadline_epoch=deadline)  # type: ignore[arg-type]
    return config(data, out, unfreeze_backbone_epoch=2, stage2=gate, **kw)


def _assert_never_passed(hooks: RecordingHooks) -> None:
    assert hooks.gates and all(g.f1 is not None and g.f1 < NEVER for g in hooks.gates)


def test_keep_trying_until_the_deadline_then_stop(tiny_parquet: Path, tmp_path: Path) -> None:
    hooks = RecordingHooks()
    result = train(_gate_cfg(tiny_parquet, tmp_path, GateFailPolicy.KEEP_TRYING, epochs=5, deadline=3), hooks)
    _assert_never_passed(hooks)
    assert [(g.epoch, g.action) for g in hooks.gates] == [(2, "wait"), (3, "wait"), (4, "stop")]
    assert result.outcome is Outcome.STOPPED and result.epoch == 3
    assert result.gate == hooks.gates[-1]
    assert result.onnx_path is not None  # the best model is kept and exported
    assert all(m.stage == 1 for m in hooks.epochs)


def test_keep_trying_to_the_last_epoch_by_default(tiny_parquet: Path, tmp_path: Path) -> None:
    hooks = RecordingHooks()
    result = train(_gate_cfg(tiny_parquet, tmp_path, GateFailPolicy.KEEP_TRYING, epochs=3), hooks)
    _assert_never_passed(hooks)
    assert [(g.epoch, g.action) for g in hooks.gates] == [(2, "wait"), (3, "wait")]
    assert result.outcome is Outcome.STOPPED and result.epoch == 3
    assert "never opened" in result.reason


def test_pause_awaits_a_decision_and_a_plain_resume_keeps_trying(tiny_parquet: Path, tmp_path: Path) -> None:
    hooks = RecordingHooks()
    cfg = _gate_cfg(tiny_parquet, tmp_path, GateFailPolicy.PAUSE, epochs=3)
    result = train(cfg, hooks)
    _assert_never_passed(hooks)
    assert result.outcome is Outcome.AWAITING_DECISION and result.epoch == 1
    assert result.gate is not None and result.gate.action == "pause"
    assert load_state(tmp_path / "last.pt")["stage_state"]["paused_gates"] == [2]
    again = RecordingHooks()
    resumed = train(TrainConfig.from_dict({**cfg.to_dict(), "resume": str(tmp_path / "last.pt")}), again)
    assert [g.action for g in again.gates] == ["wait", "wait"]
    assert resumed.epoch == 3 and all(m.stage == 1 for m in again.epochs)


def test_extending_the_stage_pauses_again_at_the_moved_gate(tiny_parquet: Path, tmp_path: Path) -> None:
    cfg = _gate_cfg(tiny_parquet, tmp_path, GateFailPolicy.PAUSE, epochs=3)
    train(cfg, RecordingHooks())
    extended = {
        **cfg.to_dict(),
        "resume": str(tmp_path / "last.pt"),
        "unfreeze_backbone_epoch": 3,
        "epochs": 4,
    }
    hooks = RecordingHooks()
    result = train(TrainConfig.from_dict(extended), hooks)
    _assert_never_passed(hooks)
    assert [(g.epoch, g.action) for g in hooks.gates] == [(3, "pause")]
    assert result.outcome is Outcome.AWAITING_DECISION and [m.epoch for m in hooks.epochs] == [2]


def test_pause_then_resume_into_stage_two(tiny_parquet: Path, tmp_path: Path) -> None:
    cfg = _gate_cfg(tiny_parquet, tmp_path, GateFailPolicy.PAUSE, epochs=3)
    train(cfg, RecordingHooks())
    hooks = RecordingHooks()
    train(
        TrainConfig.from_dict({**cfg.to_dict(), "resume": str(tmp_path / "last.pt"), "resume_stage": 2}),
        hooks,
    )
    assert [(e.to_stage, e.epoch, e.trigger) for e in hooks.transitions()] == [(2, 2, StageTrigger.RESUME)]
    assert [m.stage for m in hooks.epochs] == [2, 2]


def test_proceed_enters_the_stage_anyway(tiny_parquet: Path, tmp_path: Path) -> None:
    hooks = RecordingHooks()
    result = train(_gate_cfg(tiny_parquet, tmp_path, GateFailPolicy.PROCEED, epochs=3), hooks)
    _assert_never_passed(hooks)
    assert [(e.to_stage, e.epoch, e.trigger) for e in hooks.transitions()] == [(2, 2, StageTrigger.POLICY)]
    assert [g.action for g in hooks.gates] == ["proceed"]  # no more reads once in stage 2
    assert result.outcome is Outcome.COMPLETED


def test_stop_ends_the_run_at_the_first_failed_read(tiny_parquet: Path, tmp_path: Path) -> None:
    hooks = RecordingHooks()
    result = train(_gate_cfg(tiny_parquet, tmp_path, GateFailPolicy.STOP, epochs=4), hooks)
    _assert_never_passed(hooks)
    assert result.outcome is Outcome.STOPPED and result.epoch == 1
    assert [g.action for g in hooks.gates] == ["stop"]
    assert result.best_checkpoint is not None and result.onnx_path is not None


def test_stage_three_after_stage_two(tiny_parquet: Path, tmp_path: Path) -> None:
    stage3 = StageGateConfig(gate_f1=0.0, unfreeze_ratio=1.0, lr_factor=0.025)
    hooks = RecordingHooks()
    train(config(tiny_parquet, tmp_path, unfreeze_backbone_epoch=2, stage3=stage3, epochs=4), hooks)
    assert [(e.from_stage, e.to_stage, e.epoch) for e in hooks.transitions()] == [(1, 2, 2), (2, 3, 3)]
    assert [m.stage for m in hooks.epochs] == [1, 2, 3, 3]
    assert hooks.epochs[2].lrs == {
        "head": pytest.approx(2e-3 * 0.025),
        "backbone": pytest.approx(2e-3 * 0.025),
    }
    assert "stem.0.weight" in hooks.transitions()[1].unfrozen
    assert hooks.epochs[2].trainable_params == sum(
        t.numel()
        for n, t in load_state(tmp_path / "last.pt")["model_state"].items()
        if n.endswith(("weight", "bias")) and not n.startswith("head.") and t.dtype == torch.float32
    )


def test_stage_three_waits_for_one_stage_two_epoch(tiny_parquet: Path, tmp_path: Path) -> None:
    """``--stage 2 --stage3``: the start-of-run F1 opens no stage-3 gate; the first stage-2 epoch's does."""
    plan = _plan(stage3=default_stage3())
    assert read_gate(plan.gates, _state(stage=2), 1, 10, 0.99) is None  # only the start evaluation so far
    entered = read_gate(plan.gates, _state(stage=2), 2, 10, 0.99)
    assert entered is not None and entered.action is GateAction.ENTER
    stage3 = StageGateConfig(gate_f1=0.0, unfreeze_ratio=1.0, lr_factor=0.025)
    hooks = RecordingHooks()
    train(config(tiny_parquet, tmp_path, stage=2, stage3=stage3, epochs=2), hooks)
    assert [(g.epoch, g.stage, g.action) for g in hooks.gates] == [(2, 3, "enter")]
    assert [(e.from_stage, e.to_stage, e.epoch) for e in hooks.transitions()] == [(2, 3, 2)]
    assert [m.stage for m in hooks.epochs] == [2, 3]


def test_an_optional_stage_whose_gate_stays_shut_completes_with_a_note(
    tiny_parquet: Path, tmp_path: Path
) -> None:
    stage3 = StageGateConfig(gate_f1=NEVER, unfreeze_ratio=1.0, lr_factor=0.025, gate_deadline_epoch=2)
    hooks = RecordingHooks()
    result = train(config(tiny_parquet, tmp_path, stage=2, stage3=stage3, epochs=4), hooks)
    _assert_never_passed(hooks)
    # read after epoch 1, given up after the deadline (epoch 2); stage 2 trains on to the budget
    assert [(g.epoch, g.action) for g in hooks.gates] == [(2, "wait"), (3, "skip")]
    assert [m.stage for m in hooks.epochs] == [2, 2, 2, 2]
    assert result.outcome is Outcome.COMPLETED and result.epoch == 4 and result.onnx_path is not None
    assert "optional stage 3 not entered" in result.reason and "never opened" in result.reason

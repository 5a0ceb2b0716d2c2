"""Stage plans: which units each stage trains, apply_stage idempotence, BN modes, the no-grad prefix."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ocec_engine.config import MarginMethod, StageGateConfig, TrainConfig, default_stage3
from ocec_engine.errors import EngineError
from ocec_engine.hooks import StageTrigger
from ocec_engine.model import ModelConfig, OCECNet, build_model
from ocec_engine.stages import (
    PlanKind,
    StageState,
    apply_stage,
    build_plan,
    model_units,
    set_train_mode,
    split_embed,
    suffix_for_ratio,
    trainability_fingerprint,
)


def _model(method: MarginMethod = MarginMethod.COSFACE, **kw: int) -> OCECNet:
    torch.manual_seed(0)
    return build_model(ModelConfig(margin_method=method, **kw))


def _config(**kw: object) -> TrainConfig:
    return TrainConfig(data_root="d", output_dir="o", unfreeze_backbone_epoch=3, **kw)  # type: ignore[arg-type]


def test_half_backbone_from_the_back_is_features_2_and_3_like_ocec() -> None:
    plan = build_plan(_model(), _config())
    spec = plan.spec(2)
    assert spec.trainable_units == ("features.2", "features.3")
    assert plan.backbone_elements == 11264
    assert spec.ratio_achieved == pytest.approx(7456 / 11264)
    assert spec.trainable[0] == "features.2.depthwise.0.weight"
    assert spec.trainable[-1] == "margin_head.weight"
    assert plan.frozen_prefix(2) == 3  # stem, features.0, features.1


@pytest.mark.parametrize(
    ("ratio", "units"),
    [
        (0.01, ["features.3"]),
        (4928 / 11264, ["features.3"]),  # exactly one block's share
        (4929 / 11264, ["features.2", "features.3"]),
        (0.67, ["features.1", "features.2", "features.3"]),
        (1.0, ["stem", "features.0", "features.1", "features.2", "features.3"]),
    ],
)
def test_smallest_suffix_reaching_the_ratio(ratio: float, units: list[str]) -> None:
    got = suffix_for_ratio(model_units(_model()), ratio)
    assert [u.name for u in got] == units


@pytest.mark.parametrize("ratio", [0.0, -0.1, 1.01])
def test_bad_ratio_is_refused(ratio: float) -> None:
    with pytest.raises(EngineError, match="ratio"):
        suffix_for_ratio(model_units(_model()), ratio)


def test_units_keep_conv_and_bn_together() -> None:
    units = {u.name: u.params for u in model_units(_model())}
    assert units["stem"] == ("stem.0.weight", "stem.1.weight", "stem.1.bias")
    assert "features.2.pointwise.1.bias" in units["features.2"]


def test_stage1_trains_only_the_live_head() -> None:
    assert build_plan(_model(), _config()).spec(1).trainable == ("margin_head.weight",)
    none_plan = build_plan(_model(MarginMethod.NONE), _config(margin_method=MarginMethod.NONE))
    assert none_plan.spec(1).trainable == ("head.0.weight", "head.0.bias", "head.2.weight", "head.2.bias")


def test_stage_lrs_follow_the_configured_rules() -> None:
    plan = build_plan(_model(), _config(lr=1e-4, stage3=default_stage3()))
    assert plan.spec(1).lr == 1e-4
    assert plan.spec(2).lr == pytest.approx(5e-6)
    assert plan.spec(3).lr == pytest.approx(2.5e-6)
    explicit = build_plan(_model(), _config(stage2=StageGateConfig(lr=3e-5)))
    assert explicit.spec(2).lr == 3e-5
    assert explicit.spec(2).lr_rule == "explicit 3e-05"


def test_stage3_must_unfreeze_something_new() -> None:
    with pytest.raises(EngineError, match="nothing beyond stage 2"):
        build_plan(_model(), _config(stage3=StageGateConfig(unfreeze_ratio=0.25)))


def test_full_finetune_plan_is_one_stage_with_everything() -> None:
    model = _model()
    plan = build_plan(model, _config(freeze_backbone=False))
    assert plan.kind is PlanKind.FULL
    assert list(plan.stages) == [1]
    assert plan.frozen_prefix(1) == 0
    live = [n for n, _ in model.named_parameters() if not n.startswith("head.")]
    assert list(plan.spec(1).trainable) == live
    with pytest.raises(EngineError):
        build_plan(model, _config(freeze_backbone=False, stage=2))


def test_start_stage_must_exist() -> None:
    with pytest.raises(EngineError, match="cannot start in stage 3"):
        build_plan(_model(), _config(stage=3))


def _snapshot(model: nn.Module) -> dict[str, bool]:
    return {n: p.requires_grad for n, p in model.named_parameters()}


def test_apply_stage_is_idempotent_from_any_state() -> None:
    cfg = _config(stage3=default_stage3())
    reference: dict[int, dict[str, bool]] = {}
    for stage in (1, 2, 3):
        model = _model()
        plan = build_plan(model, cfg)
        apply_stage(model, plan, stage)
        reference[stage] = _snapshot(model)
    model = _model()
    plan = build_plan(model, cfg)
    for stage in (3, 1, 2, 2, 3, 1, 1):
        for p in model.parameters():
            p.grad = torch.ones_like(p)
        names = apply_stage(model, plan, stage)
        assert _snapshot(model) == reference[stage]
        assert names == list(plan.spec(stage).trainable)
        assert all(p.grad is None for p in model.parameters() if not p.requires_grad)


def test_train_mode_keeps_frozen_bn_and_dead_head_in_eval() -> None:
    model = _model()
    plan = build_plan(model, _config())
    for stage, training_units in ((1, set()), (2, {"features.2", "features.3"})):
        apply_stage(model, plan, stage)
        set_train_mode(model, plan, stage)
        for name, module in model.named_modules():
            if isinstance(module, nn.BatchNorm2d | nn.BatchNorm1d):
                unit = ".".join(name.split(".")[:2]) if name.startswith("features") else name.split(".")[0]
                assert module.training == (unit in training_units), name
        assert model.embedding_dropout.training
        assert not model.head.training  # dead with a margin head
    set_train_mode(model, plan, 2, training=False)
    assert not any(m.training for m in model.modules())


def test_split_embed_matches_embed_and_builds_no_graph_through_the_prefix() -> None:
    model = _model()
    plan = build_plan(model, _config())
    apply_stage(model, plan, 2)
    set_train_mode(model, plan, 2, training=False)
    x = torch.randn(4, 3, 32, 64)
    for prefix in range(len(plan.units) + 1):
        assert torch.equal(split_embed(model, x, prefix), model.embed(x))
    emb = split_embed(model, x, plan.frozen_prefix(2))
    emb.sum().backward()
    grads = {n for n, p in model.named_parameters() if p.grad is not None}
    assert grads == {n for n in plan.spec(2).trainable if n != "margin_head.weight"}
    stage1 = split_embed(model, x, len(plan.units))
    assert not stage1.requires_grad  # stage 1: the whole backbone ran without autograd


def test_stage_state_round_trip() -> None:
    state = StageState(
        stage=2,
        entered_epoch=5,
        trigger=StageTrigger.GATE,
        reason="val F1 0.83 >= 0.8",
        handled_commands=["a"],
        pending_commands=[{"kind": "force_stage", "command_id": "b", "params": {"stage": 3}}],
        transitions=[{"to_stage": 2}],
        paused_gates=[2],
    )
    assert StageState.from_dict(state.to_dict()) == state


def test_trainability_fingerprint_sees_requires_grad_and_groups() -> None:
    model = _model()
    plan = build_plan(model, _config())
    apply_stage(model, plan, 1)
    one = trainability_fingerprint(model, {"margin_head.weight": "head"})
    assert one == trainability_fingerprint(model, {"margin_head.weight": "head"})
    assert one != trainability_fingerprint(model, {"margin_head.weight": "backbone"})
    apply_stage(model, plan, 2)
    assert one != trainability_fingerprint(model, {"margin_head.weight": "head"})

"""Name-keyed optimizer groups, Adam state carried over by name, and the stage lr schedule."""

from __future__ import annotations

import pytest
import torch

from ocec_engine.config import TrainConfig
from ocec_engine.errors import CheckpointError
from ocec_engine.model import ModelConfig, OCECNet, build_model
from ocec_engine.optim import (
    LrSchedule,
    build_optimizer,
    load_optimizer_state,
    manifest,
    set_lrs,
)
from ocec_engine.stages import StagePlan, apply_stage, build_plan


def _setup() -> tuple[OCECNet, StagePlan]:
    torch.manual_seed(0)
    model = build_model(ModelConfig())
    plan = build_plan(model, TrainConfig(data_root="d", output_dir="o", unfreeze_backbone_epoch=2))
    return model, plan


def _step(model: OCECNet, optimizer: torch.optim.Optimizer) -> None:
    optimizer.zero_grad(set_to_none=True)
    x = torch.randn(8, 3, 32, 64)
    y = torch.randint(0, 2, (8,))
    torch.nn.functional.cross_entropy(model.train_logits(model.embed(x), y), y).backward()
    optimizer.step()


def test_manifest_groups_by_name_without_frozen_params() -> None:
    model, plan = _setup()
    assert manifest(model, plan.head, plan.spec(1).trainable) == {"head": ["margin_head.weight"]}
    groups = manifest(model, plan.head, plan.spec(2).trainable)
    assert list(groups) == ["head", "backbone"]
    assert groups["backbone"][0] == "features.2.depthwise.0.weight"
    assert len(groups["backbone"]) == 12
    optimizer = build_optimizer(model, groups, 1e-3, 1e-4)
    in_optimizer = {id(p) for g in optimizer.param_groups for p in g["params"]}
    for name, param in model.named_parameters():
        assert (id(param) in in_optimizer) == (name in plan.spec(2).trainable)
    assert [g["name"] for g in optimizer.param_groups] == ["head", "backbone"]


def test_rebuild_keeps_head_adam_state_and_starts_new_params_fresh() -> None:
    model, plan = _setup()
    apply_stage(model, plan, 1)
    first = build_optimizer(model, manifest(model, plan.head, plan.spec(1).trainable), 1e-3, 0.0)
    _step(model, first)
    head = model.margin_head.weight
    saved = {k: v.clone() for k, v in first.state[head].items()}
    apply_stage(model, plan, 2)
    second = build_optimizer(
        model, manifest(model, plan.head, plan.spec(2).trainable), 5e-5, 0.0, previous=first
    )
    assert all(torch.equal(second.state[head][k], saved[k]) for k in saved)
    assert model.features[3].pointwise[0].weight not in second.state


def test_optimizer_state_round_trips_by_name() -> None:
    model, plan = _setup()
    apply_stage(model, plan, 2)
    groups = manifest(model, plan.head, plan.spec(2).trainable)
    optimizer = build_optimizer(model, groups, 1e-3, 1e-4)
    _step(model, optimizer)
    state = optimizer.state_dict()
    restored = build_optimizer(model, groups, 1e-3, 1e-4)
    assert load_optimizer_state(restored, state, "ckpt") == []
    for param in optimizer.state:
        for key, value in optimizer.state[param].items():
            assert torch.equal(restored.state[param][key], value)


def test_optimizer_state_maps_by_name_when_groups_differ() -> None:
    model, plan = _setup()
    apply_stage(model, plan, 1)
    stage1 = build_optimizer(model, manifest(model, plan.head, plan.spec(1).trainable), 1e-3, 0.0)
    _step(model, stage1)
    apply_stage(model, plan, 2)
    stage2 = build_optimizer(model, manifest(model, plan.head, plan.spec(2).trainable), 1e-3, 0.0)
    missing = load_optimizer_state(stage2, stage1.state_dict(), "ckpt")
    assert missing == list(plan.spec(2).trainable[:-1])  # every backbone param; the head restored
    assert torch.equal(
        stage2.state[model.margin_head.weight]["exp_avg"], stage1.state_dict()["state"][0]["exp_avg"]
    )


def test_optimizer_state_without_names_is_a_checkpoint_error() -> None:
    model, plan = _setup()
    optimizer = build_optimizer(model, manifest(model, plan.head, plan.spec(1).trainable), 1e-3, 0.0)
    foreign = {"state": {}, "param_groups": [{"params": [0], "lr": 1e-3}]}  # OCEC: no param_names
    with pytest.raises(CheckpointError, match="no parameter names"):
        load_optimizer_state(optimizer, foreign, "ocec.pt")


def test_set_lrs_reports_per_named_group() -> None:
    model, plan = _setup()
    optimizer = build_optimizer(model, manifest(model, plan.head, plan.spec(2).trainable), 1.0, 0.0)
    assert set_lrs(optimizer, 5e-6) == {"head": 5e-6, "backbone": 5e-6}


def test_warmup_is_linear_over_the_first_epochs_only() -> None:
    schedule = LrSchedule(base_lr=1e-3, warmup_epochs=4)
    assert [schedule.lr_for(e) for e in (1, 2, 3, 4, 5)] == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3])
    schedule.rebase(5e-5)  # a transition during warm-up: the stage lr at once
    assert schedule.lr_for(2) == 5e-5


def test_plateau_halves_after_patience_and_resets_at_a_transition() -> None:
    schedule = LrSchedule(base_lr=1e-3)
    for epoch, loss in enumerate([1.0, 0.9, 0.95, 0.95], start=1):
        schedule.step(epoch, loss)
    assert schedule.scale == 1.0  # 3 bad epochs are needed (> patience 2)
    schedule.step(5, 0.95)
    assert schedule.lr_for(6) == pytest.approx(5e-4)
    schedule.rebase(5e-5)
    assert schedule.lr_for(8) == 5e-5
    assert schedule.best is None


def test_plateau_waits_for_the_warmup() -> None:
    schedule = LrSchedule(base_lr=1e-3, warmup_epochs=3)
    for epoch in (1, 2, 3):
        schedule.step(epoch, 1.0)
    assert schedule.best is None
    schedule.step(4, 1.0)
    assert schedule.best == 1.0


def test_schedule_state_round_trip() -> None:
    schedule = LrSchedule(base_lr=1e-3, warmup_epochs=2)
    for epoch, loss in enumerate([1.0, 0.5, 0.6, 0.7], start=1):
        schedule.step(epoch, loss)
    again = LrSchedule.from_state(schedule.state_dict())
    assert again == schedule

"""The fused frozen prefix computes what the frozen units compute, and only when they are frozen."""

from __future__ import annotations

import torch
from torch import nn

from ocec_engine.config import TrainConfig
from ocec_engine.fused import fused_prefix
from ocec_engine.model import ModelConfig, build_model
from ocec_engine.stages import apply_stage, backbone_blocks, build_plan, set_train_mode, split_embed


def _stage1_model() -> tuple[nn.Module, int]:
    torch.manual_seed(0)
    model = build_model(ModelConfig())
    for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):  # statistics of a trained model
        bn.running_mean.uniform_(-0.2, 0.2)
        bn.running_var.uniform_(0.5, 1.5)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.2, 0.2)
    plan = build_plan(model, TrainConfig(data_root="", output_dir="", stage=1))
    apply_stage(model, plan, 1)
    set_train_mode(model, plan, 1)
    return model, plan.frozen_prefix(1)


def test_the_fused_prefix_gives_the_same_embeddings_and_leaves_the_model_alone() -> None:
    model, prefix = _stage1_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fused = fused_prefix(model, prefix)
    assert fused is not None
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
    x = torch.rand(8, 3, 32, 64)
    torch.testing.assert_close(split_embed(model, x, prefix, fused), split_embed(model, x, prefix))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_no_fusion_when_a_frozen_unit_trains_or_nothing_is_frozen() -> None:
    model, prefix = _stage1_model()
    assert fused_prefix(model, 0) is None
    backbone_blocks(model)[0][1].train()  # BatchNorm statistics would move: not a fixed function
    assert fused_prefix(model, prefix) is None

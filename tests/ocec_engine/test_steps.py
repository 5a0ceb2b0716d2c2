"""One training batch: slicing, input preparation, the step (fp32 and the GradScaler path), embeddings."""

from __future__ import annotations

import torch

from ocec_engine.augment import Augmenter
from ocec_engine.config import TrainConfig
from ocec_engine.evaluate import Runtime
from ocec_engine.model import ModelConfig, OCECNet, build_model
from ocec_engine.normalize import normalize
from ocec_engine.optim import build_optimizer, manifest
from ocec_engine.stages import StagePlan, apply_stage, build_plan, set_train_mode, split_embed
from ocec_engine.steps import batch_slices, embed_all, prepare_batch, train_step


def _setup(stage: int) -> tuple[OCECNet, StagePlan, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = build_model(ModelConfig(base_channels=8))
    plan = build_plan(model, TrainConfig(data_root="d", output_dir="o", stage=stage))
    apply_stage(model, plan, stage)
    set_train_mode(model, plan, stage)
    optimizer = build_optimizer(model, manifest(model, plan.head, plan.spec(stage).trainable), 1e-3, 0.0)
    return model, plan, optimizer


def test_batch_slices_drop_a_lone_last_sample() -> None:
    assert batch_slices(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert batch_slices(9, 4) == [(0, 4), (4, 8)]
    assert batch_slices(8, 4) == [(0, 4), (4, 8)]


def test_prepare_batch_augments_pixels_then_normalises() -> None:
    x = torch.randint(0, 256, (6, 3, 32, 64), dtype=torch.uint8)
    runtime = Runtime(torch.device("cpu"), channels_last=True)
    plain = prepare_batch(x, runtime, None, torch.Generator())
    assert torch.equal(plain, normalize(x))
    assert plain.is_contiguous(memory_format=torch.channels_last)
    aug = Augmenter("ocec")
    one = prepare_batch(x, runtime, aug, torch.Generator().manual_seed(3))
    two = prepare_batch(x, runtime, aug, torch.Generator().manual_seed(3))
    assert torch.equal(one, two) and not torch.equal(one, plain)


def test_step_moves_only_trainable_params() -> None:
    model, plan, optimizer = _setup(2)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    x = normalize(torch.randint(0, 256, (8, 3, 32, 64), dtype=torch.uint8))
    y = torch.arange(8) % 2
    res = train_step(model, optimizer, None, Runtime(torch.device("cpu")), x, y, plan.frozen_prefix(2), 1.0)
    assert res.finite and res.stepped and res.predicted_open.shape == (8,)
    moved = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert moved == set(plan.spec(2).trainable)


def test_grad_scaler_path_runs() -> None:
    """The AMP code path (autocast + GradScaler) on CPU; on CUDA the same code runs with fp16."""
    model, plan, optimizer = _setup(2)
    scaler = torch.amp.GradScaler("cpu")
    runtime = Runtime(torch.device("cpu"), amp=True)
    x = normalize(torch.randint(0, 256, (8, 3, 32, 64), dtype=torch.uint8))
    y = torch.arange(8) % 2
    res = train_step(model, optimizer, scaler, runtime, x, y, plan.frozen_prefix(2), 1.0)
    assert res.finite
    assert scaler.state_dict()["scale"] > 0


def test_embed_all_matches_the_batch_forward() -> None:
    model, plan, _ = _setup(1)
    x = torch.randint(0, 256, (10, 3, 32, 64), dtype=torch.uint8)
    runtime = Runtime(torch.device("cpu"))
    cached = embed_all(model, x, 4, runtime, plan.frozen_prefix(1))
    direct = split_embed(model, normalize(x), plan.frozen_prefix(1))
    assert cached.shape == (10, model.embedding_dim)
    assert torch.allclose(cached, direct, atol=1e-6)
    assert not cached.requires_grad

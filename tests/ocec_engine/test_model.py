"""OCECNet: OCEC's names and sizes, output contracts, config round trip, channels_last."""

from __future__ import annotations

import pytest
import torch

from ocec_engine.config import MarginMethod
from ocec_engine.errors import CheckpointError
from ocec_engine.model import (
    ModelConfig,
    OCECNet,
    backbone_blocks,
    build_model,
    head_parameter_prefixes,
)


def _model(method: MarginMethod, seed: int = 0) -> OCECNet:
    torch.manual_seed(seed)
    return build_model(ModelConfig(margin_method=method))


@pytest.mark.parametrize(
    ("method", "entries", "params"),
    [(MarginMethod.COSFACE, 62, 11585), (MarginMethod.ARCFACE, 62, 11585), (MarginMethod.NONE, 61, 11457)],
)
def test_sizes_match_ocec(method: MarginMethod, entries: int, params: int) -> None:
    model = _model(method)
    assert len(model.state_dict()) == entries
    assert sum(p.numel() for p in model.parameters()) == params
    backbone = sum(p.numel() for n, p in model.named_parameters() if n.startswith(("stem", "features")))
    assert backbone == 11264


def test_backbone_blocks_front_to_back() -> None:
    model = _model(MarginMethod.COSFACE)
    names = [name for name, _ in backbone_blocks(model)]
    assert names == ["stem", "features.0", "features.1", "features.2", "features.3"]
    assert backbone_blocks(model)[3][1] is model.features[2]


def test_head_prefixes_name_the_live_parameters() -> None:
    x = torch.randn(4, 3, 32, 64)
    y = torch.tensor([0, 1, 0, 1])
    for method in MarginMethod:
        model = _model(method).train()
        emb = model.embed(x)
        torch.nn.functional.cross_entropy(model.train_logits(emb, y), y).backward()
        prefixes = head_parameter_prefixes(model)
        for name, p in model.named_parameters():
            if name.startswith(("stem", "features")):
                continue
            live = name.startswith(tuple(prefixes))
            assert (p.grad is not None) == live, name


@pytest.mark.parametrize("method", list(MarginMethod))
def test_output_contracts(method: MarginMethod) -> None:
    model = _model(method).eval()
    x = torch.randn(5, 3, 32, 64)
    with torch.no_grad():
        emb = model.embed(x)
        logits = model.eval_logits(emb)
        prob = model(x)
        raw = model.raw_outputs(x)
    assert emb.shape == (5, 64)
    assert logits.shape == (5, 2)
    assert prob.shape == (5,)
    torch.testing.assert_close(prob, torch.softmax(logits, dim=1)[:, 1])
    if method is MarginMethod.NONE:
        assert raw.shape == (5,)
        torch.testing.assert_close(prob, torch.sigmoid(raw))
        torch.testing.assert_close(model.train_logits(emb, torch.zeros(5, dtype=torch.long)), logits)
    else:
        assert raw.shape == (5, 2)
        torch.testing.assert_close(raw, logits)


def test_train_logits_apply_margin_and_dropout() -> None:
    model = _model(MarginMethod.COSFACE)
    x = torch.randn(8, 3, 32, 64)
    y = torch.randint(0, 2, (8,))
    model.eval()
    with torch.no_grad():
        emb = model.embed(x)
        no_margin = model.train_logits(emb, y, margin_scale=0.0)
        torch.testing.assert_close(no_margin, model.eval_logits(emb) * (12.0 / 6.0))
        model.train()
        torch.manual_seed(3)
        a = model.train_logits(emb, y)
        torch.manual_seed(4)
        b = model.train_logits(emb, y)
    assert not torch.allclose(a, b)  # embedding dropout is active in training


def test_channels_last_gives_same_outputs() -> None:
    model = _model(MarginMethod.COSFACE).eval()
    x = torch.randn(3, 3, 32, 64)
    with torch.no_grad():
        ref = model(x)
        model = model.to(memory_format=torch.channels_last)
        out = model(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_other_image_sizes_and_widths() -> None:
    model = build_model(ModelConfig(base_channels=8, num_blocks=3, image_size=(24, 24)))
    assert model.eval()(torch.randn(2, 3, 24, 24)).shape == (2,)
    assert model.embedding_dim == 16


def test_config_round_trip_and_ocec_dict() -> None:
    cfg = ModelConfig(base_channels=16, num_blocks=2, dropout=0.1, margin_method=MarginMethod.NONE)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    ocec = {
        "base_channels": 32, "num_blocks": 4, "dropout": 0.3, "arch_variant": "baseline", "expansion": 4,
        "se_reduction": 8, "head_variant": "auto", "token_mixer_grid": (2, 3), "token_mixer_layers": 2,
        "margin_method": "cosface", "pretrained_backbone": "", "pretrained_weights_dir": "",
    }  # fmt: skip
    assert ModelConfig.from_dict(ocec) == ModelConfig()


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"arch_variant": "convnext"}, "arch_variant"),
        ({"head_variant": "transformer"}, "head_variant"),
        ({"pretrained_backbone": "resnet18"}, "pretrained_backbone"),
        ({"margin_method": "sphereface"}, "margin_method|invalid"),
        ({"frobnicate": 1}, "unknown"),
    ],
)
def test_config_refuses_unsupported(change: dict[str, object], match: str) -> None:
    with pytest.raises(CheckpointError, match=match):
        ModelConfig.from_dict({**ModelConfig().to_dict(), **change})


def test_build_is_seeded() -> None:
    a = _model(MarginMethod.COSFACE, seed=7).state_dict()
    b = _model(MarginMethod.COSFACE, seed=7).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("method", list(MarginMethod))
def test_autocast_logits_are_fp32_and_finite(method: MarginMethod) -> None:
    model = _model(method).train()
    x = torch.randn(8, 3, 32, 64) * 50  # large activations
    y = torch.randint(0, 2, (8,))
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        emb = model.embed(x)
        logits = model.train_logits(emb, y)
        loss = torch.nn.functional.cross_entropy(logits, y)
    assert logits.dtype == torch.float32 and torch.isfinite(logits).all()
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)

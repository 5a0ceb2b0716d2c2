"""Margin heads: finite under extreme / fp16-cast inputs, margin lowers target logits, scale 0 = s·cos."""

from __future__ import annotations

import pytest
import torch

from ocec_engine.margins import ArcFace, CosFace


def _heads() -> list[CosFace | ArcFace]:
    torch.manual_seed(0)
    return [CosFace(16), ArcFace(16)]


def _extreme_embeddings() -> torch.Tensor:
    torch.manual_seed(1)
    emb = torch.randn(8, 16)
    emb[0] = 0.0  # dead embedding (ReLU + GAP can give this)
    emb[1] = 1e-30
    emb[2] = 6e4  # near the fp16 max
    emb[3] = -6e4
    return emb


@pytest.mark.parametrize("head", _heads(), ids=["cosface", "arcface"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_finite_logits_and_gradients(head: CosFace | ArcFace, dtype: torch.dtype) -> None:
    emb = _extreme_embeddings().to(dtype).requires_grad_(True)
    # also an embedding exactly on a prototype: cos = 1, where acos had an infinite gradient
    with torch.no_grad():
        emb[4] = head.weight[1].to(dtype)
        emb[5] = -head.weight[0].to(dtype)
    labels = torch.tensor([0, 1, 0, 1, 1, 1, 0, 1])
    logits = head.train_logits(emb, labels)
    assert logits.dtype == torch.float32
    assert torch.isfinite(logits).all()
    torch.nn.functional.cross_entropy(logits, labels).backward()
    assert emb.grad is not None and torch.isfinite(emb.grad).all()
    assert head.weight.grad is not None and torch.isfinite(head.weight.grad).all()
    head.weight.grad = None


@pytest.mark.parametrize("head", _heads(), ids=["cosface", "arcface"])
def test_margin_lowers_target_logit_only(head: CosFace | ArcFace) -> None:
    emb = torch.randn(32, 16)
    labels = torch.randint(0, 2, (32,))
    plain = head.train_logits(emb, labels, margin_scale=0.0)
    full = head.train_logits(emb, labels, margin_scale=1.0)
    half = head.train_logits(emb, labels, margin_scale=0.5)
    rows = torch.arange(32)
    other = 1 - labels
    assert (full[rows, labels] < plain[rows, labels]).all()
    assert (half[rows, labels] < plain[rows, labels]).all()
    assert (full[rows, labels] < half[rows, labels]).all()
    torch.testing.assert_close(full[rows, other], plain[rows, other])


@pytest.mark.parametrize("head", _heads(), ids=["cosface", "arcface"])
def test_zero_margin_is_scaled_cosine(head: CosFace | ArcFace) -> None:
    emb = torch.randn(32, 16)
    labels = torch.randint(0, 2, (32,))
    expected = head.cosine(emb) * head.s
    torch.testing.assert_close(head.train_logits(emb, labels, margin_scale=0.0), expected)
    torch.testing.assert_close(head.eval_logits(emb), head.cosine(emb) * head.s_val)


def test_cosface_margin_value() -> None:
    head = CosFace(16)
    emb = torch.randn(4, 16)
    labels = torch.tensor([0, 1, 1, 0])
    diff = head.train_logits(emb, labels, 0.0) - head.train_logits(emb, labels, 1.0)
    torch.testing.assert_close(diff[torch.arange(4), labels], torch.full((4,), 0.18 * 12.0))


def test_arcface_fallback_is_monotone_near_pi() -> None:
    head = ArcFace(2, m=0.5)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    angles = torch.linspace(2.4, 3.14, 50)  # θ + m crosses π for the class-0 prototype
    emb = torch.stack((torch.cos(angles), torch.sin(angles)), dim=1)
    logits = head.train_logits(emb, torch.zeros(50, dtype=torch.long))[:, 0]
    assert (logits[1:] <= logits[:-1] + 1e-5).all()


def test_margin_scale_out_of_range() -> None:
    with pytest.raises(ValueError, match="margin_scale"):
        CosFace(4).train_logits(torch.randn(2, 4), torch.tensor([0, 1]), margin_scale=1.5)


def test_arcface_trains() -> None:
    """The reference's ArcFace crashed in training; ours learns a separable toy problem."""
    torch.manual_seed(0)
    head = ArcFace(8)
    x = torch.randn(256, 8)
    y = (x[:, 0] > 0).long()
    opt = torch.optim.Adam(head.parameters(), lr=0.05)
    for _ in range(100):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(head.train_logits(x, y), y).backward()
        opt.step()
    acc = (head.eval_logits(x).argmax(1) == y).float().mean()
    assert acc > 0.9

"""Cosine-margin heads (CosFace, ArcFace) over 2 class prototypes.

Both hold one parameter, ``weight`` [num_classes, D] (OCEC's ``margin_head.weight``), and compute
cos θ_j = <ê, ŵ_j> between the L2-normalised embedding and prototypes. Eval logits are ``s_val·cos``
(no margin; the reference's eval logits). Train logits apply the margin to the target class, scaled
by ``margin_scale`` in [0, 1] (the loop ramps it), times the train scale ``s``.

Everything runs in fp32 with autocast disabled: under fp16 the normalisation and the margin
arithmetic lose enough precision to produce inf/NaN logits, which is what the reference risked.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812 (the PyTorch convention)
from torch import Tensor, nn

# L2-normalisation floor. An all-zero embedding (possible after ReLU + GAP) gives cos 0 and a gradient
# of about s/eps; 1e-3 keeps that inside fp16 range (real embeddings have norms of order 1-10).
_NORM_EPS = 1e-3
_COS_EPS = 1e-6  # ArcFace keeps cos inside (-1, 1) so sin θ and its gradient stay finite


def _check_scale(margin_scale: float) -> float:
    if not 0.0 <= margin_scale <= 1.0:
        raise ValueError(f"margin_scale must be in [0, 1], got {margin_scale}")
    return float(margin_scale)


class _CosineHead(nn.Module):
    method = ""

    def __init__(self, embedding_dim: int, num_classes: int, m: float, s: float, s_val: float) -> None:
        super().__init__()
        self.m = float(m)
        self.s = float(s)
        self.s_val = float(s_val)
        self.weight = nn.Parameter(torch.empty(num_classes, embedding_dim))
        nn.init.xavier_uniform_(self.weight)

    def cosine(self, emb: Tensor) -> Tensor:
        """fp32 cos θ [B, num_classes], computed outside autocast."""
        with torch.autocast(device_type=emb.device.type, enabled=False):
            e = F.normalize(emb.float(), dim=1, eps=_NORM_EPS)
            w = F.normalize(self.weight.float(), dim=1, eps=_NORM_EPS)
            return e @ w.t()

    def eval_logits(self, emb: Tensor) -> Tensor:
        """Margin-free logits s_val·cos θ (what the reference returns at eval)."""
        return self.cosine(emb) * self.s_val

    def train_logits(self, emb: Tensor, labels: Tensor, margin_scale: float = 1.0) -> Tensor:
        raise NotImplementedError

    def describe(self) -> dict[str, float | str]:
        return {"method": self.method, "m": self.m, "s": self.s, "s_val": self.s_val}


class CosFace(_CosineHead):
    """Target logit s·(cos θ_y - m·margin_scale); other logits s·cos θ_j."""

    method = "cosface"

    def __init__(
        self, embedding_dim: int, num_classes: int = 2, m: float = 0.18, s: float = 12.0, s_val: float = 6.0
    ) -> None:
        super().__init__(embedding_dim, num_classes, m, s, s_val)

    def train_logits(self, emb: Tensor, labels: Tensor, margin_scale: float = 1.0) -> Tensor:
        m_eff = self.m * _check_scale(margin_scale)
        cos = self.cosine(emb)
        one_hot = F.one_hot(labels.long(), num_classes=cos.shape[1]).to(cos.dtype)
        return (cos - one_hot * m_eff) * self.s


class ArcFace(_CosineHead):
    """Target logit s·cos(θ_y + m·margin_scale) with the standard (non-easy-margin) fallback.

    cos(θ+m) is expanded as cos θ·cos m - sin θ·sin m (no acos, whose gradient is infinite at ±1),
    and where θ + m would pass π (cos θ ≤ cos(π - m)) the logit becomes cos θ - sin(π - m)·m, which
    keeps it monotone in θ. The reference used acos and had no guard (and crashed on an extra arg).
    """

    method = "arcface"

    def __init__(
        self, embedding_dim: int, num_classes: int = 2, m: float = 0.2, s: float = 8.0, s_val: float = 4.0
    ) -> None:
        super().__init__(embedding_dim, num_classes, m, s, s_val)

    def train_logits(self, emb: Tensor, labels: Tensor, margin_scale: float = 1.0) -> Tensor:
        m_eff = self.m * _check_scale(margin_scale)
        cos = self.cosine(emb).clamp(-1.0 + _COS_EPS, 1.0 - _COS_EPS)
        sin = (1.0 - cos * cos).clamp_min(0.0).sqrt()
        phi = cos * math.cos(m_eff) - sin * math.sin(m_eff)
        threshold = math.cos(math.pi - m_eff)
        fallback = cos - math.sin(math.pi - m_eff) * m_eff
        phi = torch.where(cos > threshold, phi, fallback)
        one_hot = F.one_hot(labels.long(), num_classes=cos.shape[1]).to(cos.dtype)
        return (one_hot * phi + (1.0 - one_hot) * cos) * self.s


MarginHead = CosFace | ArcFace

"""The OCEC "baseline" CNN with OCEC's exact parameter names, so an OCEC ``model_state`` loads strictly.

    stem      3x3 conv s2 (no bias) -> BN -> ReLU                      (stem.0, stem.1)
    features  Sequential of depthwise-separable blocks; block i has stride 2 when i is even and > 0,
              and doubles its channels then; residual when stride 1 and channels unchanged
    GAP       global average pool -> embedding [B, D]
    head      BN1d(D) -> Dropout -> Linear(D, 1): one logit (P(open) = sigmoid), margin "none" only
    margin_head  CosFace / ArcFace prototypes [2, D] (margin "cosface" / "arcface")

With a margin head OCEC still builds ``head`` but throws its output away, so it never gets a gradient.
We keep it (an OCEC checkpoint has its tensors, and a strict load needs them) but never run it in
that case; ``head_parameter_prefixes`` names the parameters that really learn, so the optimizer holds
only live ones.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812 (the PyTorch convention)
from torch import Tensor, nn

from ocec_engine.config import MarginMethod
from ocec_engine.errors import CheckpointError
from ocec_engine.margins import ArcFace, CosFace

SUPPORTED_ARCH = "baseline"
SUPPORTED_HEADS = ("avg", "auto")
# OCEC model_config keys that only matter for variants we do not build; accepted and ignored.
_IGNORED_OCEC_KEYS = frozenset(
    {"expansion", "se_reduction", "token_mixer_grid", "token_mixer_layers", "pretrained_weights_dir"}
)


@dataclass
class ModelConfig:
    base_channels: int = 32
    num_blocks: int = 4
    dropout: float = 0.3
    margin_method: MarginMethod = MarginMethod.COSFACE
    image_size: tuple[int, int] = field(default=(32, 64))  # (H, W)

    def __post_init__(self) -> None:
        self.margin_method = MarginMethod(self.margin_method)
        self.image_size = (int(self.image_size[0]), int(self.image_size[1]))
        if self.base_channels < 1 or self.num_blocks < 1:
            raise ValueError("base_channels and num_blocks must be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if min(self.image_size) < 1:
            raise ValueError(f"image_size must be positive, got {self.image_size}")

    def to_dict(self) -> dict[str, Any]:
        """OCEC's model_config keys (baseline/avg) plus image_size; plain data."""
        return {
            "base_channels": self.base_channels,
            "num_blocks": self.num_blocks,
            "dropout": self.dropout,
            "arch_variant": SUPPORTED_ARCH,
            "head_variant": "avg",
            "margin_method": str(self.margin_method),
            "pretrained_backbone": "",
            "image_size": list(self.image_size),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "model_config") -> ModelConfig:
        """Accept our dict or OCEC's; refuse variants this engine does not build (CheckpointError)."""
        values = dict(data)
        arch = str(values.pop("arch_variant", SUPPORTED_ARCH) or SUPPORTED_ARCH).lower()
        if arch != SUPPORTED_ARCH:
            raise CheckpointError(f"{source}: arch_variant {arch!r} is not supported (only 'baseline')")
        head = str(values.pop("head_variant", "auto") or "auto").lower()
        if head not in SUPPORTED_HEADS:
            raise CheckpointError(f"{source}: head_variant {head!r} is not supported (only 'avg'/'auto')")
        backbone = values.pop("pretrained_backbone", "") or ""
        if backbone:
            raise CheckpointError(f"{source}: pretrained_backbone {backbone!r} is not supported")
        if values.pop("use_arcface", False):  # an older OCEC flag
            values.setdefault("margin_method", MarginMethod.ARCFACE)
        for key in _IGNORED_OCEC_KEYS:
            values.pop(key, None)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise CheckpointError(f"{source}: unknown model_config keys {unknown}")
        try:
            if "margin_method" in values:
                values["margin_method"] = MarginMethod(str(values["margin_method"]).lower())
            if "image_size" in values:
                values["image_size"] = tuple(values["image_size"])
            return cls(**values)
        except (ValueError, TypeError) as exc:
            raise CheckpointError(f"{source}: invalid model_config: {exc}") from exc


class SepConvBlock(nn.Module):
    """Depthwise 3x3 (stride) -> BN -> ReLU -> pointwise 1x1 -> BN (+ identity) -> ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.use_residual = stride == 1 and in_channels == out_channels
        self.depthwise = nn.Sequential(
            nn.Conv2d(in_channels, in_channels, 3, stride=stride, padding=1, groups=in_channels, bias=False),
            nn.BatchNorm2d(in_channels),
            nn.ReLU(inplace=True),
        )
        self.pointwise = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        out = self.pointwise(self.depthwise(x))
        if self.use_residual:
            out = out + x
        return F.relu(out)


class OCECNet(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.config = cfg
        self.margin_method = MarginMethod(cfg.margin_method)
        c = cfg.base_channels
        self.stem = nn.Sequential(
            nn.Conv2d(3, c, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)
        )
        blocks: list[nn.Module] = []
        for i in range(cfg.num_blocks):
            stride = 2 if i % 2 == 0 and i > 0 else 1
            out = c * 2 if stride == 2 else c
            blocks.append(SepConvBlock(c, out, stride))
            c = out
        self.features = nn.Sequential(*blocks)
        self.embedding_dim = c
        self.head = nn.Sequential(
            nn.BatchNorm1d(c),
            nn.Dropout(cfg.dropout) if cfg.dropout > 0 else nn.Identity(),
            nn.Linear(c, 1),
        )
        self.embedding_dropout = nn.Dropout(cfg.dropout)  # no parameters; train-time only, as in OCEC
        self.margin_head: CosFace | ArcFace | None = _make_margin_head(self.margin_method, c)

    def embed(self, x: Tensor) -> Tensor:
        """Normalised images [B,3,H,W] -> GAP embedding [B, D]."""
        return self.features(self.stem(x)).mean(dim=(-2, -1))

    def _single_logit(self, emb: Tensor) -> Tensor:
        return self.head(emb).squeeze(1).float()

    def eval_logits(self, emb: Tensor) -> Tensor:
        """Margin-free [B, 2] logits; softmax(.)[:, 1] = P(open)."""
        if self.margin_head is not None:
            return self.margin_head.eval_logits(emb)
        half = self._single_logit(emb) * 0.5
        return torch.stack((-half, half), dim=1)  # softmax == sigmoid(l)

    def train_logits(self, emb: Tensor, labels: Tensor, margin_scale: float = 1.0) -> Tensor:
        """[B, 2] logits for cross-entropy; the margin (scaled by margin_scale) on the target class."""
        if self.margin_head is None:
            return self.eval_logits(emb)  # the head's own Dropout is active in train mode
        return self.margin_head.train_logits(self.embedding_dropout(emb), labels, margin_scale)

    def raw_outputs(self, x: Tensor) -> Tensor:
        """What the reference returns at eval: [B, 2] s_val·cos for margin heads, [B] logit for none."""
        emb = self.embed(x)
        if self.margin_head is not None:
            return self.margin_head.eval_logits(emb)
        return self._single_logit(emb)

    def forward(self, x: Tensor) -> Tensor:
        """P(open), shape [B] (what the ONNX export returns)."""
        emb = self.embed(x)
        if self.margin_head is None:
            return torch.sigmoid(self._single_logit(emb))
        return torch.softmax(self.margin_head.eval_logits(emb), dim=1)[:, 1]


def _make_margin_head(method: MarginMethod, dim: int) -> CosFace | ArcFace | None:
    if method is MarginMethod.COSFACE:
        return CosFace(dim)
    if method is MarginMethod.ARCFACE:
        return ArcFace(dim)
    return None


def _init_weights(model: OCECNet) -> None:
    """OCEC init: Kaiming-normal fan_out convs, BN 1/0, Xavier-uniform Linear; margin head Xavier."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    if model.margin_head is not None:
        nn.init.xavier_uniform_(model.margin_head.weight)


def build_model(cfg: ModelConfig) -> OCECNet:
    """A freshly initialised model (the caller seeds torch first for reproducibility)."""
    model = OCECNet(cfg)
    _init_weights(model)
    return model


def backbone_blocks(model: OCECNet) -> list[tuple[str, nn.Module]]:
    """The freezable units front to back: ("stem", ...), ("features.0", ...), ..."""
    units: list[tuple[str, nn.Module]] = [("stem", model.stem)]
    units.extend((f"features.{i}", block) for i, block in enumerate(model.features))
    return units


def head_parameter_prefixes(model: OCECNet) -> list[str]:
    """Prefixes of the head parameters that actually receive gradients."""
    return ["margin_head"] if model.margin_head is not None else ["head"]


def dead_parameter_prefixes(model: OCECNet) -> list[str]:
    """Parameters kept only for checkpoint compatibility (never used in forward)."""
    return ["head"] if model.margin_head is not None else []

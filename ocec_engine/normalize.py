"""Input normalisation with the OCEC fork's dataset statistics (checkpoint ``normalization``).

The reference scales RGB to [0, 1] and then applies ``(x - MEAN) / STD`` per channel. Our data stays
uint8 until the batch is on the device, so this runs once per batch (after augmentation).
"""

from __future__ import annotations

import torch
from torch import Tensor

MEAN: tuple[float, float, float] = (0.42740763060926645, 0.39452373400411184, 0.38825020228993445)
STD: tuple[float, float, float] = (0.194970523692498, 0.20245007710754218, 0.20778578022977737)

_cache: dict[tuple[str, int | None], tuple[Tensor, Tensor]] = {}


def _stats(device: torch.device) -> tuple[Tensor, Tensor]:
    key = (device.type, device.index)
    if key not in _cache:
        mean = torch.tensor(MEAN, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        inv_std = (1.0 / torch.tensor(STD, dtype=torch.float64)).to(torch.float32).to(device).view(1, 3, 1, 1)
        _cache[key] = (mean, inv_std)
    return _cache[key]


def normalize(x: Tensor) -> Tensor:
    """uint8 [0, 255] or float [0, 1] images, [B,3,H,W] or [3,H,W] -> float32 normalised (same layout)."""
    if x.dtype == torch.uint8:
        x = x.to(torch.float32).div_(255.0)
    elif x.dtype != torch.float32:
        x = x.to(torch.float32)
    mean, inv_std = _stats(x.device)
    if x.dim() == 3:
        return (x - mean[0]) * inv_std[0]
    return (x - mean) * inv_std


def denormalize(x: Tensor) -> Tensor:
    """The inverse of ``normalize`` for float input: back to [0, 1] pixel space (not clamped)."""
    mean, inv_std = _stats(x.device)
    if x.dim() == 3:
        return x.to(torch.float32) / inv_std[0] + mean[0]
    return x.to(torch.float32) / inv_std + mean

"""Batch augmentation ops on [0, 1] pixel tensors. Each op transforms the samples it was chosen for.

Random parameters are drawn from the caller's torch.Generator (on the generator's device, then moved
to the data's device), one value per chosen sample, so a run is reproducible from the generator state.
Every op returns values in [0, 1].

The additive ops (brightness, noise, glare) take their magnitudes in units of ``unit`` pixels per
channel: (1, 1, 1) means [0, 1] pixels; the normalisation std means "as on normalised tensors",
which is how OCEC's magnitudes were meant (its Kornia ops ran after normalisation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812 (the PyTorch convention)
from torch import Tensor


def uniform(g: torch.Generator, n: int, lo: float, hi: float, device: torch.device) -> Tensor:
    return (torch.rand(n, generator=g, device=g.device) * (hi - lo) + lo).to(device)


PIXELS: tuple[float, float, float] = (1.0, 1.0, 1.0)


def _per_sample(v: Tensor) -> Tensor:
    return v.view(-1, 1, 1, 1)


def _per_channel(unit: tuple[float, float, float], x: Tensor) -> Tensor:
    return torch.tensor(unit, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)


@dataclass(frozen=True)
class Affine:
    """Rotation (degrees), translation (fraction of size), isotropic scale; edge pixels extend."""

    degrees: float
    translate: float
    scale: tuple[float, float]
    name: str = "affine"

    def __call__(self, x: Tensor, g: torch.Generator) -> Tensor:
        n, _, h, w = x.shape
        angle = uniform(g, n, -self.degrees, self.degrees, x.device) * (math.pi / 180)
        tx = uniform(g, n, -self.translate, self.translate, x.device) * 2
        ty = uniform(g, n, -self.translate, self.translate, x.device) * 2
        inv_s = 1.0 / uniform(g, n, self.scale[0], self.scale[1], x.device)
        cos, sin = torch.cos(angle) * inv_s, torch.sin(angle) * inv_s
        # pixel-space rotation expressed in affine_grid's normalised [-1, 1] coordinates
        theta = torch.stack(
            (torch.stack((cos, -sin * h / w, tx), 1), torch.stack((sin * w / h, cos, ty), 1)), 1
        ).to(x.dtype)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


@dataclass(frozen=True)
class GaussianBlur3:
    """3x3 Gaussian blur with a per-sample sigma (separable, reflect padding)."""

    sigma: tuple[float, float]
    name: str = "gaussian_blur"

    def __call__(self, x: Tensor, g: torch.Generator) -> Tensor:
        sigma = uniform(g, x.shape[0], self.sigma[0], self.sigma[1], x.device)
        side = _per_sample(torch.exp(-0.5 / sigma**2)).to(x.dtype)
        norm = 1.0 + 2.0 * side
        p = F.pad(x, (1, 1, 0, 0), mode="reflect")
        x = (p[..., :-2] * side + p[..., 1:-1] + p[..., 2:] * side) / norm
        p = F.pad(x, (0, 0, 1, 1), mode="reflect")
        return (p[..., :-2, :] * side + p[..., 1:-1, :] + p[..., 2:, :] * side) / norm


@dataclass(frozen=True)
class GaussianNoise:
    sigma: tuple[float, float]  # in ``unit``s
    unit: tuple[float, float, float] = PIXELS
    name: str = "gaussian_noise"

    def __call__(self, x: Tensor, g: torch.Generator) -> Tensor:
        sigma = _per_sample(uniform(g, x.shape[0], self.sigma[0], self.sigma[1], x.device))
        noise = torch.randn(x.shape, generator=g, device=g.device).to(x.device, x.dtype)
        return (x + noise * sigma * _per_channel(self.unit, x)).clamp_(0.0, 1.0)


@dataclass(frozen=True)
class Brightness:
    """Additive brightness shift in [-delta, +delta] ``unit``s (one draw per sample)."""

    delta: float
    unit: tuple[float, float, float] = PIXELS
    name: str = "brightness"

    def __call__(self, x: Tensor, g: torch.Generator) -> Tensor:
        shift = _per_sample(uniform(g, x.shape[0], -self.delta, self.delta, x.device))
        return (x + shift * _per_channel(self.unit, x)).clamp_(0.0, 1.0)


@dataclass(frozen=True)
class Contrast:
    """Scale around each image's mean by a factor in [1 - delta, 1 + delta]."""

    delta: float
    name: str = "contrast"

    def __call__(self, x: Tensor, g: torch.Generator) -> Tensor:
        factor = _per_sample(uniform(g, x.shape[0], 1 - self.delta, 1 + self.delta, x.device))
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        return ((x - mean) * factor + mean).clamp_(0.0, 1.0)


@dataclass(frozen=True)
class Glare:
    """Glasses reflections: 1..max_blobs bright Gaussian blobs per image (vectorised over blobs)."""

    blobs: tuple[int, int]
    sigma: tuple[float, float]  # pixels
    alpha: tuple[float, float]  # peak brightness, in ``unit``s
    unit: tuple[float, float, float] = PIXELS
    name: str = "glare"

    def __call__(self, x: Tensor, g: torch.Generator) -> Tensor:
        n, _, h, w = x.shape
        k = self.blobs[1]
        count = torch.randint(self.blobs[0], k + 1, (n, 1), generator=g, device=g.device).to(x.device)
        active = (torch.arange(k, device=x.device).view(1, k) < count).to(x.dtype)
        cx = uniform(g, n * k, 0, w, x.device).view(n, k, 1, 1)
        cy = uniform(g, n * k, 0, h, x.device).view(n, k, 1, 1)
        sigma = uniform(g, n * k, self.sigma[0], self.sigma[1], x.device).view(n, k, 1, 1)
        alpha = uniform(g, n * k, self.alpha[0], self.alpha[1], x.device).view(n, k, 1, 1)
        ys = torch.arange(h, device=x.device, dtype=x.dtype).view(1, 1, h, 1) + 0.5
        xs = torch.arange(w, device=x.device, dtype=x.dtype).view(1, 1, 1, w) + 0.5
        blobs = torch.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma**2)) * alpha
        glare = (blobs * active.view(n, k, 1, 1)).sum(1, keepdim=True)
        return (x + glare * _per_channel(self.unit, x)).clamp_(0.0, 1.0)


# --- JPEG: YCbCr, 4:2:0 chroma, 8x8 block DCT, quality-scaled standard quantisation tables ---

_LUMA = [
    [16, 11, 10, 16, 24, 40, 51, 61], [12, 12, 14, 19, 26, 58, 60, 55],
    [14, 13, 16, 24, 40, 57, 69, 56], [14, 17, 22, 29, 51, 87, 80, 62],
    [18, 22, 37, 56, 68, 109, 103, 77], [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101], [72, 92, 95, 98, 112, 100, 103, 99],
]  # fmt: skip
_CHROMA = [[17, 18, 24, 47, 99, 99, 99, 99], [18, 21, 26, 66, 99, 99, 99, 99],
           [24, 26, 56, 99, 99, 99, 99, 99], [47, 66, 99, 99, 99, 99, 99, 99]] + [[99] * 8] * 4  # fmt: skip


@cache
def _dct_matrix(device: torch.device) -> Tensor:
    k = torch.arange(8, dtype=torch.float64)
    d = torch.cos((2 * k.view(1, 8) + 1) * k.view(8, 1) * math.pi / 16) * math.sqrt(2 / 8)
    d[0] /= math.sqrt(2)
    return d.to(device=device, dtype=torch.float32)


def _quant_tables(quality: Tensor) -> tuple[Tensor, Tensor]:
    """Per-sample luma/chroma tables [n,1,1,1,8,8] (libjpeg's quality scaling)."""
    q = quality.clamp(1, 100).to(torch.float32)
    scale = torch.where(q < 50, 5000.0 / q, 200.0 - 2.0 * q).view(-1, 1, 1, 1, 1, 1)
    out = []
    for base in (_LUMA, _CHROMA):
        table = torch.tensor(base, dtype=torch.float32, device=quality.device).view(1, 1, 1, 1, 8, 8)
        out.append(torch.floor((table * scale + 50.0) / 100.0).clamp_(min=1.0))
    return out[0], out[1]


def _blocks_roundtrip(plane: Tensor, table: Tensor) -> Tensor:
    """plane [n,c,H,W] (multiples of 8, centred on 0, 0..255 scale) -> quantised and back."""
    n, c, h, w = plane.shape
    d = _dct_matrix(plane.device)
    blocks = plane.view(n, c, h // 8, 8, w // 8, 8).permute(0, 1, 2, 4, 3, 5)
    coeffs = d @ blocks @ d.t()
    coeffs = torch.round(coeffs / table) * table
    back = d.t() @ coeffs @ d
    return back.permute(0, 1, 2, 4, 3, 5).reshape(n, c, h, w)


@dataclass(frozen=True)
class Jpeg:
    quality: tuple[int, int]
    name: str = "jpeg"

    def __call__(self, x: Tensor, g: torch.Generator) -> Tensor:
        n, _, h, w = x.shape
        quality = torch.randint(self.quality[0], self.quality[1] + 1, (n,), generator=g, device=g.device)
        luma_t, chroma_t = _quant_tables(quality.to(x.device))
        ph, pw = (-h) % 16, (-w) % 16
        img = F.pad(x.float(), (0, pw, 0, ph), mode="replicate") * 255.0
        r, gr, b = img[:, 0:1], img[:, 1:2], img[:, 2:3]
        y = 0.299 * r + 0.587 * gr + 0.114 * b
        cb = -0.168736 * r - 0.331264 * gr + 0.5 * b
        cr = 0.5 * r - 0.418688 * gr - 0.081312 * b
        y = _blocks_roundtrip(y - 128.0, luma_t) + 128.0
        chroma = _blocks_roundtrip(F.avg_pool2d(torch.cat((cb, cr), 1), 2), chroma_t)  # 4:2:0
        chroma = F.interpolate(chroma, scale_factor=2, mode="bilinear", align_corners=False)
        cb, cr = chroma[:, 0:1], chroma[:, 1:2]
        rgb = torch.cat((y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb), 1)
        return (rgb[:, :, :h, :w] / 255.0).clamp_(0.0, 1.0).to(x.dtype)


Op = Affine | GaussianBlur3 | GaussianNoise | Brightness | Contrast | Glare | Jpeg


def describe_op(op: Op, p: float) -> dict[str, Any]:
    fields = {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(op).items() if k != "name"}
    return {"op": op.name, "p": p, **fields}

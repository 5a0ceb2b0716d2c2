"""Per-batch training augmentation in [0, 1] pixel space, before normalisation.

The reference ran its Kornia pipeline on mean/std-normalised tensors, where the [0, 1] clamps of
brightness, contrast and JPEG clipped about 75 % of the samples. Here every op sees and returns
[0, 1] pixels; normalisation comes after. Each op is chosen per sample with its probability and
applied to the chosen samples only, as batch tensor ops on the data's device.

OCEC's additive magnitudes (brightness 0.25 / 0.15, noise sigma 0.01-0.03, glare alpha 0.05-0.25)
are in normalised units, where one unit is the dataset std (about 0.2 pixel): they are applied here
in units of ``NORMALISED_UNIT`` = the normalisation std per channel, so a brightness of 0.25 shifts pixels
by at most 0.25 x 0.195-0.208 (about 0.05), as it did in OCEC. Contrast (a factor), blur, affine
and JPEG do not depend on the scale.

Policies:
  none   identity
  light  small affine + brightness + contrast (weaker than ocec)
  ocec   the reference set (section 4.3 of the OCEC notes): affine, 3x3 blur, noise, brightness,
         contrast, brightness, glasses glare, JPEG -- OCEC's effective magnitudes and probabilities,
         but glare and noise are chosen per sample (the reference chose them per batch)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ocec_engine.augment_ops import (
    Affine,
    Brightness,
    Contrast,
    GaussianBlur3,
    GaussianNoise,
    Glare,
    Jpeg,
    Op,
    describe_op,
)
from ocec_engine.config import AugmentPolicy
from ocec_engine.normalize import STD

NORMALISED_UNIT = STD  # one unit of OCEC's normalised space, in [0, 1] pixels per channel

POLICIES: dict[AugmentPolicy, list[tuple[Op, float]]] = {
    AugmentPolicy.NONE: [],
    AugmentPolicy.LIGHT: [
        (Affine(degrees=2.0, translate=0.01, scale=(0.98, 1.02)), 0.25),
        (Brightness(delta=0.10, unit=NORMALISED_UNIT), 0.30),
        (Contrast(delta=0.10), 0.30),
    ],
    AugmentPolicy.OCEC: [
        (Affine(degrees=3.0, translate=0.02, scale=(0.97, 1.03)), 0.30),
        (GaussianBlur3(sigma=(0.5, 3.0)), 0.20),
        (GaussianNoise(sigma=(0.01, 0.03), unit=NORMALISED_UNIT), 0.10),
        (Brightness(delta=0.25, unit=NORMALISED_UNIT), 0.35),
        (Contrast(delta=0.25), 0.35),
        (Brightness(delta=0.15, unit=NORMALISED_UNIT), 0.25),
        (Glare(blobs=(1, 3), sigma=(3.0, 8.0), alpha=(0.05, 0.25), unit=NORMALISED_UNIT), 0.20),
        (Jpeg(quality=(50, 90)), 0.20),
    ],
}


class Augmenter:
    def __init__(self, policy: AugmentPolicy | str = AugmentPolicy.OCEC) -> None:
        self.policy = AugmentPolicy(policy)
        self.ops = POLICIES[self.policy]

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        """x float [B,3,H,W] in [0, 1] -> augmented copy in [0, 1] (x itself is not modified)."""
        if not self.ops:
            return x
        if not x.is_floating_point():
            raise TypeError(f"Augmenter expects float pixels in [0, 1], got {x.dtype}")
        out = x.clone()
        for op, p in self.ops:
            chosen = torch.rand(x.shape[0], generator=generator, device=generator.device) < p
            idx = chosen.nonzero().squeeze(1)
            if idx.numel() == 0:
                continue
            if idx.numel() == x.shape[0]:
                out = op(out, generator)
            else:
                idx = idx.to(x.device)
                out[idx] = op(out[idx], generator)
        return out

    def describe(self) -> dict[str, Any]:
        """The policy and every op's parameters, for the run record."""
        return {
            "policy": str(self.policy),
            "space": "pixels [0, 1] before normalisation; additive magnitudes in units of `unit` pixels",
            "ops": [describe_op(op, p) for op, p in self.ops],
        }

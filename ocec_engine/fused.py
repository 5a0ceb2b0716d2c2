"""The frozen backbone prefix as one fused module, for the training forward pass only.

Frozen units run in eval mode with fixed weights (``stages.set_train_mode``), so each of their
BatchNorms is a fixed per-channel affine map that can be folded into the convolution before it
(``torch.nn.utils.fusion.fuse_conv_bn_eval``): the same function in one pass over the activations
instead of two. On a CPU this halves the frozen forward, which is most of a stage-1 step with
augmentation on (``benchmarks/engine_throughput.py --phases``). The result equals the unfused
forward up to float rounding (about 1e-7); it is rebuilt at every epoch start from the model's
current weights, so a stage change, a resume or a loaded checkpoint is always reflected, and the
model and its checkpoints never see it.
"""

from __future__ import annotations

import copy
import itertools

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from ocec_engine.stages import backbone_blocks


def fused_prefix(model: nn.Module, frozen_prefix: int) -> nn.Module | None:
    """A fused copy of the first ``frozen_prefix`` backbone units; None when there is nothing frozen
    or a frozen unit is in train mode (its BatchNorm statistics would then move)."""
    units = [unit for _, unit in backbone_blocks(model)[:frozen_prefix]]  # type: ignore[arg-type]
    if not units or any(m.training for unit in units for m in unit.modules()):
        return None
    fused = copy.deepcopy(nn.Sequential(*units))
    _fold(fused)
    return fused.requires_grad_(False)


def _fold(module: nn.Module) -> None:
    """Fold every BatchNorm2d that directly follows a Conv2d in the same container, in place."""
    names = list(module._modules)
    for first, second in itertools.pairwise(names):
        conv, norm = module._modules[first], module._modules[second]
        if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d):
            module._modules[first] = fuse_conv_bn_eval(conv, norm)
            module._modules[second] = nn.Identity()
    for child in module.children():
        _fold(child)

"""One training batch: uint8 images -> augment in [0, 1] -> normalise -> split forward -> step."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812 (the PyTorch convention)
from torch import Tensor, nn

from ocec_engine.evaluate import Runtime
from ocec_engine.metrics import predicted_open
from ocec_engine.normalize import normalize
from ocec_engine.stages import split_embed

Augment = Callable[[Tensor, torch.Generator], Tensor]


@dataclass(frozen=True)
class StepResult:
    loss: float
    predicted_open: Tensor  # margin-free decision per sample (train F1)
    finite: bool
    stepped: bool  # False when AMP skipped the step (inf/NaN gradients)


def batch_slices(n: int, batch_size: int) -> list[tuple[int, int]]:
    """Consecutive [start, end) slices; a final batch of one sample is dropped (BatchNorm needs 2)."""
    slices = [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]
    if slices and slices[-1][1] - slices[-1][0] < 2:
        slices.pop()
    return slices


def prepare_batch(
    x_u8: Tensor, runtime: Runtime, augment: Augment | None, generator: torch.Generator
) -> Tensor:
    x = x_u8.to(runtime.device, non_blocking=True)
    if augment is not None:
        x = augment(x.to(torch.float32).div_(255.0), generator)
    return runtime.prepare(normalize(x))


def embed_all(
    model: nn.Module, x_u8: Tensor, batch_size: int, runtime: Runtime, frozen_prefix: int
) -> Tensor:
    """Embeddings of every image through a fully frozen backbone (stage 1 without augmentation).

    The backbone is a fixed function in that case (weights frozen, BatchNorm in eval mode, no
    dropout before the embedding), so one pass replaces a backbone forward in every later batch.
    """
    chunks = []
    with torch.no_grad():
        for start in range(0, len(x_u8), batch_size):
            x = runtime.prepare(normalize(x_u8[start : start + batch_size].to(runtime.device)))
            with runtime.autocast():
                chunks.append(split_embed(model, x, frozen_prefix).float())
    return torch.cat(chunks)


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
    runtime: Runtime,
    x: Tensor,
    y: Tensor,
    frozen_prefix: int,
    margin_scale: float,
    embeddings: Tensor | None = None,
    frozen: nn.Module | None = None,
) -> StepResult:
    """One optimizer step; ``embeddings`` (precomputed by a fully frozen backbone) replace ``x``;
    ``frozen`` (the fused frozen prefix) runs in place of the first ``frozen_prefix`` units."""
    with runtime.autocast():
        emb = split_embed(model, x, frozen_prefix, frozen) if embeddings is None else embeddings
        logits = model.train_logits(emb, y, margin_scale)  # type: ignore[operator]
    loss = F.cross_entropy(logits.float(), y)
    finite = bool(torch.isfinite(loss.detach()))
    optimizer.zero_grad(set_to_none=True)
    if not finite and scaler is None:  # fp32: a NaN/inf loss is a real fault; never step on it
        return StepResult(float(loss.detach()), torch.zeros_like(y, dtype=torch.bool), False, False)
    stepped = True
    if scaler is not None:
        scaler.scale(loss).backward()
        scale = scaler.get_scale()
        scaler.step(optimizer)
        scaler.update()
        stepped = scaler.get_scale() >= scale
    else:
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        if getattr(model, "margin_head", None) is None:
            decision = predicted_open(logits.detach())  # margin none: these are the margin-free logits
        else:
            decision = predicted_open(model.eval_logits(emb.detach()))  # type: ignore[operator]
    return StepResult(float(loss.detach()), decision, finite=finite, stepped=stepped)

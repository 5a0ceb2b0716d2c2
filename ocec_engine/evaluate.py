"""Validation pass: eval mode, no autograd, margin-free logits, the weights that get checkpointed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812 (the PyTorch convention)
from torch import Tensor, nn

from ocec_engine.metrics import BinaryCounts, fisher_ratio, predicted_open
from ocec_engine.normalize import normalize


@dataclass
class EvalResult:
    loss: float
    counts: BinaryCounts
    fisher: float
    samples: int
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def scores(self) -> dict[str, float]:
        return {"loss": self.loss, **self.counts.scores(), "fisher_ratio": self.fisher}


@dataclass(frozen=True)
class Runtime:
    """Where and how batches run."""

    device: torch.device
    amp: bool = False
    channels_last: bool = False

    def autocast(self) -> torch.autocast:
        return torch.autocast(device_type=self.device.type, dtype=torch.float16, enabled=self.amp)

    def prepare(self, x: Tensor) -> Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x


def evaluate(model: nn.Module, x: Tensor, y: Tensor, batch_size: int, runtime: Runtime) -> EvalResult:
    """Val loss (cross-entropy of the margin-free logits), confusion counts and Fisher ratio.

    Leaves the model in eval mode: the loop re-applies its stage's train modes (frozen BN stays eval).
    """
    model.eval()
    counts = BinaryCounts()
    loss_sum = 0.0
    embeddings: list[Tensor] = []
    with torch.inference_mode():
        for start in range(0, len(y), batch_size):
            xb = runtime.prepare(normalize(x[start : start + batch_size].to(runtime.device)))
            yb = y[start : start + batch_size].to(runtime.device)
            with runtime.autocast():
                emb = model.embed(xb)  # type: ignore[operator]
                logits = model.eval_logits(emb).float()  # type: ignore[operator]
            loss_sum += float(F.cross_entropy(logits, yb, reduction="sum"))
            counts.update(predicted_open(logits), yb)
            embeddings.append(emb.float().cpu())
    n = len(y)
    fisher = fisher_ratio(torch.cat(embeddings), y) if embeddings else 0.0
    return EvalResult(loss=loss_sum / n if n else 0.0, counts=counts, fisher=fisher, samples=n)

"""Our re-implementation of the public OCEC training data path, timed on the engine's model and data.

What it reproduces (../shared/reference/ocec_engine.md §4.1, §4.3-4.4, §5, §6.2) — written from that
description, not from OCEC code:

* data: every image decoded once at start-up into a PIL RGB image (OCEC keeps PIL images in RAM);
  per sample, in a ``DataLoader`` ``__getitem__``: resize to 32x64 (PIL bilinear, standing in for
  albumentations/cv2 ``Resize``), scale to [0, 1], normalise with the OCEC mean/std, to a CHW
  tensor; ``batch_size``, ``shuffle``, ``num_workers`` (OCEC default 4; here ``--workers``, default
  2 = this machine's cores), ``persistent_workers``, ``prefetch_factor`` 8, ``drop_last`` False;
* batch augmentation *after* normalisation, in the OCEC order and probabilities: affine, 3x3 blur,
  noise (whole batch, p 0.1), brightness, contrast, brightness, glasses glare (p 0.2 per batch, then
  a Python loop adding 1-3 blobs to every sample), JPEG — each op clamps to [0, 1] as Kornia's do,
  which clips normalised pixels (the OCEC bug, kept: it is part of the cost profile). The op kernels
  are the engine's own ``augment_ops`` (no Kornia here);
* training: the whole model in train mode (frozen BatchNorm keeps updating: OCEC's behaviour),
  AdamW over ``requires_grad`` parameters, an EMA (0.999) of the trainable parameters updated after
  every step, train probabilities re-computed with the margin head and kept, with labels and
  embeddings, for the whole training set;
* validation: EMA weights swapped in, ``model.eval()`` but **without** ``torch.no_grad()``.

Stage 1 freezes ``stem``/``features``; stage 2 also trains the last ``int(4 x 0.5) = 2`` blocks.

    python benchmarks/reference_pipeline.py --stage 1 --epochs 3
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import math
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import torch
import torch.nn.functional as F  # noqa: N812 (the PyTorch convention)
from PIL import Image
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from ocec_engine.augment_ops import Affine, Brightness, Contrast, GaussianBlur3, Jpeg
from ocec_engine.model import ModelConfig, OCECNet, build_model
from ocec_engine.normalize import MEAN, STD

H, W = 32, 64


class ReferenceDataset(Dataset[tuple[Tensor, Tensor]]):
    """PIL images in RAM; resize + normalise per sample (what OCEC's albumentations transform does)."""

    def __init__(self, parquet: Path, split: str) -> None:
        table = pq.read_table(parquet, columns=["split", "class_id", "image_bytes"]).to_pydict()
        rows = [i for i, s in enumerate(table["split"]) if s == split]
        self.images = [Image.open(io.BytesIO(table["image_bytes"][i])).convert("RGB") for i in rows]
        self.labels = [float(table["class_id"][i]) for i in rows]
        self.mean = np.array(MEAN, np.float32)
        self.std = np.array(STD, np.float32)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        img = np.asarray(self.images[i].resize((W, H), Image.BILINEAR), dtype=np.float32) / 255.0
        img = (img - self.mean) / self.std
        return torch.from_numpy(img.transpose(2, 0, 1).copy()), torch.tensor(self.labels[i])


def _choose(x: Tensor, p: float) -> Tensor:
    return (torch.rand(x.shape[0]) < p).nonzero().squeeze(1)


def _apply(x: Tensor, op: Any, p: float, g: torch.Generator) -> Tensor:
    idx = _choose(x, p)
    if idx.numel():
        x[idx] = op(x[idx], g)
    return x


def _glare_loop(x: Tensor) -> Tensor:
    """OCEC's glasses reflection: with p 0.2 per batch, 1-3 Gaussian blobs on each sample, one by one."""
    if torch.rand(()) >= 0.2:
        return x
    yy, xx = torch.meshgrid(torch.arange(H, dtype=x.dtype), torch.arange(W, dtype=x.dtype), indexing="ij")
    for i in range(x.shape[0]):
        for _ in range(int(torch.randint(1, 4, ()))):
            cy, cx = float(torch.rand(()) * H), float(torch.rand(()) * W)
            sigma, alpha = float(torch.empty(()).uniform_(3, 8)), float(torch.empty(()).uniform_(0.05, 0.25))
            blob = torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2)) * alpha
            x[i] = (x[i] + blob).clamp(0.0, 1.0)
    return x


def gpu_aug(x: Tensor, g: torch.Generator) -> Tensor:
    """The OCEC batch augmentation, applied to *normalised* tensors (so every clamp clips them)."""
    x = _apply(x, Affine(degrees=3.0, translate=0.02, scale=(0.97, 1.03)), 0.30, g)
    x = _apply(x, GaussianBlur3(sigma=(0.5, 3.0)), 0.20, g)
    if torch.rand(()) < 0.10:
        x = x + torch.randn_like(x) * float(torch.empty(()).uniform_(0.01, 0.03))
    x = _apply(x, Brightness(delta=0.25), 0.35, g)
    x = _apply(x, Contrast(delta=0.25), 0.35, g)
    x = _apply(x, Brightness(delta=0.15), 0.25, g)
    x = _glare_loop(x)
    return _apply(x, Jpeg(quality=(50, 90)), 0.20, g)


class Ema:
    """EMA of the trainable parameters (OCEC: decay 0.999, per step, parameters that need grad)."""

    def __init__(self, model: nn.Module, decay: float = 0.999) -> None:
        self.decay = decay
        self.shadow = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}

    def update(self, model: nn.Module) -> None:
        with torch.no_grad():
            for n, p in model.named_parameters():
                if p.requires_grad:
                    self.shadow.setdefault(n, p.detach().clone()).mul_(self.decay).add_(
                        p.detach(), alpha=1 - self.decay
                    )

    def swap(self, model: nn.Module) -> dict[str, Tensor]:
        saved = {}
        for n, p in model.named_parameters():
            if n in self.shadow:
                saved[n] = p.detach().clone()
                p.data.copy_(self.shadow[n])
        return saved


def freeze(model: OCECNet, stage: int) -> None:
    for name, p in model.named_parameters():
        p.requires_grad_(not ("stem" in name or "features" in name))
    if stage >= 2:
        k = max(1, int(len(model.features) * 0.5))
        for block in list(model.features)[-k:]:
            for p in block.parameters():
                p.requires_grad_(True)


def train_epoch(
    model: OCECNet, loader: DataLoader, optimizer: torch.optim.Optimizer, ema: Ema, epoch: int
) -> tuple[float, list[float]]:
    """samples/s of the epoch, and the wall time of each full batch (loop iteration to iteration)."""
    model.train()  # OCEC: frozen BN in train mode too
    g = torch.Generator().manual_seed(epoch)
    probs, labels, embeddings = [], [], []
    started = time.perf_counter()
    seen = 0
    ends: list[float] = []
    for x, y in loader:
        x = gpu_aug(x, g)
        target = y.long()
        emb = model.embed(x)
        logits = model.train_logits(emb, target, min(1.0, epoch / 10))
        loss = F.cross_entropy(logits, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        ema.update(model)
        probs.append(torch.softmax(model.eval_logits(emb.detach()), 1)[:, 1].detach())
        labels.append(y)
        embeddings.append(emb.detach())
        seen += len(y)
        ends.append(time.perf_counter())
    batch_seconds = [b - a for a, b in itertools.pairwise(ends[:-1])]  # full batches only
    return seen / (time.perf_counter() - started), batch_seconds


def validate(model: OCECNet, loader: DataLoader, ema: Ema) -> float:
    saved = ema.swap(model)
    model.eval()
    started = time.perf_counter()
    outputs = []
    for x, y in loader:  # no torch.no_grad(): OCEC builds graphs here
        logits = model.eval_logits(model.embed(x))
        outputs.append((F.cross_entropy(logits, y.long()), logits))
    seconds = time.perf_counter() - started
    for n, p in model.named_parameters():
        if n in saved:
            p.data.copy_(saved[n])
    return seconds


def run(parquet: Path, stage: int, epochs: int, batch_size: int, workers: int) -> dict[str, Any]:
    torch.manual_seed(0)
    train_set, val_set = ReferenceDataset(parquet, "train"), ReferenceDataset(parquet, "val")
    extra: dict[str, Any] = {"persistent_workers": True, "prefetch_factor": 8} if workers else {}
    train_loader = DataLoader(train_set, batch_size, shuffle=True, num_workers=workers, **extra)
    val_loader = DataLoader(val_set, batch_size, shuffle=False, num_workers=workers, **extra)
    model = build_model(ModelConfig())
    freeze(model, stage)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=1e-4, weight_decay=1e-4
    )
    ema = Ema(model)
    rates, epoch_seconds, batch_seconds = [], [], []
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        rate, seconds = train_epoch(model, train_loader, optimizer, ema, epoch)
        rates.append(rate)
        batch_seconds += seconds
        validate(model, val_loader, ema)
        epoch_seconds.append(time.perf_counter() - started)
    steady = rates[1:] or rates
    return {
        "stage": stage,
        "train_samples": len(train_set),
        "val_samples": len(val_set),
        "workers": workers,
        "train_samples_per_sec": statistics.median(steady),
        "p10_samples_per_sec": batch_size / sorted(batch_seconds)[len(batch_seconds) // 10],
        "epoch_seconds": statistics.median(epoch_seconds[1:] or epoch_seconds),
        "per_epoch_samples_per_sec": [round(r, 1) for r in rates],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="OCEC parquet (default: a synthetic domain-B set)")
    parser.add_argument("--n", type=int, default=4096, help="synthetic set size when --data is not given")
    parser.add_argument("--stage", type=int, choices=[1, 2], default=1)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    from engine_throughput import bench_data

    result = run(args.data or bench_data(args.n), args.stage, args.epochs, args.batch_size, args.workers)
    print(json.dumps(result, indent=2))
    assert all(math.isfinite(r) for r in result["per_epoch_samples_per_sec"])


if __name__ == "__main__":
    main()

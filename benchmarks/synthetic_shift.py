"""How much does synthetic domain B hurt a model trained on A, and how much do head-only / partial
fine-tuning recover? Produces the table in docs/data.md.

    python benchmarks/synthetic_shift.py [--n 2000] [--epochs 20] [--shifts 1.0] [--seed 0] [--scratch]

A deliberately simple loop (Adam, batch 64, no augmentation), not the engine's training loop: it
measures the data, not the trainer. F1 = binary F1 of "open" at 0.5.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Iterable
from pathlib import Path

import torch
import torch.nn.functional as F  # noqa: N812

from ocec_engine.data import DataSplit, load_dataset
from ocec_engine.model import ModelConfig, OCECNet, build_model
from ocec_engine.normalize import normalize
from ocec_engine.synthetic import make_dataset


def f1(model: OCECNet, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(normalize(x[i : i + 512])) for i in range(0, len(x), 512)]) >= 0.5
    tp = int((pred & (y == 1)).sum())
    wrong = int((pred != (y == 1)).sum())
    return 2 * tp / max(1, 2 * tp + wrong)


def fit(
    model: OCECNet, data: DataSplit, epochs: int, lr: float, trainable: Iterable[str] | None, seed: int
) -> None:
    prefixes = tuple(trainable) if trainable is not None else ("",)
    for name, p in model.named_parameters():
        p.requires_grad = name.startswith(prefixes)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    g = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        model.train()
        for name, m in model.named_modules():  # frozen parts keep their BN statistics
            if isinstance(m, torch.nn.BatchNorm2d) and not name.startswith(prefixes):
                m.eval()
        perm = torch.randperm(len(data.train_y), generator=g)
        for i in range(0, len(perm), 64):
            idx = perm[i : i + 64]
            logits = model.train_logits(
                model.embed(normalize(data.train_x[idx])), data.train_y[idx], min(1.0, (epoch + 1) / 5)
            )
            loss = F.cross_entropy(logits, data.train_y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--shifts", default="1.0")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scratch", action="store_true", help="also train a model on B from scratch")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        a = load_dataset(make_dataset(Path(tmp) / "A", domain="A", n=args.n, seed=args.seed))
        torch.manual_seed(args.seed)
        model = build_model(ModelConfig())
        fit(model, a, args.epochs, 3e-3, None, args.seed)
        result: dict[str, object] = {"A_val": round(f1(model, a.val_x, a.val_y), 4)}
        state = {k: v.clone() for k, v in model.state_dict().items()}
        for shift in (float(s) for s in args.shifts.split(",")):
            b_dir = Path(tmp) / f"B{shift}"
            b = load_dataset(make_dataset(b_dir, domain="B", n=args.n, seed=args.seed + 1, shift=shift))
            model.load_state_dict(state)
            row = {"B_val_before": f1(model, b.val_x, b.val_y)}
            fit(model, b, 10, 1e-3, ["margin_head"], args.seed + 1)
            row["B_val_stage1"] = f1(model, b.val_x, b.val_y)
            fit(model, b, 10, 3e-4, ["margin_head", "features.2", "features.3"], args.seed + 2)
            row["B_val_stage2"] = f1(model, b.val_x, b.val_y)
            if args.scratch:
                torch.manual_seed(args.seed)
                scratch = build_model(ModelConfig())
                fit(scratch, b, args.epochs, 3e-3, None, args.seed)
                row["B_val_scratch"] = f1(scratch, b.val_x, b.val_y)
            result[f"shift={shift}"] = {k: round(v, 4) for k, v in row.items()}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

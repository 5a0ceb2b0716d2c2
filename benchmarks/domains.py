"""The benchmark's data and model A: synthetic domain A and shifted domain B sets built with the
engine's generator, and model A trained on A with the engine (cached per seed and settings).

Pairing: for training seed ``s``, A uses generator seed ``s`` and B generator seed ``s + 1`` (as
docs/data.md); the B sets of one seed at different shifts show the same eyes with stronger effects.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from benchmarks.variants import Budget
from ocec_engine import TrainConfig, train
from ocec_engine.synthetic import make_dataset

PARQUET = "dataset.parquet"
A_VAL_FRACTION = 0.25


def b_name(budget: Budget, shift: float, seed: int) -> str:
    return f"B_n{budget.b_n}_v{budget.b_val_fraction:g}_s{seed + 1}_shift{shift:.2f}"


def domain_b(root: Path, budget: Budget, shift: float, seed: int) -> Path:
    """The B folder (``dataset.parquet`` inside) for ``shift`` and ``seed``, generated once."""
    folder = root / b_name(budget, shift, seed)
    if not (folder / PARQUET).is_file():
        make_dataset(
            folder, domain="B", n=budget.b_n, seed=seed + 1, shift=shift, val_fraction=budget.b_val_fraction
        )
    return folder


def domain_a(root: Path, budget: Budget, seed: int) -> Path:
    folder = root / f"A_n{budget.a_n}_s{seed}"
    if not (folder / PARQUET).is_file():
        make_dataset(folder, domain="A", n=budget.a_n, seed=seed, val_fraction=A_VAL_FRACTION)
    return folder


def model_a(root: Path, budget: Budget, seed: int) -> Path:
    """Model A for ``seed``: a full training run on domain A from random init; its best checkpoint.

    Cached as ``<root>/<key>.pt`` (the key names every setting that changes the weights), so reruns
    and the server mode reuse the same weights.
    """
    key = budget.model_a_key(seed)
    target = root / f"{key}.pt"
    if target.is_file():
        return target
    run = root / f"{key}_run"
    shutil.rmtree(run, ignore_errors=True)
    config = TrainConfig.from_dict(
        {
            "data_root": str(domain_a(root, budget, seed)),
            "output_dir": str(run),
            "epochs": budget.a_epochs,
            "batch_size": budget.batch_size,
            "lr": budget.a_lr,
            "seed": seed,
            "freeze_backbone": False,
            "augment": "none",
            "device": "cpu",
            "keep_epoch_checkpoints": 1,
        }
    )
    result = train(config)
    if result.best_checkpoint is None:
        raise RuntimeError(f"model A (seed {seed}) produced no best checkpoint: {result.reason}")
    target.with_suffix(".json").write_text(
        json.dumps({"a_val_f1": result.best_f1, "epoch": result.best_epoch})
    )
    tmp = target.with_suffix(".tmp")
    shutil.copyfile(result.best_checkpoint, tmp)
    tmp.replace(target)  # last: a present .pt means a complete model A
    shutil.rmtree(run, ignore_errors=True)
    return target


def model_a_f1(path: Path) -> float | None:
    """Model A's F1 on domain-A val (its best epoch), as recorded when it was trained."""
    side = path.with_suffix(".json")
    return float(json.loads(side.read_text())["a_val_f1"]) if side.is_file() else None

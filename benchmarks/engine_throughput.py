"""Engine train throughput vs the pure step rate, stage 1 and stage 2, default model, batch 256, CPU.

For each stage (and augmentation policy) it runs ``ocec_engine.train`` end to end on a synthetic
domain-B set and reads the train-pass samples/s the engine reports (data indexing, augmentation,
normalisation, forward, backward, optimizer, metric bookkeeping, hooks; median of the epochs after
the first), and times the *pure step* of the same model in the same stage: ``steps.train_step`` on
one normalised batch already in memory. Targets (issue 2, point 9): engine >= 85 % of the pure step
rate; a stage-1 epoch >= 3x faster than a stage-2 epoch. With ``--reference`` it also times
``reference_pipeline.py`` (the public OCEC data path) on the same model and data.

    python benchmarks/engine_throughput.py [--n 4096] [--epochs 3] [--augment none ocec] [--reference]

Writes benchmarks/out/engine_throughput.json. Run it on a quiet machine (``uptime``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ocec_engine.config import AugmentPolicy, DeviceChoice, TrainConfig
from ocec_engine.evaluate import Runtime
from ocec_engine.hooks import EpochMetrics, NullHooks
from ocec_engine.loop import train
from ocec_engine.model import ModelConfig, build_model
from ocec_engine.normalize import normalize
from ocec_engine.optim import build_optimizer, manifest
from ocec_engine.stages import apply_stage, build_plan, set_train_mode
from ocec_engine.steps import train_step

OUT = Path(__file__).resolve().parent / "out"
BATCH = 256


class Collect(NullHooks):
    def __init__(self) -> None:
        self.epochs: list[EpochMetrics] = []

    def on_epoch_end(self, metrics: EpochMetrics) -> None:
        self.epochs.append(metrics)


def bench_data(n: int) -> Path:
    """A synthetic domain-B OCEC parquet of ``n`` images, built once under benchmarks/out."""
    from ocec_engine.synthetic import make_dataset

    folder = OUT / f"data_B_{n}"
    path = folder / "dataset.parquet"
    if not path.is_file():
        make_dataset(folder, domain="B", n=n, seed=1)
    return path


def _config(
    data: Path, out: Path, stage: int, epochs: int, augment: AugmentPolicy, full: bool
) -> TrainConfig:
    return TrainConfig(
        data_root=str(data),
        output_dir=str(out),
        epochs=epochs,
        batch_size=BATCH,
        lr=1e-4,
        stage=stage,
        freeze_backbone=not full,
        unfreeze_backbone_epoch=None,
        augment=augment,
        device=DeviceChoice.CPU,
    )


def engine_rate(
    data: Path, stage: int, epochs: int, augment: AugmentPolicy, full: bool = False
) -> dict[str, Any]:
    hooks = Collect()
    with tempfile.TemporaryDirectory() as out:
        os.environ["OCEC_DATA_CACHE"] = str(OUT / "cache")
        train(_config(data, Path(out), stage, epochs, augment, full), hooks)
    steady = hooks.epochs[1:] or hooks.epochs
    return {
        "train_samples_per_sec": statistics.median(m.samples_per_sec for m in steady),
        "train_seconds": statistics.median(m.extra["train_seconds"] for m in steady),
        "epoch_seconds": statistics.median(m.epoch_seconds for m in steady),
        "per_epoch_samples_per_sec": [round(m.samples_per_sec, 1) for m in hooks.epochs],
    }


def pure_rate(stage: int, full: bool = False, steps: int = 12) -> float:
    """train_step on one in-memory normalised batch: forward + backward + optimizer, nothing else."""
    torch.manual_seed(0)
    model = build_model(ModelConfig())
    cfg = TrainConfig(data_root="", output_dir="", stage=stage, freeze_backbone=not full)
    plan = build_plan(model, cfg)
    apply_stage(model, plan, stage)
    set_train_mode(model, plan, stage)
    spec = plan.spec(stage)
    optimizer = build_optimizer(model, manifest(model, plan.head, spec.trainable), 1e-4, 1e-4)
    x = normalize(torch.randint(0, 256, (BATCH, 3, 32, 64), dtype=torch.uint8))
    y = torch.arange(BATCH) % 2
    runtime = Runtime(torch.device("cpu"))
    prefix = plan.frozen_prefix(stage)
    for _ in range(3):
        train_step(model, optimizer, None, runtime, x, y, prefix, 1.0)
    started = time.perf_counter()
    for _ in range(steps):
        train_step(model, optimizer, None, runtime, x, y, prefix, 1.0)
    return BATCH * steps / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4096, help="synthetic images (75 %% train)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument(
        "--augment", nargs="+", default=["none", "ocec"], choices=[a.value for a in AugmentPolicy]
    )
    parser.add_argument(
        "--reference", action="store_true", help="also time the OCEC-style pipeline (ocec aug)"
    )
    parser.add_argument("--workers", type=int, default=2, help="reference DataLoader workers")
    args = parser.parse_args()
    data = bench_data(args.n)
    load_before = os.getloadavg()
    rows: list[dict[str, Any]] = []
    pure = {1: pure_rate(1), 2: pure_rate(2), "full": pure_rate(1, full=True)}
    for policy in args.augment:
        for stage, full in ((1, False), (2, False), (1, True)):
            name = "full fine-tune" if full else f"stage {stage}"
            row = {
                "run": name,
                "augment": policy,
                **engine_rate(data, stage, args.epochs, AugmentPolicy(policy), full),
            }
            row["pure_step_samples_per_sec"] = pure["full" if full else stage]
            row["engine_vs_pure"] = row["train_samples_per_sec"] / row["pure_step_samples_per_sec"]
            rows.append(row)
            print(_fmt(row), flush=True)
    result: dict[str, Any] = {
        "machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads()},
        "torch": torch.__version__,
        "batch_size": BATCH,
        "data": str(data),
        "rows": rows,
        "stage1_over_stage2_epoch_speed": {policy: _ratio(rows, policy) for policy in args.augment},
    }
    if args.reference:
        from reference_pipeline import run as reference_run

        result["reference"] = []
        for stage in (1, 2):
            ref = reference_run(data, stage, args.epochs, BATCH, args.workers)
            engine = next(r for r in rows if r["run"] == f"stage {stage}" and r["augment"] == "ocec")
            ref["engine_speedup"] = engine["train_samples_per_sec"] / ref["train_samples_per_sec"]
            ref["engine_epoch_speedup"] = ref["epoch_seconds"] / engine["epoch_seconds"]
            result["reference"].append(ref)
            print(
                f"reference stage {stage}: {ref['train_samples_per_sec']:.0f} samples/s "
                f"(engine {ref['engine_speedup']:.2f}x; epoch incl. val {ref['engine_epoch_speedup']:.2f}x)"
            )
    result["load_average"] = {"before": load_before, "after": os.getloadavg()}
    print(json.dumps(result["stage1_over_stage2_epoch_speed"]), "load", result["load_average"])
    OUT.mkdir(exist_ok=True)
    (OUT / "engine_throughput.json").write_text(json.dumps(result, indent=2))


def _ratio(rows: list[dict[str, Any]], policy: str) -> float:
    one = next(r for r in rows if r["run"] == "stage 1" and r["augment"] == policy)
    two = next(r for r in rows if r["run"] == "stage 2" and r["augment"] == policy)
    return float(two["train_seconds"] / one["train_seconds"])


def _fmt(row: dict[str, Any]) -> str:
    return (
        f"{row['run']:<15} aug {row['augment']:<5} engine {row['train_samples_per_sec']:7.0f}/s  "
        f"pure {row['pure_step_samples_per_sec']:7.0f}/s  ({row['engine_vs_pure']:.0%})  "
        f"train pass {row['train_seconds']:.2f}s  epoch {row['epoch_seconds']:.2f}s"
    )


if __name__ == "__main__":
    main()

"""Engine train throughput vs the pure step rate, stage 1 and stage 2, default model, batch 256, CPU.

For each stage (and augmentation policy) it runs ``ocec_engine.train`` end to end on a synthetic
domain-B set and reads the train-pass samples/s the engine reports (data indexing, augmentation,
normalisation, forward, backward, optimizer, metric bookkeeping, hooks; median of the epochs after
the first), then — right after, on the same weights (the run's stage-entry checkpoint) — times the
*pure step* of the same model in the same stage: ``steps.train_step`` on one normalised batch
already in memory (median of several windows). Targets (issue 2, point 9): engine >= 85 % of the
pure step rate; a stage-1 epoch >= 3x faster than a stage-2 epoch. With ``--reference`` it also
times ``reference_pipeline.py`` (the public OCEC data path) on the same model and data.

    python benchmarks/engine_throughput.py [--n 4096] [--epochs 3] [--augment none ocec] [--reference]
    python benchmarks/engine_throughput.py --phases        # only the stage-1 step, phase by phase

``--phases`` (also printed with ``--reference``) splits one stage-1 step with the ``ocec``
augmentation into data (indexing the uint8 set), augment, normalise, frozen forward (the fused
frozen backbone, as the engine runs it; the unfused one is timed too), head forward + loss,
backward and optimizer, and names the phase that bounds the step.

Writes benchmarks/out/engine_throughput.json. Others share this machine: run it when ``uptime``
is low, and read the recorded load average next to the figures.
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

from ocec_engine import loop
from ocec_engine.config import AugmentPolicy, DeviceChoice, TrainConfig
from ocec_engine.evaluate import Runtime
from ocec_engine.hooks import EpochMetrics, NullHooks
from ocec_engine.model import ModelConfig, build_model
from ocec_engine.normalize import normalize
from ocec_engine.optim import build_optimizer, manifest
from ocec_engine.stages import apply_stage, build_plan, set_train_mode
from ocec_engine.steps import train_step

OUT = Path(__file__).resolve().parent / "out"
BATCH = 256
MEDIANS = (
    "engine_p10_samples_per_sec",
    "pure_p10_samples_per_sec",
    "train_samples_per_sec",
    "train_seconds",
    "first_epoch_train_seconds",
    "epoch_seconds",
    "pure_step_samples_per_sec",
    "load_average",
)


class Collect(NullHooks):
    """Epoch metrics, and the wall time of every full batch (batch end to batch end, same epoch)."""

    def __init__(self) -> None:
        self.epochs: list[EpochMetrics] = []
        self.batch_seconds: list[float] = []
        self._last: tuple[int, float] | None = None

    def on_batch_end(self, epoch: int, batch: int, batches: int, loss: float) -> None:
        now = time.perf_counter()
        if self._last is not None and self._last[0] == epoch and batch < batches:  # skip the short last one
            self.batch_seconds.append(now - self._last[1])
        self._last = (epoch, now)

    def on_epoch_end(self, metrics: EpochMetrics) -> None:
        self.epochs.append(metrics)
        self._last = None


def low(values: list[float], q: float = 0.1) -> float:
    """The q-quantile: per-batch times least disturbed by other processes on a shared machine."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_data(n: int) -> Path:
    """A synthetic domain-B OCEC parquet of ``n`` images, built once under benchmarks/out."""
    from ocec_engine.synthetic import make_dataset

    folder = OUT / f"data_B_{n}"
    path = folder / "dataset.parquet"
    if not path.is_file():
        make_dataset(folder, domain="B", n=n, seed=1)
    return path


def _config(data: Path, out: Path, stage: int, epochs: int, augment: str, full: bool) -> TrainConfig:
    return TrainConfig(
        data_root=str(data),
        output_dir=str(out),
        epochs=epochs,
        batch_size=BATCH,
        lr=1e-4,
        stage=stage,
        freeze_backbone=not full,
        unfreeze_backbone_epoch=None,
        augment=AugmentPolicy(augment),
        device=DeviceChoice.CPU,
    )


def engine_run(data: Path, stage: int, epochs: int, augment: str, full: bool, cache: bool) -> dict[str, Any]:
    """One engine run; returns its rates and the weights it started from."""
    hooks = Collect()
    limit = loop._EMBED_CACHE_LIMIT
    loop._EMBED_CACHE_LIMIT = limit if cache else 0  # stage 1 without augmentation: cached embeddings
    try:
        with tempfile.TemporaryDirectory() as out:
            os.environ.setdefault("OCEC_DATA_CACHE", str(OUT / "cache"))
            train(_config(data, Path(out), stage, epochs, augment, full), hooks)
            entry = torch.load(Path(out) / f"stage{stage}_entry.pt", weights_only=True)["model_state"]
    finally:
        loop._EMBED_CACHE_LIMIT = limit
    steady = hooks.epochs[1:] or hooks.epochs
    return {
        "engine_p10_samples_per_sec": BATCH / low(hooks.batch_seconds),
        "train_samples_per_sec": statistics.median(m.samples_per_sec for m in steady),
        "train_seconds": statistics.median(m.extra["train_seconds"] for m in steady),
        "first_epoch_train_seconds": hooks.epochs[0].extra["train_seconds"],
        "epoch_seconds": statistics.median(m.epoch_seconds for m in steady),
        "per_epoch_samples_per_sec": [round(m.samples_per_sec, 1) for m in hooks.epochs],
        "_weights": entry,
    }


def pure_rate(
    stage: int, full: bool, weights: dict[str, torch.Tensor], windows: int = 5, steps: int = 4
) -> dict[str, float]:
    """``train_step`` on one in-memory normalised batch (forward + backward + optimizer, nothing else),
    same model, weights, stage and memory layout as the engine; median over ``windows``."""
    model = build_model(ModelConfig())
    model.load_state_dict(weights)
    runtime = Runtime(torch.device("cpu"), channels_last=True)
    model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    plan = build_plan(model, TrainConfig(data_root="", output_dir="", stage=stage, freeze_backbone=not full))
    apply_stage(model, plan, stage)
    set_train_mode(model, plan, stage)
    optimizer = build_optimizer(model, manifest(model, plan.head, plan.spec(stage).trainable), 1e-4, 1e-4)
    gen = torch.Generator().manual_seed(0)
    x = runtime.prepare(
        normalize(torch.randint(0, 256, (BATCH, 3, 32, 64), dtype=torch.uint8, generator=gen))
    )
    y = torch.arange(BATCH) % 2
    prefix = plan.frozen_prefix(stage)
    for _ in range(3):
        train_step(model, optimizer, None, runtime, x, y, prefix, 1.0)
    seconds = []
    for _ in range(windows * steps):
        started = time.perf_counter()
        train_step(model, optimizer, None, runtime, x, y, prefix, 1.0)
        seconds.append(time.perf_counter() - started)
    return {
        "pure_step_samples_per_sec": BATCH / statistics.median(seconds),
        "pure_p10_samples_per_sec": BATCH / low(seconds),
    }


def measure(data: Path, policies: list[str], epochs: int, repeats: int) -> list[dict[str, Any]]:
    """Each row ``repeats`` times, engine run then pure step back to back (both see the same load);
    medians reported."""
    rows = []
    for policy in policies:
        runs = [("stage 1", 1, False, True), ("stage 2", 2, False, True), ("full fine-tune", 1, True, True)]
        if policy == AugmentPolicy.NONE:
            runs.insert(1, ("stage 1 (no cache)", 1, False, False))
        for name, stage, full, cache in runs:
            trials = []
            for _ in range(repeats):
                trial = engine_run(data, stage, epochs, policy, full, cache)
                trial.update(pure_rate(stage, full, trial.pop("_weights")))
                trial["load_average"] = os.getloadavg()[0]
                trials.append(trial)
            row: dict[str, Any] = {"run": name, "augment": policy, "repeats": repeats}
            for key in MEDIANS:
                row[key] = statistics.median(t[key] for t in trials)
            row["engine_vs_pure"] = statistics.median(
                t["train_samples_per_sec"] / t["pure_step_samples_per_sec"] for t in trials
            )
            row["engine_vs_pure_p10"] = row["engine_p10_samples_per_sec"] / row["pure_p10_samples_per_sec"]
            row["trials"] = trials
            rows.append(row)
            print(_fmt(row), flush=True)
    return rows


def stage_ratios(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """How many times faster stage-1 training is than stage-2 (same augmentation): train-pass seconds
    (median epochs) and per-batch time (p10)."""
    out = {}
    for one in rows:
        if one["run"].startswith("stage 1"):
            two = next(r for r in rows if r["run"] == "stage 2" and r["augment"] == one["augment"])
            out[f"{one['augment']}: {one['run']}"] = {
                "train_pass": two["train_seconds"] / one["train_seconds"],
                "per_batch_p10": one["engine_p10_samples_per_sec"] / two["engine_p10_samples_per_sec"],
            }
    return out


PHASES = ("data", "augment", "normalise", "frozen forward", "head forward", "backward", "optimizer")


def phases(steps: int = 12) -> dict[str, Any]:
    """Median ms per phase of one stage-1 batch (``ocec`` augmentation, batch 256, CPU), the step as
    ``loop._batch`` / ``steps.train_step`` run it, cut at each phase; plus the unfused frozen forward."""
    import torch.nn.functional as F  # noqa: N812 (the PyTorch convention)

    from ocec_engine.augment import Augmenter
    from ocec_engine.fused import fused_prefix
    from ocec_engine.stages import split_embed

    model = build_model(ModelConfig())
    runtime = Runtime(torch.device("cpu"), channels_last=True)
    model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    plan = build_plan(model, TrainConfig(data_root="", output_dir="", stage=1))
    apply_stage(model, plan, 1)
    set_train_mode(model, plan, 1)
    optimizer = build_optimizer(model, manifest(model, plan.head, plan.spec(1).trainable), 1e-4, 1e-4)
    prefix, fused, augment = (
        plan.frozen_prefix(1),
        fused_prefix(model, plan.frozen_prefix(1)),
        Augmenter("ocec"),
    )
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (4 * BATCH, 3, 32, 64), dtype=torch.uint8, generator=gen)
    labels = torch.arange(4 * BATCH) % 2
    times: dict[str, list[float]] = {name: [] for name in (*PHASES, "frozen forward, unfused")}
    for step in range(steps + 2):
        marks = [time.perf_counter()]
        idx = torch.randperm(len(labels), generator=gen)[:BATCH]
        x_u8, y = images[idx], labels[idx]
        marks.append(time.perf_counter())
        x = augment(x_u8.to(torch.float32).div_(255.0), gen)
        marks.append(time.perf_counter())
        x = runtime.prepare(normalize(x))
        marks.append(time.perf_counter())
        with torch.no_grad():
            h = fused(x) if fused is not None else x
        marks.append(time.perf_counter())
        emb = split_embed(model, h, 0) if fused is None else h.mean(dim=(-2, -1))
        loss = F.cross_entropy(model.train_logits(emb, y, 1.0).float(), y)  # type: ignore[operator]
        marks.append(time.perf_counter())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        marks.append(time.perf_counter())
        optimizer.step()
        marks.append(time.perf_counter())
        started = time.perf_counter()
        with torch.no_grad():
            split_embed(model, x, prefix)
        unfused = time.perf_counter() - started
        if step >= 2:  # warm-up
            for name, a, b in zip(PHASES, marks, marks[1:], strict=False):
                times[name].append((b - a) * 1000)
            times["frozen forward, unfused"].append(unfused * 1000)
    ms = {name: statistics.median(values) for name, values in times.items()}
    total = sum(ms[name] for name in PHASES)
    bound = max(PHASES, key=lambda name: ms[name])
    for name in PHASES:
        print(f"  {name:<16} {ms[name]:8.2f} ms  {ms[name] / total:6.1%}")
    print(
        f"  step {total:.2f} ms = {BATCH / total * 1000:.0f} images/s; bound by: {bound} "
        f"({ms[bound] / total:.0%}); unfused frozen forward {ms['frozen forward, unfused']:.2f} ms",
        flush=True,
    )
    return {"ms": ms, "bound_by": bound, "step_ms": total, "load_average": os.getloadavg()[0]}


def reference(data: Path, rows: list[dict[str, Any]], epochs: int, workers: int) -> list[dict[str, Any]]:
    from reference_pipeline import run as reference_run

    results = []
    for stage in (1, 2):
        ref = reference_run(data, stage, epochs, BATCH, workers)
        engine = next(r for r in rows if r["run"] == f"stage {stage}" and r["augment"] == "ocec")
        ref["engine_speedup"] = engine["train_samples_per_sec"] / ref["train_samples_per_sec"]
        ref["engine_speedup_p10"] = engine["engine_p10_samples_per_sec"] / ref["p10_samples_per_sec"]
        ref["engine_epoch_speedup"] = ref["epoch_seconds"] / engine["epoch_seconds"]
        ref["load_average"] = os.getloadavg()[0]
        results.append(ref)
        print(
            f"reference stage {stage}: {ref['train_samples_per_sec']:.0f} samples/s, "
            f"epoch {ref['epoch_seconds']:.2f}s -> engine {ref['engine_speedup']:.1f}x faster "
            f"(epoch incl. validation {ref['engine_epoch_speedup']:.1f}x; per batch p10 "
            f"{ref['p10_samples_per_sec']:.0f}/s, engine {ref['engine_speedup_p10']:.1f}x)",
            flush=True,
        )
    return results


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
    parser.add_argument("--repeats", type=int, default=2, help="runs per row (medians reported)")
    parser.add_argument("--phases", action="store_true", help="only the stage-1 step, phase by phase")
    args = parser.parse_args()
    if args.phases:
        print("stage-1 step, ocec augmentation, batch 256, phase by phase (median ms):")
        phases()
        return
    data = bench_data(args.n)
    load_before = os.getloadavg()
    rows = measure(data, args.augment, args.epochs, args.repeats)
    result: dict[str, Any] = {
        "machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads()},
        "torch": torch.__version__,
        "batch_size": BATCH,
        "data": str(data),
        "rows": rows,
        "stage2_over_stage1_train_seconds": stage_ratios(rows),
    }
    if args.reference and "ocec" in args.augment:
        result["reference"] = reference(data, rows, args.epochs, args.workers)
        print("stage-1 step, ocec augmentation, batch 256, phase by phase (median ms):")
        result["stage1_phases"] = phases()
    result["load_average"] = {"before": load_before, "after": os.getloadavg()}
    print(json.dumps(result["stage2_over_stage1_train_seconds"], indent=1), "load", result["load_average"])
    OUT.mkdir(exist_ok=True)
    (OUT / "engine_throughput.json").write_text(json.dumps(result, indent=2))


def _fmt(row: dict[str, Any]) -> str:
    return (
        f"{row['run']:<19} aug {row['augment']:<5} | median: engine {row['train_samples_per_sec']:6.0f}/s "
        f"pure {row['pure_step_samples_per_sec']:6.0f}/s ({row['engine_vs_pure']:.0%}) | p10 batch: engine "
        f"{row['engine_p10_samples_per_sec']:6.0f}/s pure {row['pure_p10_samples_per_sec']:6.0f}/s "
        f"({row['engine_vs_pure_p10']:.0%}) | train pass {row['train_seconds']:.2f}s "
        f"(first {row['first_epoch_train_seconds']:.2f}s) | load {row['load_average']:.2f}"
    )


train = loop.train

if __name__ == "__main__":
    main()

"""Run the benchmark's variants in this process with ``ocec_engine.train(config, hooks)``.

The head-only run keeps every epoch checkpoint; the forked variants (gated, forced, …) resume from its
``epochs/epoch_<U-1>.pt`` with their own stage-2 settings — the engine resumes bit-for-bit on CPU,
so a fork equals the unbroken run and the shared stage 1 is trained once (as the job server's
``/fork`` does). Model A's own row is the start-of-run evaluation of the head-only run.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.domains import domain_b, model_a
from benchmarks.records import Recorder, RunRecord
from benchmarks.variants import HEAD_KEY, Budget, Kind, Variant, spec_values, variants_at
from ocec_engine import TrainConfig, train

Progress = Callable[[str], None]


def epoch_checkpoint(run_dir: Path, epoch: int) -> Path:
    """The engine's per-epoch checkpoint file (docs/engine.md, Checkpoints)."""
    return run_dir / "epochs" / f"epoch_{epoch:04d}.pt"


def run_seed_shift(
    root: Path, budget: Budget, shift: float, seed: int, progress: Progress = print
) -> list[RunRecord]:
    """Every variant at one shift and seed; the head-only run first (the forks start from it)."""
    data = domain_b(root / "data", budget, shift, seed)
    pretrain = model_a(root / "models", budget, seed)
    runs = root / "runs" / budget.name / f"shift{shift:.2f}_seed{seed}"
    shutil.rmtree(runs, ignore_errors=True)
    records: list[RunRecord] = []
    for variant in _ordered(variants_at(budget, shift)):
        progress(f"shift {shift:.2f} seed {seed}: {variant.key}")
        if variant.kind is Kind.MODEL_A:
            continue  # filled from the head-only run's start evaluation below
        parent = epoch_checkpoint(runs / HEAD_KEY, e) if (e := variant.fork_epoch(budget)) else None
        records.append(run_variant(variant, budget, shift, seed, data, pretrain, runs / variant.key, parent))
    head = next(r for r in records if r.variant == HEAD_KEY)
    records.insert(0, RunRecord("model_a", shift, seed, "local", initial_f1=head.initial_f1, outcome="none"))
    return records


def _ordered(variants: tuple[Variant, ...]) -> list[Variant]:
    return sorted(variants, key=lambda v: v.key != HEAD_KEY)  # stable: head-only first


def run_variant(
    variant: Variant,
    budget: Budget,
    shift: float,
    seed: int,
    data: Path,
    pretrain: Path,
    out: Path,
    parent: Path | None = None,
) -> RunRecord:
    values = spec_values(variant, budget, seed)
    values.update(
        data_root=str(data),
        output_dir=str(out),
        pretrain=None if variant.kind is Kind.SCRATCH else str(pretrain),
        resume=str(parent) if parent else None,
        device="cpu",
        keep_epoch_checkpoints=0 if variant.key == HEAD_KEY else 1,  # the forks need the head's epochs
    )
    record = RunRecord(variant.key, shift, seed, "local", forked_at=variant.fork_epoch(budget))
    start = time.perf_counter()
    train(TrainConfig.from_dict(values), Recorder(record))
    record.wall_seconds = time.perf_counter() - start
    return record

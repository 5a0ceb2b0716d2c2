"""The race (docs/race.md) on the synthetic shifts: its pick vs the best fixed recipe, and its cost.

    python benchmarks/race.py                 # 3 seeds x shifts 0.5/0.75/1.0, the full budget
    python benchmarks/race.py --quick         # 1 seed, shift 1.0, small data, 12 epochs
    python benchmarks/race.py --tiny          # the test suite's size (seconds)
    python benchmarks/race.py --seeds 0 1 --shifts 1.0 --rungs 18 25 --keep 0.5 --out /tmp/race.md

Per shift and seed, on the data and model A of ``benchmarks/progressive_vs_full.py`` (same budgets,
``benchmarks/variants.py``), in this process with ``ocec_engine.train``: stage 1 once (head only,
epochs 1 .. U-1), then the race's default candidates (the guide's recipe, back half at lr x1, whole
backbone at lr x1, all forced into stage 2 at U, forked from stage 1's epoch U-1; and a full fine-tune
from model A) trained rung by rung; at each rung ``jobstore.halving.rung_cut`` keeps the best half,
and ``jobstore.halving.pick_winner`` names the winner at the end. The engine resumes bit-for-bit, so
training to a rung and resuming equals an unbroken run. Afterwards the cut candidates are trained to
the end too (outside the race's cost) so the table can compare the race's pick with the best fixed
recipe. F1 is each run's best val F1 (the model a job keeps, best.pt). Cost: sample-epochs (training
samples x epochs, the engine's ``train_samples``) of the race vs one progressive run (E epochs).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.domains import domain_b, model_a
from benchmarks.local_runs import epoch_checkpoint
from benchmarks.variants import BUDGETS, BY_KEY, Budget, spec_values
from jobstore.halving import Standing, pick_winner, rung_cut
from ocec_engine import TrainConfig, train
from ocec_engine.hooks import EpochMetrics, NullHooks

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "benchmarks" / "out" / "progressive_vs_full"  # shares data and model A with that script
FORCED = {"on_gate_fail": "proceed"}
CANDIDATES: dict[str, dict[str, Any]] = {  # name -> stage-2 overrides; None: the full fine-tune
    "guide": {**FORCED},
    "back-half-lr1": {**FORCED, "lr_factor": 1.0, "unfreeze_ratio": 0.5},
    "whole-lr1": {**FORCED, "lr_factor": 1.0, "unfreeze_ratio": 1.0},
}
FULL = "full-finetune"


@dataclass
class Run:
    """One candidate's (or stage 1's) epochs so far: val F1 and loss per epoch, samples trained."""

    name: str
    out: Path
    values: dict[str, Any]
    start: Path | None  # the checkpoint its first chunk resumes from (a fork: stage 1's epoch U-1)
    f1: dict[int, float] = field(default_factory=dict)
    loss: dict[int, float] = field(default_factory=dict)
    samples: int = 0  # trained by this run itself
    epoch: int = 0
    trained: bool = False  # has checkpoints of its own (else it starts from ``start``)

    def standing(self, epoch: int) -> Standing:
        return Standing(self.name, self.f1.get(epoch), self.loss.get(epoch), epoch)

    def best(self) -> Standing:
        epoch = max(self.f1, key=lambda e: (self.f1[e], -self.loss[e], -e))
        return self.standing(epoch)


class _Counter(NullHooks):
    def __init__(self, run: Run) -> None:
        self.run = run

    def on_epoch_end(self, metrics: EpochMetrics) -> None:
        self.run.f1[metrics.epoch], self.run.loss[metrics.epoch] = metrics.val_f1, metrics.val_loss
        self.run.samples += int(metrics.extra.get("train_samples") or 0)
        self.run.epoch, self.run.trained = metrics.epoch, True


def train_to(run: Run, epoch: int) -> None:
    """Train ``run`` up to ``epoch`` (resuming from where it stopped)."""
    if epoch <= run.epoch:
        return
    resume = epoch_checkpoint(run.out, run.epoch) if run.trained else run.start
    values = {**run.values, "epochs": epoch, "resume": str(resume) if resume else None}
    train(TrainConfig.from_dict(values), _Counter(run))


def default_rungs(budget: Budget) -> list[int]:
    """Two rungs in the stage-2 part of the budget: a quarter and a half of the way."""
    u, e = budget.unfreeze, budget.epochs
    return sorted({min(max(u + (e - u) * k // 4, u), e - 1) for k in (1, 2)})


def race_cell(
    work: Path, budget: Budget, shift: float, seed: int, rungs: list[int], keep: float
) -> dict[str, Any]:
    data, pretrain = domain_b(work / "data", budget, shift, seed), model_a(work / "models", budget, seed)
    runs = work / "runs" / f"race_{budget.name}" / f"shift{shift:.2f}_seed{seed}"
    shutil.rmtree(runs, ignore_errors=True)  # a stale epoch file would outrank the new ones when pruning
    common = {"data_root": str(data), "device": "cpu", "keep_epoch_checkpoints": 1}
    head = {**spec_values(BY_KEY["head"], budget, seed), **common, "pretrain": str(pretrain)}
    stage1 = Run("stage1", runs / "stage1", {**head, "output_dir": str(runs / "stage1")}, None)
    train_to(stage1, budget.unfreeze - 1)
    fork_from = epoch_checkpoint(stage1.out, budget.unfreeze - 1)
    candidates = [_candidate(name, budget, seed, runs, head, fork_from) for name in (*CANDIDATES, FULL)]
    for run in candidates:  # a fork inherits stage 1's rows (as a forked job does), not its cost
        if run.start is not None:
            run.f1, run.loss, run.epoch = dict(stage1.f1), dict(stage1.loss), stage1.epoch
    live, decisions = list(candidates), []
    for rung in rungs:
        for run in live:
            train_to(run, rung)
        cut = rung_cut([r.standing(rung) for r in live], rung=rung, keep_fraction=keep)
        decisions.append({"rung": rung, "kept": cut.kept, "cut": cut.cut})
        live = [r for r in live if r.name in cut.kept]
    for run in live:
        train_to(run, budget.epochs)
    verdict = pick_winner([r.best() for r in live])
    cost = stage1.samples + sum(r.samples for r in candidates)
    for run in candidates:  # the fixed recipes, to the end: the reference, not part of the race's cost
        train_to(run, budget.epochs)
    per_epoch = stage1.samples / max(stage1.epoch, 1)
    return {
        "shift": shift, "seed": seed, "winner": verdict.winner, "why": verdict.reason,
        "race_f1": next(r.best().val_f1 for r in candidates if r.name == verdict.winner),
        "fixed": {r.name: r.best().val_f1 for r in candidates}, "decisions": decisions,
        "race_sample_epochs": cost, "progressive_sample_epochs": round(per_epoch * budget.epochs),
    }  # fmt: skip


def _candidate(name: str, budget: Budget, seed: int, runs: Path, head: dict[str, Any], fork: Path) -> Run:
    out = runs / name
    if name == FULL:
        values = {**head, **spec_values(BY_KEY["full"], budget, seed)}
        return Run(name, out, {**values, "output_dir": str(out)}, None)
    stage2 = {**head["stage2"], **CANDIDATES[name]}
    values = {**head, "unfreeze_backbone_epoch": budget.unfreeze, "stage2": stage2, "output_dir": str(out)}
    return Run(name, out, values, fork)


def table(cells: list[dict[str, Any]]) -> str:
    names = [*CANDIDATES, FULL]
    head = ["shift", "seed", "race pick", "race F1", "best fixed", "best fixed F1", "gap", *names, "cost x"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in cells:
        best = max(c["fixed"], key=lambda n: c["fixed"][n])
        ratio = c["race_sample_epochs"] / max(c["progressive_sample_epochs"], 1)
        row = [f"{c['shift']:.2f}", str(c["seed"]), c["winner"], f"{c['race_f1']:.3f}", best,
               f"{c['fixed'][best]:.3f}", f"{c['fixed'][best] - c['race_f1']:+.3f}",
               *(f"{c['fixed'][n]:.3f}" for n in names), f"{ratio:.2f}"]  # fmt: skip
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="1 seed, shift 1.0, small data, 12 epochs")
    size.add_argument("--tiny", action="store_true", help="the test suite's size (seconds)")
    p.add_argument("--seeds", type=int, nargs="+")
    p.add_argument("--shifts", type=float, nargs="+")
    p.add_argument("--rungs", type=int, nargs="*", help="rung epochs (default: 1/4 and 1/2 into stage 2)")
    p.add_argument("--keep", type=float, default=0.5, help="share kept at each rung")
    p.add_argument("--work", type=Path, default=WORK, help="data, model A cache, runs")
    p.add_argument("--out", type=Path, help="also write the table and the records (JSON) here")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import torch

    args = parse(sys.argv[1:] if argv is None else argv)
    budget = BUDGETS["tiny" if args.tiny else "quick" if args.quick else "full"]
    budget = replace(
        budget, seeds=tuple(args.seeds or budget.seeds), shifts=tuple(args.shifts or budget.shifts)
    )
    rungs = args.rungs if args.rungs is not None else default_rungs(budget)
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    try:
        cells = [
            race_cell(args.work, budget, sh, sd, rungs, args.keep)
            for sh in budget.shifts
            for sd in budget.seeds
        ]
    finally:
        torch.set_num_threads(threads)
    minutes = (time.perf_counter() - start) / 60
    shown = " ".join(["python benchmarks/race.py", *(sys.argv[1:] if argv is None else argv)])
    text = (
        f"Run: `{shown}` — budget **{budget.name}**, rungs {rungs}, keep {args.keep}; {minutes:.1f} min on "
        f"{platform.machine()}, {os.cpu_count()} CPUs, {args.threads} torch thread(s), "
        f"load {os.getloadavg()[0]:.1f}."
        f"\nF1 = best val F1 (the kept model); cost x = the race's sample-epochs / one progressive run's.\n\n"
        + table(cells)
    )
    print(text)
    for c in cells:
        print(f"shift {c['shift']:.2f} seed {c['seed']}: {c['why']}; rungs {c['decisions']}")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
        args.out.with_suffix(".json").write_text(json.dumps({"rungs": rungs, "cells": cells}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

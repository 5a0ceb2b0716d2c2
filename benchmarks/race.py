"""The race (docs/race.md) on the synthetic shifts: its pick vs the best fixed recipe, and its cost.

    python benchmarks/race.py                 # 3 seeds x shifts 0.5/0.75/1.0, the full budget
    python benchmarks/race.py --quick         # 1 seed, shift 1.0, small data, 12 epochs
    python benchmarks/race.py --tiny          # the test suite's size (seconds)
    python benchmarks/race.py --seeds 0 1 --shifts 1.0 --out /tmp/race.md
    python benchmarks/race.py --curves docs/race_curves.json --rungs 18 25   # replay, no training

Per shift and seed, on the data and model A of ``benchmarks/progressive_vs_full.py`` (same budgets,
``benchmarks/variants.py``), in this process with ``ocec_engine.train``: stage 1 once (head only,
epochs 1 .. U-1), then each of the race's default candidates (the guide's recipe, back half at lr x1,
whole backbone at lr x1, all forced into stage 2 at U, forked from stage 1's epoch U-1; and a full
fine-tune from model A) trained to the end of the budget, recording every epoch's val F1, val loss and
training samples (the curves). The race is then replayed on those curves with the server's own rule
(``jobstore.halving``: ``rung_cut`` at each rung on ``standing_at``, ``pick_winner`` at the end). The
engine resumes bit-for-bit (tests/ocec_engine), so a candidate the server trains to a rung, cuts or
resumes has exactly these epochs: the replay is the race, and the same curves give every fixed
recipe's result for the comparison. F1 is each run's best val F1 (the model a job keeps, best.pt).
Cost: sample-epochs (training samples x epochs, the engine's ``train_samples``) the race trains vs one
progressive run (E epochs). ``--curves`` replays saved curves (``--out``'s JSON) under other rungs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.domains import domain_b, model_a
from benchmarks.local_runs import epoch_checkpoint
from benchmarks.variants import BUDGETS, BY_KEY, Budget, spec_values
from jobstore.halving import Standing, pick_winner, rung_cut, standing_at
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
Curve = dict[str, dict[int, float]]  # "f1" | "loss" | "samples" -> epoch -> value


class _Recorder(NullHooks):
    def __init__(self) -> None:
        self.curve: Curve = {"f1": {}, "loss": {}, "samples": {}}

    def on_epoch_end(self, metrics: EpochMetrics) -> None:
        self.curve["f1"][metrics.epoch] = metrics.val_f1
        self.curve["loss"][metrics.epoch] = metrics.val_loss
        self.curve["samples"][metrics.epoch] = float(metrics.extra.get("train_samples") or 0)


def trained(values: dict[str, Any], epochs: int, resume: Path | None) -> Curve:
    hooks = _Recorder()
    train(
        TrainConfig.from_dict({**values, "epochs": epochs, "resume": str(resume) if resume else None}), hooks
    )
    return hooks.curve


def cell_curves(work: Path, budget: Budget, shift: float, seed: int) -> dict[str, Curve]:
    """Stage 1 once, then every candidate to the end of the budget (a fork from stage 1's U-1)."""
    data, pretrain = domain_b(work / "data", budget, shift, seed), model_a(work / "models", budget, seed)
    runs = work / "runs" / f"race_{budget.name}" / f"shift{shift:.2f}_seed{seed}"
    shutil.rmtree(runs, ignore_errors=True)
    common = {"data_root": str(data), "device": "cpu", "keep_epoch_checkpoints": 1}
    head = {**spec_values(BY_KEY["head"], budget, seed), **common, "pretrain": str(pretrain)}
    stage1 = trained({**head, "output_dir": str(runs / "stage1")}, budget.unfreeze - 1, None)
    fork = epoch_checkpoint(runs / "stage1", budget.unfreeze - 1)
    curves = {"stage1": stage1}
    for name in (*CANDIDATES, FULL):
        values = _candidate(name, budget, seed, runs, head)
        curves[name] = trained(values, budget.epochs, None if name == FULL else fork)
        if name != FULL:  # a fork inherits stage 1's rows (as a forked job does), not its cost
            curves[name] = {k: {**stage1[k], **v} for k, v in curves[name].items()}
    return curves


def _candidate(name: str, budget: Budget, seed: int, runs: Path, head: dict[str, Any]) -> dict[str, Any]:
    out = str(runs / name)
    if name == FULL:
        return {**head, **spec_values(BY_KEY["full"], budget, seed), "output_dir": out}
    stage2 = {**head["stage2"], **CANDIDATES[name]}
    return {**head, "unfreeze_backbone_epoch": budget.unfreeze, "stage2": stage2, "output_dir": out}


def replay(
    curves: dict[str, Curve], epochs: int, unfreeze: int, rungs: list[int], keep: float, rule: str = "best"
) -> dict[str, Any]:
    """The server's race on recorded curves: who is cut at each rung, the winner, the samples trained."""
    names = [n for n in curves if n != "stage1"]
    reached = {n: (unfreeze - 1 if n != FULL else 0) for n in names}  # epochs trained when the race starts
    live, decisions = list(names), []
    cost = sum(curves["stage1"]["samples"].values())
    for rung in rungs:
        cut = rung_cut([_standing(n, curves[n], rung, rule) for n in live], rung=rung, keep_fraction=keep)
        decisions.append({"rung": rung, "kept": cut.kept, "cut": cut.cut})
        cost += sum(_samples(curves[n], reached[n], rung) for n in live)
        reached |= {n: rung for n in live}
        live = [n for n in live if n in cut.kept]
    cost += sum(_samples(curves[n], reached[n], epochs) for n in live)
    verdict = pick_winner([_best(n, curves[n]) for n in live])
    return {
        "winner": verdict.winner,
        "why": verdict.reason,
        "decisions": decisions,
        "race_sample_epochs": cost,
    }


def _standing(name: str, curve: Curve, rung: int, rule: str) -> Standing:
    """``best``: the server's rule (the best epoch up to the rung); ``at``: the rung epoch's own reading,
    the rule before it, kept here to compare the two on the same curves."""
    if rule == "at":
        return Standing(name, curve["f1"].get(rung), curve["loss"].get(rung), rung)
    return standing_at(name, curve["f1"], curve["loss"], rung)


def _best(name: str, curve: Curve) -> Standing:
    """Its best epoch (the model a job keeps, best.pt): the rule's best so far, at its last epoch."""
    return standing_at(name, curve["f1"], curve["loss"], max(curve["f1"]))


def _samples(curve: Curve, after: int, until: int) -> float:
    return sum(v for e, v in curve["samples"].items() if after < e <= until)


def best_f1(curve: Curve) -> float:
    return max(curve["f1"].values())


def table(cells: list[dict[str, Any]]) -> str:
    names = [*CANDIDATES, FULL]
    head = ["shift", "seed", "race pick", "race F1", "best fixed", "best fixed F1", "gap", *names, "cost x"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in cells:
        best = max(c["fixed"], key=lambda n: c["fixed"][n])
        ratio = c["race_sample_epochs"] / max(c["progressive_sample_epochs"], 1)
        row = [f"{c['shift']:.2f}", str(c["seed"]), c["winner"], f"{c['race_f1']:.3f}", best,
               f"{c['fixed'][best]:.3f}", f"{c['fixed'][best] - c['race_f1']:.4f}",
               *(f"{c['fixed'][n]:.3f}" for n in names), f"{ratio:.2f}"]  # fmt: skip
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def summary(cells: list[dict[str, Any]]) -> str:
    gaps = [max(c["fixed"].values()) - c["race_f1"] for c in cells]
    costs = [c["race_sample_epochs"] / max(c["progressive_sample_epochs"], 1) for c in cells]
    within = sum(g <= 0.005 for g in gaps)
    return (f"within 0.005 of the best fixed recipe in {within} of {len(cells)} cells (largest gap "
            f"{max(gaps):.4f}); cost {min(costs):.2f}-{max(costs):.2f}x one progressive run")  # fmt: skip


def judged(
    record: dict[str, Any], budget: dict[str, Any], rungs: list[int], keep: float, rule: str = "best"
) -> dict[str, Any]:
    """One cell's race under ``rungs``/``keep``, against every fixed recipe, from its curves."""
    curves = {
        n: {k: {int(e): v for e, v in c.items()} for k, c in cv.items()} for n, cv in record["curves"].items()
    }
    race = replay(curves, budget["epochs"], budget["unfreeze"], rungs, keep, rule)
    per_epoch = sum(curves["stage1"]["samples"].values()) / max(len(curves["stage1"]["samples"]), 1)
    fixed = {n: best_f1(curves[n]) for n in curves if n != "stage1"}
    return {"shift": record["shift"], "seed": record["seed"], **race, "race_f1": fixed[race["winner"]],
            "fixed": fixed, "progressive_sample_epochs": round(per_epoch * budget["epochs"])}  # fmt: skip


def sweep(records: list[dict[str, Any]], budget: dict[str, Any], keep: float) -> str:
    """The same curves under other rungs and both rules: how much the default's result depends on them."""
    from jobstore.halving import default_rungs

    u, e = budget["unfreeze"], budget["epochs"]
    q, t = (e - u) // 4, 2 * (e - u) // 3
    options = [
        default_rungs(u, e),
        [u + (e - u) // 8, u + 2 * q],
        [u + q, u + t],
        [u + (e - u) // 3, u + t],
        [u + q],
    ]
    lines = ["| rule | rungs | cells within 0.005 | largest gap | cost x |", "|---|---|---|---|---|"]
    for rule in ("best", "at"):
        for rungs in options:
            cells = [judged(r, budget, rungs, keep, rule) for r in records]
            gaps = [max(c["fixed"].values()) - c["race_f1"] for c in cells]
            cost = max(c["race_sample_epochs"] / max(c["progressive_sample_epochs"], 1) for c in cells)
            within = sum(g <= 0.005 for g in gaps)
            lines.append(f"| {rule} | {rungs} | {within} of {len(cells)} | {max(gaps):.4f} | {cost:.2f} |")
    return "\n".join(lines)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="1 seed, shift 1.0, small data, 12 epochs")
    size.add_argument("--tiny", action="store_true", help="the test suite's size (seconds)")
    size.add_argument("--curves", type=Path, nargs="+", help="replay these saved curves (JSON); no training")
    p.add_argument("--seeds", type=int, nargs="+")
    p.add_argument("--shifts", type=float, nargs="+")
    p.add_argument("--rungs", type=int, nargs="*", help="rung epochs (default: the spec's default_rungs)")
    p.add_argument("--keep", type=float, default=0.5, help="share kept at each rung")
    p.add_argument("--work", type=Path, default=WORK, help="data, model A cache, runs")
    p.add_argument("--out", type=Path, help="also write the table here and the curves beside it (JSON)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--rule", choices=("best", "at"), default="best", help="rank at a rung by (default: best)")
    p.add_argument("--sweep", action="store_true", help="also print the summary under other rungs and rules")
    return p.parse_args(argv)


def recorded(args: argparse.Namespace) -> tuple[dict[str, Any], list[dict[str, Any]], str]:
    """The curves: trained here, or read back from ``--curves`` files."""
    if args.curves:
        loaded = [json.loads(p.read_text()) for p in args.curves]
        return loaded[0]["budget"], [c for doc in loaded for c in doc["cells"]], "replayed from saved curves"
    import torch

    budget = BUDGETS["tiny" if args.tiny else "quick" if args.quick else "full"]
    budget = replace(
        budget, seeds=tuple(args.seeds or budget.seeds), shifts=tuple(args.shifts or budget.shifts)
    )
    threads, start = torch.get_num_threads(), time.perf_counter()
    torch.set_num_threads(args.threads)
    try:
        cells = [{"shift": sh, "seed": sd, "curves": cell_curves(args.work, budget, sh, sd)}
                 for sh in budget.shifts for sd in budget.seeds]  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    took = (time.perf_counter() - start) / 60
    where = (
        f"{took:.1f} min on {platform.machine()}, {os.cpu_count()} CPUs, {args.threads} torch thread(s), "
        f"load {os.getloadavg()[0]:.1f}"
    )
    return {"name": budget.name, "epochs": budget.epochs, "unfreeze": budget.unfreeze}, cells, where


def main(argv: list[str] | None = None) -> int:
    from jobstore.halving import default_rungs

    args = parse(sys.argv[1:] if argv is None else argv)
    budget, records, where = recorded(args)
    rungs = args.rungs if args.rungs is not None else default_rungs(budget["unfreeze"], budget["epochs"])
    cells = [judged(r, budget, rungs, args.keep, args.rule) for r in records]
    shown = " ".join(["python benchmarks/race.py", *(sys.argv[1:] if argv is None else argv)])
    text = (
        f"Run: `{shown}` — budget **{budget['name']}**, rungs {rungs}, keep {args.keep}, "
        f"rule {args.rule}; {where}."
        f"\nF1 = best val F1 (the kept model); cost x = the race's sample-epochs / one progressive run's.\n\n"
        + table(cells)
        + "\n\n"
        + summary(cells)
    )
    print(text)
    for c in cells:
        print(f"shift {c['shift']:.2f} seed {c['seed']}: {c['why']}; rungs {c['decisions']}")
    if args.sweep:
        text += "\n\n" + sweep(records, budget, args.keep)
        print(text[text.index("| rule") :])
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
        args.out.with_suffix(".json").write_text(json.dumps({"budget": budget, "cells": records}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

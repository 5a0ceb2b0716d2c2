"""The benchmark's figure: val F1 per epoch per variant (mean over seeds, min-max band), one panel per
shift, with the stage-2 gate epoch U, the gate threshold and the actual stage-2 entries marked."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.records import RunRecord
from benchmarks.variants import BY_KEY, Budget, Kind, Variant

COLOURS = {
    "model_a": "#7f7f7f", "head": "#1f77b4", "gated": "#2ca02c", "forced": "#d62728", "full": "#9467bd",
    "scratch": "#8c564b", "forced_lr0.2": "#ff7f0e", "forced_lr1": "#e377c2", "head_noaug": "#17becf",
    "gated_late": "#bcbd22", "gated_lr2": "#393b79", "forced_guide_lr": "#7b4173",
}  # fmt: skip


DASHED = (0, (4, 2))
DASHED_KEYS = {"gated", "gated_late", "gated_lr2", "head_noaug"}  # they often lie on top of a solid line
Y_FLOOR = 0.4  # scratch's first epochs fall below it: the differences that matter are above


def curve(record: RunRecord) -> dict[int, float]:
    points = {int(r["epoch"]): float(r["val_f1"]) for r in record.rows}
    if record.initial_f1 is not None and BY_KEY[record.variant].kind is not Kind.SCRATCH:
        points[0] = float(record.initial_f1)
    return points


def plot(records: list[RunRecord], budget: Budget, variants: Sequence[Variant], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [v.key for v in variants if v.kind is not Kind.MODEL_A]
    shifts = sorted({r.shift for r in records if r.variant in keys})
    fig, axes = plt.subplots(1, len(shifts), figsize=(5.2 * len(shifts), 4.4), squeeze=False, sharey=True)
    for ax, shift in zip(axes[0], shifts, strict=True):
        for key in keys:
            runs = [r for r in records if r.shift == shift and r.variant == key]
            if runs:
                _draw(ax, runs, key)
        _marks(ax, budget)
        ax.set_title(f"shift {shift:.2f} ({len(budget.seeds)} seed{'s' if len(budget.seeds) > 1 else ''})")
        ax.set_xlabel("epoch (0 = model A before training)")
        ax.grid(alpha=0.3)
        ax.set_ylim(Y_FLOOR, 1.0)
    axes[0][0].set_ylabel("val F1 (open)")
    handles, labels = axes[0][-1].get_legend_handles_labels()
    fig.tight_layout()
    columns = 3 if len(shifts) > 1 else 2
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=columns, fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def _draw(ax: Any, runs: list[RunRecord], key: str) -> None:
    curves = [curve(r) for r in runs]
    epochs = sorted(set.intersection(*(set(c) for c in curves)))
    values = [[c[e] for c in curves] for e in epochs]
    mean = [sum(v) / len(v) for v in values]
    colour = COLOURS.get(key)
    style = DASHED if key in DASHED_KEYS else "-"
    ax.plot(epochs, mean, label=BY_KEY[key].label, color=colour, ls=style, lw=1.6, marker=".", ms=4)
    if len(runs) > 1:
        lo, hi = [min(v) for v in values], [max(v) for v in values]
        ax.fill_between(epochs, lo, hi, color=colour, alpha=0.15, lw=0)
    for run in runs:  # where stage 2 actually began (gate or policy), per seed
        for event in run.stage_events:
            if event["to_stage"] == 2 and event["epoch"] in curve(run):
                ax.plot(event["epoch"], curve(run)[event["epoch"]], marker="^", color=colour, ms=7, ls="")


def _marks(ax: Any, budget: Budget) -> None:
    u = budget.unfreeze
    ax.axvline(u - 0.5, color="k", ls="--", lw=0.9)
    ax.text(u - 0.45, 0.02, f"U={u}: stage-2 gate", transform=ax.get_xaxis_transform(), fontsize=7)
    ax.axhline(budget.gate_f1, color="k", ls=":", lw=0.9)
    ax.text(0.1, budget.gate_f1 + 0.004, f"gate F1 {budget.gate_f1:.2f}", fontsize=7)

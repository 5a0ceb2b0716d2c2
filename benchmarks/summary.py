"""From run records to the guide's table: one ``RunSummary`` per run, aggregated over seeds.

Definitions (docs/benchmark.md):

* F1 of model A on B — the start-of-run val F1 of model A's weights on B val (no training);
* end of stage 1 — the val F1 of the last epoch trained in stage 1 (progressive and head-only runs);
* at the end — the last epoch's val F1; best — the highest val F1 (the first epoch reaching it);
* epochs / seconds to best — the best epoch, and the engine's epoch seconds (train + validation)
  summed up to it (a fork counts its parent's stage-1 epochs);
* ΔF1 after unfreezing — F1(first epoch training backbone) - F1(the epoch before); epoch 0 is
  model A's start evaluation, so for a full fine-tune it is F1(1) - F1(model A);
* worst drop — the largest one-epoch fall of val F1 anywhere in the run (from epoch 0 on);
* gate opened — a gate read passed (the stage-2 gate of runs that have one).
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, fields

from benchmarks.records import RunRecord
from benchmarks.variants import BY_KEY, Kind

GATE_ENTRY = "gate"


@dataclass(frozen=True)
class RunSummary:
    variant: str
    shift: float
    seed: int
    epochs: int
    f1_a_on_b: float | None
    stage1_end_epoch: int | None
    stage1_end_f1: float | None
    final_f1: float | None
    best_f1: float | None
    best_epoch: int | None
    seconds_to_best: float | None
    unfreeze_epoch: int | None  # first epoch that trained backbone weights
    unfreeze_delta: float | None
    worst_drop: float | None
    gate_read: bool  # the run read a stage-2 gate
    gate_opened: bool | None
    stage2_by_gate: bool | None  # stage 2 entered because the gate passed (not by policy)


def summarize(record: RunRecord) -> RunSummary:
    kind = BY_KEY[record.variant].kind
    rows = sorted(record.rows, key=lambda r: r["epoch"])
    curve = _curve(record, rows)
    # the engine's rule: highest val F1, then the lower val loss, then the earlier epoch
    best = max(rows, key=lambda r: (r["val_f1"], -r["val_loss"], -r["epoch"])) if rows else None
    stage1 = [r for r in rows if r["stage"] == 1] if kind in (Kind.HEAD, Kind.PROGRESSIVE) else []
    unfreeze = _unfreeze_epoch(kind, rows)
    reads = [g for g in record.gate_checks if g["stage"] == 2]
    entries = [e for e in record.stage_events if e["to_stage"] == 2]
    return RunSummary(
        variant=record.variant,
        shift=record.shift,
        seed=record.seed,
        epochs=len(rows),
        f1_a_on_b=record.initial_f1 if kind is not Kind.SCRATCH else None,
        stage1_end_epoch=stage1[-1]["epoch"] if stage1 else None,
        stage1_end_f1=stage1[-1]["val_f1"] if stage1 else None,
        final_f1=rows[-1]["val_f1"] if rows else (record.initial_f1 if kind is Kind.MODEL_A else None),
        best_f1=best["val_f1"] if best else None,
        best_epoch=best["epoch"] if best else None,
        seconds_to_best=(
            sum(r["epoch_seconds"] for r in rows if r["epoch"] <= best["epoch"]) if best else None
        ),
        unfreeze_epoch=unfreeze,
        unfreeze_delta=(
            curve[unfreeze] - curve[unfreeze - 1]
            if unfreeze is not None and unfreeze in curve and unfreeze - 1 in curve
            else None
        ),
        worst_drop=_worst_drop(curve),
        gate_read=bool(reads),
        gate_opened=any(g["passed"] for g in reads) if reads else None,
        stage2_by_gate=any(e["trigger"] == GATE_ENTRY for e in entries) if reads else None,
    )


def _curve(record: RunRecord, rows: list[dict[str, float]]) -> dict[int, float]:
    """Val F1 by epoch, epoch 0 = the start evaluation."""
    curve = {int(r["epoch"]): float(r["val_f1"]) for r in rows}
    if record.initial_f1 is not None:
        curve[0] = float(record.initial_f1)
    return curve


def _unfreeze_epoch(kind: Kind, rows: list[dict[str, float]]) -> int | None:
    if kind is Kind.FULL:
        return int(rows[0]["epoch"]) if rows else None
    if kind is Kind.PROGRESSIVE:
        return next((int(r["epoch"]) for r in rows if r["stage"] >= 2), None)
    return None


def _worst_drop(curve: dict[int, float]) -> float | None:
    epochs = sorted(curve)
    drops = [curve[a] - curve[b] for a, b in itertools.pairwise(epochs)]
    return max(0.0, *drops) if drops else None


# ---- over seeds ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stat:
    n: int
    mean: float
    std: float  # sample standard deviation (0 for one value)
    lo: float
    hi: float


def stat(values: Iterable[float | None]) -> Stat | None:
    present = [float(v) for v in values if v is not None]
    if not present:
        return None
    std = statistics.stdev(present) if len(present) > 1 else 0.0
    return Stat(len(present), statistics.fmean(present), std, min(present), max(present))


@dataclass(frozen=True)
class Aggregate:
    """One table row: a variant at a shift over its seeds."""

    variant: str
    shift: float
    seeds: int
    values: dict[str, Stat | None]  # per numeric RunSummary field
    gate_read: int  # seeds whose run read the stage-2 gate
    gate_opened: int  # ... and found it open
    stage2_by_gate: int
    stage2_entered: int  # seeds that trained the backbone at some epoch (progressive runs)


NUMERIC = tuple(
    f.name
    for f in fields(RunSummary)
    if f.name not in ("variant", "shift", "seed", "gate_read", "gate_opened", "stage2_by_gate")
)


def aggregate(summaries: list[RunSummary]) -> list[Aggregate]:
    """One row per (shift, variant), in the order of first appearance."""
    groups: dict[tuple[float, str], list[RunSummary]] = {}
    for s in summaries:
        groups.setdefault((s.shift, s.variant), []).append(s)
    rows = []
    for (shift, variant), group in groups.items():
        values = {name: stat(getattr(s, name) for s in group) for name in NUMERIC}
        rows.append(
            Aggregate(
                variant=variant,
                shift=shift,
                seeds=len(group),
                values=values,
                gate_read=sum(s.gate_read for s in group),
                gate_opened=sum(bool(s.gate_opened) for s in group),
                stage2_by_gate=sum(bool(s.stage2_by_gate) for s in group),
                stage2_entered=sum(
                    s.unfreeze_epoch is not None for s in group if BY_KEY[variant].kind is Kind.PROGRESSIVE
                ),
            )
        )
    return rows


def catch_up(records: list[RunRecord], rival: str = "full") -> dict[tuple[float, str], Stat | None]:
    """Per (shift, variant): the first epoch at which ``rival`` (same shift and seed) reaches this
    variant's best val F1 — "how long would the rival have needed for the same result"; seeds where
    it never does are left out (``Stat.n`` says how many did)."""
    rivals = {(r.shift, r.seed): r for r in records if r.variant == rival}
    epochs: dict[tuple[float, str], list[float | None]] = {}
    for record in records:
        other = rivals.get((record.shift, record.seed))
        if other is None or not record.rows or record.variant == rival:
            continue
        target = max(r["val_f1"] for r in record.rows)
        reached = next(
            (r["epoch"] for r in sorted(other.rows, key=lambda r: r["epoch"]) if r["val_f1"] >= target), None
        )
        epochs.setdefault((record.shift, record.variant), []).append(reached)
    return {key: stat(values) for key, values in epochs.items()}

"""One training run of the benchmark as plain data, and the engine hooks that collect it.

A ``RunRecord`` is what the summary and the report read, whoever ran it: ``Recorder`` fills it from
the engine's hooks (local runs), ``server_runs`` from the job server's metrics and events. A fork's
record holds the restored history of its parent (the stage-1 epochs) followed by its own epochs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ocec_engine.hooks import EpochMetrics, GateCheck, NullHooks, RunInfo, StageEvent, TrainResult

ROW_FIELDS = ("epoch", "stage", "val_f1", "val_loss", "epoch_seconds", "best_f1", "best_epoch", "lrs")


@dataclass
class RunRecord:
    variant: str
    shift: float
    seed: int
    source: str  # "local" or "server"
    initial_f1: float | None = None  # val F1 of the start weights (model A on B; scratch: random init)
    rows: list[dict[str, Any]] = field(default_factory=list)  # one per epoch, ROW_FIELDS + plan
    stage_events: list[dict[str, Any]] = field(default_factory=list)  # from, to, epoch, trigger, lrs
    gate_checks: list[dict[str, Any]] = field(default_factory=list)  # epoch, f1, threshold, passed, action
    outcome: str = ""
    reason: str = ""
    wall_seconds: float = 0.0  # this run's own wall time, set-up and export included (a fork: its part)
    forked_at: int | None = None  # the parent's epoch a fork continues from
    job_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        return cls(**data)


def metric_row(values: dict[str, Any]) -> dict[str, Any]:
    """The fields the benchmark keeps of an ``EpochMetrics`` (or of a server metrics row)."""
    row = {name: values.get(name) for name in ROW_FIELDS}
    row["plan"] = (values.get("extra") or {}).get("plan")
    return row


def stage_row(values: dict[str, Any]) -> dict[str, Any]:
    keys = ("from_stage", "to_stage", "epoch", "trigger", "lrs")
    return {k: (str(values[k]) if k == "trigger" else values.get(k)) for k in keys}


def gate_row(values: dict[str, Any]) -> dict[str, Any]:
    keys = ("epoch", "stage", "f1", "threshold", "passed", "action")
    return {k: values.get(k) for k in keys}


class Recorder(NullHooks):
    """Engine hooks that fill a ``RunRecord`` (public hook payloads only)."""

    def __init__(self, record: RunRecord) -> None:
        self.record = record

    def on_train_start(self, info: RunInfo) -> None:
        self.record.initial_f1 = (info.initial_metrics or {}).get("f1")
        restored = [r for r in info.history if int(r["epoch"]) <= info.restored_epoch]
        self.record.rows = [metric_row(r) for r in restored]

    def on_epoch_end(self, metrics: EpochMetrics) -> None:
        self.record.rows.append(metric_row(dataclasses.asdict(metrics)))

    def on_stage_change(self, event: StageEvent) -> None:
        self.record.stage_events.append(stage_row(dataclasses.asdict(event)))

    def on_gate_check(self, check: GateCheck) -> None:
        self.record.gate_checks.append(gate_row(dataclasses.asdict(check)))

    def on_train_end(self, result: TrainResult) -> None:
        self.record.outcome, self.record.reason = str(result.outcome), result.reason

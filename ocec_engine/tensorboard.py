"""TensorBoard event files for a run, written by hooks: ``tensorboard --logdir <runs>`` works as OCEC
users expect.

Files go to ``<run dir>/tensorboard/events.out.tfevents.*`` (one file per process that trained the
run: a resume adds a file). Steps are epochs. Written with the ``tensorboard`` package's record
writer and protobufs — synchronously, flushed after every hook call, no background thread, no torch,
no TensorFlow. The engine does not need the package: ``open_tensorboard`` returns ``NullHooks`` and
a notice when it is missing, and a write error (disk full) disables the writer with one warning
instead of failing the run.

Scalars, every epoch (the same values the metrics rows hold):
``loss/train``, ``loss/val``, ``f1/val``, ``precision/val``, ``recall/val``, ``accuracy/val``,
``fisher/val``, ``f1/train`` (when measured), ``lr/<param group>``, ``trainable_params``,
``epoch_seconds``, ``samples_per_sec``, ``stage``; per stage ``f1/val_stage<N>`` and
``loss/val_stage<N>`` (one curve per stage). Text: ``events/stage_change``, ``events/gate_check``,
``events/command``, ``run/start``, ``run/end``.

A resume writes TensorBoard's restart marker (``SessionLog.START``) at the first epoch it trains,
so readers that honour it (``EventAccumulator``, ``tensorboard --load_fast=false``) drop the epochs
the resume rolled back, as the database supersedes their rows. A fresh directory (a fork, a first
attempt that restores) gets the restored history first.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ocec_engine.hooks import (
    CheckpointInfo,
    CommandResult,
    EpochMetrics,
    GateCheck,
    NullHooks,
    RunInfo,
    StageEvent,
    TrainingHooks,
    TrainResult,
)

log = logging.getLogger(__name__)

TB_DIR = "tensorboard"
EVENT_PREFIX = "events.out.tfevents"
MISSING_NOTICE = "tensorboard is not installed: no TensorBoard event files (pip install tensorboard)"
# EpochMetrics field -> scalar tag
SCALARS = {
    "train_loss": "loss/train",
    "val_loss": "loss/val",
    "val_f1": "f1/val",
    "val_precision": "precision/val",
    "val_recall": "recall/val",
    "val_accuracy": "accuracy/val",
    "fisher_ratio": "fisher/val",
    "train_f1": "f1/train",
    "trainable_params": "trainable_params",
    "epoch_seconds": "epoch_seconds",
    "samples_per_sec": "samples_per_sec",
    "stage": "stage",
}
PER_STAGE = {"val_f1": "f1/val_stage{stage}", "val_loss": "loss/val_stage{stage}"}
LR_TAG = "lr/{group}"


def tensorboard_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / TB_DIR


def open_tensorboard(run_dir: str | Path) -> tuple[TrainingHooks, str | None]:
    """Hooks writing event files under ``<run_dir>/tensorboard``; or ``NullHooks`` and a notice."""
    try:
        writer = _EventWriter.available()
    except ImportError:
        return NullHooks(), MISSING_NOTICE
    return TensorBoardHooks(tensorboard_dir(run_dir), writer), None


class _EventWriter:
    """The protobuf and record-writer classes of the ``tensorboard`` package, imported on demand."""

    def __init__(self) -> None:
        from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2
        from tensorboard.summary.writer.record_writer import RecordWriter

        self.event_pb2, self.summary_pb2 = event_pb2, summary_pb2
        self.tensor_pb2, self.shape_pb2, self.types_pb2 = tensor_pb2, tensor_shape_pb2, types_pb2
        self.record_writer = RecordWriter

    @classmethod
    def available(cls) -> _EventWriter:
        return cls()


class TensorBoardHooks(NullHooks):
    """``TrainingHooks`` that log every epoch, stage change and gate read as TensorBoard events."""

    def __init__(self, log_dir: Path, pb: _EventWriter) -> None:
        self.log_dir = log_dir
        self.pb = pb
        self.writer: Any = None
        self.failed = False

    # ---- hooks ---------------------------------------------------------------------------------
    def on_train_start(self, info: RunInfo) -> None:
        fresh = not self.log_dir.is_dir() or not any(self.log_dir.glob(f"{EVENT_PREFIX}*"))
        if info.restored_epoch > 0 or info.resumed_from:
            self._emit(self._restart(info.restored_epoch + 1))
        if fresh:
            for row in info.history:
                if int(row.get("epoch", 0)) <= info.restored_epoch:
                    self._scalars(row)
        where = (
            f"resumed from {info.resumed_from} at epoch {info.restored_epoch}"
            if info.resumed_from
            else "fresh start"
        )
        self._text(
            "run/start",
            info.start_epoch,
            f"{where}; stage {info.stage}; epochs {info.start_epoch}..{info.epochs}; device {info.device}; "
            f"trainable {info.trainable_params}/{info.total_params}",
        )

    def on_epoch_end(self, metrics: EpochMetrics) -> None:
        self._scalars(vars(metrics))

    def on_stage_change(self, event: StageEvent) -> None:
        start = "start" if event.from_stage is None else f"stage {event.from_stage} -> {event.to_stage}"
        lrs = ", ".join(f"{k} {v:.3g}" for k, v in event.lrs.items())
        by = f" by {event.actor}" if event.actor else ""
        self._text(
            "events/stage_change",
            event.epoch,
            f"**{start}** (stage {event.to_stage}) at epoch {event.epoch}, {event.trigger.value}{by}: "
            f"{event.reason}  \nlr: {lrs}; trainable params {event.trainable_params}; "
            f"unfrozen {len(event.unfrozen)} tensors; evidence {_evidence_text(event.evidence)}",
        )

    def on_gate_check(self, check: GateCheck) -> None:
        f1 = "n/a" if check.f1 is None else f"{check.f1:.4f}"
        verdict = "passed" if check.passed else f"not passed, policy {check.policy}: {check.action}"
        self._text(
            "events/gate_check",
            check.epoch,
            f"gate to stage {check.stage} before epoch {check.epoch}: F1 {f1} vs {check.threshold:g}, "
            f"{verdict}. {check.reason}",
        )

    def on_command_result(self, result: CommandResult) -> None:
        outcome = "applied" if result.applied else "refused"
        self._text("events/command", result.epoch, f"{result.kind.value} {outcome}: {result.reason}")

    def on_checkpoint(self, info: CheckpointInfo) -> None:
        pass

    def on_train_end(self, result: TrainResult) -> None:
        self._text(
            "run/end",
            result.epoch,
            f"{result.outcome.value}: {result.reason}; "
            f"best F1 {result.best_f1:.4f} at epoch {result.best_epoch}",
        )
        self.close()

    # ---- writing -------------------------------------------------------------------------------
    def close(self) -> None:
        if self.writer is not None:
            with contextlib.suppress(OSError):
                self.writer.close()
            self.writer = None

    def _open(self) -> None:
        # Readers load a run's files in name order: seconds and microseconds first, so a resume's
        # file (and its restart marker) always comes after the files of the attempts before it.
        now = time.time()
        stamp = f"{int(now):010d}.{int(now % 1 * 1e6):06d}"
        name = f"{EVENT_PREFIX}.{stamp}.{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        try:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            self.writer = self.pb.record_writer(open(self.log_dir / name, "wb"))  # noqa: SIM115 (closed by close())
        except OSError as exc:
            self._fail(exc)
            return
        self._emit(self.pb.event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))

    def _emit(self, event: Any) -> None:
        if self.writer is None and not self.failed:
            self._open()  # the first event opens the file (its first record names the version)
        if self.writer is None:
            return
        try:
            self.writer.write(event.SerializeToString())
            self.writer.flush()
        except OSError as exc:
            self._fail(exc)

    def _fail(self, exc: OSError) -> None:
        log.warning("TensorBoard event files disabled for this run (%s: %s)", type(exc).__name__, exc)
        self.failed = True
        self.close()

    def _restart(self, step: int) -> Any:
        session_log = self.pb.event_pb2.SessionLog(status=self.pb.event_pb2.SessionLog.START)
        return self.pb.event_pb2.Event(wall_time=time.time(), step=step, session_log=session_log)

    def _scalars(self, row: Mapping[str, Any]) -> None:
        step, stage = int(row["epoch"]), int(row["stage"])
        values = {tag: row.get(name) for name, tag in SCALARS.items()}
        values |= {tag.format(stage=stage): row.get(name) for name, tag in PER_STAGE.items()}
        values |= {LR_TAG.format(group=group): lr for group, lr in dict(row.get("lrs") or {}).items()}
        summary = self.pb.summary_pb2.Summary(
            value=[
                self.pb.summary_pb2.Summary.Value(tag=tag, simple_value=float(value))
                for tag, value in values.items()
                if isinstance(value, int | float) and not isinstance(value, bool)
            ]
        )
        self._emit(self.pb.event_pb2.Event(wall_time=time.time(), step=step, summary=summary))

    def _text(self, tag: str, step: int, text: str) -> None:
        pb = self.pb
        metadata = pb.summary_pb2.SummaryMetadata(
            plugin_data=pb.summary_pb2.SummaryMetadata.PluginData(plugin_name="text")
        )
        tensor = pb.tensor_pb2.TensorProto(
            dtype=pb.types_pb2.DT_STRING,
            string_val=[text.encode("utf-8")],
            tensor_shape=pb.shape_pb2.TensorShapeProto(dim=[pb.shape_pb2.TensorShapeProto.Dim(size=1)]),
        )
        value = pb.summary_pb2.Summary.Value(tag=tag, metadata=metadata, tensor=tensor)
        self._emit(
            pb.event_pb2.Event(
                wall_time=time.time(), step=step, summary=pb.summary_pb2.Summary(value=[value])
            )
        )


def _evidence_text(evidence: Mapping[str, Any]) -> str:
    keep = {k: v for k, v in evidence.items() if isinstance(v, str | int | float | bool) or v is None}
    return ", ".join(f"{k}={v}" for k, v in keep.items()) or "-"

"""Console hooks for the CLI: a tqdm bar per epoch, one summary line per epoch, JSON-lines files.

``<output_dir>/metrics.jsonl`` holds one EpochMetrics row per epoch (rewritten from the restored
history on a resume, so rows after the restored epoch are superseded); ``events.jsonl`` appends
every other hook call (start, gate reads, stage changes, commands, checkpoints, end). The first
Ctrl-C asks the run to stop at the next check (it writes ``interrupt.pt``, resumable); a second
one aborts at once.
"""

from __future__ import annotations

import json
import math
import signal
import sys
from dataclasses import asdict
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from tqdm import tqdm

from ocec_engine.hooks import (
    CheckpointInfo,
    CheckpointKind,
    CommandResult,
    EpochMetrics,
    GateCheck,
    NullHooks,
    RunInfo,
    StageEvent,
    TrainResult,
)

METRICS_FILE = "metrics.jsonl"
EVENTS_FILE = "events.jsonl"
_QUIET_CHECKPOINTS = {CheckpointKind.EPOCH, CheckpointKind.LAST}


def summary_line(m: EpochMetrics, epochs: int) -> str:
    """``epoch 12/110 s2 | train 0.1234 | val 0.2345 f1 0.8123 p 0.8000 r 0.8250 acc 0.8100 | ...``"""
    lrs = " ".join(f"{name} {lr:.3g}" for name, lr in m.lrs.items())
    best = f"best {m.best_f1:.4f}@{m.best_epoch}" + (" *" if m.is_best else "")
    return (
        f"epoch {m.epoch}/{epochs} s{m.stage} | train {m.train_loss:.4f} | val {m.val_loss:.4f} "
        f"f1 {m.val_f1:.4f} p {m.val_precision:.4f} r {m.val_recall:.4f} acc {m.val_accuracy:.4f} | "
        f"fisher {m.fisher_ratio:.3g} | lr {lrs} | {m.epoch_seconds:.1f}s {m.samples_per_sec:.0f}/s | {best}"
    )


def _json(data: Any) -> str:
    return json.dumps(_finite(data), default=str, sort_keys=False)


def _finite(value: Any) -> Any:
    """NaN/inf are not JSON: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


class ConsoleHooks(NullHooks):
    def __init__(
        self,
        output_dir: str | Path,
        *,
        out: TextIO | None = None,
        err: TextIO | None = None,
        progress: bool = True,
        handle_sigint: bool = False,
    ) -> None:
        self.dir = Path(output_dir)
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.progress = progress
        self.epochs = 0
        self.stage = 1
        self.bar: tqdm[Any] | None = None
        self.bar_epoch = 0
        self.stop_reason: str | None = None
        self.result: TrainResult | None = None
        if handle_sigint:
            signal.signal(signal.SIGINT, self._on_sigint)

    # --------------------------------------------------------------- output
    def _say(self, line: str) -> None:
        if self.bar is not None:
            self.bar.clear()
        print(line, file=self.out, flush=True)
        if self.bar is not None:
            self.bar.refresh()

    def _event(self, kind: str, payload: Any) -> None:
        with (self.dir / EVENTS_FILE).open("a", encoding="utf-8") as fh:
            fh.write(
                _json({"event": kind, **(asdict(payload) if not isinstance(payload, dict) else payload)})
                + "\n"
            )

    def _close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        if self.stop_reason is not None:
            raise KeyboardInterrupt
        self.stop_reason = "Ctrl-C"
        self._say("stopping at the next check (writes interrupt.pt); Ctrl-C again to abort now")

    # ---------------------------------------------------------------- hooks
    def on_train_start(self, info: RunInfo) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.epochs, self.stage = info.epochs, info.stage
        with (self.dir / METRICS_FILE).open("w", encoding="utf-8") as fh:
            for row in info.history:
                fh.write(_json(row) + "\n")
        self._event("train_start", info)
        where = (
            f"resumed from {info.resumed_from} (epoch {info.restored_epoch}, batch {info.restored_batch})"
            if info.resumed_from
            else "fresh start"
        )
        self._say(
            f"ocec_engine: {where} | device {info.device} {'amp' if info.amp else 'fp32'} | "
            f"stage {info.stage} | epochs {info.start_epoch}..{info.epochs} | "
            f"trainable {info.trainable_params}/{info.total_params}"
        )
        if info.pretrain_report:
            rep = info.pretrain_report
            self._say(
                f"pretrain: {len(rep.get('loaded', []))} tensors loaded, missing {rep.get('missing', [])}, "
                f"unexpected {rep.get('unexpected', [])}"
            )
            for note in rep.get("notes", []):
                self._say(f"pretrain: {note}")
        if info.initial_metrics:
            m = info.initial_metrics
            self._say(f"start weights: val loss {m['loss']:.4f} f1 {m['f1']:.4f} acc {m['accuracy']:.4f}")
        for note in info.notes:
            self._say(f"resume: {note}")

    def on_batch_end(self, epoch: int, batch: int, batches: int, loss: float) -> None:
        if not self.progress:
            return
        if self.bar is None or self.bar_epoch != epoch:
            self._close_bar()
            self.bar = tqdm(
                total=batches,
                initial=batch - 1,
                desc=f"epoch {epoch}/{self.epochs} s{self.stage}",
                file=self.err,
                leave=False,
                dynamic_ncols=True,
                mininterval=0.5,
            )
            self.bar_epoch = epoch
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)

    def on_epoch_end(self, metrics: EpochMetrics) -> None:
        self._close_bar()
        with (self.dir / METRICS_FILE).open("a", encoding="utf-8") as fh:
            fh.write(_json(asdict(metrics)) + "\n")
        self._say(summary_line(metrics, self.epochs))

    def on_gate_check(self, check: GateCheck) -> None:
        self._event("gate_check", check)
        self._say(f"gate: {check.reason}")

    def on_stage_change(self, event: StageEvent) -> None:
        self._event("stage_change", event)
        self.stage = event.to_stage
        lrs = " ".join(f"{k} {v:.3g}" for k, v in event.lrs.items())
        if event.from_stage is None:
            self._say(f"stage {event.to_stage} from epoch {event.epoch}: {event.reason} | lr {lrs}")
            self._say(f"  trainable: {', '.join(event.unfrozen)}")
            return
        if event.from_stage == event.to_stage:
            self._say(f"stage {event.to_stage}: {event.reason} | lr {lrs}")
            return
        units = event.evidence.get("trainable_units", [])
        ratio = event.evidence.get("ratio_achieved")
        share = f", {ratio:.1%} of the backbone" if isinstance(ratio, float) else ""
        self._say(
            f"stage {event.from_stage} -> {event.to_stage} at epoch {event.epoch} ({event.trigger.value}): "
            f"{event.reason} | trainable units {units}{share} | lr {lrs}"
        )
        self._say(f"  unfrozen ({len(event.unfrozen)}): {', '.join(event.unfrozen)}")

    def on_checkpoint(self, info: CheckpointInfo) -> None:
        self._event("checkpoint", info)
        if info.kind not in _QUIET_CHECKPOINTS:
            self._say(f"checkpoint: {info.kind.value} -> {info.path}")

    def on_command_result(self, result: CommandResult) -> None:
        self._event("command_result", result)
        self._say(
            f"command {result.kind.value} {result.command_id}: {'applied' if result.applied else 'refused'}"
            f" ({result.reason})"
        )

    def on_train_end(self, result: TrainResult) -> None:
        self._close_bar()
        self.result = result
        self._event("train_end", result)
        self._say(f"{result.outcome.value}: {result.reason}")
        self._say(
            f"best val F1 {result.best_f1:.4f} at epoch {result.best_epoch} | "
            f"best {result.best_checkpoint} | last {result.last_checkpoint}"
            + (f" | onnx {result.onnx_path}" if result.onnx_path else "")
        )

    def should_stop(self) -> str | None:
        return self.stop_reason

"""Console hooks: progress bar, one summary line per epoch, metrics.jsonl / events.jsonl, Ctrl-C."""

from __future__ import annotations

import io
import json
import signal
from dataclasses import asdict
from pathlib import Path

import pytest

from ocec_engine.console import ConsoleHooks, summary_line
from ocec_engine.hooks import EpochMetrics, GateCheck, Outcome, RunInfo, StageEvent, StageTrigger, TrainResult


def _metrics(epoch: int, **kw: object) -> EpochMetrics:
    values: dict[str, object] = {
        "epoch": epoch,
        "stage": 2,
        "train_loss": 0.12345,
        "val_loss": 0.23456,
        "val_f1": 0.8123,
        "val_precision": 0.8,
        "val_recall": 0.825,
        "val_accuracy": 0.81,
        "fisher_ratio": 3.21,
        "lrs": {"head": 5e-6, "backbone": 5e-6},
        "trainable_params": 7584,
        "epoch_seconds": 12.3,
        "samples_per_sec": 4567.0,
        "is_best": True,
        "best_f1": 0.8123,
        "best_epoch": epoch,
    }
    values.update(kw)
    return EpochMetrics(**values)  # type: ignore[arg-type]


def _info(history: list[dict[str, object]] | None = None) -> RunInfo:
    return RunInfo(
        stage=1, start_epoch=1, epochs=3, resumed_from=None, restored_epoch=0, restored_batch=0,
        trainable_params=128, total_params=11585, device="cpu", amp=False,
        history=history or [], initial_metrics={"loss": 0.5, "f1": 0.9, "accuracy": 0.9},
    )  # fmt: skip


def test_summary_line() -> None:
    line = summary_line(_metrics(12), 110)
    assert line.startswith(
        "epoch 12/110 s2 | train 0.1235 | val 0.2346 f1 0.8123 p 0.8000 r 0.8250 acc 0.8100"
    )
    assert "lr head 5e-06 backbone 5e-06" in line and line.endswith("best 0.8123@12 *")


def test_one_line_per_epoch_and_metrics_jsonl(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    hooks = ConsoleHooks(tmp_path, out=out, err=err)
    hooks.on_train_start(_info())
    for batch in (1, 2, 3):
        hooks.on_batch_end(1, batch, 3, 0.5)
    hooks.on_epoch_end(_metrics(1, fisher_ratio=float("nan")))
    assert "epoch 1/3 s1" in err.getvalue()  # the progress bar
    assert sum(line.startswith("epoch 1/3") for line in out.getvalue().splitlines()) == 1
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["epoch"] == 1 and rows[0]["fisher_ratio"] is None  # NaN is not JSON: null
    assert rows[0]["lrs"] == {"head": 5e-6, "backbone": 5e-6}


def test_resume_rewrites_metrics_from_the_restored_history(tmp_path: Path) -> None:
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps({"epoch": e}) + "\n" for e in (1, 2, 3)))
    hooks = ConsoleHooks(tmp_path, out=io.StringIO(), err=io.StringIO(), progress=False)
    hooks.on_train_start(_info(history=[asdict(_metrics(1))]))
    hooks.on_epoch_end(_metrics(2))
    assert [json.loads(x)["epoch"] for x in (tmp_path / "metrics.jsonl").read_text().splitlines()] == [1, 2]


def test_events_and_stage_lines(tmp_path: Path) -> None:
    out = io.StringIO()
    hooks = ConsoleHooks(tmp_path, out=out, err=io.StringIO())
    hooks.on_train_start(_info())
    hooks.on_gate_check(
        GateCheck(11, 2, 0.83, 0.8, True, "keep-trying", "enter", "stage 2 gate at epoch 11: ok")
    )
    evidence = {"trainable_units": ["features.2", "features.3"], "ratio_achieved": 0.662}
    lrs = {"head": 5e-6, "backbone": 5e-6}
    event = StageEvent(
        1, 2, 11, StageTrigger.GATE, "F1 0.83", evidence, lrs, ["features.2.depthwise.0.weight"], 7584
    )
    hooks.on_stage_change(event)
    hooks.on_train_end(
        TrainResult(Outcome.COMPLETED, "epoch budget reached", 3, 2, 0.9, 3, "b.pt", "l.pt", "b.onnx")
    )
    text = out.getvalue()
    assert "stage 1 -> 2 at epoch 11 (gate)" in text and "66.2% of the backbone" in text
    assert "unfrozen (1): features.2.depthwise.0.weight" in text
    assert "completed: epoch budget reached" in text and "onnx b.onnx" in text
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events] == ["train_start", "gate_check", "stage_change", "train_end"]
    assert events[2]["trigger"] == "gate"


def test_first_ctrl_c_asks_to_stop_second_aborts(tmp_path: Path) -> None:
    previous = signal.getsignal(signal.SIGINT)
    try:
        hooks = ConsoleHooks(tmp_path, out=io.StringIO(), err=io.StringIO(), handle_sigint=True)
        assert hooks.should_stop() is None
        hooks._on_sigint(signal.SIGINT, None)
        assert hooks.should_stop() == "Ctrl-C"
        with pytest.raises(KeyboardInterrupt):
            hooks._on_sigint(signal.SIGINT, None)
    finally:
        signal.signal(signal.SIGINT, previous)

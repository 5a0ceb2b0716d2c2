"""TensorBoard event files (``ocec_engine.tensorboard``), read back with TensorBoard's EventAccumulator:
the CLI's run and resume, per-stage scalars and text, a missing package, a failing disk; CompositeHooks."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.util import tensor_util

from ocec_engine.hooks import (
    CommandKind,
    CommandResult,
    CompositeHooks,
    EpochMetrics,
    GateCheck,
    NullHooks,
    Outcome,
    RunInfo,
    StageEvent,
    StageTrigger,
    TrainResult,
)
from ocec_engine.tensorboard import MISSING_NOTICE, TensorBoardHooks, open_tensorboard, tensorboard_dir

REPO = Path(__file__).resolve().parents[2]


def read(log_dir: Path) -> tuple[dict[str, dict[int, float]], dict[str, dict[int, str]]]:
    """Scalars and texts by tag and step, as TensorBoard loads them (restart markers honoured)."""
    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    scalars = {tag: {e.step: e.value for e in events.Scalars(tag)} for tag in events.Tags()["scalars"]}
    for tag, by_step in scalars.items():  # one value per step: a resume's rolled-back epochs are gone
        assert len(events.Scalars(tag)) == len(by_step), (tag, [e.step for e in events.Scalars(tag)])
    texts = {
        tag: {e.step: tensor_util.make_ndarray(e.tensor_proto)[0].decode() for e in events.Tensors(tag)}
        for tag in events.Tags()["tensors"]
    }
    return scalars, texts


def info(
    restored: int = 0, history: list[dict[str, Any]] | None = None, resumed: str | None = None
) -> RunInfo:
    return RunInfo(
        stage=1, start_epoch=restored + 1, epochs=4, resumed_from=resumed, restored_epoch=restored,
        restored_batch=0, trainable_params=100, total_params=1000, device="cpu", amp=False,
        history=history or [],
    )  # fmt: skip


def metrics(epoch: int, stage: int, f1: float) -> EpochMetrics:
    return EpochMetrics(
        epoch=epoch, stage=stage, train_loss=1.0 / epoch, val_loss=2.0 / epoch, val_f1=f1, val_precision=0.7,
        val_recall=0.6, val_accuracy=0.65, fisher_ratio=1.5, lrs={"head": 1e-3, "backbone": 5e-5},
        trainable_params=100 * stage, epoch_seconds=0.5, samples_per_sec=200.0,
    )  # fmt: skip


def stage_event(epoch: int) -> StageEvent:
    return StageEvent(
        from_stage=1, to_stage=2, epoch=epoch, trigger=StageTrigger.GATE, reason="val F1 0.81 >= 0.8",
        evidence={"val_f1": 0.81}, lrs={"head": 5e-5, "backbone": 5e-5}, unfrozen=["features.3.w"],
        trainable_params=200,
    )  # fmt: skip


def end(epoch: int) -> TrainResult:
    return TrainResult(Outcome.COMPLETED, "epoch budget reached", epoch, 2, 0.9, epoch, None, None)


def test_epochs_stages_and_events_become_scalars_and_text(tmp_path: Path) -> None:
    hooks, notice = open_tensorboard(tmp_path)
    assert notice is None and isinstance(hooks, TensorBoardHooks)
    hooks.on_train_start(info())
    hooks.on_epoch_end(metrics(1, 1, 0.7))
    hooks.on_gate_check(GateCheck(2, 2, 0.81, 0.8, True, "keep-trying", "enter", "val F1 0.81 >= 0.8"))
    hooks.on_stage_change(stage_event(2))
    hooks.on_epoch_end(metrics(2, 2, 0.85))
    hooks.on_command_result(CommandResult("c1", CommandKind.FORCE_STAGE, False, "already in stage 2", 3))
    hooks.on_train_end(end(2))

    scalars, texts = read(tensorboard_dir(tmp_path))
    assert scalars["f1/val"] == pytest.approx({1: 0.7, 2: 0.85})
    assert scalars["loss/train"] == pytest.approx({1: 1.0, 2: 0.5}) and scalars["loss/val"][
        2
    ] == pytest.approx(1.0)
    assert scalars["stage"] == {1: 1.0, 2: 2.0} and scalars["trainable_params"] == {1: 100.0, 2: 200.0}
    assert scalars["lr/head"][1] == pytest.approx(1e-3) and scalars["lr/backbone"][2] == pytest.approx(5e-5)
    assert scalars["f1/val_stage1"] == pytest.approx({1: 0.7}) and scalars["f1/val_stage2"] == pytest.approx(
        {2: 0.85}
    )
    for tag in (
        "precision/val",
        "recall/val",
        "accuracy/val",
        "fisher/val",
        "epoch_seconds",
        "samples_per_sec",
    ):
        assert set(scalars[tag]) == {1, 2}
    assert "f1/train" not in scalars  # not measured: not written
    assert (
        "stage 1 -> 2" in texts["events/stage_change"][2] and "val F1 0.81" in texts["events/stage_change"][2]
    )
    assert "passed" in texts["events/gate_check"][2]
    assert "refused: already in stage 2" in texts["events/command"][3]
    assert texts["run/end"][2].startswith("completed") and texts["run/start"][1].startswith("fresh start")


def test_a_resume_drops_the_epochs_it_rolled_back(tmp_path: Path) -> None:
    first, _ = open_tensorboard(tmp_path)
    first.on_train_start(info())
    for epoch, f1 in ((1, 0.5), (2, 0.6), (3, 0.7)):
        first.on_epoch_end(metrics(epoch, 1, f1))
    first.on_train_end(end(3))

    again, _ = open_tensorboard(tmp_path)  # restored from epoch 1: epochs 2 and 3 are trained again
    again.on_train_start(info(restored=1, resumed="epochs/epoch_0001.pt", history=[vars(metrics(1, 1, 0.5))]))
    for epoch, f1 in ((2, 0.65), (3, 0.75)):
        again.on_epoch_end(metrics(epoch, 1, f1))
    again.on_train_end(end(3))

    scalars, texts = read(tensorboard_dir(tmp_path))
    assert scalars["f1/val"] == pytest.approx({1: 0.5, 2: 0.65, 3: 0.75})
    assert len(list(tensorboard_dir(tmp_path).glob("events.out.tfevents.*"))) == 2
    assert texts["run/start"][2].startswith("resumed from epochs/epoch_0001.pt")


def test_a_fresh_directory_gets_the_restored_history_first(tmp_path: Path) -> None:
    """A fork runs in a new run dir: its curves start with the parent's epochs."""
    hooks, _ = open_tensorboard(tmp_path)
    history = [vars(metrics(1, 1, 0.5)), vars(metrics(2, 2, 0.6)), vars(metrics(3, 2, 0.9))]
    hooks.on_train_start(info(restored=2, history=history, resumed="parent/best.pt"))
    hooks.on_epoch_end(metrics(3, 2, 0.7))

    scalars, _ = read(tensorboard_dir(tmp_path))
    assert scalars["f1/val"] == pytest.approx({1: 0.5, 2: 0.6, 3: 0.7})  # history only up to the restore


def test_without_the_tensorboard_package_the_run_goes_on_with_a_notice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in sys.modules if n == "tensorboard" or n.startswith("tensorboard.")]:
        monkeypatch.setitem(sys.modules, name, None)  # as if it were not installed: imports fail
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    hooks, notice = open_tensorboard(tmp_path)
    assert isinstance(hooks, NullHooks) and notice == MISSING_NOTICE
    hooks.on_train_start(info())
    assert not tensorboard_dir(tmp_path).exists()


def test_a_write_failure_disables_the_writer_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "tensorboard").write_text("a file where the folder should be")
    hooks, _ = open_tensorboard(tmp_path)
    with caplog.at_level(logging.WARNING, logger="ocec_engine.tensorboard"):
        hooks.on_train_start(info())
        hooks.on_epoch_end(metrics(1, 1, 0.5))
        hooks.on_train_end(end(1))
    assert [r.getMessage() for r in caplog.records if "TensorBoard" in r.getMessage()].__len__() == 1


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ocec_engine", *args], cwd=REPO, capture_output=True, text=True, timeout=300
    )


def test_the_cli_writes_event_files_equal_to_metrics_jsonl_across_a_resume(
    tiny_parquet: Path, tmp_path: Path
) -> None:
    common = ["--data_root", str(tiny_parquet), "--output_dir", str(tmp_path), "--base_channels", "8",
              "--batch_size", "64", "--augment", "none", "--no_progress", "--freeze_backbone"]  # fmt: skip
    assert _cli("train", *common, "--epochs", "2").returncode == 0
    resumed = _cli("train", *common, "--epochs", "3", "--resume", str(tmp_path / "epochs" / "epoch_0001.pt"))
    assert resumed.returncode == 0, resumed.stderr

    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    scalars, _ = read(tmp_path / "tensorboard")
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    for tag, field in (("f1/val", "val_f1"), ("loss/train", "train_loss"), ("loss/val", "val_loss")):
        assert scalars[tag] == pytest.approx({r["epoch"]: r[field] for r in rows}, rel=1e-6), tag


class Recorder(NullHooks):
    def __init__(self, name: str, calls: list[str], *, stop: str | None = None, fail: bool = False) -> None:
        self.name, self.calls, self.stop, self.fail = name, calls, stop, fail

    def on_epoch_end(self, metrics: EpochMetrics) -> None:
        self.calls.append(self.name)
        if self.fail:
            raise RuntimeError("fenced")

    def poll_commands(self) -> list[Any]:
        return [self.name]

    def should_stop(self) -> str | None:
        return self.stop


def test_composite_hooks_call_in_order_and_stop_at_the_first_error() -> None:
    calls: list[str] = []
    both = CompositeHooks(Recorder("db", calls), Recorder("tb", calls, stop="shutdown"))
    both.on_epoch_end(metrics(1, 1, 0.5))
    assert calls == ["db", "tb"] and both.poll_commands() == ["db", "tb"] and both.should_stop() == "shutdown"

    failing = CompositeHooks(Recorder("db", calls, fail=True), Recorder("tb", calls))
    with pytest.raises(RuntimeError):
        failing.on_epoch_end(metrics(1, 1, 0.5))
    assert calls == ["db", "tb", "db"] and failing.should_stop() is None

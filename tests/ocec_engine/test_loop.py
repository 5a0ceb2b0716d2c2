"""train(config, hooks): call order, files, metrics, start options, margin heads, the OCEC pretrain."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from loop_helpers import RecordingHooks, config, load_state

from ocec_engine.config import MarginMethod, StageGateConfig, TrainConfig
from ocec_engine.errors import EngineError
from ocec_engine.hooks import CheckpointKind, Outcome, StageTrigger
from ocec_engine.loop import train


@pytest.fixture(scope="module")
def run(tiny_parquet: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RecordingHooks]:
    out = tmp_path_factory.mktemp("run")
    hooks = RecordingHooks()
    train(config(tiny_parquet, out), hooks)
    return out, hooks


def test_hooks_are_called_in_order(run: tuple[Path, RecordingHooks]) -> None:
    _, hooks = run
    assert hooks.calls[:3] == ["train_start", "stage:None->1@1", "checkpoint:stage_entry:0"]
    epoch1 = hooks.calls.index("epoch_end:1")
    assert hooks.calls[epoch1 - 3 : epoch1] == [
        "checkpoint:epoch:1",
        "checkpoint:last:1",
        "checkpoint:best:1",
    ]
    stage2 = hooks.calls.index("stage:1->2@3")
    assert hooks.calls[stage2 - 1] == "gate:3:enter" and hooks.calls[stage2 + 1] == "checkpoint:stage_entry:2"
    assert hooks.calls[-1] == "train_end"


def test_files_on_disk(run: tuple[Path, RecordingHooks]) -> None:
    out, hooks = run
    for name in ("last.pt", "best.pt", "best.onnx", "stage1_entry.pt", "stage2_entry.pt"):
        assert (out / name).is_file(), name
    assert sorted(p.name for p in (out / "epochs").iterdir()) == [f"epoch_000{i}.pt" for i in (1, 2, 3, 4)]
    assert not list(out.rglob("*.tmp"))
    assert hooks.end is not None
    assert hooks.end.outcome is Outcome.COMPLETED
    assert hooks.end.onnx_path == str(out / "best.onnx")
    assert hooks.end.last_checkpoint == str(out / "last.pt")
    for info in hooks.checkpoints:
        assert Path(info.path).is_file() and info.size_bytes > 0


def test_epoch_metrics(run: tuple[Path, RecordingHooks]) -> None:
    _, hooks = run
    assert [m.epoch for m in hooks.epochs] == [1, 2, 3, 4]
    for m in hooks.epochs:
        for value in (m.train_loss, m.val_loss, m.val_f1, m.fisher_ratio, m.epoch_seconds, m.samples_per_sec):
            assert math.isfinite(value)
        assert 0 <= m.val_f1 <= 1 and 0 <= m.val_accuracy <= 1
        assert m.samples_per_sec > 0 and m.epoch_seconds > 0
        assert m.extra["val_counts"]["tp"] + m.extra["val_counts"]["fn"] == 15  # 30 val samples, balanced
    assert hooks.epochs[0].trainable_params == 2 * 16  # margin head [2, 16]: 8 channels doubled once
    assert hooks.epochs[2].trainable_params > hooks.epochs[1].trainable_params
    assert hooks.epochs[0].extra["frozen_units"] == [
        "stem",
        "features.0",
        "features.1",
        "features.2",
        "features.3",
    ]
    assert hooks.epochs[2].extra["frozen_units"] == ["stem", "features.0", "features.1"]
    best = max(hooks.epochs, key=lambda m: (m.val_f1, -m.val_loss))  # F1 ties: the lower val loss
    assert hooks.epochs[-1].best_f1 == best.val_f1 and hooks.epochs[-1].best_epoch == best.epoch


def test_run_info_and_start_evaluation(run: tuple[Path, RecordingHooks]) -> None:
    _, hooks = run
    info = hooks.info
    assert info is not None
    assert (info.stage, info.start_epoch, info.epochs, info.resumed_from) == (1, 1, 4, None)
    assert (info.restored_epoch, info.restored_batch, info.history) == (0, 0, [])
    assert info.device == "cpu" and info.amp is False
    assert info.initial_metrics is not None and set(info.initial_metrics) >= {"f1", "loss", "fisher_ratio"}
    start = hooks.events[0]
    assert (start.from_stage, start.to_stage, start.trigger) == (None, 1, StageTrigger.START)
    assert start.unfrozen == ["margin_head.weight"]


def test_stage2_event_names_what_it_unfroze(run: tuple[Path, RecordingHooks]) -> None:
    _, hooks = run
    event = hooks.transitions()[0]
    assert event.trigger is StageTrigger.GATE
    assert event.evidence["at_epoch"] == 2 and event.evidence["val_f1"] == hooks.epochs[1].val_f1
    assert event.evidence["trainable_units"] == ["features.2", "features.3"]
    assert 0.5 <= event.evidence["ratio_achieved"] < 1.0
    assert event.unfrozen[0] == "features.2.depthwise.0.weight" and len(event.unfrozen) == 12


def test_start_in_stage_two(tiny_parquet: Path, tmp_path: Path) -> None:
    hooks = RecordingHooks()
    train(config(tiny_parquet, tmp_path, stage=2, epochs=2), hooks)
    assert [m.stage for m in hooks.epochs] == [2, 2]
    assert hooks.transitions() == [] and hooks.gates == []
    assert (tmp_path / "stage2_entry.pt").is_file() and not (tmp_path / "stage1_entry.pt").exists()
    assert hooks.epochs[0].lrs == {"head": pytest.approx(1e-4), "backbone": pytest.approx(1e-4)}


def test_full_finetune_without_freezing(tiny_parquet: Path, tmp_path: Path) -> None:
    hooks = RecordingHooks()
    train(config(tiny_parquet, tmp_path, freeze_backbone=False, epochs=2), hooks)
    assert [m.stage for m in hooks.epochs] == [1, 1]
    assert hooks.epochs[0].lrs == {"head": 2e-3, "backbone": 2e-3}
    assert hooks.epochs[0].extra["frozen_units"] == [] and hooks.epochs[0].extra["plan"] == "full"
    assert hooks.gates == []


@pytest.mark.parametrize("method", [MarginMethod.NONE, MarginMethod.ARCFACE])
def test_other_margin_heads_train(tiny_parquet: Path, tmp_path: Path, method: MarginMethod) -> None:
    hooks = RecordingHooks()
    result = train(
        config(tiny_parquet, tmp_path, margin_method=method, epochs=3, unfreeze_backbone_epoch=2), hooks
    )
    assert result.outcome is Outcome.COMPLETED
    assert all(math.isfinite(m.train_loss) and math.isfinite(m.val_loss) for m in hooks.epochs)
    if method is MarginMethod.NONE:
        assert hooks.events[0].unfrozen == ["head.0.weight", "head.0.bias", "head.2.weight", "head.2.bias"]


def test_keep_epoch_checkpoints(tiny_parquet: Path, tmp_path: Path) -> None:
    train(config(tiny_parquet, tmp_path, epochs=3, keep_epoch_checkpoints=2), RecordingHooks())
    assert sorted(p.name for p in (tmp_path / "epochs").iterdir()) == ["epoch_0002.pt", "epoch_0003.pt"]


def test_checkpoint_every_writes_epoch_files_every_n_and_last_every_epoch(
    tiny_parquet: Path, tmp_path: Path
) -> None:
    hooks = RecordingHooks()
    train(config(tiny_parquet, tmp_path, epochs=5, checkpoint_every=2), hooks)
    assert sorted(p.name for p in (tmp_path / "epochs").iterdir()) == [
        "epoch_0002.pt", "epoch_0004.pt", "epoch_0005.pt",  # every 2nd, and the last of the budget
    ]  # fmt: skip
    lasts = [c.epoch for c in hooks.checkpoints if c.kind is CheckpointKind.LAST]
    assert lasts == [1, 2, 3, 4, 5]
    assert (tmp_path / "best.pt").is_file() and (tmp_path / "stage1_entry.pt").is_file()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("epochs", 0, "epochs"),
        ("lr", 0.0, "lr"),
        ("stage", 4, "stage"),
        ("stage2", StageGateConfig(gate_f1=1.5), "gate_f1"),
        ("stage2", StageGateConfig(unfreeze_ratio=0.0), "unfreeze_ratio"),
    ],
)
def test_bad_settings_fail_before_training(tmp_path: Path, field: str, value: object, message: str) -> None:
    cfg = TrainConfig(data_root=str(tmp_path), output_dir=str(tmp_path / "out"), **{field: value})  # type: ignore[arg-type]
    with pytest.raises(EngineError, match=message):
        train(cfg)


def test_ocec_reference_checkpoint_as_pretrain_starts_from_its_f1(
    reference_dir: Path, tmp_path: Path
) -> None:
    """The public OCEC trainer's epoch-12 checkpoint classifies its val set perfectly (raw weights)."""
    cfg = TrainConfig(
        data_root=str(reference_dir / "dataset.parquet"),
        output_dir=str(tmp_path),
        pretrain=str(reference_dir / "ocec_ref_cosface_epoch0012.pt"),
        epochs=1,
        batch_size=128,
        lr=1e-4,
        freeze_backbone=True,
        unfreeze_backbone_epoch=11,
        device="cpu",  # type: ignore[arg-type]
        augment="none",  # type: ignore[arg-type]
    )
    hooks = RecordingHooks()
    train(cfg, hooks)
    assert hooks.info is not None and hooks.info.pretrain_report is not None
    assert len(hooks.info.pretrain_report["loaded"]) == 62 and hooks.info.pretrain_report["mismatched"] == []
    assert hooks.info.initial_metrics is not None and hooks.info.initial_metrics["f1"] >= 0.99
    assert hooks.epochs[0].val_f1 >= 0.97  # stage 1 starts from the checkpoint's F1, not from scratch
    assert any(c.kind is CheckpointKind.BEST for c in hooks.checkpoints)


# ---- honest results: best = highest val F1, ties to the lower val loss; model A is the baseline ----


def test_f1_ties_go_to_the_lower_val_loss(tiny_parquet: Path, tmp_path: Path) -> None:
    hooks = RecordingHooks()
    train(config(tiny_parquet, tmp_path, lr=1e-5, epochs=3, unfreeze_backbone_epoch=None), hooks)
    assert len({m.val_f1 for m in hooks.epochs}) == 1  # saturated: the tiny lr barely moves the head
    lowest = min(hooks.epochs, key=lambda m: m.val_loss)
    assert lowest.epoch != 1  # strict ">" on F1 kept epoch 1
    running = [min(m.val_loss for m in hooks.epochs[: i + 1]) for i in range(len(hooks.epochs))]
    assert [m.is_best for m in hooks.epochs] == [
        m.val_loss == low for m, low in zip(hooks.epochs, running, strict=True)
    ]
    assert hooks.end is not None and hooks.end.best_epoch == lowest.epoch
    best = load_state(tmp_path / "best.pt")
    assert best["epoch"] == best["best"]["epoch"] == lowest.epoch
    assert best["best"]["val_loss"] == lowest.val_loss


def test_a_run_that_never_beats_model_a_says_so(
    run: tuple[Path, RecordingHooks], tiny_parquet: Path, tmp_path: Path
) -> None:
    """Stage 1 at lr 1e-12: the head moves less than float32 resolves, so every epoch scores exactly
    what model A scored -- equal is not better, and the result says no epoch beat it."""
    hooks = RecordingHooks()
    cfg = config(tiny_parquet, tmp_path, pretrain=str(run[0] / "best.pt"), unfreeze_backbone_epoch=None,
                 lr=1e-12, epochs=2)  # fmt: skip
    result = train(cfg, hooks)
    assert hooks.info is not None and hooks.info.initial_metrics is not None
    baseline = hooks.info.initial_metrics
    for m in hooks.epochs:
        assert (m.val_f1, m.val_loss) == (baseline["f1"], baseline["loss"])
        assert (m.extra["baseline_f1"], m.extra["baseline_val_loss"]) == (baseline["f1"], baseline["loss"])
        assert m.extra["beats_baseline"] is False
    assert result.outcome is Outcome.COMPLETED
    assert (result.baseline_f1, result.beats_baseline) == (baseline["f1"], False)
    assert f"no epoch beat the starting weights (val F1 {baseline['f1']:.4f} before epoch 1" in result.reason
    assert result.best_checkpoint is not None  # the best trained epoch is still kept and exported


def test_a_run_that_beats_model_a_says_nothing_more(run: tuple[Path, RecordingHooks]) -> None:
    _, hooks = run
    assert hooks.end is not None and hooks.info is not None and hooks.info.initial_metrics is not None
    assert hooks.end.beats_baseline is True and hooks.end.baseline_f1 == hooks.info.initial_metrics["f1"]
    assert "starting weights" not in hooks.end.reason

"""``best.carry_best``: a resume into another folder gets the restored run's best.pt; when no file
holds that epoch any more, the best restarts there (and still ends with best.pt and best.onnx)."""

from __future__ import annotations

import shutil
from pathlib import Path

from loop_helpers import RecordingHooks, config, load_state

from ocec_engine.hooks import CheckpointKind, Outcome
from ocec_engine.loop import train


def test_a_lost_best_restarts_in_the_new_folder(tiny_parquet: Path, tmp_path: Path) -> None:
    source, target = tmp_path / "source", tmp_path / "target"
    first = train(config(tiny_parquet, source, epochs=3, unfreeze_backbone_epoch=None),
                  RecordingHooks(stop_at=(3, 1)))  # fmt: skip
    assert first.outcome is Outcome.PREEMPTED and first.best_epoch in (1, 2)
    (source / "best.pt").unlink()
    shutil.rmtree(source / "epochs")  # nothing holds the best epoch's weights any more

    hooks = RecordingHooks()
    cfg = config(tiny_parquet, target, epochs=3, unfreeze_backbone_epoch=None,
                 resume=str(source / "interrupt.pt"))  # fmt: skip
    result = train(cfg, hooks)

    assert result.outcome is Outcome.COMPLETED and (result.best_epoch, result.epoch) == (3, 3)
    assert [(c.kind, c.epoch) for c in hooks.checkpoints if c.kind is CheckpointKind.BEST] == [
        (CheckpointKind.BEST, 3)
    ]  # no copy of a lost file: the first epoch trained here is the best so far
    assert load_state(target / "best.pt")["epoch"] == 3 and (target / "best.onnx").is_file()


def test_the_restored_state_itself_is_the_best(tiny_parquet: Path, tmp_path: Path) -> None:
    source, target = tmp_path / "source", tmp_path / "target"
    done = train(config(tiny_parquet, source, epochs=2, unfreeze_backbone_epoch=None), RecordingHooks())
    shutil.copy(source / f"epochs/epoch_{done.best_epoch:04d}.pt", tmp_path / "only.pt")
    shutil.rmtree(source)  # only the copied epoch file is left: its own state is the best

    hooks = RecordingHooks()
    train(config(tiny_parquet, target, epochs=done.best_epoch, unfreeze_backbone_epoch=None,
                 resume=str(tmp_path / "only.pt")), hooks)  # fmt: skip

    [carried] = [c for c in hooks.checkpoints if c.kind is CheckpointKind.BEST]
    assert (carried.epoch, carried.path) == (done.best_epoch, str(target / "best.pt"))
    assert load_state(target / "best.pt")["best"]["epoch"] == done.best_epoch
    assert (target / "best.onnx").is_file()

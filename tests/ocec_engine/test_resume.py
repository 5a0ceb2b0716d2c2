"""Exact resume on CPU: a run split by a checkpoint ends bit-for-bit where an unbroken run ends.

Weights, optimizer state and every per-epoch metric (timings aside) must be identical — across a
plain epoch boundary, across the stage-1 -> stage-2 transition, and from a mid-epoch interrupt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from loop_helpers import RecordingHooks, config, epoch_rows, load_state, metric_rows, pause, same_tensors

from ocec_engine.config import AugmentPolicy, TrainConfig
from ocec_engine.hooks import Outcome
from ocec_engine.loop import train


def _final(out: Path) -> dict[str, Any]:
    return load_state(out / "last.pt")


def _assert_identical(straight: dict[str, Any], split: dict[str, Any]) -> None:
    assert same_tensors(straight["model_state"], split["model_state"]) == []
    a, b = straight["optimizer_state"], split["optimizer_state"]
    assert [g["param_names"] for g in a["param_groups"]] == [g["param_names"] for g in b["param_groups"]]
    for index, state in a["state"].items():
        assert same_tensors(state, b["state"][index]) == [], index
    assert metric_rows(straight["history"]) == metric_rows(split["history"])
    assert straight["scheduler_state"] == split["scheduler_state"]
    assert straight["best"] == split["best"]
    assert straight["stage_state"]["stage"] == split["stage_state"]["stage"]
    assert straight["stage_state"]["entered_epoch"] == split["stage_state"]["entered_epoch"]


def _run(cfg: TrainConfig, hooks: RecordingHooks | None = None) -> RecordingHooks:
    hooks = hooks or RecordingHooks()
    train(cfg, hooks)
    return hooks


@pytest.fixture(
    scope="module", params=[AugmentPolicy.LIGHT, AugmentPolicy.NONE], ids=["light-aug", "cached-stage1"]
)
def straight(
    request: pytest.FixtureRequest, tiny_parquet: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """4 epochs, stage 2 from epoch 3 (gate 0.0 always opens), one run.

    With augmentation every batch is augmented from its own seed; without it stage 1 trains on
    cached embeddings of the frozen backbone (rebuilt on resume) — both must resume exactly.
    """
    out = tmp_path_factory.mktemp("straight")
    hooks = _run(config(tiny_parquet, out, augment=request.param))
    assert [m.stage for m in hooks.epochs] == [1, 1, 2, 2]
    return {"state": _final(out), "epochs": hooks.epochs, "augment": request.param}


def test_two_plus_two_equals_four_across_the_stage_change(
    tiny_parquet: Path, tmp_path: Path, straight: dict[str, Any]
) -> None:
    augment = straight["augment"]
    first = _run(config(tiny_parquet, tmp_path, augment=augment, epochs=2))
    assert first.end is not None and first.end.outcome is Outcome.COMPLETED
    resumed = _run(config(tiny_parquet, tmp_path, augment=augment, resume=str(tmp_path / "last.pt")))
    assert resumed.info is not None
    assert (resumed.info.restored_epoch, resumed.info.restored_batch, resumed.info.stage) == (2, 0, 1)
    assert len(resumed.info.history) == 2
    assert [e.to_stage for e in resumed.transitions()] == [2]  # the transition happens after the resume
    _assert_identical(straight["state"], _final(tmp_path))
    assert epoch_rows(first.epochs + resumed.epochs) == epoch_rows(straight["epochs"])


def test_resume_inside_stage_two(
    tiny_parquet: Path, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    straight_out = tmp_path_factory.mktemp("straight_u2")
    _run(config(tiny_parquet, straight_out, unfreeze_backbone_epoch=2))
    _run(config(tiny_parquet, tmp_path, unfreeze_backbone_epoch=2, epochs=3))
    resumed = _run(
        config(tiny_parquet, tmp_path, unfreeze_backbone_epoch=2, resume=str(tmp_path / "last.pt"))
    )
    assert resumed.info is not None and resumed.info.stage == 2
    assert resumed.transitions() == []  # stage 2 is restored, never re-entered
    _assert_identical(_final(straight_out), _final(tmp_path))


def test_mid_epoch_interrupt_resumes_exactly(
    tiny_parquet: Path, tmp_path: Path, straight: dict[str, Any]
) -> None:
    cfg = config(tiny_parquet, tmp_path, augment=straight["augment"])
    first = _run(cfg, RecordingHooks(script={(3, 2): [pause()]}))
    assert first.end is not None and first.end.outcome is Outcome.PAUSED
    assert first.end.last_checkpoint == str(tmp_path / "interrupt.pt")
    interrupt = load_state(tmp_path / "interrupt.pt")
    assert (interrupt["epoch"], interrupt["position"]["epoch"], interrupt["position"]["batch"]) == (2, 3, 2)
    assert [r.applied for r in first.results] == [True]
    resumed = _run(TrainConfig.from_dict({**cfg.to_dict(), "resume": str(tmp_path / "interrupt.pt")}))
    assert resumed.info is not None
    assert (resumed.info.start_epoch, resumed.info.restored_epoch, resumed.info.restored_batch) == (3, 2, 2)
    assert resumed.transitions() == []  # the transition happened before the interrupt
    _assert_identical(straight["state"], _final(tmp_path))
    assert epoch_rows(first.epochs + resumed.epochs) == epoch_rows(straight["epochs"])
    assert not (tmp_path / "interrupt.pt").exists()  # superseded once the epoch completed


def test_resume_with_a_new_lr_changes_the_stage_lr(tiny_parquet: Path, tmp_path: Path) -> None:
    _run(config(tiny_parquet, tmp_path, epochs=3, unfreeze_backbone_epoch=2))
    resumed = _run(
        config(
            tiny_parquet,
            tmp_path,
            epochs=4,
            unfreeze_backbone_epoch=2,
            lr=1e-3,
            resume=str(tmp_path / "last.pt"),
        )
    )
    lr_events = [e for e in resumed.events if e.from_stage == e.to_stage]
    assert len(lr_events) == 1 and "lr changed on resume" in lr_events[0].reason
    expected = 1e-3 * 0.05
    assert resumed.epochs[-1].lrs == {"head": pytest.approx(expected), "backbone": pytest.approx(expected)}


def test_resume_stage_forces_the_stage_at_the_first_epoch(tiny_parquet: Path, tmp_path: Path) -> None:
    _run(config(tiny_parquet, tmp_path, epochs=2, unfreeze_backbone_epoch=None))
    resumed = _run(
        config(
            tiny_parquet,
            tmp_path,
            epochs=3,
            unfreeze_backbone_epoch=None,
            resume_stage=2,
            resume=str(tmp_path / "last.pt"),
        )
    )
    assert [(e.from_stage, e.to_stage, e.epoch, e.trigger.value) for e in resumed.transitions()] == [
        (1, 2, 3, "resume")
    ]
    assert resumed.epochs[0].stage == 2
    assert (tmp_path / "stage2_entry.pt").is_file()


def test_history_supersedes_rows_after_an_older_checkpoint(tiny_parquet: Path, tmp_path: Path) -> None:
    _run(config(tiny_parquet, tmp_path, epochs=3))
    resumed = _run(
        config(tiny_parquet, tmp_path, epochs=3, resume=str(tmp_path / "epochs" / "epoch_0001.pt"))
    )
    assert resumed.info is not None and resumed.info.restored_epoch == 1
    assert len(resumed.info.history) == 1
    assert [m.epoch for m in resumed.epochs] == [2, 3]
    assert [row["epoch"] for row in load_state(tmp_path / "last.pt")["history"]] == [1, 2, 3]


def test_cached_stage1_embeddings_train_like_the_backbone(
    tiny_parquet: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stage 1 without augmentation trains on cached embeddings: the same numbers up to float rounding."""
    import ocec_engine.loop as loop

    _run(config(tiny_parquet, tmp_path / "cached", epochs=2, unfreeze_backbone_epoch=None))
    monkeypatch.setattr(loop, "_EMBED_CACHE_LIMIT", 0)
    _run(config(tiny_parquet, tmp_path / "direct", epochs=2, unfreeze_backbone_epoch=None))
    cached, direct = _final(tmp_path / "cached"), _final(tmp_path / "direct")
    for name, tensor in cached["model_state"].items():
        assert torch.allclose(tensor.float(), direct["model_state"][name].float(), atol=1e-5), name
    assert [r["val_f1"] for r in cached["history"]] == [r["val_f1"] for r in direct["history"]]

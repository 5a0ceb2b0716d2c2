"""Correctness invariants of progressive fine-tuning (issue 2, point 7; DESIGN "Correctness rules").

Frozen weights and frozen BatchNorm statistics do not move by a single bit; stage 2 starts once and
keeps the head's Adam state; the stage lr is the lr used; metrics, best selection and checkpoint
belong to the same weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from loop_helpers import RecordingHooks, config, load_state, same_tensors

from ocec_engine.config import AugmentPolicy, StageGateConfig
from ocec_engine.data import load_dataset
from ocec_engine.evaluate import Runtime, evaluate
from ocec_engine.loop import train
from ocec_engine.model import ModelConfig, build_model


def _changed(before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    return set(same_tensors(before["model_state"], after["model_state"]))


@pytest.fixture(scope="module")
def progressive(tiny_parquet: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """2 stage-1 epochs, then 2 stage-2 epochs (gate 0.0 passes at every read), OCEC augmentation."""
    out = tmp_path_factory.mktemp("progressive")
    hooks = RecordingHooks()
    result = train(config(tiny_parquet, out, augment=AugmentPolicy.OCEC, warmup_epochs=3), hooks)
    return {"out": out, "hooks": hooks, "result": result}


def test_stage1_moves_only_the_margin_head(progressive: dict[str, Any]) -> None:
    out = progressive["out"]
    entry = load_state(out / "stage1_entry.pt")
    end_of_stage1 = load_state(out / "epochs" / "epoch_0002.pt")
    # every backbone weight, every BN running_mean/var/num_batches_tracked, the dead head: untouched
    assert _changed(entry, end_of_stage1) == {"margin_head.weight"}


def test_stage2_moves_only_its_suffix(progressive: dict[str, Any]) -> None:
    out = progressive["out"]
    changed = _changed(load_state(out / "stage2_entry.pt"), load_state(out / "last.pt"))
    assert changed, "stage 2 trained nothing"
    assert all(name.startswith(("features.2.", "features.3.", "margin_head.")) for name in changed), changed
    assert "features.2.depthwise.1.running_mean" in changed  # trainable BN trains (stats included)
    assert "features.3.pointwise.0.weight" in changed


def test_stage2_starts_exactly_once(progressive: dict[str, Any]) -> None:
    hooks: RecordingHooks = progressive["hooks"]
    assert [(e.from_stage, e.to_stage, e.epoch) for e in hooks.transitions()] == [(1, 2, 3)]
    assert [(g.epoch, g.action) for g in hooks.gates] == [(3, "enter")]  # no reads once in stage 2
    assert [m.stage for m in hooks.epochs] == [1, 1, 2, 2]
    stage_state = load_state(progressive["out"] / "last.pt")["stage_state"]
    assert [t["to_stage"] for t in stage_state["transitions"]] == [1, 2]  # start + one transition


def test_head_adam_state_survives_the_transition(progressive: dict[str, Any]) -> None:
    optimizer = load_state(progressive["out"] / "last.pt")["optimizer_state"]
    steps = {
        name: float(optimizer["state"][index]["step"])
        for group in optimizer["param_groups"]
        for index, name in zip(group["params"], group["param_names"], strict=True)
    }
    batches = 3  # 90 train samples, batch 32
    assert steps["margin_head.weight"] == 4 * batches  # never reset
    assert steps["features.3.pointwise.0.weight"] == 2 * batches  # fresh at the stage-2 entry


def test_stage2_lr_is_lr_times_factor_in_every_group_despite_warmup(progressive: dict[str, Any]) -> None:
    hooks: RecordingHooks = progressive["hooks"]
    lr = 2e-3
    assert hooks.epochs[0].lrs == {"head": pytest.approx(lr / 3)}  # warm-up at the run start only
    assert hooks.epochs[1].lrs == {"head": pytest.approx(lr * 2 / 3)}
    assert hooks.epochs[2].lrs == {"head": pytest.approx(lr * 0.05), "backbone": pytest.approx(lr * 0.05)}
    assert hooks.transitions()[0].lrs == hooks.epochs[2].lrs


def test_explicit_stage2_lr(tiny_parquet: Path, tmp_path: Path) -> None:
    hooks = RecordingHooks()
    stage2 = StageGateConfig(gate_f1=0.0, lr=3e-5)
    train(config(tiny_parquet, tmp_path, epochs=2, unfreeze_backbone_epoch=2, stage2=stage2), hooks)
    assert hooks.epochs[1].lrs == {"head": 3e-5, "backbone": 3e-5}


def test_frozen_parameters_are_not_in_the_optimizer(progressive: dict[str, Any]) -> None:
    out = progressive["out"]
    for name, stage_trainable in (("epochs/epoch_0002.pt", {"margin_head.weight"}), ("last.pt", None)):
        state = load_state(out / name)
        in_optimizer = {n for g in state["optimizer_state"]["param_groups"] for n in g["param_names"]}
        if stage_trainable is not None:
            assert in_optimizer == stage_trainable
        else:
            assert all(n.startswith(("features.2.", "features.3.", "margin_head.")) for n in in_optimizer)
        assert not any(n.startswith("head.") for n in in_optimizer)  # the dead OCEC head never trains


def test_metrics_and_checkpoints_come_from_the_same_weights(
    progressive: dict[str, Any], tiny_parquet: Path
) -> None:
    out = progressive["out"]
    best = load_state(out / "best.pt")
    model = build_model(ModelConfig.from_dict(best["model_config"]))
    model.load_state_dict(best["model_state"])
    data = load_dataset(tiny_parquet, (32, 64))
    ev = evaluate(model, data.val_x, data.val_y, 64, Runtime(torch.device("cpu")))
    row = best["history"][-1]
    assert row["epoch"] == best["best"]["epoch"] == best["epoch"]
    assert ev.counts.f1() == row["val_f1"] == best["val_metrics"]["f1"] == best["best"]["f1"]
    assert ev.loss == pytest.approx(row["val_loss"], rel=1e-6)
    hooks: RecordingHooks = progressive["hooks"]
    best_rows = [m for m in hooks.epochs if m.is_best]
    assert best_rows[-1].epoch == best["best"]["epoch"]
    assert max(m.val_f1 for m in hooks.epochs) == best["best"]["f1"]

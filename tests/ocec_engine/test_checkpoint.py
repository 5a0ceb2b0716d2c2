"""Checkpoint files: atomic writes, selectors, retention, and the format (OCEC keys + full state)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import torch
from loop_helpers import RecordingHooks, config, load_state

from ocec_engine import checkpoint
from ocec_engine.checkpoint import Layout, prune_epochs, select, write_atomic
from ocec_engine.errors import CheckpointError
from ocec_engine.hooks import Outcome
from ocec_engine.loop import train
from ocec_engine.model import ModelConfig, build_model

OCEC_KEYS = {
    "model_state",
    "model_config",
    "normalization",
    "label_map",
    "train_config",
    "epoch",
    "optimizer_state",
    "scheduler_state",
    "scaler_state",
    "train_metrics",
    "val_metrics",
    "amp_enabled",
}


@pytest.fixture(scope="module")
def run_dir(tiny_parquet: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ckpt")
    train(config(tiny_parquet, out, epochs=3, unfreeze_backbone_epoch=2), RecordingHooks())
    return out


def test_write_atomic_replaces_whole_files(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "last.pt"
    assert write_atomic(target, b"old") == 3
    write_atomic(target, b"new contents")
    assert target.read_bytes() == b"new contents"
    assert os.listdir(target.parent) == ["last.pt"]  # no temp file left behind


def test_write_atomic_leaves_the_old_file_when_writing_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "last.pt"
    write_atomic(target, b"old")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        write_atomic(target, b"new")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["last.pt"]


def test_checkpoint_is_a_superset_of_ocec_and_weights_only(run_dir: Path) -> None:
    state = load_state(run_dir / "last.pt")  # torch.load(weights_only=True)
    assert set(state) >= OCEC_KEYS
    assert set(state) >= {
        "format_version",
        "stage_state",
        "history",
        "best",
        "rng",
        "position",
        "augmentation",
    }
    assert state["label_map"] == {0: "closed", 1: "open"}
    assert state["normalization"]["image_size"] == [32, 64]
    assert state["epoch"] == 3 and state["amp_enabled"] is False and state["scaler_state"] is None
    assert state["stage_state"]["stage"] == 2 and state["stage_state"]["entered_epoch"] == 2
    assert [row["epoch"] for row in state["history"]] == [1, 2, 3]
    assert state["val_metrics"]["f1"] == state["history"][-1]["val_f1"]
    assert state["data_fingerprint"]
    model = build_model(ModelConfig.from_dict(state["model_config"]))
    model.load_state_dict(state["model_state"], strict=True)  # what OCEC tooling reads


def test_stage_entry_holds_the_state_before_the_stage(run_dir: Path) -> None:
    entry = load_state(run_dir / "stage2_entry.pt")
    assert entry["epoch"] == 1 and entry["stage_state"]["stage"] == 2
    names = {n for g in entry["optimizer_state"]["param_groups"] for n in g["param_names"]}
    assert "features.3.pointwise.0.weight" in names
    assert torch.equal(
        entry["model_state"]["margin_head.weight"],
        load_state(run_dir / "epochs" / "epoch_0001.pt")["model_state"]["margin_head.weight"],
    )


def test_selectors(run_dir: Path) -> None:
    assert select(run_dir, "last") == run_dir / "last.pt"
    assert select(run_dir, "best") == run_dir / "best.pt"
    assert select(run_dir, "stage:2") == run_dir / "stage2_entry.pt"
    assert select(run_dir, " EPOCH:3 ") == run_dir / "epochs" / "epoch_0003.pt"
    for bad in ("stage:9", "epoch:99", "interrupt"):
        with pytest.raises(CheckpointError, match="no checkpoint"):
            select(run_dir, bad)
    for bad in ("first", "stage:x", "epoch:"):
        with pytest.raises(CheckpointError, match="selector"):
            select(run_dir, bad)


def test_last_prefers_a_newer_interrupt(tiny_parquet: Path, tmp_path: Path) -> None:
    from loop_helpers import pause

    result = train(config(tiny_parquet, tmp_path, epochs=3), RecordingHooks(script={(2, 1): [pause()]}))
    assert result.outcome is Outcome.PAUSED
    assert select(tmp_path, "last") == tmp_path / "interrupt.pt"
    assert checkpoint.position(tmp_path / "interrupt.pt") == (1, 1)


def test_prune_keeps_the_newest(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    for epoch in (1, 2, 3, 10):
        write_atomic(layout.epoch(epoch), b"x")
    removed = prune_epochs(layout, 2)
    assert [p.name for p in removed] == ["epoch_0001.pt", "epoch_0002.pt"]
    assert prune_epochs(layout, 0) == []


def test_resume_refuses_a_pretrain_only_file(reference_dir: Path) -> None:
    with pytest.raises(CheckpointError, match="--pretrain"):
        checkpoint.load(reference_dir / "ocec_ref_cosface_epoch0012.pt")


def test_resume_refuses_a_newer_format(tmp_path: Path, run_dir: Path) -> None:
    state: dict[str, Any] = load_state(run_dir / "last.pt")
    state["format_version"] = checkpoint.FORMAT_VERSION + 1
    torch.save(state, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="newer"):
        checkpoint.load(tmp_path / "future.pt")

"""Failures a user must be able to act on: a full disk names the file, a NaN loss says why.

(The fault-injection suite, tests/faults, shows both end to end through a real worker: a tmpfs that
fills up, a pretrain holding NaN.)
"""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
import torch

from ocec_engine import train
from ocec_engine.atomic import atomic_path
from ocec_engine.config import TrainConfig
from ocec_engine.data.cache import save_cached
from ocec_engine.data.split import DataSplit
from ocec_engine.errors import EngineError
from ocec_engine.model import ModelConfig, build_model


def test_a_full_disk_is_reported_as_enospc_naming_the_target(tmp_path: Path) -> None:
    target = tmp_path / "last.pt"
    with pytest.raises(OSError) as raised, atomic_path(target):
        try:  # what torch.save does when a write fails: a RuntimeError over the OSError
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as exc:
            raise RuntimeError("[enforce fail at inline_container.cc] unexpected pos") from exc
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(target)
    assert list(tmp_path.iterdir()) == [], "the temp file is removed"


def test_other_write_errors_pass_through_unchanged(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"), atomic_path(tmp_path / "x.pt"):
        raise RuntimeError("boom")


def test_the_data_cache_is_written_through_a_file_object(tmp_path: Path) -> None:
    split = DataSplit(
        train_x=torch.zeros(2, 3, 4, 4, dtype=torch.uint8), train_y=torch.tensor([0, 1]),
        val_x=torch.zeros(1, 3, 4, 4, dtype=torch.uint8), val_y=torch.tensor([1]),
        source="test", fingerprint="f" * 8, meta={},
    )  # fmt: skip
    path = save_cached(tmp_path, split)
    assert torch.load(path, weights_only=True)["fingerprint"] == "f" * 8


def test_nan_in_the_pretrain_names_the_file_and_the_tensor(tiny_parquet: Path, tmp_path: Path) -> None:
    state = build_model(ModelConfig()).state_dict()
    name = "features.1.depthwise.0.weight"
    state[name] = torch.full_like(state[name], float("nan"))
    pretrain = tmp_path / "nan.pt"
    torch.save({"model_state": state}, pretrain)
    config = TrainConfig(
        data_root=str(tiny_parquet.parent), output_dir=str(tmp_path / "run"), pretrain=str(pretrain),
        epochs=1, batch_size=32, freeze_backbone=True, augment="none", device="cpu",  # type: ignore[arg-type]
    )  # fmt: skip
    with pytest.raises(EngineError) as raised:
        train(config)
    message = str(raised.value)
    assert message.startswith("non-finite training loss (nan) at epoch 1, batch 1")
    assert f"the weights loaded from {pretrain} hold NaN/inf in {name}" in message

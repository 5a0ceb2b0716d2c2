"""Evaluation fixtures: a folder dataset with a test split, and a small model saved as a checkpoint."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch

from ocec_engine.model import ModelConfig, build_model


def explode(parquet: Path, root: Path, *, test_every: int = 0) -> Path:
    """The parquet's images as {split}/{label}/NNN.png; every ``test_every``-th row goes to test/."""
    table = pq.read_table(parquet).to_pydict()
    for i, (split, label, data) in enumerate(
        zip(table["split"], table["label"], table["image_bytes"], strict=True)
    ):
        split = "test" if test_every and i % test_every == 0 else split
        folder = root / split / label
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i:03d}.png").write_bytes(data)
    return root


@pytest.fixture(scope="session")
def folder_dataset(tiny_parquet: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """train/, val/ and test/ (every 5th image) folders of open/closed crops."""
    return explode(tiny_parquet, tmp_path_factory.mktemp("folders") / "ds", test_every=5)


@pytest.fixture(scope="session")
def model_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An OCEC-style checkpoint (model_state + model_config) of a small seeded model."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(base_channels=8, num_blocks=2))
    path = tmp_path_factory.mktemp("model") / "model.pt"
    torch.save({"model_state": model.state_dict(), "model_config": model.config.to_dict()}, path)
    return path

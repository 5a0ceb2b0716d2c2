"""Evaluation fixtures: a small model saved as a checkpoint (the folder dataset is in ../conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ocec_engine.model import ModelConfig, build_model


@pytest.fixture(scope="session")
def model_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An OCEC-style checkpoint (model_state + model_config) of a small seeded model."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(base_channels=8, num_blocks=2))
    path = tmp_path_factory.mktemp("model") / "model.pt"
    torch.save({"model_state": model.state_dict(), "model_config": model.config.to_dict()}, path)
    return path

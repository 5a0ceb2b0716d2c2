"""Compatibility with the real OCEC artefacts: checkpoints load strictly and reproduce the reference."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from ocec_engine.config import MarginMethod
from ocec_engine.data import load_dataset
from ocec_engine.model import OCECNet, build_model
from ocec_engine.normalize import MEAN, STD, normalize
from ocec_engine.weights import (
    extract_state_dict,
    load_pretrain,
    model_config_from_checkpoint,
    read_checkpoint,
)

METHODS = ["cosface", "none"]


def _checkpoint(reference_dir: Path, method: str) -> Path:
    return reference_dir / f"ocec_ref_{method}_epoch0012.pt"


def _strict_model(reference_dir: Path, method: str) -> OCECNet:
    obj = read_checkpoint(_checkpoint(reference_dir, method))
    cfg = model_config_from_checkpoint(obj)
    assert cfg is not None
    model = build_model(cfg)
    model.load_state_dict(extract_state_dict(obj), strict=True)
    return model.eval()


@pytest.mark.parametrize("method", METHODS)
def test_checkpoint_reads_with_weights_only(reference_dir: Path, method: str) -> None:
    obj = read_checkpoint(_checkpoint(reference_dir, method))
    cfg = model_config_from_checkpoint(obj)
    assert cfg is not None and cfg.margin_method == MarginMethod(method)
    assert cfg.image_size == (32, 64)
    assert len(extract_state_dict(obj)) == (62 if method == "cosface" else 61)
    np.testing.assert_allclose(obj["normalization"]["mean"], MEAN, atol=1e-12)
    np.testing.assert_allclose(obj["normalization"]["std"], STD, atol=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_reproduces_sample_outputs(reference_dir: Path, method: str) -> None:
    model = _strict_model(reference_dir, method)
    x = torch.from_numpy(np.load(reference_dir / "sample_inputs.npy"))
    expected = np.load(reference_dir / "sample_outputs.npz")[f"{method}_logits"]
    with torch.no_grad():
        raw = model.raw_outputs(x).numpy()
    np.testing.assert_allclose(raw, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_loads_as_pretrain(reference_dir: Path, method: str) -> None:
    model = build_model(model_config_from_checkpoint(read_checkpoint(_checkpoint(reference_dir, method))))
    report = load_pretrain(model, _checkpoint(reference_dir, method))
    assert report.missing == [] and report.unexpected == [] and report.mismatched == []
    assert report.source_format == "ocec" and report.notes == []
    strict = _strict_model(reference_dir, method)
    for name, tensor in strict.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor), name


def test_none_checkpoint_as_cosface_pretrain(reference_dir: Path) -> None:
    model = build_model(model_config_from_checkpoint(read_checkpoint(_checkpoint(reference_dir, "none"))))
    cosface = build_model(type(model.config)(margin_method=MarginMethod.COSFACE))
    report = load_pretrain(cosface, _checkpoint(reference_dir, "none"))
    assert report.missing == ["margin_head.weight"] and len(report.loaded) == 61


def test_preprocessing_matches_reference_inputs(reference_dir: Path) -> None:
    """Our decode + resize + normalize vs the reference's: within one uint8 step (resize rounding)."""
    data = load_dataset(reference_dir / "dataset.parquet")
    ours = normalize(data.val_x[:16]).numpy()
    ref = np.load(reference_dir / "sample_inputs.npy")
    one_step = 1.0 / 255.0 / min(STD) + 1e-4
    assert np.abs(ours - ref).max() <= one_step
    assert np.abs(ours - ref).mean() < 0.01


def test_reproduces_expected_val_outputs(reference_dir: Path) -> None:
    data = load_dataset(reference_dir / "dataset.parquet")
    with (reference_dir / "expected_val_outputs.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(data.val_y) == 200
    assert data.val_y.tolist() == [int(r["class_id"]) for r in rows]
    for method in METHODS:
        model = _strict_model(reference_dir, method)
        with torch.no_grad():
            p_open = model(normalize(data.val_x)).numpy()
        expected = np.array([float(r[f"p_open_{method}"]) for r in rows])
        assert np.abs(p_open - expected).max() < 0.01, method  # resize rounding only
        assert ((p_open >= 0.5) == (expected >= 0.5)).all(), method

"""ONNX export: onnxruntime matches PyTorch, output is P(open), batch axis is dynamic, writes are atomic."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from ocec_engine.config import MarginMethod
from ocec_engine.errors import CheckpointError
from ocec_engine.export import export_checkpoint, export_onnx
from ocec_engine.model import ModelConfig, OCECNet, build_model


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input"]
    assert [o.name for o in session.get_outputs()] == ["prob_open"]
    return session.run(["prob_open"], {"input": x})[0]


def _torch(model: OCECNet, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.eval()(torch.from_numpy(x)).numpy()


@pytest.mark.parametrize("method", [MarginMethod.COSFACE, MarginMethod.NONE, MarginMethod.ARCFACE])
def test_onnx_matches_torch_on_random_inputs(tmp_path: Path, method: MarginMethod) -> None:
    torch.manual_seed(0)
    model = build_model(ModelConfig(margin_method=method))
    model.train()  # export must use eval mode without changing the caller's model
    path = export_onnx(model, tmp_path / "m.onnx")
    assert model.training
    for batch in (1, 7):  # dynamic batch axis
        x = np.random.default_rng(batch).normal(size=(batch, 3, 32, 64)).astype(np.float32)
        out = _run(path, x)
        assert out.shape == (batch,)
        np.testing.assert_allclose(out, _torch(model, x), atol=1e-5, rtol=0)
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]  # no temp file left
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(meta["ocec.image_size"]) == [32, 64]
    assert json.loads(meta["ocec.label_map"]) == {"0": "closed", "1": "open"}


@pytest.mark.parametrize("method", ["cosface", "none"])
def test_exported_fixture_checkpoint_gives_p_open(reference_dir: Path, tmp_path: Path, method: str) -> None:
    ckpt = reference_dir / f"ocec_ref_{method}_epoch0012.pt"
    path = export_checkpoint(ckpt, tmp_path / f"{method}.onnx")
    x = np.load(reference_dir / "sample_inputs.npy")
    out = _run(path, x)
    logits = np.load(reference_dir / "sample_outputs.npz")[f"{method}_logits"]
    if method == "cosface":
        expected = np.exp(logits[:, 1]) / np.exp(logits).sum(1)
    else:
        expected = 1.0 / (1.0 + np.exp(-logits))
    np.testing.assert_allclose(out, expected, atol=1e-5, rtol=0)  # P(open), not P(closed)


def test_channels_last_model_exports(tmp_path: Path) -> None:
    model = build_model(ModelConfig()).to(memory_format=torch.channels_last)
    path = export_onnx(model, tmp_path / "cl.onnx")
    x = np.random.default_rng(0).normal(size=(3, 3, 32, 64)).astype(np.float32)
    np.testing.assert_allclose(_run(path, x), _torch(model, x), atol=1e-5, rtol=0)


def test_export_checkpoint_errors(tmp_path: Path) -> None:
    no_cfg = tmp_path / "no_cfg.pt"
    torch.save({"model_state": build_model(ModelConfig()).state_dict()}, no_cfg)
    with pytest.raises(CheckpointError, match=r"no_cfg\.pt: no model_config"):
        export_checkpoint(no_cfg, tmp_path / "x.onnx")
    wrong = tmp_path / "wrong.pt"
    torch.save(
        {
            "model_state": build_model(ModelConfig()).state_dict(),
            "model_config": ModelConfig(num_blocks=3).to_dict(),
        },
        wrong,
    )
    with pytest.raises(CheckpointError, match=r"wrong\.pt: model_state does not match"):
        export_checkpoint(wrong, tmp_path / "y.onnx")
    assert not (tmp_path / "x.onnx").exists() and not (tmp_path / "y.onnx").exists()

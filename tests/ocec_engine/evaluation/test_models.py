"""Every checkpoint format the engine loads, and its ONNX export, give the same evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from ocec_engine.errors import CheckpointError, UnsafeCheckpointError
from ocec_engine.evaluation import evaluate_to_dir
from ocec_engine.evaluation.models import load_model
from ocec_engine.export import export_checkpoint


def _numbers(report: dict[str, Any]) -> dict[str, Any]:
    return {
        "at_0_5": {k: report["at_0_5"][k] for k in ("tp", "fp", "tn", "fn")},
        "at_threshold": {k: report["at_threshold"][k] for k in ("tp", "fp", "tn", "fn")},
        "worst": [(r["row"], r["source"], r["label"]) for r in report["worst"]],
        "sweep": report["sweep"],
        "data": report["data"],
    }


def test_checkpoint_and_its_onnx_export_agree(
    folder_dataset: Path, model_checkpoint: Path, tmp_path: Path
) -> None:
    onnx_path = export_checkpoint(model_checkpoint, tmp_path / "model.onnx")
    kwargs: dict[str, Any] = {"split": "all", "bootstrap": 100, "top_k": 8}
    a = evaluate_to_dir(model_checkpoint, folder_dataset, tmp_path / "ckpt", **kwargs)
    b = evaluate_to_dir(onnx_path, folder_dataset, tmp_path / "onnx", **kwargs)
    assert (a["model"]["format"], b["model"]["format"]) == ("checkpoint", "onnx")
    assert _numbers(a) == _numbers(b)
    for key in ("roc_auc", "pr_auc"):
        assert a[key] == pytest.approx(b[key], abs=1e-9)
    assert a["threshold"]["value"] == pytest.approx(b["threshold"]["value"], abs=1e-6)
    for ra, rb in zip(a["worst"], b["worst"], strict=True):
        assert ra["p_open"] == pytest.approx(rb["p_open"], abs=1e-6)


def test_every_checkpoint_format_scores_the_same(model_checkpoint: Path, tmp_path: Path) -> None:
    obj = torch.load(model_checkpoint, weights_only=True)
    state = obj["model_state"]
    variants = {
        "ocec-jobs": {**obj, "format_version": 1, "stage_state": {}},
        "model-key": {"model": state},
        "state-dict": dict(state),
        "ddp-prefix": {f"module.{k}": v for k, v in state.items()},
    }
    x = torch.randn(6, 3, 32, 64)
    expected = load_model(model_checkpoint).score(x)
    for name, payload in variants.items():
        path = tmp_path / f"{name}.pt"
        torch.save(payload, path)
        model = load_model(path)
        assert model.score(x) == pytest.approx(expected, abs=1e-7), name
        assert bool(model.notes) == (name not in ("ocec-jobs",)), name  # no model_config: noted


class _Payload:
    def __reduce__(self) -> tuple[Any, ...]:
        return (print, ("pwned",))


def test_unsafe_and_foreign_files_are_refused(tmp_path: Path) -> None:
    evil = tmp_path / "evil.pt"
    torch.save({"model_state": {}, "x": _Payload()}, evil)
    with pytest.raises(UnsafeCheckpointError):
        load_model(evil)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not onnx")
    with pytest.raises(CheckpointError, match="not a readable ONNX model"):
        load_model(junk)
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path / "missing.pt")

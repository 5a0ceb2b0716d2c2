"""The model an evaluation scores: any checkpoint the engine loads, or an ONNX export of one.

Checkpoints are read with ``weights_only=True`` (``ocec_engine.weights.read_checkpoint``): ours,
OCEC's, ``{"model": ...}`` or a bare state dict. Without a ``model_config`` the architecture is read
off the tensor shapes (a margin head is taken as CosFace, the engine's default; noted). An ONNX file
runs in onnxruntime on CPU, with the input size from its ``ocec.image_size`` metadata. Both return
P(open) for normalised input, so one model gives the same scores through either path.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from ocec_engine.checkpoint import ONNX_THRESHOLD_KEY, THRESHOLD_KEY
from ocec_engine.config import MarginMethod
from ocec_engine.errors import CheckpointError
from ocec_engine.model import ModelConfig, OCECNet, build_model
from ocec_engine.weights import extract_state_dict, model_config_from_checkpoint, read_checkpoint

_BLOCK = re.compile(r"^features\.(\d+)\.")


class ModelFormat(StrEnum):
    CHECKPOINT = "checkpoint"
    ONNX = "onnx"


class Scorer(Protocol):
    def __call__(self, x: Tensor) -> NDArray[np.float64]:
        """Normalised float32 images [B, 3, H, W] -> P(open) [B]."""
        ...


@dataclass
class LoadedModel:
    path: Path
    format: ModelFormat
    image_size: tuple[int, int]
    score: Scorer
    stored_threshold: float | None = None
    notes: list[str] = field(default_factory=list)

    def sha256(self) -> str:
        h = hashlib.sha256()
        with self.path.open("rb") as fh:
            while block := fh.read(1 << 20):
                h.update(block)
        return h.hexdigest()


def load_model(path: str | Path) -> LoadedModel:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: model file not found")
    if path.suffix.lower() == ".onnx":
        return _load_onnx(path)
    return _load_checkpoint(path)


def _load_checkpoint(path: Path) -> LoadedModel:
    obj = read_checkpoint(path)
    state = extract_state_dict(obj, path=str(path))
    notes: list[str] = []
    cfg = model_config_from_checkpoint(obj, path=str(path))
    if cfg is None:
        cfg = infer_config(state, path)
        notes.append(f"no model_config: architecture read off the tensors ({cfg.to_dict()})")
    model = build_model(cfg)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit the model: {exc}") from exc
    model.eval()
    return LoadedModel(
        path, ModelFormat.CHECKPOINT, cfg.image_size, _torch_scorer(model), _stored(obj), notes
    )


def _stored(obj: dict[str, Any]) -> float | None:
    entry = obj.get(THRESHOLD_KEY)
    if isinstance(entry, dict) and entry.get("value") is not None:
        return float(entry["value"])
    return None


def infer_config(state: dict[str, Tensor], path: Path) -> ModelConfig:
    stem = state.get("stem.0.weight")
    blocks = {int(m.group(1)) for name in state if (m := _BLOCK.match(name))}
    if stem is None or not blocks:
        raise CheckpointError(f"{path}: no model_config and no OCEC baseline tensors (stem.0, features.N)")
    margin = MarginMethod.COSFACE if "margin_head.weight" in state else MarginMethod.NONE
    return ModelConfig(base_channels=int(stem.shape[0]), num_blocks=max(blocks) + 1, margin_method=margin)


def _torch_scorer(model: OCECNet) -> Scorer:
    model.to(memory_format=torch.channels_last)  # faster convs on CPU (as the training loop)

    def score(x: Tensor) -> NDArray[np.float64]:
        with torch.inference_mode():
            scores: NDArray[np.float64] = (
                model(x.contiguous(memory_format=torch.channels_last)).double().numpy()
            )
        return scores

    return score


def _load_onnx(path: Path) -> LoadedModel:
    import onnx
    import onnxruntime as ort

    try:
        proto = onnx.load(str(path), load_external_data=False)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnx / onnxruntime raise many types for a foreign file
        raise CheckpointError(f"{path}: not a readable ONNX model ({type(exc).__name__}: {exc})") from exc
    meta = {entry.key: entry.value for entry in proto.metadata_props}
    notes = []
    size = (32, 64)
    if "ocec.image_size" in meta:
        h, w = json.loads(meta["ocec.image_size"])
        size = (int(h), int(w))
    else:
        notes.append("no ocec.image_size metadata: input size 32x64 assumed")
    threshold = float(meta[ONNX_THRESHOLD_KEY]) if ONNX_THRESHOLD_KEY in meta else None
    input_name = session.get_inputs()[0].name

    def score(x: Tensor) -> NDArray[np.float64]:
        (out,) = session.run(None, {input_name: x.numpy().astype(np.float32, copy=False)})
        return np.asarray(out, dtype=np.float64).reshape(-1)

    return LoadedModel(path, ModelFormat.ONNX, size, score, threshold, notes)

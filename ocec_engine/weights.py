"""Reading user-supplied checkpoints safely and loading pretrain weights with a full report.

Only ``torch.load(weights_only=True)`` is ever used: a file that needs pickle code execution (e.g. a
``__reduce__`` payload) is refused with UnsafeCheckpointError before anything in it runs. Pretrain
loading never drops a tensor silently: the report lists every name that was loaded, missing from the
file, unexpected in it, or of a different shape.
"""

from __future__ import annotations

import pickle
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ocec_engine.errors import CheckpointError, PretrainMismatchError, UnsafeCheckpointError
from ocec_engine.model import ModelConfig, OCECNet
from ocec_engine.normalize import MEAN, STD

_MODULE_PREFIX = "module."  # DataParallel / DDP wrappers
# weights_only refuses a pickled reference to a Python callable/class ("GLOBAL ..."): that is code.
_UNSAFE_MARKERS = ("GLOBAL", "Unsupported global", "allowed global")


class SourceFormat:
    OCEC = "ocec"  # the public OCEC trainer's checkpoint (model_state + model_config, no format_version)
    OCEC_JOBS = "ocec-jobs"  # ours: carries format_version
    MODEL_KEY = "model"  # {"model": state_dict, ...}
    STATE_DICT = "state_dict"  # a bare state dict


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """torch.load(map_location="cpu", weights_only=True) of a dict; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        detail = _detail(str(exc))
        if any(marker in str(exc) for marker in _UNSAFE_MARKERS):
            raise UnsafeCheckpointError(
                f"{path}: refused: it needs pickle code execution to load ({detail}); it was not run"
            ) from exc
        raise CheckpointError(f"{path}: not a checkpoint readable with weights_only=True ({detail})") from exc
    except Exception as exc:  # torch raises RuntimeError, EOFError, KeyError, ... for foreign files
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a dict checkpoint, found {type(obj).__name__}")
    return obj


def _detail(message: str) -> str:
    """The informative line of torch's long weights_only message."""
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
    for line in lines:
        if any(marker in line for marker in (*_UNSAFE_MARKERS, "Unsupported operand")):
            return line
    return lines[0] if lines else "unpickling failed"


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(isinstance(v, Tensor) for v in obj.values())


def source_format(obj: dict[str, Any]) -> str:
    if "model_state" in obj:
        return SourceFormat.OCEC_JOBS if "format_version" in obj else SourceFormat.OCEC
    if "model" in obj:
        return SourceFormat.MODEL_KEY
    return SourceFormat.STATE_DICT


def extract_state_dict(obj: dict[str, Any], *, path: str = "checkpoint") -> dict[str, Tensor]:
    """obj["model_state"], else obj["model"], else obj itself; a "module." prefix is stripped."""
    state = obj.get("model_state", obj.get("model", obj))
    if not _is_state_dict(state):
        raise CheckpointError(
            f"{path}: no model weights found (expected 'model_state', 'model' or a state dict)"
        )
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        name = key[len(_MODULE_PREFIX) :] if key.startswith(_MODULE_PREFIX) else key
        if name in out:
            raise CheckpointError(
                f"{path}: tensor {name!r} appears both with and without the 'module.' prefix"
            )
        out[name] = value
    return out


def model_config_from_checkpoint(obj: dict[str, Any], *, path: str = "checkpoint") -> ModelConfig | None:
    """The ModelConfig a checkpoint was trained with (image_size from ``normalization`` when absent)."""
    raw = obj.get("model_config")
    if not isinstance(raw, dict):
        return None
    data = dict(raw)
    norm = obj.get("normalization")
    if "image_size" not in data and isinstance(norm, dict) and norm.get("image_size"):
        data["image_size"] = tuple(norm["image_size"])
    return ModelConfig.from_dict(data, source=f"{path}: model_config")


@dataclass
class PretrainReport:
    loaded: list[str]
    missing: list[str]  # in the model, not in the file: freshly initialised
    unexpected: list[str]  # in the file, not in the model: ignored
    mismatched: list[tuple[str, list[int], list[int]]]  # (name, file shape, model shape): kept fresh
    source_format: str
    notes: list[str] = field(default_factory=list)  # e.g. different normalisation or image size

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["mismatched"] = [[name, list(a), list(b)] for name, a, b in self.mismatched]
        return data


def _notes(obj: dict[str, Any], model: OCECNet, path: str) -> list[str]:
    notes = []
    cfg = model_config_from_checkpoint(obj, path=path)  # raises on an unsupported architecture
    if cfg is not None and cfg.margin_method != model.margin_method:
        notes.append(
            f"pretrain margin_method {cfg.margin_method} differs from the model's {model.margin_method}"
        )
    norm = obj.get("normalization")
    if isinstance(norm, dict):
        mean, std = norm.get("mean"), norm.get("std")
        if mean is not None and std is not None:
            diff = max(abs(float(a) - b) for a, b in zip(list(mean) + list(std), MEAN + STD, strict=False))
            if diff > 1e-3:
                notes.append(
                    f"pretrain was trained with normalisation mean={mean} std={std}, not the engine's"
                )
        size = norm.get("image_size")
        if size and tuple(size) != tuple(model.config.image_size):
            notes.append(
                f"pretrain image_size {list(size)} differs from the model's {list(model.config.image_size)}"
            )
    return notes


def load_pretrain(model: OCECNet, path: str | Path, *, strict_shapes: bool = True) -> PretrainReport:
    """Copy every same-named, same-shaped tensor from the file into ``model``; report all the rest."""
    path = Path(path)
    obj = read_checkpoint(path)
    state = extract_state_dict(obj, path=str(path))
    notes = _notes(obj, model, str(path))
    target = model.state_dict()
    loaded, missing, mismatched = [], [], []
    for name, tensor in target.items():
        if name not in state:
            missing.append(name)
        elif tuple(state[name].shape) != tuple(tensor.shape):
            mismatched.append((name, list(state[name].shape), list(tensor.shape)))
        else:
            loaded.append(name)
    unexpected = [name for name in state if name not in target]
    if mismatched and strict_shapes:
        raise PretrainMismatchError(str(path), mismatched)
    if not loaded:
        raise CheckpointError(f"{path}: no tensor matches the model (unexpected: {unexpected[:8]}...)")
    with torch.no_grad():
        for name in loaded:
            target[name].copy_(state[name])
    return PretrainReport(loaded, missing, unexpected, mismatched, source_format(obj), notes)

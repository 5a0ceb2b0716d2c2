"""ONNX export: input "input" (normalised float32 NCHW, dynamic batch) -> output "prob_open" [B].

The reference exported P(closed) for margin models under the name ``prob_open`` and a static batch;
here the graph is ``OCECNet.forward`` (softmax(s_val·cos)[:, 1] or sigmoid(logit)) with a dynamic
batch axis. Normalisation is not part of the graph; its statistics, the input size, the label map
and the margin method are stored as ONNX metadata so a deployment can check them.
"""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import onnx
import torch

from ocec_engine.atomic import atomic_path
from ocec_engine.checkpoint import ONNX_THRESHOLD_KEY, THRESHOLD_KEY
from ocec_engine.errors import CheckpointError
from ocec_engine.model import OCECNet, build_model
from ocec_engine.normalize import MEAN, STD
from ocec_engine.weights import extract_state_dict, model_config_from_checkpoint, read_checkpoint

INPUT_NAME = "input"
OUTPUT_NAME = "prob_open"


def _metadata(model: OCECNet) -> dict[str, str]:
    return {
        "ocec.normalization": json.dumps({"mean": list(MEAN), "std": list(STD)}),
        "ocec.image_size": json.dumps(list(model.config.image_size)),
        "ocec.label_map": json.dumps({"0": "closed", "1": "open"}),
        "ocec.output": "P(open) = probability that the eye is open",
        "ocec.model_config": json.dumps(model.config.to_dict()),
    }


def export_onnx(model: OCECNet, out_path: Path, *, opset: int = 17, threshold: float | None = None) -> Path:
    """Write ``model`` (a CPU fp32 eval copy; the original is untouched) to ``out_path`` atomically.

    ``threshold``: the decision threshold on P(open) chosen for the model, as ``ocec_threshold``.
    """
    out_path = Path(out_path)
    export_model = copy.deepcopy(model).to(
        device="cpu", dtype=torch.float32, memory_format=torch.contiguous_format
    )
    export_model.eval()
    h, w = model.config.image_size
    dummy = torch.zeros(1, 3, h, w)
    with atomic_path(out_path) as tmp, warnings.catch_warnings():
        # the TorchScript exporter is deprecated but is the one that works without onnxscript
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            export_model,
            (dummy,),
            str(tmp),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
        proto = onnx.load(str(tmp))
        metadata = _metadata(model)
        if threshold is not None:
            metadata[ONNX_THRESHOLD_KEY] = repr(float(threshold))
        for key, value in metadata.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))
    return out_path


def export_checkpoint(ckpt_path: str | Path, out_path: str | Path, *, opset: int = 17) -> Path:
    """Build the model from a checkpoint's model_config + model_state and export it."""
    ckpt_path = Path(ckpt_path)
    obj = read_checkpoint(ckpt_path)
    cfg = model_config_from_checkpoint(obj, path=str(ckpt_path))
    if cfg is None:
        raise CheckpointError(f"{ckpt_path}: no model_config; cannot tell which model to build")
    model = build_model(cfg)
    try:
        model.load_state_dict(extract_state_dict(obj, path=str(ckpt_path)), strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{ckpt_path}: model_state does not match its model_config: {exc}") from exc
    stored = obj.get(THRESHOLD_KEY)
    threshold = stored.get("value") if isinstance(stored, dict) else None
    return export_onnx(model, Path(out_path), opset=opset, threshold=threshold)

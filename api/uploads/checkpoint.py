"""Is an uploaded file a torch checkpoint that ``torch.load(weights_only=True)`` loads, with weights?

Only the zip container ``torch.save`` has written since torch 1.6 is accepted: one top folder
holding ``data.pkl`` (the object, scanned by ``pickle_scan``), ``byteorder`` and ``data/<key>`` (one
record per storage). Checked here: the pickle is safe; every storage it names exists with exactly
``numel * element size`` bytes; the object is a dict holding model weights the way the engine looks
for them (``model_state``, else ``model``, else the dict itself is a state dict of tensors). Legacy
(non-zip) files, TorchScript archives and anything else are refused. Nothing is imported or run.
The archive itself must be laid out as ``torch.save`` lays it out (``zip_layout``), so that the
entries checked here are the entries torch reads.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Any

from api.uploads.pickle_scan import MalformedPickleError, TensorRef, UnsafePickleError, scan
from api.uploads.rejected import RejectedError
from api.uploads.zip_layout import AmbiguousZipError, check_layout

MAX_PICKLE_BYTES = 64 << 20  # data.pkl of a checkpoint is small: tensors live in data/<key>
MODULE_PREFIX = "module."
STATE_KEYS = ("model_state", "model")  # where the engine looks for the weights (ocec_engine.weights)
PLAIN = (str, int, float, bool, type(None))


class CheckpointRejectedError(RejectedError):
    """Why the file is not an acceptable checkpoint."""


class Rejection(StrEnum):
    NOT_ZIP = "checkpoint_format"
    LAYOUT = "checkpoint_layout"
    UNSAFE = "checkpoint_unsafe"
    MALFORMED = "checkpoint_malformed"
    NO_WEIGHTS = "checkpoint_no_weights"
    AMBIGUOUS = "checkpoint_ambiguous"  # a parser-differential trick (api.uploads.zip_layout)


@dataclass
class CheckpointReport:
    """What the upload's listing shows about a model file."""

    format: str  # ocec-jobs | ocec | model | state_dict (ocec_engine.weights.SourceFormat)
    tensors: int  # entries of the state dict
    elements: int  # values in all its tensors (parameters and buffers)
    keys: list[str]  # top-level keys of the checkpoint
    globals: list[str]  # allowlisted globals the pickle uses
    model_config: dict[str, Any] = field(default_factory=dict)  # plain values only
    epoch: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "tensors": self.tensors,
            "elements": self.elements,
            "keys": self.keys,
            "globals": self.globals,
            "model_config": self.model_config,
            "epoch": self.epoch,
        }


def check_checkpoint(path: Path) -> CheckpointReport:
    """The report of an acceptable checkpoint, or ``CheckpointRejectedError`` saying why not."""
    if not zipfile.is_zipfile(path):
        raise CheckpointRejectedError(
            Rejection.NOT_ZIP,
            "not a torch zip checkpoint (torch.save writes one since torch 1.6; legacy formats are refused)",
        )
    try:
        with path.open("rb") as handle, zipfile.ZipFile(handle) as archive:
            _refuse_torchscript(archive.namelist())
            check_layout(handle, archive)
            return _check_archive(archive)
    except AmbiguousZipError as exc:
        raise CheckpointRejectedError(
            Rejection.AMBIGUOUS,
            f"not laid out as torch.save writes it, so torch could read it differently ({exc})",
        ) from exc
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise CheckpointRejectedError(Rejection.NOT_ZIP, f"unreadable zip archive ({exc})") from exc


def _check_archive(archive: zipfile.ZipFile) -> CheckpointReport:
    infos = {info.filename: info for info in archive.infolist()}
    prefix = _single_prefix(list(infos))
    pickle_info = infos.get(f"{prefix}/data.pkl")
    if pickle_info is None:
        raise CheckpointRejectedError(Rejection.LAYOUT, f"no {prefix}/data.pkl in the archive")
    if pickle_info.file_size > MAX_PICKLE_BYTES:
        raise CheckpointRejectedError(
            Rejection.LAYOUT, f"data.pkl is larger than {MAX_PICKLE_BYTES >> 20} MiB"
        )
    try:
        result = scan(archive.read(pickle_info))
    except UnsafePickleError as exc:
        raise CheckpointRejectedError(
            Rejection.UNSAFE,
            f"refused: loading it would need pickle code execution or a foreign type ({exc})",
        ) from exc
    except MalformedPickleError as exc:
        raise CheckpointRejectedError(
            Rejection.MALFORMED, f"data.pkl is not a valid checkpoint pickle ({exc})"
        ) from exc
    for key, storage in result.storages.items():
        info = infos.get(f"{prefix}/data/{key}")
        expected = storage.numel * storage.itemsize
        if info is None or info.file_size != expected:
            found = "missing" if info is None else f"{info.file_size} bytes"
            raise CheckpointRejectedError(
                Rejection.MALFORMED, f"storage data/{key}: expected {expected} bytes, {found}"
            )
    return _report(result.value, sorted(result.globals))


def _refuse_torchscript(names: list[str]) -> None:
    parts = [PurePosixPath(name).parts for name in names]
    if any(p[1:] == ("constants.pkl",) or p[1:2] == ("code",) for p in parts):
        raise CheckpointRejectedError(
            Rejection.LAYOUT, "a TorchScript archive, not a checkpoint (torch.jit.load runs code)"
        )


def _single_prefix(names: list[str]) -> str:
    tops = {PurePosixPath(name).parts[0] for name in names if PurePosixPath(name).parts}
    if len(tops) != 1 or any(name.startswith("/") or ".." in PurePosixPath(name).parts for name in names):
        raise CheckpointRejectedError(Rejection.LAYOUT, "a torch checkpoint has exactly one top folder")
    return tops.pop()


def _report(value: Any, globals_used: list[str]) -> CheckpointReport:
    if not isinstance(value, Mapping):
        raise CheckpointRejectedError(
            Rejection.NO_WEIGHTS, f"expected a dict checkpoint, found {type(value).__name__}"
        )
    state = next((value[k] for k in STATE_KEYS if k in value), value)
    tensors = _state_dict(state)
    if tensors is None:
        raise CheckpointRejectedError(
            Rejection.NO_WEIGHTS, "no model weights found (expected 'model_state', 'model' or a state dict)"
        )
    config = value.get("model_config")
    epoch = value.get("epoch")
    return CheckpointReport(
        format=_format(value),
        tensors=len(tensors),
        elements=sum(t.numel for t in tensors.values()),
        keys=[str(k) for k in value][:64],
        globals=globals_used,
        model_config={str(k): v for k, v in config.items() if isinstance(v, PLAIN)}
        if isinstance(config, Mapping)
        else {},
        epoch=epoch if isinstance(epoch, int) and not isinstance(epoch, bool) else None,
    )


def _state_dict(state: Any) -> dict[str, TensorRef] | None:
    """The state dict's tensors by name (``module.`` stripped), if ``state`` is one."""
    if not isinstance(state, Mapping) or not state:
        return None
    if not all(isinstance(k, str) and isinstance(v, TensorRef) for k, v in state.items()):
        return None
    return {k.removeprefix(MODULE_PREFIX): v for k, v in state.items()}


def _format(value: Mapping[Any, Any]) -> str:
    if "model_state" in value:
        return "ocec-jobs" if "format_version" in value else "ocec"
    return "model" if "model" in value else "state_dict"

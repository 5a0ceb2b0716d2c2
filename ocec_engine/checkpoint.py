"""Full-state checkpoints: file layout, atomic writes, selection, and the format.

Layout under ``output_dir``::

    last.pt                 after every epoch
    best.pt                 when val F1 beats the best so far (strictly)
    stage{N}_entry.pt       the state at the start of stage N (before its first epoch)
    epochs/epoch_NNNN.pt    after every ``checkpoint_every``-th epoch and the last (``keep_epoch_checkpoints``
                            newest kept; 0 = all)
    interrupt.pt            mid-epoch state on pause / cancel / preemption

Every file is a full-state dict of plain data and tensors (``torch.load(weights_only=True)`` reads
it) and a superset of OCEC's keys, so OCEC tooling can read ``model_state``. Writes go to a temp file
in the same folder, are fsynced, then ``os.replace``d — a crash leaves the old file or the new one.
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import torch

from ocec_engine.atomic import atomic_path
from ocec_engine.errors import CheckpointError
from ocec_engine.hooks import CheckpointKind

FORMAT_VERSION = 1
THRESHOLD_KEY = "threshold"  # {"value", "rule", "target", "split"}: the chosen decision threshold (best.pt)
ONNX_THRESHOLD_KEY = "ocec_threshold"  # the same value in an ONNX export's metadata_props
LABEL_MAP = {0: "closed", 1: "open"}
_EPOCH_RE = re.compile(r"^epoch_(\d{4,})\.pt$")


class Selector(StrEnum):
    LAST = "last"
    BEST = "best"
    INTERRUPT = "interrupt"


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def last(self) -> Path:
        return self.root / "last.pt"

    @property
    def best(self) -> Path:
        return self.root / "best.pt"

    @property
    def interrupt(self) -> Path:
        return self.root / "interrupt.pt"

    @property
    def epochs_dir(self) -> Path:
        return self.root / "epochs"

    def stage_entry(self, stage: int) -> Path:
        return self.root / f"stage{stage}_entry.pt"

    def epoch(self, epoch: int) -> Path:
        return self.epochs_dir / f"epoch_{epoch:04d}.pt"

    def onnx_for(self, checkpoint: Path) -> Path:
        return checkpoint.with_suffix(".onnx")


def serialize(state: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def write_atomic(path: Path, data: bytes) -> int:
    """Write ``data`` to ``path`` atomically (temp file + fsync + os.replace), then fsync the folder."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    _fsync_dir(path.parent)
    return len(data)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (best effort: some filesystems refuse a directory fsync)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load(path: str | Path) -> dict[str, Any]:
    """Read one of our checkpoints (weights_only) and check it is a full training state."""
    from ocec_engine.weights import read_checkpoint

    data = read_checkpoint(path)
    if not isinstance(data, dict) or "format_version" not in data or "stage_state" not in data:
        raise CheckpointError(
            f"{path}: not an ocec_engine training checkpoint (no format_version / stage_state); "
            "use it as --pretrain instead of --resume"
        )
    version = int(data["format_version"])
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: format_version {version} is newer than this engine ({FORMAT_VERSION})"
        )
    return data


def select(output_dir: str | Path, selector: str) -> Path:
    """Resolve ``last | best | interrupt | stage:N | epoch:N`` to an existing file in ``output_dir``.

    ``last`` is the most recent state: ``interrupt.pt`` when it is ahead of ``last.pt``.
    """
    layout = Layout(Path(output_dir))
    kind, _, arg = selector.strip().partition(":")
    kind = kind.lower()
    if kind == Selector.LAST and not arg:
        path = _latest(layout)
    elif kind == Selector.BEST and not arg:
        path = layout.best
    elif kind == Selector.INTERRUPT and not arg:
        path = layout.interrupt
    elif kind == "stage" and arg.isdigit():
        path = layout.stage_entry(int(arg))
    elif kind == "epoch" and arg.isdigit():
        path = layout.epoch(int(arg))
    else:
        raise CheckpointError(f"bad checkpoint selector {selector!r} (last|best|interrupt|stage:N|epoch:N)")
    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint for {selector!r} in {output_dir}")
    return path


def _latest(layout: Layout) -> Path:
    if not layout.interrupt.is_file():
        return layout.last
    if not layout.last.is_file():
        return layout.interrupt
    return layout.interrupt if position(layout.interrupt) >= position(layout.last) else layout.last


def position(path: Path) -> tuple[int, int]:
    """(last completed epoch, batches into the next epoch) of a checkpoint file."""
    data = load(path)
    pos = data.get("position") or {}
    return int(data.get("epoch", 0)), int(pos.get("batch", 0))


def prune_epochs(layout: Layout, keep: int) -> list[Path]:
    """Delete all but the ``keep`` newest epoch files (keep <= 0: keep all)."""
    if keep <= 0 or not layout.epochs_dir.is_dir():
        return []
    files = sorted(p for p in layout.epochs_dir.iterdir() if _EPOCH_RE.match(p.name))
    doomed = files[:-keep]
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed


def kind_path(layout: Layout, kind: CheckpointKind, epoch: int, stage: int) -> Path:
    if kind is CheckpointKind.LAST:
        return layout.last
    if kind is CheckpointKind.BEST:
        return layout.best
    if kind is CheckpointKind.INTERRUPT:
        return layout.interrupt
    if kind is CheckpointKind.EPOCH:
        return layout.epoch(epoch)
    return layout.stage_entry(stage)

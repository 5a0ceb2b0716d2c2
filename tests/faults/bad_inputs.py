"""Broken inputs made from the world's good ones: the bad data and bad runs a user can submit.

- ``corrupt_dataset``: dataset B with one image row replaced by bytes that are not an image;
- ``narrow_pretrain``: a checkpoint of the same architecture with other channel counts (16, not 32);
- ``nan_pretrain``: model A with one backbone tensor full of NaN (a real one: the loss goes NaN at
  the first batch, no fault switch in the engine);
- ``tiny_disk``: a tmpfs mounted on a job's run directory, too small for more than an epoch of
  checkpoints, so a checkpoint write hits ENOSPC for real.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

CORRUPT_ROW = 17


def corrupt_dataset(good: Path, target: Path) -> Path:
    """A copy of the dataset whose parquet row ``CORRUPT_ROW`` holds garbage instead of a PNG."""
    target.mkdir(parents=True, exist_ok=True)
    [source] = list(good.glob("*.parquet"))
    table = pq.read_table(source)
    images = table.column("image_bytes").to_pylist()
    images[CORRUPT_ROW] = b"\x89PNG but not really an image"
    index = table.schema.get_field_index("image_bytes")
    table = table.set_column(index, "image_bytes", pa.array(images, pa.binary()))
    path = target / source.name
    pq.write_table(table, path)
    return path


def narrow_pretrain(path: Path) -> Path:
    """A real OCEC checkpoint of a model with 16 base channels (the jobs build 32)."""
    import torch

    from ocec_engine.model import ModelConfig, build_model

    config = ModelConfig(base_channels=16)
    torch.save({"model_state": build_model(config).state_dict()}, path)
    return path


def nan_pretrain(good: Path, path: Path, tensor: str = "features.0.depthwise.0.weight") -> Path:
    """Model A with ``tensor`` full of NaN."""
    import torch

    checkpoint = torch.load(good, map_location="cpu", weights_only=True)
    state = checkpoint["model_state"]
    state[tensor] = torch.full_like(state[tensor], float("nan"))
    torch.save(checkpoint, path)
    return path


def can_mount() -> str | None:
    """Why a tmpfs cannot be mounted here, or None."""
    if shutil.which("mount") is None:
        return "no mount command"
    probe = Path(subprocess.run(["mktemp", "-d"], capture_output=True, text=True, check=True).stdout.strip())
    try:
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)], capture_output=True
        )
        if result.returncode != 0:
            return f"mount -t tmpfs failed: {result.stderr.decode(errors='replace').strip()}"
        subprocess.run(["umount", str(probe)], check=True)
        return None
    finally:
        probe.rmdir()


@contextlib.contextmanager
def tiny_disk(folder: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on ``folder`` for the block (lazily unmounted after)."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def grow_disk(folder: Path, size: str) -> None:
    """Free space the way an operator would: here by growing the tmpfs in place (files stay)."""
    subprocess.run(["mount", "-o", f"remount,size={size}", str(folder)], check=True)

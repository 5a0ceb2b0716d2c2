"""load_dataset: detect the layout, fingerprint the inputs, decode once (or reuse the cache)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from ocec_engine.data.cache import load_cached, save_cached
from ocec_engine.data.decode import default_workers
from ocec_engine.data.fingerprint import fingerprint
from ocec_engine.data.folders import (
    check_listing,
    is_folder_dataset,
    list_folders,
    load_folders,
    predefined_test,
)
from ocec_engine.data.parquet import find_parquet_files, load_parquet
from ocec_engine.data.split import LABEL_NAMES, DataSplit, Split
from ocec_engine.errors import DataError


def _check_size(image_size: tuple[int, int]) -> tuple[int, int]:
    size = (int(image_size[0]), int(image_size[1]))
    if min(size) < 1:
        raise DataError(f"image_size must be positive, got {image_size}")
    return size


def _counts(y: torch.Tensor) -> dict[str, int]:
    return {name: int((y == lab).sum()) for lab, name in LABEL_NAMES.items()}


def _describe(fmt: str, root: Path, tensors: dict[Split, tuple[torch.Tensor, torch.Tensor]]) -> str:
    tr, va = len(tensors[Split.TRAIN][1]), len(tensors[Split.VAL][1])
    return f"{fmt} {root} ({tr} train, {va} val)"


def find_layout(root: Path) -> list[Path]:
    """The parquet files of ``root``, or [] for an image-folder dataset; DataError for neither."""
    if not root.exists():
        raise DataError(f"{root}: dataset root does not exist")
    parquet = find_parquet_files(root) if root.is_dir() or root.suffix == ".parquet" else []
    if parquet or (root.is_dir() and is_folder_dataset(root)):
        return parquet
    raise DataError(
        f"{root}: no dataset found (expected a .parquet file, a folder with *.parquet, "
        "or image folders {train,val}/{open,closed}/ or {open,closed}/)"
    )


def load_dataset(
    root: str | Path,
    image_size: tuple[int, int] = (32, 64),
    val_ratio: float = 0.2,
    seed: int = 42,
    cache_dir: Path | None = None,
    workers: int | None = None,
    test_fraction: float = 0.0,
) -> DataSplit:
    """Load an OCEC parquet dataset or an image-folder dataset as uint8 tensors (see docs/data.md).

    Only train and val are decoded: the test split (a ``test`` split or folder, or with
    ``test_fraction`` > 0 a seeded hold-out of train and val) is never seen by training; its size
    and origin are in ``meta["test"]``.
    """
    root = Path(root).expanduser()
    size = _check_size(image_size)
    parquet = find_layout(root)
    if parquet:
        fmt = "parquet"
        inputs = [(p.name, p) for p in parquet]
        settings: dict[str, Any] = {"format": fmt, "image_size": list(size)}
        if test_fraction > 0:
            settings |= {"test_fraction": test_fraction, "seed": seed}
    else:
        fmt = "folders"
        listing, predefined = list_folders(root, val_ratio, seed, test_fraction)
        check_listing(root, listing)
        inputs = [
            (f"{split.value}/{lab}/{p.relative_to(root).as_posix()}", p)
            for split in (Split.TRAIN, Split.VAL)
            for p, lab in listing[split]
        ]
        settings = {"format": fmt, "image_size": list(size), "predefined_split": predefined}
        if not predefined:
            settings |= {"val_ratio": val_ratio, "seed": seed}
        if test_fraction > 0:
            settings |= {"test_fraction": test_fraction, "seed": seed}
    key = fingerprint(inputs, settings)
    if cache_dir is not None:
        cached = load_cached(Path(cache_dir), key)
        if cached is not None:
            cached.meta["cache"] = "hit"
            return cached
    started = time.perf_counter()
    if fmt == "parquet":
        tensors, extra = load_parquet(parquet, size, workers, test_fraction, seed)
        extra["files"] = [str(p) for p in parquet]
    else:
        tensors, extra = load_folders(listing, size, workers), {"split_settings": settings}
        origin = "split" if predefined_test(root) else "held_out" if test_fraction > 0 else "none"
        extra["test"] = {"samples": len(listing[Split.TEST]), "origin": origin}
    seconds = time.perf_counter() - started
    meta = {
        "format": fmt,
        "root": str(root),
        "image_size": list(size),
        "counts": {s.value: _counts(y) for s, (_, y) in tensors.items()},
        "decode_seconds": round(seconds, 3),
        "decode_workers": workers if workers is not None else default_workers(),
        **extra,
    }
    split = DataSplit(
        train_x=tensors[Split.TRAIN][0].contiguous(),
        train_y=tensors[Split.TRAIN][1],
        val_x=tensors[Split.VAL][0].contiguous(),
        val_y=tensors[Split.VAL][1],
        source=_describe(fmt, root, tensors),
        fingerprint=key,
        meta=meta,
    )
    if cache_dir is not None:
        save_cached(Path(cache_dir), split)
        split.meta["cache"] = "miss"
    else:
        split.meta["cache"] = "off"
    return split

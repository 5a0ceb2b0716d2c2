"""Decoded-tensor cache keyed by the dataset fingerprint (atomic writes, weights_only reads)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ocec_engine.atomic import atomic_path
from ocec_engine.data.split import DataSplit

CACHE_FORMAT = 1


def cache_path(cache_dir: Path, fingerprint: str) -> Path:
    return cache_dir / f"ocec-data-{fingerprint}.pt"


def load_cached(cache_dir: Path, fingerprint: str) -> DataSplit | None:
    """The cached split, or None when absent, unreadable or from another format (then rebuilt)."""
    path = cache_path(cache_dir, fingerprint)
    if not path.is_file():
        return None
    try:
        obj: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
        if obj.get("format") != CACHE_FORMAT or obj.get("fingerprint") != fingerprint:
            return None
        return DataSplit(
            train_x=obj["train_x"],
            train_y=obj["train_y"],
            val_x=obj["val_x"],
            val_y=obj["val_y"],
            source=obj["source"],
            fingerprint=fingerprint,
            meta=obj["meta"],
        )
    except Exception:  # a torn or foreign file is not an error: decode again and overwrite it
        return None


def save_cached(cache_dir: Path, split: DataSplit) -> Path:
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_path(cache_dir, split.fingerprint)
    payload = {
        "format": CACHE_FORMAT,
        "fingerprint": split.fingerprint,
        "train_x": split.train_x,
        "train_y": split.train_y,
        "val_x": split.val_x,
        "val_y": split.val_y,
        "source": split.source,
        "meta": split.meta,
    }
    with atomic_path(path) as tmp, tmp.open("wb") as fh:
        torch.save(payload, fh)  # through a Python file, so a full disk surfaces as OSError(ENOSPC)
    return path

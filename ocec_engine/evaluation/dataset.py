"""The samples an evaluation scores: one split of a dataset, decoded, with each sample's source.

Splits: ``val``, ``test`` or ``all`` (train + val + test). Layouts and split rules are the training
loader's (ocec_engine/data), so a job's test split here is exactly the one its training never saw:
the same ``val_ratio``, ``seed`` and ``test_fraction`` give the same samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray

from ocec_engine.data.folders import list_folders, list_splits, load_folders
from ocec_engine.data.loader import find_layout
from ocec_engine.data.parquet import decode_splits, scan_files
from ocec_engine.data.split import Split
from ocec_engine.errors import DataError


class EvalSplit(StrEnum):
    VAL = "val"
    TEST = "test"
    ALL = "all"


_SPLITS = {
    EvalSplit.VAL: (Split.VAL,),
    EvalSplit.TEST: (Split.TEST,),
    EvalSplit.ALL: (Split.TRAIN, Split.VAL, Split.TEST),
}


@dataclass
class EvalSet:
    x: torch.Tensor  # uint8 [N, 3, H, W]
    labels: NDArray[np.bool_]  # True = open
    sources: list[str]  # file path relative to the root, or "<parquet file>#<row>"
    root: Path
    split: EvalSplit

    @property
    def open(self) -> int:
        return int(self.labels.sum())

    @property
    def closed(self) -> int:
        return int(len(self.labels) - self.labels.sum())


def load_eval_set(
    root: str | Path,
    split: str,
    image_size: tuple[int, int],
    *,
    val_ratio: float = 0.2,
    seed: int = 42,
    test_fraction: float = 0.0,
    workers: int | None = None,
) -> EvalSet:
    root = Path(root).expanduser()
    which = EvalSplit(split)
    parquet = find_layout(root)
    if parquet:
        x, y, sources = _parquet(parquet, _SPLITS[which], image_size, test_fraction, seed, workers)
    else:
        x, y, sources = _folders(root, _SPLITS[which], image_size, val_ratio, seed, test_fraction, workers)
    if not len(sources):
        hint = (
            " (give the dataset a test split, or ask for a test_fraction)" if which is EvalSplit.TEST else ""
        )
        raise DataError(f"{root}: no samples in split {which.value!r}{hint}")
    return EvalSet(x, y.numpy().astype(bool), sources, root, which)


Loaded = tuple[torch.Tensor, torch.Tensor, list[str]]


def _joined(
    parts: list[tuple[torch.Tensor, torch.Tensor]], sources: list[str], size: tuple[int, int]
) -> Loaded:
    if not parts:
        return torch.empty((0, 3, *size), dtype=torch.uint8), torch.empty(0, dtype=torch.int64), sources
    return torch.cat([x for x, _ in parts]), torch.cat([y for _, y in parts]), sources


def _parquet(
    files: list[Path],
    splits: tuple[Split, ...],
    size: tuple[int, int],
    test_fraction: float,
    seed: int,
    workers: int | None,
) -> Loaded:
    scans, _ = scan_files(files, test_fraction, seed)
    decoded = decode_splits(scans, splits, size, workers)
    sources = [scan.source(row) for split in splits for scan in scans for row in scan.rows[split]]
    return _joined([decoded[s] for s in splits], sources, size)


def _folders(
    root: Path,
    splits: tuple[Split, ...],
    size: tuple[int, int],
    val_ratio: float,
    seed: int,
    test_fraction: float,
    workers: int | None,
) -> Loaded:
    if test_fraction > 0:
        listing, _ = list_folders(root, val_ratio, seed, test_fraction)
    else:
        listing, _ = list_splits(root, val_ratio, seed)
    present = tuple(s for s in splits if listing.get(s))
    decoded = load_folders(listing, size, workers, present)
    sources = [p.relative_to(root).as_posix() for s in present for p, _ in listing[s]]
    return _joined([decoded[s] for s in present], sources, size)

"""The decoded dataset handed to the training loop."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any

from torch import Tensor


class Label(IntEnum):
    CLOSED = 0
    OPEN = 1


LABEL_NAMES: dict[int, str] = {Label.CLOSED: "closed", Label.OPEN: "open"}


class Split(StrEnum):
    TRAIN = "train"
    VAL = "val"
    TEST = "test"


# OCEC's split aliases (case-insensitive); any other value drops the row (counted in meta).
SPLIT_ALIASES: dict[str, Split] = {
    "train": Split.TRAIN,
    "training": Split.TRAIN,
    "val": Split.VAL,
    "valid": Split.VAL,
    "validation": Split.VAL,
    "dev": Split.VAL,
    "test": Split.TEST,
    "testing": Split.TEST,
}


@dataclass
class DataSplit:
    train_x: Tensor  # uint8 [N, 3, H, W], contiguous
    train_y: Tensor  # int64 [N], 0 = closed, 1 = open
    val_x: Tensor
    val_y: Tensor
    source: str  # human description
    fingerprint: str  # content hash of the inputs + image_size + split settings
    meta: dict[str, Any] = field(default_factory=dict)  # counts, format, files, skipped rows, cache

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.train_x.shape[2]), int(self.train_x.shape[3])

"""The decoded dataset handed to the training loop."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any, TypeVar

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


T = TypeVar("T")


def seeded_key(seed: int, name: str) -> bytes:
    """A stable pseudo-random sort key: orders samples by (seed, name), not by listing order."""
    return hashlib.blake2b(f"{seed}:{name}".encode(), digest_size=8).digest()


def hold_out(
    items: Sequence[T],
    name: Callable[[T], str],
    label: Callable[[T], int],
    fraction: float,
    seed: int,
    salt: str = "test:",
) -> tuple[list[T], list[T]]:
    """(kept, held): per class, the first round(n * fraction) items in seeded-key order are held out.

    A class of more than one item keeps at least one; the kept items stay in their input order.
    Adding items moves only a few existing ones (the key depends on the item's name alone). ``salt``
    keeps the test hold-out independent of the val split ("" is the val split's historical key).
    """
    held_ids: set[int] = set()
    for lab in (Label.CLOSED, Label.OPEN):
        group = sorted(
            (i for i, item in enumerate(items) if label(item) == lab),
            key=lambda i: seeded_key(seed, salt + name(items[i])),
        )
        n_held = round(len(group) * fraction)
        if len(group) > 1 and fraction > 0:
            n_held = min(max(n_held, 1), len(group) - 1)
        held_ids.update(group[:n_held])
    kept = [item for i, item in enumerate(items) if i not in held_ids]
    held = [item for i, item in enumerate(items) if i in held_ids]
    return kept, held


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

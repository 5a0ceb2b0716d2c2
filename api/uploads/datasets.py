"""What an OCEC dataset upload must satisfy, shared by the parquet and the zip checks.

The rules are the engine's (``ocec_engine/data``; the API cannot import it): labels 0 = closed,
1 = open; split names and their aliases; image file extensions; and "trainable" means the training
and validation splits both hold both classes — given as splits, or (folders without splits) at
least two images per class so the engine's seeded stratified split can put one of each in val.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from api.uploads.rejected import RejectedError

LABELS = {0: "closed", 1: "open"}
LABEL_OF_NAME = {name: label for label, name in LABELS.items()}
CLASS_DIRS = frozenset(LABELS.values())


class Split(StrEnum):
    TRAIN = "train"
    VAL = "val"
    TEST = "test"


SPLIT_ALIASES: dict[str, Split] = {
    "train": Split.TRAIN, "training": Split.TRAIN, "val": Split.VAL, "valid": Split.VAL,
    "validation": Split.VAL, "dev": Split.VAL, "test": Split.TEST, "testing": Split.TEST,
}  # fmt: skip
# Folder names the engine recognises as splits (ocec_engine/data/folders.py).
SPLIT_DIRS: dict[str, Split] = {
    "train": Split.TRAIN, "training": Split.TRAIN, "val": Split.VAL, "valid": Split.VAL,
    "validation": Split.VAL, "dev": Split.VAL,
}  # fmt: skip
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})
MIN_PER_CLASS_UNSPLIT = 2


class DatasetRejectedError(RejectedError):
    """Why the upload is not a usable dataset."""


class Rejection(StrEnum):
    FORMAT = "dataset_format"
    COLUMNS = "dataset_columns"
    LABELS = "dataset_labels"
    CLASSES = "dataset_classes"
    IMAGE = "dataset_image"
    UNSAFE = "dataset_unsafe_archive"
    LIMIT = "dataset_limit"


@dataclass(frozen=True)
class DatasetLimits:
    max_files: int  # images (rows or archive entries)
    max_extracted_bytes: int  # a zip's content once extracted
    max_image_pixels: int  # width x height of one image (decompression bombs)


@dataclass
class DatasetReport:
    """What the upload's listing shows about a dataset."""

    format: str  # parquet | folders
    counts: dict[str, dict[str, int]]  # split (or "all" for unsplit folders) -> class -> images
    images: int
    ignored: dict[str, int] = field(default_factory=dict)  # rows / entries left out, by why
    extracted_bytes: int = 0
    layout: str = ""  # folders: "{open,closed}" or "{train,val}/{open,closed}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "counts": self.counts,
            "images": self.images,
            "ignored": self.ignored,
            "extracted_bytes": self.extracted_bytes,
            "layout": self.layout,
        }


def check_image(source: bytes | Path, where: str, max_pixels: int) -> None:
    """Decode one image fully the way the engine does (Pillow, RGB); refuse huge ones before decoding."""
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as img:
            if img.width * img.height > max_pixels:
                raise DatasetRejectedError(
                    Rejection.LIMIT,
                    f"{where}: {img.width}x{img.height} pixels is over the limit of {max_pixels}",
                )
            img.convert("RGB").load()
    except DatasetRejectedError:
        raise
    except Image.DecompressionBombError as exc:  # Pillow's own cap (~179 MP) fires in open()
        raise DatasetRejectedError(Rejection.LIMIT, f"{where}: {exc}") from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DatasetRejectedError(
            Rejection.IMAGE, f"{where}: cannot decode image ({type(exc).__name__}: {exc})"
        ) from exc


def check_trainable(counts: dict[str, Counter[int]], where: str) -> None:
    """Train and val each need both classes (by split); unsplit folders two images of each class."""
    if set(counts) == {"all"}:
        for label, name in LABELS.items():
            if counts["all"][label] < MIN_PER_CLASS_UNSPLIT:
                raise DatasetRejectedError(
                    Rejection.CLASSES,
                    f"{where}: class {name!r} has {counts['all'][label]} image(s); at least "
                    f"{MIN_PER_CLASS_UNSPLIT} per class are needed to split train/val",
                )
        return
    for split in (Split.TRAIN, Split.VAL):
        present = counts.get(split.value, Counter())
        if not sum(present.values()):
            raise DatasetRejectedError(Rejection.CLASSES, f"{where}: no rows in split {split.value!r}")
        missing = [name for label, name in LABELS.items() if not present[label]]
        if missing:
            raise DatasetRejectedError(
                Rejection.CLASSES, f"{where}: split {split.value!r} has no {' or '.join(missing)} images"
            )


def named_counts(counts: dict[str, Counter[int]]) -> dict[str, dict[str, int]]:
    return {split: {LABELS[label]: counts[split][label] for label in LABELS} for split in counts}

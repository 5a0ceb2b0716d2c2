"""Image-folder datasets: {train,val[,test]}/{open,closed}/* or {open,closed}/* with a seeded split."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from ocec_engine.data.decode import decode_all
from ocec_engine.data.split import LABEL_NAMES, Split, hold_out
from ocec_engine.errors import DataError

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})
_SPLIT_DIRS = {
    Split.TRAIN: ("train", "training"),
    Split.VAL: ("val", "valid", "validation", "dev"),
    Split.TEST: ("test", "testing"),
}

Listing = dict[Split, list[tuple[Path, int]]]


def _images(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )  # fmt: skip


def _class_dirs(folder: Path) -> dict[int, Path]:
    return {lab: folder / name for lab, name in LABEL_NAMES.items() if (folder / name).is_dir()}


def _split_dir(root: Path, split: Split) -> Path | None:
    return next((root / n for n in _SPLIT_DIRS[split] if (root / n).is_dir()), None)


def is_folder_dataset(root: Path) -> bool:
    return bool(_class_dirs(root)) or any(_split_dir(root, s) for s in Split)


def predefined_test(root: Path) -> bool:
    return _split_dir(root, Split.TEST) is not None


def _labelled(folder: Path) -> list[tuple[Path, int]]:
    dirs = _class_dirs(folder)
    if not dirs:
        raise DataError(f"{folder}: expected class folders 'open' and 'closed'")
    return [(p, lab) for lab, d in sorted(dirs.items()) for p in _images(d)]


def _rel(root: Path) -> Callable[[tuple[Path, int]], str]:
    return lambda item: item[0].relative_to(root).as_posix()


def _label(item: tuple[Path, int]) -> int:
    return item[1]


def stratified_split(items: list[tuple[Path, int]], root: Path, val_ratio: float, seed: int) -> Listing:
    """Per class, order files by a seeded hash of their relative path; the first round(n·ratio) go to val.

    The order does not depend on listing order, and adding files moves only a few existing ones.
    """
    train, val = hold_out(items, _rel(root), _label, val_ratio, seed, salt="")
    out: Listing = {Split.TRAIN: train, Split.VAL: val}
    for split in out:
        out[split].sort(key=_rel(root))
    return out


def list_splits(root: Path, val_ratio: float, seed: int) -> tuple[Listing, bool]:
    """Whichever split folders exist (train, val, test), or the seeded split of {open,closed}/.

    Returns the listing and whether train/val came from folders. Lenient: evaluation reads a
    folder with only ``test/`` or only ``val/``; training checks for both train and val.
    """
    dirs = {split: _split_dir(root, split) for split in Split}
    listing: Listing = {split: _labelled(d) for split, d in dirs.items() if d is not None}
    if dirs[Split.TRAIN] or dirs[Split.VAL]:
        return listing, True
    if not _class_dirs(root):
        return listing, True  # only a test/ folder
    if not 0.0 < val_ratio < 1.0:
        raise DataError(f"{root}: val_ratio must be in (0, 1) to split a folder dataset, got {val_ratio}")
    return {**stratified_split(_labelled(root), root, val_ratio, seed), **listing}, False


def list_folders(root: Path, val_ratio: float, seed: int, test_fraction: float = 0.0) -> tuple[Listing, bool]:
    """Train, val and test items (test may be empty), and whether train/val were predefined by folders.

    Without a ``test/`` folder, ``test_fraction`` > 0 holds out that seeded share of each class of
    train and of val as the test split.
    """
    listing, predefined = list_splits(root, val_ratio, seed)
    train, val = listing.get(Split.TRAIN), listing.get(Split.VAL)
    if train is None and val is None:
        raise DataError(f"{root}: no train and val folders (only a test folder)")
    if train is None or val is None:
        have, lack = ("train", "val") if train is not None else ("val", "train")
        raise DataError(f"{root}: has a {have} folder but no matching {lack} folder")
    if Split.TEST not in listing:
        listing[Split.TEST] = []
        if test_fraction > 0:
            for split in (Split.TRAIN, Split.VAL):
                listing[split], held = hold_out(listing[split], _rel(root), _label, test_fraction, seed)
                listing[Split.TEST] += held
            listing[Split.TEST].sort(key=_rel(root))
    return listing, predefined


def check_listing(root: Path, listing: Listing) -> None:
    """Training needs both classes in train and in val (the test split is only evaluated)."""
    for split in (Split.TRAIN, Split.VAL):
        items = listing[split]
        if not items:
            raise DataError(f"{root}: no images in split {split.value!r}")
        present = {lab for _, lab in items}
        if len(present) < 2:
            only = LABEL_NAMES[present.pop()]
            raise DataError(f"{root}: split {split.value!r} has only class {only!r} ({len(items)} images)")


def load_folders(
    listing: Listing,
    size: tuple[int, int],
    workers: int | None,
    splits: tuple[Split, ...] = (Split.TRAIN, Split.VAL),
) -> dict[Split, tuple[torch.Tensor, torch.Tensor]]:
    out = {}
    for split in splits:
        items = listing[split]
        paths = [p for p, _ in items]
        x = decode_all(paths, size, lambda i, paths=paths: str(paths[i]), workers)
        out[split] = (x, torch.tensor([lab for _, lab in items], dtype=torch.int64))
    return out

"""Image-folder datasets: {train,val}/{open,closed}/* or {open,closed}/* with a seeded stratified split."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from ocec_engine.data.decode import decode_all
from ocec_engine.data.split import LABEL_NAMES, Label, Split
from ocec_engine.errors import DataError

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})
_SPLIT_DIRS = {Split.TRAIN: ("train", "training"), Split.VAL: ("val", "valid", "validation", "dev")}

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
    return bool(_class_dirs(root)) or any(_split_dir(root, s) for s in (Split.TRAIN, Split.VAL))


def _labelled(folder: Path) -> list[tuple[Path, int]]:
    dirs = _class_dirs(folder)
    if not dirs:
        raise DataError(f"{folder}: expected class folders 'open' and 'closed'")
    return [(p, lab) for lab, d in sorted(dirs.items()) for p in _images(d)]


def _split_key(seed: int, rel: str) -> bytes:
    return hashlib.blake2b(f"{seed}:{rel}".encode(), digest_size=8).digest()


def stratified_split(items: list[tuple[Path, int]], root: Path, val_ratio: float, seed: int) -> Listing:
    """Per class, order files by a seeded hash of their relative path; the first round(n·ratio) go to val.

    The order does not depend on listing order, and adding files moves only a few existing ones.
    """
    out: Listing = {Split.TRAIN: [], Split.VAL: []}
    for lab in (Label.CLOSED, Label.OPEN):
        group = sorted(
            (p for p, y in items if y == lab), key=lambda p: _split_key(seed, p.relative_to(root).as_posix())
        )
        n_val = round(len(group) * val_ratio)
        if len(group) > 1 and 0 < val_ratio < 1:
            n_val = min(max(n_val, 1), len(group) - 1)
        out[Split.VAL] += [(p, int(lab)) for p in group[:n_val]]
        out[Split.TRAIN] += [(p, int(lab)) for p in group[n_val:]]
    for split in out:
        out[split].sort(key=lambda item: item[0].relative_to(root).as_posix())
    return out


def list_folders(root: Path, val_ratio: float, seed: int) -> tuple[Listing, bool]:
    """The (path, label) items per split, and whether the split was predefined by folders."""
    train_dir, val_dir = _split_dir(root, Split.TRAIN), _split_dir(root, Split.VAL)
    if train_dir or val_dir:
        if not (train_dir and val_dir):
            raise DataError(f"{root}: has a {'train' if train_dir else 'val'} folder but no matching "
                            f"{'val' if train_dir else 'train'} folder")  # fmt: skip
        return {Split.TRAIN: _labelled(train_dir), Split.VAL: _labelled(val_dir)}, True
    if not 0.0 < val_ratio < 1.0:
        raise DataError(f"{root}: val_ratio must be in (0, 1) to split a folder dataset, got {val_ratio}")
    return stratified_split(_labelled(root), root, val_ratio, seed), False


def check_listing(root: Path, listing: Listing) -> None:
    for split, items in listing.items():
        if not items:
            raise DataError(f"{root}: no images in split {split.value!r}")
        present = {lab for _, lab in items}
        if len(present) < 2:
            only = LABEL_NAMES[present.pop()]
            raise DataError(f"{root}: split {split.value!r} has only class {only!r} ({len(items)} images)")


def load_folders(
    listing: Listing, size: tuple[int, int], workers: int | None
) -> dict[Split, tuple[torch.Tensor, torch.Tensor]]:
    out = {}
    for split, items in listing.items():
        paths = [p for p, _ in items]
        x = decode_all(paths, size, lambda i, paths=paths: str(paths[i]), workers)
        out[split] = (x, torch.tensor([lab for _, lab in items], dtype=torch.int64))
    return out

"""Image-folder datasets written from a parquet fixture (for the folder-layout tests)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq


def explode(parquet: Path, root: Path, *, with_splits: bool = True, test_every: int = 0) -> Path:
    """The parquet's images as {split}/{label}/NNN.png (or {label}/NNN.png without splits); with
    ``test_every``, every ``test_every``-th image goes to test/ instead."""
    table = pq.read_table(parquet).to_pydict()
    for i, (split, label, data) in enumerate(
        zip(table["split"], table["label"], table["image_bytes"], strict=True)
    ):
        split = "test" if test_every and i % test_every == 0 else split
        folder = root / split / label if with_splits else root / label
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i:03d}.png").write_bytes(data)
    return root

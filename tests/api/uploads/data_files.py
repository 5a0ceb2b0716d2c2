"""Small dataset files for the upload tests: PNG eye crops, OCEC parquet files, zips of folders."""

from __future__ import annotations

import io
import stat
import zipfile
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

REFERENCE_PARQUET = Path("/work/shared/fixtures/ocec_reference/dataset.parquet")


def png(shade: int = 128, size: tuple[int, int] = (48, 24)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (shade, shade // 2, 255 - shade)).save(buffer, format="PNG")
    return buffer.getvalue()


def parquet(path: Path, rows: Iterable[tuple[str, int | None, bytes | None]], **extra: list[object]) -> Path:
    """rows: (split, class_id, image bytes)."""
    splits, labels, images = zip(*rows, strict=True)
    columns = {"split": list(splits), "class_id": list(labels), "image_bytes": list(images), **extra}
    pq.write_table(pa.table(columns), path)
    return path


def balanced_rows(per_split: int = 4) -> list[tuple[str, int | None, bytes | None]]:
    return [(split, i % 2, png(40 + 10 * i)) for split in ("train", "val") for i in range(per_split)]


def zip_of(path: Path, entries: dict[str, bytes], *, symlinks: Iterable[str] = ()) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        for name in symlinks:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return path


def folder_entries(prefix: str = "", per_class: int = 3, splits: Iterable[str] = ("",)) -> dict[str, bytes]:
    entries = {}
    for split in splits:
        for label in ("open", "closed"):
            for i in range(per_class):
                parts = [p for p in (prefix, split, label, f"{label}_{i}.png") if p]
                entries["/".join(parts)] = png(30 * i + (0 if label == "open" else 100))
    return entries

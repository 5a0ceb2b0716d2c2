"""OCEC parquet datasets: split + image_bytes + class_id or label, one or more files."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import torch

from ocec_engine.data.decode import decode_all
from ocec_engine.data.split import LABEL_NAMES, SPLIT_ALIASES, Label, Split, hold_out
from ocec_engine.errors import DataError

_BATCH_ROWS = 4096
_LABEL_TEXT = {name: label for label, name in LABEL_NAMES.items()}


def find_parquet_files(root: Path) -> list[Path]:
    """OCEC's rule: a file; or dataset_*.parquet (sorted), else dataset.parquet, else every *.parquet."""
    if root.is_file():
        return [root]
    shards = sorted(root.glob("dataset_*.parquet"))
    if shards:
        return shards
    if (root / "dataset.parquet").is_file():
        return [root / "dataset.parquet"]
    return sorted(root.glob("*.parquet"))


def _per_split() -> dict[Split, list[int]]:
    return {split: [] for split in Split}


@dataclass
class FileRows:
    """The row numbers and labels of one file, per split (test rows included)."""

    path: Path
    rows: dict[Split, list[int]] = field(default_factory=_per_split)
    labels: dict[Split, list[int]] = field(default_factory=_per_split)

    def source(self, row: int) -> str:
        return f"{self.path.name}#{row}"


def _open(path: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{path}: not a readable parquet file ({exc})") from exc


def _label_of(path: Path, row: int, class_id: Any, text: Any) -> int:
    if class_id is not None:
        try:
            value = int(class_id)
        except (TypeError, ValueError):
            value = -1
        if value not in (Label.CLOSED, Label.OPEN) or value != class_id:
            raise DataError(f"{path} row {row}: class_id {class_id!r} is not 0 (closed) or 1 (open)")
        return value
    if text is None:
        raise DataError(f"{path} row {row}: neither class_id nor label is set")
    label = _LABEL_TEXT.get(str(text).strip().lower())
    if label is None:
        raise DataError(f"{path} row {row}: unknown label {text!r} (expected 'open' or 'closed')")
    return label


def _scan(path: Path, skipped: Counter[str]) -> FileRows:
    pf = _open(path)
    names = set(pf.schema_arrow.names)
    for required in ("split", "image_bytes"):
        if required not in names:
            raise DataError(f"{path}: missing required column {required!r} (columns: {sorted(names)})")
    if "class_id" not in names and "label" not in names:
        raise DataError(f"{path}: needs a 'class_id' or a 'label' column (columns: {sorted(names)})")
    cols = [c for c in ("split", "class_id", "label") if c in names]
    table = pf.read(columns=cols).to_pydict()
    n = len(table["split"])
    class_ids = table.get("class_id", [None] * n)
    texts = table.get("label", [None] * n)
    out = FileRows(path)
    for row, raw_split in enumerate(table["split"]):
        split = SPLIT_ALIASES.get(str(raw_split).strip().lower()) if raw_split is not None else None
        if split is None:
            skipped[f"split={raw_split!r}"] += 1
            continue
        out.rows[split].append(row)
        out.labels[split].append(_label_of(path, row, class_ids[row], texts[row]))
    return out


def _decode_file(
    scan: FileRows, size: tuple[int, int], workers: int | None, splits: tuple[Split, ...]
) -> dict[Split, torch.Tensor]:
    """Decode the rows of ``splits`` of one file, streaming image_bytes in row batches."""
    where = {row: split for split in splits for row in scan.rows[split]}
    parts: dict[Split, list[torch.Tensor]] = {split: [] for split in splits}
    offset = 0
    for batch in _open(scan.path).iter_batches(batch_size=_BATCH_ROWS, columns=["image_bytes"]):
        data = batch.column(0).to_pylist()
        for split in splits:
            rows = [r for r in range(offset, offset + len(data)) if where.get(r) is split]
            if rows:
                images = decode_all(
                    [data[r - offset] for r in rows],
                    size,
                    lambda i, rows=rows: f"{scan.path} row {rows[i]}",
                    workers,
                )
                parts[split].append(images)
        offset += len(data)
    empty = torch.empty((0, 3, *size), dtype=torch.uint8)
    return {s: torch.cat(p) if p else empty for s, p in parts.items()}


def scan_files(
    files: list[Path], test_fraction: float = 0.0, seed: int = 42
) -> tuple[list[FileRows], dict[str, Any]]:
    """The rows of every file per split, and what was skipped and where the test split came from.

    Without ``test`` rows, ``test_fraction`` > 0 holds out that seeded share of each class of train
    and of val (keyed by ``<file name>#<row>``) as the test split.
    """
    skipped: Counter[str] = Counter()
    scans = [_scan(path, skipped) for path in files]
    has_test = any(scan.rows[Split.TEST] for scan in scans)
    if not has_test and test_fraction > 0:
        for split in (Split.TRAIN, Split.VAL):
            _hold_out_test(scans, split, test_fraction, seed)
    origin = "split" if has_test else "held_out" if test_fraction > 0 else "none"
    test = sum(len(scan.rows[Split.TEST]) for scan in scans)
    return scans, {"skipped_rows": dict(skipped), "test": {"samples": test, "origin": origin}}


def _hold_out_test(scans: list[FileRows], split: Split, fraction: float, seed: int) -> None:
    items = [
        (i, row, lab)
        for i, scan in enumerate(scans)
        for row, lab in zip(scan.rows[split], scan.labels[split], strict=True)
    ]
    _, held = hold_out(items, lambda it: scans[it[0]].source(it[1]), lambda it: it[2], fraction, seed)
    moved = {(i, row) for i, row, _ in held}
    for i, scan in enumerate(scans):
        pairs = list(zip(scan.rows[split], scan.labels[split], strict=True))
        test = sorted(
            [
                *zip(scan.rows[Split.TEST], scan.labels[Split.TEST], strict=True),
                *((r, y) for r, y in pairs if (i, r) in moved),
            ]
        )
        kept = [(r, y) for r, y in pairs if (i, r) not in moved]
        scan.rows[split], scan.labels[split] = [r for r, _ in kept], [y for _, y in kept]
        scan.rows[Split.TEST], scan.labels[Split.TEST] = [r for r, _ in test], [y for _, y in test]


def decode_splits(
    scans: list[FileRows], splits: tuple[Split, ...], size: tuple[int, int], workers: int | None
) -> dict[Split, tuple[torch.Tensor, torch.Tensor]]:
    """{split: (x uint8 [N,3,H,W], y int64 [N])}, files in order, rows in file order."""
    decoded = [_decode_file(scan, size, workers, splits) for scan in scans]
    result = {}
    for split in splits:
        x = torch.cat([d[split] for d in decoded]).contiguous()
        y = torch.tensor([lab for scan in scans for lab in scan.labels[split]], dtype=torch.int64)
        result[split] = (x, y)
    return result


def load_parquet(
    files: list[Path], size: tuple[int, int], workers: int | None, test_fraction: float = 0.0, seed: int = 42
) -> tuple[dict[Split, tuple[torch.Tensor, torch.Tensor]], dict[str, Any]]:
    """{split: (x, y)} for train and val (the test split is never decoded for training), plus meta."""
    scans, meta = scan_files(files, test_fraction, seed)
    _check_splits(files, scans)
    return decode_splits(scans, (Split.TRAIN, Split.VAL), size, workers), meta


def _check_splits(files: list[Path], scans: list[FileRows]) -> None:
    where = str(files[0]) if len(files) == 1 else f"{files[0].parent} ({len(files)} parquet files)"
    for split in (Split.TRAIN, Split.VAL):
        labels = [lab for scan in scans for lab in scan.labels[split]]
        if not labels:
            raise DataError(f"{where}: no rows in split {split.value!r}")
        present = set(labels)
        if len(present) < 2:
            only = LABEL_NAMES[present.pop()]
            raise DataError(f"{where}: split {split.value!r} has only class {only!r} ({len(labels)} rows)")

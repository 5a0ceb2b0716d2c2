"""An uploaded OCEC parquet dataset: columns, labels, splits with both classes, decodable images.

Columns as the engine reads them: ``split`` and ``image_bytes`` required, ``class_id`` (0 closed,
1 open) or ``label`` (``open`` / ``closed``). Rows of other splits (``test``, unknown) are counted
and left out, as the engine does. Every kept row's image is decoded with Pillow.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from api.uploads.datasets import (
    LABEL_OF_NAME,
    SPLIT_ALIASES,
    DatasetLimits,
    DatasetRejectedError,
    DatasetReport,
    Rejection,
    Split,
    check_image,
    check_trainable,
    named_counts,
)

BATCH_ROWS = 1024
KEPT = (Split.TRAIN, Split.VAL)


def check_parquet(path: Path, limits: DatasetLimits) -> DatasetReport:
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise DatasetRejectedError(Rejection.FORMAT, f"not a readable parquet file ({exc})") from exc
    names = set(parquet.schema_arrow.names)
    missing = [c for c in ("split", "image_bytes") if c not in names]
    if missing or not names & {"class_id", "label"}:
        needed = missing or ["class_id or label"]
        raise DatasetRejectedError(
            Rejection.COLUMNS, f"missing column(s) {', '.join(needed)} (columns: {sorted(names)})"
        )
    if parquet.metadata.num_rows > limits.max_files:
        raise DatasetRejectedError(
            Rejection.LIMIT, f"{parquet.metadata.num_rows} rows; at most {limits.max_files}"
        )
    try:
        return _check(parquet, names, limits)
    except (pa.ArrowException, OSError) as exc:
        raise DatasetRejectedError(Rejection.FORMAT, f"parquet file unreadable ({exc})") from exc


def _check(parquet: pq.ParquetFile, names: set[str], limits: DatasetLimits) -> DatasetReport:
    columns = [c for c in ("split", "class_id", "label") if c in names]
    table = parquet.read(columns=columns).to_pydict()
    rows = len(table["split"])
    class_ids, texts = table.get("class_id", [None] * rows), table.get("label", [None] * rows)
    counts: dict[str, Counter[int]] = {s.value: Counter() for s in KEPT}
    ignored: Counter[str] = Counter()
    kept: set[int] = set()
    for row, raw in enumerate(table["split"]):
        split = SPLIT_ALIASES.get(str(raw).strip().lower()) if raw is not None else None
        if split not in KEPT:
            ignored[f"split {raw!r}"] += 1
            continue
        counts[split.value][_label(row, class_ids[row], texts[row])] += 1
        kept.add(row)
    check_trainable(counts, "parquet")
    _decode_images(parquet, kept, limits)
    return DatasetReport(
        format="parquet", counts=named_counts(counts), images=len(kept), ignored=dict(ignored)
    )


def _label(row: int, class_id: Any, text: Any) -> int:
    if class_id is not None:
        try:
            value = int(class_id)
        except (TypeError, ValueError):
            value = -1
        if value in (0, 1) and value == class_id:  # the engine's rule: 1 and 1.0 are "open"
            return value
        raise DatasetRejectedError(
            Rejection.LABELS, f"row {row}: class_id {class_id!r} is not 0 (closed) or 1 (open)"
        )
    if text is None:
        raise DatasetRejectedError(Rejection.LABELS, f"row {row}: neither class_id nor label is set")
    label = LABEL_OF_NAME.get(str(text).strip().lower())
    if label is None:
        raise DatasetRejectedError(
            Rejection.LABELS, f"row {row}: unknown label {text!r} (expected 'open' or 'closed')"
        )
    return label


def _decode_images(parquet: pq.ParquetFile, kept: set[int], limits: DatasetLimits) -> None:
    offset = 0
    for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=["image_bytes"]):
        for index, data in enumerate(batch.column(0).to_pylist()):
            row = offset + index
            if row not in kept:
                continue
            if not isinstance(data, bytes) or not data:
                raise DatasetRejectedError(Rejection.IMAGE, f"row {row}: no image bytes")
            check_image(data, f"row {row}", limits.max_image_pixels)
        offset += batch.num_rows

"""OCEC parquet loading: layout rules, labels, split aliases, errors that name file and row, cache."""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from ocec_engine.data import decode as decode_module
from ocec_engine.data import load_dataset
from ocec_engine.data.decode import resize_uint8
from ocec_engine.errors import DataError


def _png(value: int, size: tuple[int, int] = (20, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size[1], size[0]), (value, value // 2, 255 - value)).save(buf, format="PNG")
    return buf.getvalue()


def _table(n: int = 8, **override: list[Any]) -> dict[str, list[Any]]:
    cols: dict[str, list[Any]] = {
        "split": ["train"] * (n // 2) + ["val"] * (n - n // 2),
        "label": ["open" if i % 2 else "closed" for i in range(n)],
        "class_id": [i % 2 for i in range(n)],
        "image_path": [f"img/{i}.png" for i in range(n)],
        "image_bytes": [_png(10 * i) for i in range(n)],
    }
    cols.update(override)
    return cols


def _write(path: Path, cols: dict[str, list[Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(cols), path)
    return path


def test_loads_tiny_synthetic(tiny_parquet: Path) -> None:
    data = load_dataset(tiny_parquet)
    assert data.train_x.shape == (90, 3, 32, 64) and data.val_x.shape == (30, 3, 32, 64)
    assert data.train_x.dtype == torch.uint8 and data.train_x.is_contiguous()
    assert data.train_y.dtype == torch.int64
    assert data.meta["counts"] == {"train": {"closed": 45, "open": 45}, "val": {"closed": 15, "open": 15}}
    assert data.meta["format"] == "parquet" and data.meta["cache"] == "off"
    assert "90 train, 30 val" in data.source
    assert load_dataset(tiny_parquet.parent).fingerprint == data.fingerprint  # folder or file: same content
    assert load_dataset(tiny_parquet, image_size=(24, 48)).fingerprint != data.fingerprint


def test_pixels_are_decoded_and_resized(tmp_path: Path) -> None:
    data = load_dataset(_write(tmp_path / "d.parquet", _table()), image_size=(10, 20))
    first = data.train_x[0]  # row 0: colour (0, 0, 255), uniform, so resizing keeps it exactly
    assert first[:, 5, 5].tolist() == [0, 0, 255]
    assert data.train_y.tolist() == [0, 1, 0, 1]


def test_resize_matches_area_average_on_exact_halving() -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (8, 16, 3), dtype=np.uint8)
    out = resize_uint8(img, (4, 8)).permute(1, 2, 0).numpy().astype(np.float64)
    blocks = img.reshape(4, 2, 8, 2, 3).astype(np.float64).mean(axis=(1, 3))
    assert np.abs(out - blocks).max() <= 0.5 + 1e-9


def test_label_text_and_split_aliases(tmp_path: Path) -> None:
    splits = ["Training", "train", "VALID", "dev", "validation", "val", "test", "holdout", "testing", "train"]
    labels = ["open", "closed", "Open", "closed", "open", "CLOSED", "open", "open", "closed", "open"]
    cols = _table(10, split=splits, label=labels)
    del cols["class_id"]
    data = load_dataset(_write(tmp_path / "d.parquet", cols))
    assert data.train_y.tolist() == [1, 0, 1]
    assert data.val_y.tolist() == [1, 0, 1, 0]
    assert data.meta["skipped_rows"] == {"split='holdout'": 1}
    assert data.meta["test"] == {"samples": 2, "origin": "split"}  # kept out of training


def test_class_id_wins_over_label(tmp_path: Path) -> None:
    data = load_dataset(_write(tmp_path / "d.parquet", _table(label=["bogus"] * 8)))
    assert data.train_y.tolist() == [0, 1, 0, 1]


def test_directory_file_selection(tmp_path: Path) -> None:
    _write(tmp_path / "a" / "dataset.parquet", _table())
    _write(tmp_path / "a" / "dataset_0002.parquet", _table(image_bytes=[_png(200)] * 8))
    _write(tmp_path / "a" / "dataset_0001.parquet", _table())
    data = load_dataset(tmp_path / "a")
    assert [Path(f).name for f in data.meta["files"]] == ["dataset_0001.parquet", "dataset_0002.parquet"]
    assert len(data.train_y) == 8
    _write(tmp_path / "b" / "dataset.parquet", _table())
    _write(tmp_path / "b" / "other.parquet", _table())
    assert [Path(f).name for f in load_dataset(tmp_path / "b").meta["files"]] == ["dataset.parquet"]
    _write(tmp_path / "c" / "z.parquet", _table())
    _write(tmp_path / "c" / "y.parquet", _table())
    assert [Path(f).name for f in load_dataset(tmp_path / "c").meta["files"]] == ["y.parquet", "z.parquet"]


def _without(*names: str, **extra: list[Any]) -> dict[str, list[Any]]:
    return {**{k: v for k, v in _table().items() if k not in names}, **extra}


_CORRUPT = [_png(1)] * 5 + [b"\x89PNG garbage"] + [_png(1)] * 2
_NULL = [_png(1)] * 3 + [None] + [_png(1)] * 4
ERROR_CASES = {
    "no-split": (_without("split"), r"d\.parquet: missing required column 'split'"),
    "no-bytes": (_without("image_bytes"), r"d\.parquet: missing required column 'image_bytes'"),
    "no-label": (_without("label", "class_id"), r"d\.parquet: needs a 'class_id' or a 'label'"),
    "bad-text": (_without("class_id", label=["open", "shut"] * 4), r"d\.parquet row 1: unknown label 'shut'"),
    "bad-class-id": (_table(class_id=[0, 1, 2, 1, 0, 1, 0, 1]), r"d\.parquet row 2: class_id 2 is not 0"),
    "corrupt": (_table(image_bytes=_CORRUPT), r"d\.parquet row 5: cannot decode image"),
    "null-bytes": (
        _table(image_bytes=_NULL),
        r"d\.parquet row 3: cannot decode image \(ValueError: no image",
    ),
    "no-val": (_table(split=["train"] * 8), r"d\.parquet: no rows in split 'val'"),
    "no-train": (_table(split=["test"] * 4 + ["val"] * 4), r"d\.parquet: no rows in split 'train'"),
    "one-class": (
        _table(class_id=[0, 1, 0, 1, 1, 1, 1, 1]),
        r"d\.parquet: split 'val' has only class 'open'",
    ),
}


@pytest.mark.parametrize(("cols", "match"), list(ERROR_CASES.values()), ids=list(ERROR_CASES))
def test_errors_name_file_and_row(tmp_path: Path, cols: dict[str, list[Any]], match: str) -> None:
    path = _write(tmp_path / "d.parquet", cols)
    with pytest.raises(DataError, match=match):
        load_dataset(path)


def test_missing_root_and_non_parquet(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(tmp_path / "nope")
    bad = tmp_path / "x.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match=r"x\.parquet: not a readable parquet"):
        load_dataset(bad)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no dataset found"):
        load_dataset(tmp_path / "empty")


def test_cache_round_trip_and_reuse(tiny_parquet: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = load_dataset(tiny_parquet, cache_dir=cache)
    assert first.meta["cache"] == "miss"
    files = list(cache.iterdir())
    assert [f.name for f in files] == [f"ocec-data-{first.fingerprint}.pt"]  # no temp file left behind
    second = load_dataset(tiny_parquet, cache_dir=cache)
    assert second.meta["cache"] == "hit"
    for name in ("train_x", "train_y", "val_x", "val_y"):
        assert torch.equal(getattr(first, name), getattr(second, name))
    assert second.source == first.source and second.fingerprint == first.fingerprint
    files[0].write_bytes(b"torn")  # a damaged cache is rebuilt, not an error
    third = load_dataset(tiny_parquet, cache_dir=cache)
    assert third.meta["cache"] == "miss" and torch.equal(third.train_x, first.train_x)


def test_cache_key_follows_content(tiny_parquet: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy" / "dataset.parquet"
    copy.parent.mkdir()
    shutil.copy(tiny_parquet, copy)
    cache = tmp_path / "cache"
    assert load_dataset(copy, cache_dir=cache).fingerprint == load_dataset(tiny_parquet).fingerprint
    _write(copy, _table())
    changed = load_dataset(copy, cache_dir=cache)
    assert changed.meta["cache"] == "miss" and len(changed.train_y) == 4


def test_parallel_decode_matches_serial(tiny_parquet: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    serial = load_dataset(tiny_parquet, workers=1)
    monkeypatch.setattr(decode_module, "PARALLEL_MIN_IMAGES", 1)
    monkeypatch.setattr(decode_module, "_CHUNK", 16)
    parallel = load_dataset(tiny_parquet, workers=3)
    assert torch.equal(serial.train_x, parallel.train_x) and torch.equal(serial.val_x, parallel.val_x)

"""Image-folder datasets: both layouts, the seeded stratified split, errors naming the path."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch

from ocec_engine.data import load_dataset
from ocec_engine.errors import DataError
from tests.ocec_engine.folder_data import explode


def test_predefined_split_layout(tiny_parquet: Path, tmp_path: Path) -> None:
    root = explode(tiny_parquet, tmp_path / "ds", with_splits=True)
    (root / "train" / "open" / "notes.txt").write_text("ignored")
    (root / "train" / "open" / ".hidden.png").write_bytes(b"ignored")
    data = load_dataset(root)
    ref = load_dataset(tiny_parquet)
    assert data.meta["format"] == "folders"
    assert data.meta["counts"] == ref.meta["counts"]
    # the same images: sorted by file name within each class, so compare as sets of rows
    assert sorted(map(bytes, data.val_x.flatten(1).numpy())) == sorted(
        map(bytes, ref.val_x.flatten(1).numpy())
    )


def test_stratified_split_is_seeded_and_stable(tiny_parquet: Path, tmp_path: Path) -> None:
    root = explode(tiny_parquet, tmp_path / "flat", with_splits=False)
    a = load_dataset(root, val_ratio=0.25, seed=1)
    b = load_dataset(root, val_ratio=0.25, seed=1)
    c = load_dataset(root, val_ratio=0.25, seed=2)
    assert a.meta["counts"] == {"train": {"closed": 45, "open": 45}, "val": {"closed": 15, "open": 15}}
    assert torch.equal(a.val_x, b.val_x) and a.fingerprint == b.fingerprint
    assert not torch.equal(a.val_x, c.val_x) and a.fingerprint != c.fingerprint
    assert load_dataset(root, val_ratio=0.5, seed=1).fingerprint != a.fingerprint
    # adding a file keeps every existing val image in val (hash order, not a fresh permutation)
    extra = root / "open" / "zzz_new.png"
    extra.write_bytes(next((root / "open").glob("*.png")).read_bytes())
    grown = load_dataset(root, val_ratio=0.25, seed=1)
    old_val = {bytes(r) for r in a.val_x.flatten(1).numpy()}
    new_val = {bytes(r) for r in grown.val_x.flatten(1).numpy()}
    assert len(old_val - new_val) <= 1


def test_small_classes_keep_one_image_per_side(tmp_path: Path) -> None:
    from PIL import Image

    for label in ("open", "closed"):
        (tmp_path / label).mkdir()
        for i in range(2):
            buf = io.BytesIO()
            Image.new("RGB", (8, 4), (i * 50, 0, 0)).save(buf, format="PNG")
            (tmp_path / label / f"{i}.png").write_bytes(buf.getvalue())
    data = load_dataset(tmp_path, image_size=(4, 8), val_ratio=0.1)
    assert data.train_y.tolist() == [0, 1] and data.val_y.tolist() == [0, 1]


def test_folder_errors_name_the_path(tiny_parquet: Path, tmp_path: Path) -> None:
    root = explode(tiny_parquet, tmp_path / "ds", with_splits=True)
    bad = root / "val" / "closed" / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    with pytest.raises(DataError, match=rf"{bad}: cannot decode image"):
        load_dataset(root)
    bad.unlink()
    for f in (root / "val" / "closed").iterdir():
        f.unlink()
    with pytest.raises(DataError, match=r"split 'val' has only class 'open'"):
        load_dataset(root)
    lone = tmp_path / "lone"
    (lone / "train" / "open").mkdir(parents=True)
    with pytest.raises(DataError, match="no matching val folder"):
        load_dataset(lone)
    only_open = tmp_path / "only_open"
    (only_open / "open").mkdir(parents=True)
    (only_open / "open" / "a.png").write_bytes(next((root / "train" / "open").glob("*.png")).read_bytes())
    with pytest.raises(DataError, match="only_open"):
        load_dataset(only_open)

"""The held-out test split: a parquet `test` split, a `test/` folder, or a seeded hold-out
(`test_fraction`); never decoded for training, and listed identically for the evaluation."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ocec_engine.data import load_dataset
from ocec_engine.data.parquet import scan_files
from ocec_engine.data.split import Split, hold_out
from ocec_engine.evaluation.dataset import load_eval_set
from tests.ocec_engine.folder_data import explode


def test_hold_out_is_seeded_stratified_and_stable() -> None:
    items = [(f"img{i:03d}", i % 2) for i in range(100)]
    kept, held = hold_out(items, lambda it: it[0], lambda it: it[1], 0.2, seed=7)
    assert len(held) == 20 and sum(lab for _, lab in held) == 10  # 10 per class
    assert kept == [it for it in items if it not in held]  # input order kept
    assert hold_out(items, lambda it: it[0], lambda it: it[1], 0.2, seed=7) == (kept, held)
    assert hold_out(items, lambda it: it[0], lambda it: it[1], 0.2, seed=8)[1] != held
    more = [*items, *((f"new{i}", i % 2) for i in range(10))]
    _, held_more = hold_out(more, lambda it: it[0], lambda it: it[1], 0.2, seed=7)
    assert len(set(held) & set(held_more)) >= 16  # adding samples moves few
    assert hold_out([("a", 0), ("b", 0)], lambda it: it[0], lambda it: it[1], 0.9, seed=1)[0]  # one kept


def test_seeded_test_split_of_a_parquet_is_never_trained_on(tiny_parquet: Path) -> None:
    plain = load_dataset(tiny_parquet, test_fraction=0.0)
    data = load_dataset(tiny_parquet, test_fraction=0.2)
    assert plain.meta["test"] == {"samples": 0, "origin": "none"}
    assert data.meta["test"] == {"samples": 24, "origin": "held_out"}
    assert (len(data.train_y), len(data.val_y)) == (72, 24)  # 90 - 18, 30 - 6
    assert data.fingerprint != plain.fingerprint
    [scan] = scan_files([tiny_parquet], test_fraction=0.2, seed=42)[0]
    test_rows = set(scan.rows[Split.TEST])
    assert len(test_rows) == 24 and not test_rows & (set(scan.rows[Split.TRAIN]) | set(scan.rows[Split.VAL]))
    listed = load_eval_set(tiny_parquet, "test", (32, 64), test_fraction=0.2)
    assert sorted(listed.sources) == sorted(f"{tiny_parquet.name}#{row}" for row in test_rows)
    assert listed.open == listed.closed == 12


def test_a_stated_test_split_wins_over_the_fraction(tiny_parquet: Path, tmp_path: Path) -> None:
    table = pq.read_table(tiny_parquet)
    splits = table.column("split").to_pylist()
    splits[:8] = ["test"] * 8
    stated = tmp_path / "dataset.parquet"
    pq.write_table(table.set_column(table.schema.get_field_index("split"), "split", pa.array(splits)), stated)
    data = load_dataset(stated, test_fraction=0.3)
    assert data.meta["test"] == {"samples": 8, "origin": "split"}
    assert len(data.train_y) + len(data.val_y) == 112
    assert load_eval_set(stated, "test", (32, 64)).sources == [f"dataset.parquet#{i}" for i in range(8)]


@pytest.mark.parametrize("fraction", [0.0, 0.25])
def test_a_test_folder_stays_out_of_training(folder_dataset: Path, fraction: float) -> None:
    data = load_dataset(folder_dataset, test_fraction=fraction)
    assert data.meta["test"] == {"samples": 24, "origin": "split"}
    assert len(data.train_y) + len(data.val_y) == 96
    listed = load_eval_set(folder_dataset, "test", (32, 64))
    assert len(listed.sources) == 24 and all(s.startswith("test/") for s in listed.sources)
    every = load_eval_set(folder_dataset, "all", (32, 64))
    assert len(every.sources) == 120 and len(set(every.sources)) == 120


def test_a_flat_folder_holds_out_a_seeded_test_split(tiny_parquet: Path, tmp_path: Path) -> None:
    root = explode(tiny_parquet, tmp_path / "flat", with_splits=False)
    data = load_dataset(root, test_fraction=0.2, seed=5)
    assert data.meta["test"]["origin"] == "held_out" and data.meta["test"]["samples"] > 0
    listed = load_eval_set(root, "test", (32, 64), seed=5, test_fraction=0.2)
    assert len(listed.sources) == data.meta["test"]["samples"]
    assert len(data.train_y) + len(data.val_y) + len(listed.sources) == 120

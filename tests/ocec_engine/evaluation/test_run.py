"""evaluate_to_dir on the tiny fixtures: the report's keys and numbers, the worst images, the splits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from ocec_engine.errors import DataError
from ocec_engine.evaluation import evaluate_to_dir

CONTRACT_KEYS = {
    "schema", "model", "data", "threshold", "at_0_5", "at_threshold", "roc_auc", "pr_auc", "eer",
    "thresholds", "calibration", "bootstrap", "sweep", "curves", "worst", "files", "seconds",
}  # fmt: skip


def test_report_on_a_folder_test_split(folder_dataset: Path, model_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    report = evaluate_to_dir(model_checkpoint, folder_dataset, out, split="test", top_k=5, bootstrap=200)
    assert json.loads((out / "report.json").read_text()) == report
    assert set(report) >= CONTRACT_KEYS
    assert report["model"]["format"] == "checkpoint" and len(report["model"]["sha256"]) == 64
    assert report["data"] == {
        "root": str(folder_dataset),
        "split": "test",
        "samples": 24,
        "open": 12,
        "closed": 12,
    }
    at = report["at_0_5"]
    assert at["tp"] + at["fp"] + at["tn"] + at["fn"] == 24
    half = next(row for row in report["sweep"] if row["threshold"] == 0.5)
    assert {k: half[k] for k in ("tp", "fp", "tn", "fn")} == {k: at[k] for k in ("tp", "fp", "tn", "fn")}
    assert [r["threshold"] for r in report["sweep"]][:3] == [0.0, 0.01, 0.02] and len(report["sweep"]) == 101
    assert report["threshold"]["rule"] == "f1"
    assert report["at_threshold"]["f1"] == pytest.approx(report["thresholds"]["f1_optimal"]["f1"])
    assert report["bootstrap"]["resamples"] == 200
    assert sum(b["count"] for b in report["calibration"]["bins"]) == 24
    assert len(report["curves"]["roc"]["fpr"]) <= 200
    worst = report["worst"]
    assert 0 < len(worst) <= 5
    threshold = report["threshold"]["value"]
    for row in worst:
        assert row["source"].startswith("test/") and (folder_dataset / row["source"]).is_file()
        assert (row["p_open"] >= threshold) != bool(row["label"])  # misclassified
    wrongness = [r["p_open"] if r["label"] == 0 else 1 - r["p_open"] for r in worst]
    assert wrongness == sorted(wrongness, reverse=True)
    with Image.open(out / "worst.png") as sheet:
        assert sheet.width >= 64 and sheet.height >= 32
    assert sorted(p.name for p in (out / "worst").iterdir()) == sorted(f"{i}.png" for i in range(len(worst)))


def test_rules_and_splits(folder_dataset: Path, model_checkpoint: Path, tmp_path: Path) -> None:
    fixed = evaluate_to_dir(
        model_checkpoint, folder_dataset, tmp_path / "a", split="all", threshold_rule="fixed", target=0.3,
        bootstrap=0,
    )  # fmt: skip
    assert fixed["data"]["samples"] == 120 and fixed["threshold"] == {
        "value": 0.3,
        "rule": "fixed",
        "target": 0.3,
    }
    assert fixed["at_threshold"]["threshold"] == 0.3
    val = evaluate_to_dir(
        model_checkpoint, folder_dataset, tmp_path / "b", split="val", threshold_rule="recall_closed",
        target=0.9, bootstrap=0,
    )  # fmt: skip
    assert val["data"]["split"] == "val" and val["threshold"]["target"] == 0.9
    assert val["thresholds"]["recall_closed"]["target"] == 0.9
    achieved = val["thresholds"]["recall_closed"]["achieved"]
    assert achieved is not None and achieved >= 0.9


def test_parquet_sources_and_a_missing_test_split(
    tiny_parquet: Path, model_checkpoint: Path, tmp_path: Path
) -> None:
    report = evaluate_to_dir(model_checkpoint, tiny_parquet.parent, tmp_path / "p", split="val", bootstrap=0)
    assert report["data"]["samples"] == 30
    assert all(row["source"].startswith("dataset.parquet#") for row in report["worst"])
    with pytest.raises(DataError, match="no samples in split 'test'"):
        evaluate_to_dir(model_checkpoint, tiny_parquet.parent, tmp_path / "q", split="test")
    held = evaluate_to_dir(
        model_checkpoint, tiny_parquet.parent, tmp_path / "r", split="test", test_fraction=0.2, bootstrap=0
    )
    assert held["data"]["samples"] == 24 and held["data"]["open"] == 12

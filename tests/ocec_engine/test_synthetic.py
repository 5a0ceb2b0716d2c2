"""Synthetic eye crops: OCEC layout, deterministic per seed, domain B measurably shifted from A."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from ocec_engine.data import load_dataset
from ocec_engine.synthetic import make_dataset, render

LABELS = np.array([1, 0] * 60)


def _arrays(images: list[bytes]) -> list[np.ndarray]:
    return [np.asarray(Image.open(io.BytesIO(b)).convert("RGB"), np.float32) / 255 for b in images]


def _stats(images: list[bytes]) -> dict[str, float]:
    arrs = _arrays(images)
    return {
        "brightness_spread": float(np.std([a.mean() for a in arrs])),  # lighting variation
        "high_freq": float(np.mean([np.abs(np.diff(a.mean(2), axis=1)).mean() for a in arrs])),  # noise
    }


def test_layout_and_balance(tiny_parquet: Path) -> None:
    table = pq.read_table(tiny_parquet).to_pydict()
    assert list(table) == ["split", "label", "class_id", "image_path", "source", "image_bytes"]
    assert len(table["split"]) == 120
    for split, expected in (("train", 45), ("val", 15)):
        ids = [c for s, c in zip(table["split"], table["class_id"], strict=True) if s == split]
        assert ids.count(0) == expected and ids.count(1) == expected
    assert all((c == 1) == (lab == "open") for c, lab in zip(table["class_id"], table["label"], strict=True))
    sizes = np.array([a.shape[:2] for a in _arrays(table["image_bytes"])])
    assert sizes[:, 0].min() >= 20 and sizes[:, 0].max() <= 40
    assert sizes[:, 1].min() >= 40 and sizes[:, 1].max() <= 72
    assert len({tuple(s) for s in sizes}) > 20  # crops of varying size
    assert load_dataset(tiny_parquet).meta["counts"]["val"] == {"closed": 15, "open": 15}


def test_deterministic_per_seed(tmp_path: Path) -> None:
    a = pq.read_table(make_dataset(tmp_path / "a", n=16, seed=4)).to_pydict()
    b = pq.read_table(make_dataset(tmp_path / "b", n=16, seed=4)).to_pydict()
    c = pq.read_table(make_dataset(tmp_path / "c", n=16, seed=5)).to_pydict()
    assert a == b
    assert a["image_bytes"] != c["image_bytes"]
    assert render(LABELS[:8], seed=1, domain="B") == render(LABELS[:8], seed=1, domain="B", shift=1.0)
    assert render(LABELS[:8], seed=1, domain="A") != render(LABELS[:8], seed=1, domain="B", shift=0.0)


def test_domain_b_differs_measurably_and_grows_with_shift() -> None:
    a = _stats(render(LABELS, seed=2, domain="A"))
    b0 = _stats(render(LABELS, seed=2, domain="B", shift=0.0))
    b_half = _stats(render(LABELS, seed=2, domain="B", shift=0.5))
    b = _stats(render(LABELS, seed=2, domain="B"))
    assert b["brightness_spread"] > 1.4 * a["brightness_spread"]
    assert b["high_freq"] > 1.2 * a["high_freq"]
    assert (
        abs(b0["brightness_spread"] - a["brightness_spread"]) < 0.2 * a["brightness_spread"]
    )  # B at 0 = A-like
    assert b0["brightness_spread"] < b_half["brightness_spread"] < b["brightness_spread"]
    assert b0["high_freq"] < b_half["high_freq"] < b["high_freq"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"domain": "C"}, "domain"),
        ({"shift": 1.5}, "shift"),
        ({"n": 2}, "n must"),
        ({"val_fraction": 1.0}, "val"),
    ],
)
def test_invalid_arguments(tmp_path: Path, kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_dataset(tmp_path, **{"n": 8, **kwargs})  # type: ignore[arg-type]

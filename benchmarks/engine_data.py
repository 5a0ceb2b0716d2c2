"""Data-path figures: synthetic generation, decode throughput, augmentation cost per batch.

    python benchmarks/engine_data.py [--n 4000] [--batch 256] [--out benchmarks/results/engine_data.json]

Prints one line per figure and writes them as JSON. Timings depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from ocec_engine.augment import Augmenter
from ocec_engine.config import AugmentPolicy
from ocec_engine.data import load_dataset
from ocec_engine.normalize import normalize
from ocec_engine.synthetic import make_dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from benchmarks.timing import best_of


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/engine_data.json"))
    args = parser.parse_args()
    figures: dict[str, float | int | str] = {"torch_threads": torch.get_num_threads(), "n": args.n}
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        path = make_dataset(Path(tmp), domain="B", n=args.n, seed=0)
        figures["synthetic_images_per_s"] = round(args.n / (time.perf_counter() - start))
        for workers in (1, None):
            start = time.perf_counter()
            data = load_dataset(path, workers=workers)
            key = f"decode_images_per_s_workers_{workers or 'auto'}"
            figures[key] = round(args.n / (time.perf_counter() - start))
        start = time.perf_counter()
        load_dataset(path, cache_dir=Path(tmp) / "cache")
        cached = load_dataset(path, cache_dir=Path(tmp) / "cache")
        assert cached.meta["cache"] == "hit"
        figures["cache_hit_load_s"] = round(
            best_of(lambda: load_dataset(path, cache_dir=Path(tmp) / "cache"), 3), 4
        )
    x = data.train_x[: args.batch].float().div(255)
    for policy in AugmentPolicy:
        step = functools.partial(Augmenter(policy), x, torch.Generator().manual_seed(0))
        figures[f"augment_ms_per_batch_{policy}"] = round(best_of(step, 20) * 1000, 2)
    figures["normalize_ms_per_batch"] = round(
        best_of(lambda: normalize(data.train_x[: args.batch]), 20) * 1000, 3
    )
    figures["batch"] = args.batch
    for key, value in figures.items():
        print(f"{key}: {value}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()

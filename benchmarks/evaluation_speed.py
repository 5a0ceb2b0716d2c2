"""Evaluation cost: evaluate_to_dir end to end, and the vectorised bootstrap alone.

    python benchmarks/evaluation_speed.py [--n 120 2000] [--bootstrap 1000] [--repeats 3]

For each dataset size: a synthetic domain-B parquet, a seeded engine-default model checkpoint, then
the best of ``--repeats`` runs of ``evaluate_to_dir`` (split all, top 16, the given bootstrap) and
of the bootstrap alone on the same scores. Prints one line per figure. Timings depend on the
machine and its load.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from ocec_engine.evaluation import evaluate_to_dir
from ocec_engine.evaluation.bootstrap import bootstrap
from ocec_engine.model import ModelConfig, build_model
from ocec_engine.synthetic import make_dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from benchmarks.timing import best_of


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, nargs="+", default=[120, 2000])
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    a = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        torch.manual_seed(0)
        model = build_model(ModelConfig())
        ckpt = root / "model.pt"
        torch.save({"model_state": model.state_dict(), "model_config": model.config.to_dict()}, ckpt)
        for n in a.n:
            data = make_dataset(root / f"b{n}", domain="B", n=n, seed=1).parent

            def run(data: Path = data, n: int = n) -> object:
                return evaluate_to_dir(ckpt, data, root / f"out{n}", bootstrap=a.bootstrap)

            seconds = best_of(run, a.repeats)
            scores = np.load(root / f"out{n}" / "scores.npz")
            s, y = scores["scores"], scores["labels"]
            boot = best_of(lambda s=s, y=y: bootstrap(s, y, 0.5, a.bootstrap, seed=0), a.repeats)
            print(f"n={n}: evaluate_to_dir {seconds:.3f} s (bootstrap {a.bootstrap}: {boot:.3f} s)")


if __name__ == "__main__":
    main()

"""``evaluate_to_dir``: score a model on a dataset split, write report.json, worst.png and worst/<i>.png."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from ocec_engine.atomic import atomic_path
from ocec_engine.evaluation.dataset import EvalSet, load_eval_set
from ocec_engine.evaluation.models import LoadedModel, load_model
from ocec_engine.evaluation.report import Options, metrics_report, worst_indices
from ocec_engine.evaluation.scoring import Progress, score_all
from ocec_engine.evaluation.sheet import contact_sheet, crop_image, write_png

REPORT_FILE = "report.json"
SHEET_FILE = "worst.png"
WORST_DIR = "worst"
SCORES_FILE = "scores.npz"  # every sample's P(open) and label, to re-threshold without the model


def evaluate_to_dir(
    model_path: Path,
    data_root: Path,
    out_dir: Path,
    *,
    split: str = "all",
    threshold_rule: str = "f1",
    target: float | None = None,
    top_k: int = 16,
    bootstrap: int = 1000,
    seed: int = 0,
    progress: Progress | None = None,
    val_ratio: float = 0.2,
    split_seed: int = 42,
    test_fraction: float = 0.0,
) -> dict[str, Any]:
    """Evaluate ``model_path`` (checkpoint or .onnx) on ``split`` of ``data_root``; return the report.

    ``val_ratio``, ``split_seed`` and ``test_fraction`` are the dataset's split settings (a training
    job's ``val_ratio``, ``seed`` and ``test_fraction``), so its val and test splits are the job's.
    """
    started = time.perf_counter()
    model = load_model(model_path)
    data = load_eval_set(
        data_root, split, model.image_size, val_ratio=val_ratio, seed=split_seed, test_fraction=test_fraction
    )
    options = Options(threshold_rule, target, top_k, bootstrap, seed)
    return write_evaluation(model, data, Path(out_dir), options, progress=progress, started=started)


def write_evaluation(
    model: LoadedModel,
    data: EvalSet,
    out_dir: Path,
    options: Options,
    *,
    progress: Progress | None = None,
    started: float | None = None,
) -> dict[str, Any]:
    """Score ``data`` with ``model`` and write the report and the worst images into ``out_dir``."""
    started = time.perf_counter() if started is None else started
    scores = score_all(model.score, data.x, progress=progress)
    report, choice = metrics_report(scores, data.labels, options)
    worst = worst_indices(scores, data.labels, choice.value, options.top_k)
    report["model"] = {"path": str(model.path), "format": model.format.value, "sha256": model.sha256()}
    report["data"] = {
        "root": str(data.root),
        "split": data.split.value,
        "samples": len(data.labels),
        "open": data.open,
        "closed": data.closed,
    }
    report["worst"] = [
        {"row": i, "source": data.sources[i], "label": int(data.labels[i]), "p_open": float(scores[i])}
        for i in worst
    ]
    report["notes"] = [*model.notes, *report["notes"]]
    report["files"] = {"worst_sheet": SHEET_FILE, "worst_dir": WORST_DIR, "scores": SCORES_FILE}
    _write_images(data, worst, report["worst"], out_dir)
    with atomic_path(out_dir / SCORES_FILE) as tmp, tmp.open("wb") as fh:
        np.savez(fh, scores=scores, labels=data.labels)
    report["seconds"] = round(time.perf_counter() - started, 4)
    with atomic_path(out_dir / REPORT_FILE) as tmp:
        tmp.write_text(json.dumps(report, indent=1))
    return report


def _write_images(data: EvalSet, worst: list[int], rows: list[dict[str, Any]], out_dir: Path) -> None:
    crops = [data.x[i] for i in worst]
    captions = [f"{'open' if r['label'] else 'closed'} p={r['p_open']:.2f}" for r in rows]
    image_size = (int(data.x.shape[2]), int(data.x.shape[3]))
    write_png(contact_sheet(crops, captions, image_size), out_dir / SHEET_FILE)
    for i, crop in enumerate(crops):
        write_png(crop_image(crop), out_dir / WORST_DIR / f"{i}.png")

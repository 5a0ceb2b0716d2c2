"""A schema-1 evaluation report (the contract of docs/evaluation.md) for the service and dashboard
tests, and the files an evaluation folder holds (report.json, worst.png, worst/<i>.png).

Scores come from a seeded generator and every count, sweep row and curve point is computed from them,
so the numbers agree with one another the way the engine's do (the dashboard's slider reads the sweep).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw


def _counts(labels: list[int], scores: list[float], threshold: float) -> dict[str, int]:
    tp = sum(1 for y, p in zip(labels, scores, strict=True) if y == 1 and p >= threshold)
    fp = sum(1 for y, p in zip(labels, scores, strict=True) if y == 0 and p >= threshold)
    fn = sum(1 for y in labels if y == 1) - tp
    tn = sum(1 for y in labels if y == 0) - fp
    return {"tp": tp, "fp": fp, "tn": tn, "fn": fn}


def _at(labels: list[int], scores: list[float], threshold: float) -> dict[str, Any]:
    c = _counts(labels, scores, threshold)
    precision = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 0.0
    recall = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    accuracy = (c["tp"] + c["tn"]) / len(labels)
    return {"threshold": threshold, "f1": f1, "precision": precision, "recall": recall,
            "accuracy": accuracy, **c}  # fmt: skip


def make_report(samples: int = 40, seed: int = 0, *, skill: float = 0.3, threshold: float = 0.5,
                root: str = "setB", model: str = "model.pt") -> dict[str, Any]:  # fmt: skip
    """A consistent report for ``samples`` synthetic images; higher ``skill`` separates the classes."""
    rng = random.Random(seed)
    labels = [i % 2 for i in range(samples)]
    scores = [min(1.0, max(0.0, rng.gauss(0.5 + (skill if y else -skill), 0.25))) for y in labels]
    sweep = [{"threshold": t / 100, **_counts(labels, scores, t / 100)} for t in range(101)]
    roc_points = [(s["fp"] / max(1, s["fp"] + s["tn"]), s["tp"] / max(1, s["tp"] + s["fn"])) for s in sweep]
    pr_points = [
        (s["tp"] / max(1, s["tp"] + s["fn"]), s["tp"] / (s["tp"] + s["fp"]) if s["tp"] + s["fp"] else 1.0)
        for s in sweep
    ]
    wrong = sorted(
        ((i, y, p) for i, (y, p) in enumerate(zip(labels, scores, strict=True)) if (p >= 0.5) != (y == 1)),
        key=lambda r: -abs(r[2] - 0.5),
    )[:8]
    best = max((_at(labels, scores, s["threshold"]) for s in sweep), key=lambda a: a["f1"])
    opened = sum(labels)
    data = {"root": root, "split": "all", "samples": samples, "open": opened, "closed": samples - opened}
    return {
        "schema": 1,
        "model": {"path": model, "format": "checkpoint", "sha256": "0" * 64},
        "data": data,
        "threshold": {"value": threshold, "rule": "fixed", "target": None},
        "at_0_5": _at(labels, scores, 0.5),
        "at_threshold": _at(labels, scores, threshold),
        "roc_auc": 0.5 + skill,
        "pr_auc": 0.5 + skill * 0.9,
        "eer": {"value": 0.5 - skill / 2, "threshold": 0.5},
        "thresholds": {
            "f1_optimal": {"threshold": best["threshold"], "f1": best["f1"]},
            "precision_closed": {"target": 0.9, "threshold": None, "achieved": None},
            "recall_closed": {"target": 0.9, "threshold": None, "achieved": None},
        },
        "calibration": {"ece": 0.1, "bins": []},
        "bootstrap": {"resamples": 10, "f1": [0.4, 0.9], "roc_auc": [0.5, 0.95]},
        "sweep": sweep,
        "curves": {
            "roc": {"fpr": [p[0] for p in reversed(roc_points)], "tpr": [p[1] for p in reversed(roc_points)]},
            "pr": {"recall": [p[0] for p in pr_points], "precision": [p[1] for p in pr_points]},
        },
        "worst": [{"row": i, "source": f"img_{i}.png", "label": y, "p_open": p} for i, y, p in wrong],
        "files": {"worst_sheet": "worst.png"},
        "seconds": 0.01,
    }


def write_report(out_dir: Path, report: dict[str, Any]) -> dict[str, Any]:
    """``report.json``, the contact sheet ``worst.png`` and one ``worst/<i>.png`` per crop."""
    (out_dir / "worst").mkdir(parents=True, exist_ok=True)
    sheet = Image.new("RGB", (32 * max(1, len(report["worst"])), 40), "white")
    for i, item in enumerate(report["worst"]):
        crop = Image.new("L", (32, 32), int(255 * item["p_open"]))
        crop.save(out_dir / "worst" / f"{i}.png")
        sheet.paste(crop, (32 * i, 0))
        ImageDraw.Draw(sheet).text((32 * i + 2, 30), str(item["label"]), fill="black")
    sheet.save(out_dir / "worst.png")
    (out_dir / "report.json").write_text(json.dumps(report))
    return report

"""Calibration of P(open): reliability bins and the expected calibration error (ECE).

Ten equal-width bins over [0, 1] ([lo, hi), the last one closed). In each bin, ``confidence`` is the
mean P(open) and ``accuracy`` the share of samples that are open; ECE = sum(count/N * |acc - conf|).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ocec_engine.evaluation.metrics import Floats, Labels

BINS = 10


def calibration(scores: Floats, labels: Labels, bins: int = BINS) -> dict[str, Any]:
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.searchsorted(edges, scores, side="right") - 1, 0, bins - 1)
    count = np.bincount(index, minlength=bins)
    conf_sum = np.bincount(index, weights=scores, minlength=bins)
    open_sum = np.bincount(index, weights=labels.astype(np.float64), minlength=bins)
    safe = np.maximum(count, 1)
    confidence, accuracy = conf_sum / safe, open_sum / safe
    n = max(len(scores), 1)
    ece = float(np.sum(count / n * np.abs(accuracy - confidence)))
    rows = [
        {
            "lo": round(float(edges[i]), 6),
            "hi": round(float(edges[i + 1]), 6),
            "count": int(count[i]),
            "confidence": float(confidence[i]),
            "accuracy": float(accuracy[i]),
        }
        for i in range(bins)
    ]
    return {"ece": ece, "bins": rows}

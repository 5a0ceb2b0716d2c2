"""Percentile bootstrap intervals for F1 (at a fixed threshold) and ROC-AUC, vectorised.

Each resample is drawn as multinomial counts (weights) over the N samples, so F1 is a weighted sum
and ROC-AUC a weighted Mann-Whitney statistic over the score groups sorted once: no per-resample
sort or Python loop over samples. Resamples run in chunks that bound the memory to a few MB.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ocec_engine.evaluation.metrics import Floats, Labels

_CHUNK_ELEMENTS = 1 << 21  # resamples x samples per chunk


def weighted_f1(pred: Labels, labels: Labels, weights: NDArray[np.float64]) -> Floats:
    """F1 per row of ``weights`` [R, N] (0.0 where undefined)."""
    tp = weights @ (pred & labels).astype(np.float64)
    fp = weights @ (pred & ~labels).astype(np.float64)
    fn = weights @ (~pred & labels).astype(np.float64)
    den = 2 * tp + fp + fn
    return np.divide(2 * tp, den, out=np.zeros_like(den), where=den > 0)


def weighted_auc(scores: Floats, labels: Labels, weights: NDArray[np.float64]) -> Floats:
    """ROC-AUC per row of ``weights`` [R, N] (ties count one half; NaN when a class has no weight)."""
    order = np.argsort(scores, kind="mergesort")
    s, y = scores[order], labels[order]
    w = weights[:, order]
    starts = np.flatnonzero(np.r_[True, np.diff(s) != 0]) if len(s) else np.zeros(0, dtype=np.int64)
    pos = np.add.reduceat(w * y, starts, axis=1)
    neg = np.add.reduceat(w * ~y, starts, axis=1)
    neg_below = np.cumsum(neg, axis=1) - neg
    pairs = pos.sum(axis=1) * neg.sum(axis=1)
    wins = np.sum(pos * (neg_below + 0.5 * neg), axis=1)
    auc: Floats = np.divide(wins, pairs, out=np.full_like(wins, np.nan), where=pairs > 0)
    return auc


def bootstrap(
    scores: Floats, labels: Labels, threshold: float, resamples: int, seed: int
) -> dict[str, object]:
    """95 % percentile intervals of F1 at ``threshold`` and of ROC-AUC over ``resamples`` resamples."""
    n = len(scores)
    if resamples <= 0 or n == 0:
        return {"resamples": 0, "f1": [None, None], "roc_auc": [None, None]}
    rng = np.random.default_rng(seed)
    pred = scores >= threshold
    chunk = max(1, _CHUNK_ELEMENTS // n)
    f1s, aucs = [], []
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        weights = rng.multinomial(n, np.full(n, 1.0 / n), size=size).astype(np.float64)
        f1s.append(weighted_f1(pred, labels, weights))
        aucs.append(weighted_auc(scores, labels, weights))
    return {
        "resamples": int(resamples),
        "f1": _interval(np.concatenate(f1s)),
        "roc_auc": _interval(np.concatenate(aucs)),
    }


def _interval(values: Floats) -> list[float | None]:
    finite = values[np.isfinite(values)]
    if not len(finite):
        return [None, None]
    lo, hi = np.percentile(finite, [2.5, 97.5])
    return [float(lo), float(hi)]

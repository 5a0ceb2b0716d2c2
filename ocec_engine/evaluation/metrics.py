"""Binary metrics on score arrays (numpy only; definitions: docs/evaluation.md).

"open" (label 1) is the positive class and a sample is predicted open when P(open) >= threshold.
Undefined ratios (0/0) are 0.0, as scikit-learn's ``zero_division=0``. Every curve is computed
once from the scores sorted in descending order, one point per distinct score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Floats = NDArray[np.float64]
Labels = NDArray[np.bool_]


def as_arrays(scores: object, labels: object) -> tuple[Floats, Labels]:
    """float64 scores and boolean labels (True = open) of equal length."""
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    y = np.asarray(labels).reshape(-1).astype(bool)
    if s.shape != y.shape:
        raise ValueError(f"{len(s)} scores but {len(y)} labels")
    return s, y


def ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else 0.0


@dataclass(frozen=True)
class Counts:
    tp: int
    fp: int
    tn: int
    fn: int

    def scores(self) -> dict[str, float]:
        return {
            "f1": ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn),
            "precision": ratio(self.tp, self.tp + self.fp),
            "recall": ratio(self.tp, self.tp + self.fn),
            "accuracy": ratio(self.tp + self.tn, self.tp + self.fp + self.tn + self.fn),
        }

    def to_dict(self) -> dict[str, int]:
        return {"tp": self.tp, "fp": self.fp, "tn": self.tn, "fn": self.fn}


def counts_at(scores: Floats, labels: Labels, threshold: float) -> Counts:
    pred = scores >= threshold
    tp = int(np.sum(pred & labels))
    fp = int(np.sum(pred & ~labels))
    return Counts(tp=tp, fp=fp, tn=int(np.sum(~labels)) - fp, fn=int(np.sum(labels)) - tp)


def at_threshold(scores: Floats, labels: Labels, threshold: float) -> dict[str, float | int]:
    """F1, precision, recall, accuracy and the confusion counts at one threshold."""
    counts = counts_at(scores, labels, threshold)
    return {"threshold": float(threshold), **counts.scores(), **counts.to_dict()}


def sweep(scores: Floats, labels: Labels, thresholds: Floats) -> list[dict[str, float | int]]:
    """Confusion counts at each threshold (vectorised: one sort, one searchsorted per class)."""
    pos = np.sort(scores[labels])
    neg = np.sort(scores[~labels])
    tp = len(pos) - np.searchsorted(pos, thresholds, side="left")  # scores >= t
    fp = len(neg) - np.searchsorted(neg, thresholds, side="left")
    n_pos, n_neg = len(pos), len(neg)
    return [
        {
            "threshold": round(float(t), 6),
            "tp": int(a),
            "fp": int(b),
            "tn": n_neg - int(b),
            "fn": n_pos - int(a),
        }
        for t, a, b in zip(thresholds, tp, fp, strict=True)
    ]


@dataclass(frozen=True)
class Curve:
    """Cumulative counts when predicting open for scores >= each distinct score (descending)."""

    thresholds: Floats  # distinct scores, descending
    tp: NDArray[np.int64]
    fp: NDArray[np.int64]
    positives: int
    negatives: int

    @property
    def fn(self) -> NDArray[np.int64]:
        return self.positives - self.tp

    @property
    def tn(self) -> NDArray[np.int64]:
        return self.negatives - self.fp


def curve(scores: Floats, labels: Labels) -> Curve:
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], labels[order]
    last_of_run = np.r_[np.diff(s) != 0, True] if len(s) else np.zeros(0, dtype=bool)
    tp = np.cumsum(y)[last_of_run]
    fp = np.cumsum(~y)[last_of_run]
    return Curve(s[last_of_run], tp.astype(np.int64), fp.astype(np.int64), int(y.sum()), int((~y).sum()))


def roc_points(c: Curve) -> tuple[Floats, Floats]:
    """(fpr, tpr) from (0, 0) through every distinct threshold."""
    fpr = np.r_[0.0, c.fp / c.negatives] if c.negatives else np.zeros(len(c.fp) + 1)
    tpr = np.r_[0.0, c.tp / c.positives] if c.positives else np.zeros(len(c.tp) + 1)
    return fpr, tpr


def roc_auc(c: Curve) -> float:
    """Area under the ROC curve (trapezoids; ties count one half). 0.0 when a class is absent."""
    if not c.positives or not c.negatives:
        return 0.0
    fpr, tpr = roc_points(c)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


def pr_points(c: Curve) -> tuple[Floats, Floats]:
    """(recall, precision) at every distinct threshold, descending thresholds (recall rising)."""
    recall = c.tp / c.positives if c.positives else np.zeros(len(c.tp))
    precision = c.tp / np.maximum(c.tp + c.fp, 1)
    return recall.astype(np.float64), precision.astype(np.float64)


def pr_auc(c: Curve) -> float:
    """Average precision: sum over thresholds of (R_k - R_{k-1}) * P_k (scikit-learn's definition)."""
    if not c.positives:
        return 0.0
    recall, precision = pr_points(c)
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def eer(c: Curve) -> dict[str, float]:
    """Equal error rate: at the distinct threshold where FPR and FNR are closest, their mean."""
    if not c.positives or not c.negatives or not len(c.thresholds):
        return {"value": 0.0, "threshold": 0.5}
    fpr = c.fp / c.negatives
    fnr = c.fn / c.positives
    i = int(np.argmin(np.abs(fpr - fnr)))
    return {"value": float((fpr[i] + fnr[i]) / 2.0), "threshold": float(c.thresholds[i])}


def downsample(n: int, limit: int) -> NDArray[np.int64]:
    """At most ``limit`` indices into n points, evenly spread, first and last kept."""
    if n <= limit:
        return np.arange(n, dtype=np.int64)
    return np.unique(np.round(np.linspace(0, n - 1, limit)).astype(np.int64))


def curves(c: Curve, limit: int = 200) -> dict[str, dict[str, list[float]]]:
    fpr, tpr = roc_points(c)
    recall, precision = pr_points(c)
    r = downsample(len(fpr), limit)
    p = downsample(len(recall), limit)
    return {
        "roc": {"fpr": _rounded(fpr[r]), "tpr": _rounded(tpr[r])},
        "pr": {"recall": _rounded(recall[p]), "precision": _rounded(precision[p])},
    }


def _rounded(values: Floats) -> list[float]:
    return [round(float(v), 6) for v in values]

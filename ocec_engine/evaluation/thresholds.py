"""Choosing a decision threshold on P(open): F1-optimal, or a target precision / recall for "closed".

Candidates are the distinct scores (predict open when P(open) >= t) plus one just above the highest
score (everything closed). "closed" is the negative class: precision_closed = TN / (TN + FN) and
recall_closed = TN / (TN + FP), counting a sample as predicted closed when P(open) < t.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from ocec_engine.evaluation.metrics import Curve, Floats


class ThresholdRule(StrEnum):
    FIXED = "fixed"
    F1 = "f1"
    PRECISION_CLOSED = "precision_closed"
    RECALL_CLOSED = "recall_closed"


DEFAULT_TARGETS = {ThresholdRule.PRECISION_CLOSED: 0.95, ThresholdRule.RECALL_CLOSED: 0.95}


@dataclass(frozen=True)
class Candidates:
    thresholds: Floats
    f1: Floats
    precision_closed: Floats
    recall_closed: Floats


def candidates(c: Curve) -> Candidates:
    top = np.nextafter(c.thresholds[0], np.inf) if len(c.thresholds) else 0.5
    thresholds = np.r_[top, c.thresholds]
    tp = np.r_[0, c.tp].astype(np.float64)
    fp = np.r_[0, c.fp].astype(np.float64)
    fn = c.positives - tp
    tn = c.negatives - fp
    return Candidates(
        thresholds=thresholds,
        f1=_safe(2 * tp, 2 * tp + fp + fn),
        precision_closed=_safe(tn, tn + fn),
        recall_closed=_safe(tn, np.full_like(tn, c.negatives)),
    )


def _safe(num: Floats, den: Floats) -> Floats:
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def f1_optimal(c: Curve) -> dict[str, float]:
    """The threshold of the highest F1 (the highest such threshold on ties)."""
    cand = candidates(c)
    i = int(np.argmax(cand.f1))
    return {"threshold": float(cand.thresholds[i]), "f1": float(cand.f1[i])}


def for_target(c: Curve, rule: ThresholdRule, target: float) -> dict[str, float | None]:
    """Meet ``target`` on the rule's metric, best on the other one; threshold None when unreachable."""
    cand = candidates(c)
    if rule is ThresholdRule.PRECISION_CLOSED:
        met, other = cand.precision_closed, cand.recall_closed
    elif rule is ThresholdRule.RECALL_CLOSED:
        met, other = cand.recall_closed, cand.precision_closed
    else:
        raise ValueError(f"no target for threshold rule {rule}")
    feasible = np.flatnonzero(met >= target - 1e-12)
    if not len(feasible):
        return {"target": float(target), "threshold": None, "achieved": None}
    best = feasible[np.lexsort((-met[feasible], -other[feasible]))[0]]
    return {"target": float(target), "threshold": float(cand.thresholds[best]), "achieved": float(met[best])}

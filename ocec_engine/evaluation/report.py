"""The evaluation report (schema 1, keys in EVAL_CONTRACT / docs/evaluation.md) from scores and labels."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ocec_engine.evaluation import metrics
from ocec_engine.evaluation.bootstrap import bootstrap
from ocec_engine.evaluation.calibration import calibration
from ocec_engine.evaluation.metrics import Curve, Floats, Labels
from ocec_engine.evaluation.thresholds import DEFAULT_TARGETS, ThresholdRule, f1_optimal, for_target

SCHEMA = 1
SWEEP = np.round(np.arange(101) / 100.0, 2)  # 0.00, 0.01, ..., 1.00
CURVE_POINTS = 200


@dataclass(frozen=True)
class Options:
    threshold_rule: str = ThresholdRule.F1
    target: float | None = None  # the threshold itself for "fixed"; the target metric value otherwise
    top_k: int = 16
    bootstrap: int = 1000
    seed: int = 0


@dataclass
class Choice:
    value: float
    rule: ThresholdRule
    target: float | None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "rule": self.rule.value, "target": self.target}


def choose_threshold(c: Curve, rule: str, target: float | None) -> Choice:
    """The decision threshold of ``rule``; 0.5 (with a note) when a target cannot be met."""
    which = ThresholdRule(rule)
    if which is ThresholdRule.FIXED:
        value = 0.5 if target is None else float(target)
        return Choice(value, which, value)
    if which is ThresholdRule.F1:
        return Choice(f1_optimal(c)["threshold"], which, None)
    goal = DEFAULT_TARGETS[which] if target is None else float(target)
    found = for_target(c, which, goal)
    if found["threshold"] is None:
        return Choice(0.5, which, goal, [f"{which.value} {goal:g} is not reachable on this data: 0.5 used"])
    return Choice(float(found["threshold"]), which, goal)


def worst_indices(scores: Floats, labels: Labels, threshold: float, k: int) -> list[int]:
    """The ``k`` misclassified samples whose score is furthest on the wrong side (most confident)."""
    wrong = np.flatnonzero((scores >= threshold) != labels)
    confidence = np.where(labels[wrong], 1.0 - scores[wrong], scores[wrong])
    order = np.argsort(-confidence, kind="mergesort")
    return [int(i) for i in wrong[order[:k]]]


def metrics_report(scores: Floats, labels: Labels, options: Options) -> tuple[dict[str, Any], Choice]:
    """Every report key computed from the scores (not model, data, files, worst rows or seconds)."""
    c = metrics.curve(scores, labels)
    choice = choose_threshold(c, options.threshold_rule, options.target)
    targets = {
        rule: options.target if options.threshold_rule == rule and options.target is not None else goal
        for rule, goal in DEFAULT_TARGETS.items()
    }
    report = {
        "schema": SCHEMA,
        "threshold": choice.to_dict(),
        "at_0_5": metrics.at_threshold(scores, labels, 0.5),
        "at_threshold": metrics.at_threshold(scores, labels, choice.value),
        "roc_auc": metrics.roc_auc(c),
        "pr_auc": metrics.pr_auc(c),
        "eer": metrics.eer(c),
        "thresholds": {
            "f1_optimal": f1_optimal(c),
            **{rule.value: for_target(c, rule, goal) for rule, goal in targets.items()},
        },
        "calibration": calibration(scores, labels),
        "bootstrap": bootstrap(scores, labels, choice.value, options.bootstrap, options.seed),
        "sweep": metrics.sweep(scores, labels, SWEEP),
        "curves": metrics.curves(c, CURVE_POINTS),
        "notes": list(choice.notes),
    }
    return report, choice

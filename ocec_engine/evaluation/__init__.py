"""Evaluation: score a model on a dataset split and write a deployer's report (docs/evaluation.md).

One concept per module: ``metrics`` (counts, ROC/PR curves, AUCs, EER), ``thresholds`` (rules),
``calibration`` (ECE), ``bootstrap`` (intervals) on numpy arrays; ``dataset`` (a split with its
sources), ``models`` (checkpoint or ONNX), ``scoring``, ``sheet`` (the worst images), ``report``
(the JSON), ``run`` (``evaluate_to_dir``).
"""

from __future__ import annotations

from ocec_engine.evaluation.run import evaluate_to_dir

__all__ = ["evaluate_to_dir"]

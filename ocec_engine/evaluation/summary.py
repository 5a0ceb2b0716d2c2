"""The few lines ``python -m ocec_engine evaluate`` prints about a report."""

from __future__ import annotations

from typing import Any


def _interval(pair: list[float | None]) -> str:
    lo, hi = pair
    return "n/a" if lo is None or hi is None else f"[{lo:.3f}, {hi:.3f}]"


def summary_lines(report: dict[str, Any]) -> list[str]:
    data, at, th = report["data"], report["at_threshold"], report["threshold"]
    half, boot = report["at_0_5"], report["bootstrap"]
    return [
        f"model {report['model']['path']} ({report['model']['format']})",
        f"data {data['root']} split {data['split']}: {data['samples']} samples "
        f"({data['open']} open, {data['closed']} closed)",
        f"at 0.5: F1 {half['f1']:.4f} precision {half['precision']:.4f} recall {half['recall']:.4f} "
        f"accuracy {half['accuracy']:.4f}",
        f"at {th['value']:.4f} ({th['rule']}): F1 {at['f1']:.4f} precision {at['precision']:.4f} "
        f"recall {at['recall']:.4f} accuracy {at['accuracy']:.4f} "
        f"(tp {at['tp']} fp {at['fp']} tn {at['tn']} fn {at['fn']})",
        f"ROC-AUC {report['roc_auc']:.4f}  PR-AUC {report['pr_auc']:.4f}  EER {report['eer']['value']:.4f}  "
        f"ECE {report['calibration']['ece']:.4f}",
        f"95% bootstrap ({boot['resamples']}): F1 {_interval(boot['f1'])}  "
        f"ROC-AUC {_interval(boot['roc_auc'])}",
        f"{len(report['worst'])} most confidently wrong images in {report['files']['worst_sheet']}",
        *[f"note: {note}" for note in report.get("notes", [])],
    ]

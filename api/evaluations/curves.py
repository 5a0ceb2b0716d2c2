"""An evaluation report's ROC and PR curves as PNG images (``/evaluations/{id}/roc.png``, ``pr.png``,
and the same for a job's own evaluation tags), drawn from the report's ``curves`` like the job plot."""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any

from api.figures import SERIES_COLOURS, new_figure, plain_legend, png_of, style
from jobstore.text import visible


class Curve(StrEnum):
    ROC = "roc"
    PR = "pr"


# curve → (x key, y key, title, x label, y label, the report's area under it)
_AXES = {
    Curve.ROC: ("fpr", "tpr", "ROC", "false positive rate", "true positive rate (recall of open)", "roc_auc"),
    Curve.PR: ("recall", "precision", "precision-recall", "recall (open)", "precision (open)", "pr_auc"),
}


def _numbers(values: Any) -> list[float]:
    if not isinstance(values, list):
        return []
    return [float(v) if isinstance(v, int | float) and math.isfinite(v) else math.nan for v in values]


def render_curve(reports: dict[str, dict[str, Any]], curve: Curve, width: int, height: int) -> bytes:
    """One panel with the curve of each named report (one colour each), its area in the legend."""
    x_key, y_key, title, x_label, y_label, area_key = _AXES[curve]
    figure = new_figure(width, height)
    ax = figure.subplots()
    style(ax, title)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    if curve == Curve.ROC:
        ax.plot([0, 1], [0, 1], color="#94a3b8", linestyle=":", linewidth=1)
    drawn = False
    for index, (name, report) in enumerate(reports.items()):
        points = (report.get("curves") or {}).get(curve.value) or {}
        xs, ys = _numbers(points.get(x_key)), _numbers(points.get(y_key))
        if not xs or len(xs) != len(ys):
            continue
        area = report.get(area_key)
        label = visible(name) + (f"  (AUC {area:.3f})" if isinstance(area, int | float) else "")
        ax.plot(xs, ys, label=label, color=SERIES_COLOURS[index % len(SERIES_COLOURS)], linewidth=1.6)
        drawn = True
    if drawn:
        plain_legend(ax)
    else:
        ax.text(0.5, 0.5, "no curve in this report", ha="center", va="center", transform=ax.transAxes)
    return png_of(figure)

"""Matplotlib's object API on the Agg canvas, shared by every PNG the API draws (a job's curves,
an evaluation's ROC and PR curves): no pyplot global state, so threads never share a figure."""

from __future__ import annotations

import io
import threading
from typing import Any

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

PNG = "image/png"
DPI = 100
SERIES_COLOURS = ("#2563eb", "#dc2626", "#059669", "#0891b2", "#db2777", "#65a30d")  # none a stage colour
GRID = "#e2e8f0"
_render_lock = threading.Lock()  # one render at a time: Agg is CPU-bound and the font cache is shared


def png_responses(what: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"content": {PNG: {}}, "description": what}}


def new_figure(width: int, height: int) -> Figure:
    return Figure(figsize=(width / DPI, height / DPI), dpi=DPI, layout="constrained")


def style(ax: Axes, title: str) -> None:
    ax.set_title(title, fontsize="medium", loc="left")
    ax.grid(True, color=GRID, linewidth=0.8)


def plain_legend(ax: Axes) -> None:
    legend = ax.legend(fontsize="small", loc="best")
    for text in legend.get_texts():
        text.set_parse_math(False)  # names are user-facing text, not TeX


def png_of(figure: Figure) -> bytes:
    with _render_lock:
        buffer = io.BytesIO()
        FigureCanvasAgg(figure).print_png(buffer)
    return buffer.getvalue()

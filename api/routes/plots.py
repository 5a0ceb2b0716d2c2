"""``GET /jobs/{id}/plot.png``: the job page's curves as one picture, for curl users.

Four panels per epoch — train/val loss, val F1 with precision and recall, lr per parameter group
(log scale), Fisher ratio — with every stage boundary drawn as a vertical line and listed under the
panels with its reason, the same marks the dashboard draws (``api/static/js/stages.js``).
Matplotlib's object API on the Agg canvas: no pyplot global state, so threads do not share figures.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from matplotlib.axes import Axes

from api.deps import JobDep, SessionDep
from api.errors import with_problems
from api.figures import PNG, SERIES_COLOURS, new_figure, plain_legend, png_of, png_responses, style
from jobstore import repo
from jobstore.events import EventKind
from jobstore.models import EpochMetric, Job, JobEvent
from jobstore.text import visible

router = APIRouter(prefix="/jobs", tags=["plots"])

STAGE_COLOURS = {1: "#64748b", 2: "#d97706", 3: "#7c3aed"}

PLOT_RESPONSES = with_problems(png_responses("the curves as a PNG image"))


@dataclass(frozen=True)
class StageMark:
    """A stage boundary: the stage starts at ``epoch`` (the line sits half an epoch before it)."""

    epoch: int
    to_stage: int
    label: str


@router.get("/{job_id}/plot.png", response_class=Response, responses=PLOT_RESPONSES)
def job_plot(
    session: SessionDep,
    job: JobDep,
    width: Annotated[int, Query(ge=400, le=3000, description="pixels")] = 1200,
    height: Annotated[int, Query(ge=300, le=2400, description="pixels")] = 800,
) -> Response:
    """Render the job's loss, F1/precision/recall, lr and Fisher-ratio curves with stage boundaries."""
    metrics = repo.list_metrics(session, job_id=job.id, limit=None)
    events = repo.list_events(
        session, job_id=job.id, limit=1_000_000, kinds=[EventKind.STAGE_CHANGE, EventKind.RESTORED]
    )
    png = render(job, metrics, stage_marks(events), width, height)
    return Response(png, media_type=PNG, headers={"Cache-Control": "no-store"})


def stage_marks(events: Iterable[JobEvent]) -> list[StageMark]:
    """Stage boundaries still on the job's timeline, one per epoch (the latest wins).

    A boundary at epoch U is dropped when a later restore went back before it into a lower stage
    (the timeline it was on was abandoned).
    """
    marks: dict[int, StageMark] = {}
    for event in events:
        if event.kind == EventKind.RESTORED:
            stage, epoch = int(event.evidence.get("stage") or 0), int(event.evidence.get("epoch") or 0)
            marks = {u: m for u, m in marks.items() if not (u > epoch and m.to_stage > stage)}
        elif _is_boundary(event):
            assert event.epoch is not None and event.to_stage is not None
            marks[event.epoch] = StageMark(event.epoch, event.to_stage, mark_label(event))
    return [marks[epoch] for epoch in sorted(marks)]


def _is_boundary(event: JobEvent) -> bool:
    trigger = event.evidence.get("trigger")
    return (
        event.kind == EventKind.STAGE_CHANGE
        and trigger != "start"
        and event.from_stage is not None
        and event.to_stage is not None
        and event.epoch is not None
    )


def mark_label(event: JobEvent) -> str:
    """``stage 2 — gate: F1 0.812 ≥ 0.80``, ``stage 2 — forced by alice: …``, ``stage 2 — resume: …``."""
    evidence, trigger = event.evidence, str(event.evidence.get("trigger", ""))
    f1, gate = _number(evidence.get("val_f1")), _number(evidence.get("gate_f1"))
    if trigger == "gate" and f1 is not None and gate is not None:
        why = f"gate: F1 {f1:.3f} ≥ {gate:.2f}"
    elif trigger == "policy" and f1 is not None and gate is not None:
        why = f"policy proceed: F1 {f1:.3f} < {gate:.2f}"
    elif trigger == "forced":
        forced = event.reason.startswith("forced by")  # the engine's own wording names the actor
        why = event.reason if forced else f"forced by {event.actor}: {event.reason}"
    else:
        why = f"{trigger or 'change'}: {event.reason}" if event.reason else trigger or "change"
    return f"stage {event.to_stage} — {visible(why)}"  # stored text: escapes shown, not obeyed


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


# --- drawing ------------------------------------------------------------------------------------


def render(
    job: Job, metrics: Sequence[EpochMetric], marks: Sequence[StageMark], width: int, height: int
) -> bytes:
    """The PNG bytes: one panel per chart of the job page, boundaries in every panel, reasons below."""
    figure = new_figure(width, height)
    title = f"{visible(job.name)}  ·  {job.state}  ·  stage {job.stage}  ·  epoch {job.epoch}/{job.epochs}"
    figure.suptitle(title, parse_math=False, fontsize="large")
    epochs = [m.epoch for m in metrics]
    grid = figure.subplots(2, 2, sharex=True).ravel()
    for ax, (name, series, log) in zip(grid, _panels(metrics), strict=True):
        _panel(ax, name, epochs, series, log)
        _draw_marks(ax, marks)
    for ax in grid[2:]:  # the x axis is shared: label the bottom row only
        ax.set_xlabel("epoch")
    if not metrics:
        figure.text(0.5, 0.5, "no epochs recorded yet", ha="center", va="center", fontsize="x-large")
    if marks:
        footer = "\n".join(f"epoch {m.epoch}: {m.label}" for m in marks[-6:])
        figure.supxlabel(footer, parse_math=False, fontsize="small", ha="left", x=0.01)
    return png_of(figure)


Series = dict[str, list[float | None]]


def _panels(metrics: Sequence[EpochMetric]) -> list[tuple[str, Series, bool]]:
    """(title, named series, log scale) per panel, in the job page's order."""

    def col(name: str) -> list[float | None]:
        return [_number(getattr(m, name)) for m in metrics]

    return [
        ("loss", {"train loss": col("train_loss"), "val loss": col("val_loss")}, False),
        (
            "validation F1, precision, recall",
            {"F1": col("val_f1"), "precision": col("val_precision"), "recall": col("val_recall")},
            False,
        ),
        ("learning rate per param group", _lr_series(metrics), True),
        ("Fisher ratio", {"Fisher ratio": col("fisher_ratio")}, False),
    ]


def _lr_series(metrics: Sequence[EpochMetric]) -> Series:
    groups = sorted({group for m in metrics for group in m.lrs})
    return {group: [_positive(m.lrs.get(group)) for m in metrics] for group in groups}


def _positive(value: Any) -> float | None:
    number = _number(value)
    return number if number is not None and number > 0 else None


def _panel(ax: Axes, title: str, epochs: list[int], series: Series, log: bool) -> None:
    style(ax, title)
    drawn = False
    for index, (name, values) in enumerate(series.items()):
        points = [(e, v) for e, v in zip(epochs, values, strict=True) if v is not None]
        if not points:
            continue
        xs, ys = zip(*points, strict=True)
        colour = SERIES_COLOURS[index % len(SERIES_COLOURS)]
        ax.plot(xs, ys, label=name, color=colour, marker="o" if len(points) <= 60 else None, markersize=3)
        drawn = True
    if log and drawn:
        ax.set_yscale("log")
    if drawn:
        plain_legend(ax)


def _draw_marks(ax: Axes, marks: Sequence[StageMark]) -> None:
    for mark in marks:
        colour = STAGE_COLOURS.get(mark.to_stage, "#0f172a")
        ax.axvline(mark.epoch - 0.5, color=colour, linestyle="--", linewidth=1.2)
        ax.annotate(
            f"stage {mark.to_stage}", xy=(mark.epoch - 0.5, 1.0), xycoords=("data", "axes fraction"),
            xytext=(3, -12), textcoords="offset points", color=colour, fontsize="small",
        )  # fmt: skip

"""Per-epoch metrics of a job."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy import Engine, Row
from starlette.concurrency import run_in_threadpool

from api.deps import EngineDep, SettingsDep
from api.errors import PROBLEM_RESPONSES
from api.paging import page_size
from api.schemas import CURSOR_MAX, MetricsPage
from jobstore import repo
from jobstore.db import read_session
from jobstore.models import EpochMetric

router = APIRouter(prefix="/jobs", tags=["metrics"])

CHART_POINTS_MIN, CHART_POINTS_MAX = 4, 10_000
POINTS = (
    "thin to about this many rows for a chart (all live rows after after_epoch, one answer): each of "
    "points/4 buckets keeps its first and last row and the rows with the min and max of every charted "
    "value; every stage keeps its first and last row"
)


@router.get("/{job_id}/metrics", response_model=MetricsPage, responses=PROBLEM_RESPONSES)
async def list_metrics(
    job_id: str,
    engine: EngineDep,
    settings: SettingsDep,
    after_epoch: Annotated[int, Query(ge=0, le=CURSOR_MAX, description="rows with epoch > after_epoch")] = 0,
    limit: Annotated[int | None, Query(ge=1, description="rows per page (bounded by the server)")] = None,
    include_superseded: Annotated[bool, Query(description="also rows rolled back by a resume")] = False,
    points: Annotated[int | None, Query(ge=CHART_POINTS_MIN, le=CHART_POINTS_MAX, description=POINTS)] = None,
) -> MetricsPage:
    """List a job's epoch metrics in epoch order (train/val loss, F1, precision, recall, lr per group...).

    With ``points``, one answer for a chart instead of pages: the live rows after ``after_epoch``
    thinned on the server, keeping each bucket's min and max and every stage's first and last row."""
    size = page_size(settings, limit, whole=True)
    read = partial(metrics_page, engine, job_id, after_epoch, size, include_superseded, points)
    return await run_in_threadpool(read)  # the blocking read in one thread hop (see api.routes.jobs)


def metrics_page(
    engine: Engine, job_id: str, after_epoch: int, size: int, include_superseded: bool, points: int | None
) -> MetricsPage:
    with read_session(engine) as session:
        job = repo.get_job(session, job_id)  # 404 for an unknown id
        if points is not None:
            chart = repo.chart_metrics(session, job_id=job.id, points=points, after_epoch=after_epoch)
            return MetricsPage.model_validate({"data": [_fields(r) for r in chart], "next_after_epoch": None})
        rows = repo.metric_rows(
            session, job_id=job.id, after_epoch=after_epoch, limit=size + 1,
            include_superseded=include_superseded,
        )  # fmt: skip
    page, next_after = _whole_epochs(rows, size)
    return MetricsPage.model_validate(
        {"data": [_fields(row) for row in page], "next_after_epoch": next_after}
    )


def _whole_epochs(rows: list[Row[Any]], size: int) -> tuple[list[Row[Any]], int | None]:
    """Cut a page at an epoch boundary (an epoch's superseded rows stay with it) when there is more."""
    if len(rows) <= size:
        return rows, None
    page, following = rows[:size], rows[size]
    if following.epoch == page[-1].epoch:  # the page would split an epoch: end it before that epoch
        page = [row for row in page if row.epoch < following.epoch] or page
    return page, page[-1].epoch


def _fields(row: EpochMetric | Row[Any]) -> EpochMetric | dict[str, Any]:
    """A chart row as the response model reads it fastest: a plain row as a dict (validating a
    row's mapping or attributes costs about twice as much), an ORM object as it is."""
    return dict(row._mapping) if isinstance(row, Row) else row

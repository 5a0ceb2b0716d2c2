"""A fine-tune job's own evaluation (model A before, each stage's best, best.pt after; on B and, when
given, on the old domain A): the before → after table, each report, their images and curves."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import FileResponse

from api.deps import JobDep, SettingsDep
from api.errors import PROBLEM_RESPONSES, problems
from api.evaluations.curves import Curve, render_curve
from api.evaluations.views import image_file, job_evaluation, job_folder, job_report, job_reports, not_found
from api.figures import PNG, png_responses
from api.schemas.evaluations import JobEvaluation

router = APIRouter(prefix="/jobs", tags=["evaluations"])

IMAGE_RESPONSES = {**png_responses("a PNG image"), **problems(404, 422)}
Tag = Annotated[str, Path(pattern=r"^[A-Za-z0-9_]{1,64}$", description="before_B, after_B, before_A, ...")]


@router.get("/{job_id}/evaluation", response_model=JobEvaluation, responses=PROBLEM_RESPONSES)
def get_job_evaluation(settings: SettingsDep, job: JobDep) -> JobEvaluation:
    """The job's before → after evaluation table and every report it wrote (empty until it has)."""
    return job_evaluation(settings.runs_root, job)


@router.get("/{job_id}/evaluation/{tag}/worst.png", response_class=FileResponse, responses=IMAGE_RESPONSES)
def job_worst_sheet(settings: SettingsDep, job: JobDep, tag: Tag) -> FileResponse:
    """The contact sheet of one of the job's evaluations."""
    return FileResponse(image_file(settings.runs_root, job_folder(job, tag), None), media_type=PNG)


@router.get(
    "/{job_id}/evaluation/{tag}/worst/{index}.png", response_class=FileResponse, responses=IMAGE_RESPONSES
)
def job_worst_crop(
    settings: SettingsDep, job: JobDep, tag: Tag, index: Annotated[int, Path(ge=0, le=999)]
) -> FileResponse:
    """One worst crop of one of the job's evaluations."""
    return FileResponse(image_file(settings.runs_root, job_folder(job, tag), index), media_type=PNG)


@router.get("/{job_id}/evaluation/{curve}.png", response_class=Response, responses=IMAGE_RESPONSES)
def job_curve_png(
    settings: SettingsDep,
    job: JobDep,
    curve: Curve,
    tag: Annotated[list[str] | None, Query(description="the tags to draw (default: all)")] = None,
    width: Annotated[int, Query(ge=300, le=2000)] = 640,
    height: Annotated[int, Query(ge=240, le=2000)] = 480,
) -> Response:
    """The ROC or PR curves of the job's evaluations, one line per tag."""
    reports = (
        {name: job_report(settings.runs_root, job, name) for name in tag}
        if tag
        else job_reports(settings.runs_root, job)
    )
    if not reports:
        raise not_found(f"job {job.id} has no evaluation yet")
    png = render_curve(reports, curve, width, height)
    return Response(png, media_type=PNG, headers={"Cache-Control": "no-store"})

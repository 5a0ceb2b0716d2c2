"""Checkpoint records of a job and downloads of its artifacts (best .pt, .onnx, ...)."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse

from api.deps import JobDep, SessionDep, SettingsDep
from api.errors import PROBLEM_RESPONSES, ApiError, ProblemType, with_problems
from api.paths import inside
from api.schemas import CheckpointPublic
from jobstore import repo
from jobstore.artifacts import ALIASES, BEST_ONNX, BEST_PT, LAST_PT
from jobstore.models import CheckpointRecord, Job

router = APIRouter(prefix="/jobs", tags=["checkpoints"])


def artifact_url(job: Job, path: str) -> str:
    return f"/jobs/{job.id}/artifacts/{path}"


@router.get("/{job_id}/checkpoints", response_model=list[CheckpointPublic], responses=PROBLEM_RESPONSES)
def list_checkpoints(
    session: SessionDep,
    job: JobDep,
    include_superseded: Annotated[
        bool, Query(description="also those of a timeline a resume abandoned")
    ] = False,
) -> list[CheckpointPublic]:
    """List a job's checkpoint records (epoch order) with their download links; a pruned one says
    when its file went (``pruned_at``) and has no link."""
    records = repo.list_checkpoints(session, job_id=job.id, include_superseded=include_superseded)
    return [_public(job, record) for record in records]


def _public(job: Job, record: CheckpointRecord) -> CheckpointPublic:
    download = artifact_url(job, record.path) if record.pruned_at is None else None
    return CheckpointPublic.model_validate(record).model_copy(update={"download": download})


@router.get(
    "/{job_id}/artifacts/{name:path}",
    response_class=FileResponse,
    responses=with_problems({200: {"content": {"application/octet-stream": {}}, "description": "the file"}}),
)
def download_artifact(session: SessionDep, settings: SettingsDep, job: JobDep, name: str) -> FileResponse:
    """Download best.pt, last.pt, best.onnx, or any recorded checkpoint by its path."""
    relative = _resolve_name(session, job, name)
    if relative is None:
        detail = f"job {job.id} has no artifact {name!r}: try {', '.join(ALIASES)} or a /checkpoints path"
        raise ApiError(404, ProblemType.NOT_FOUND, detail, "Artifact not found", job_id=job.id)
    path = inside(settings.runs_root, relative)
    if path is None:
        detail = f"the file of {name!r} is not in the runs root (deleted, or never written there)"
        raise ApiError(404, ProblemType.NOT_FOUND, detail, "Artifact not found", job_id=job.id)
    return FileResponse(path, filename=PurePosixPath(relative).name, media_type="application/octet-stream")


def _resolve_name(session: SessionDep, job: Job, name: str) -> str | None:
    """An alias names the job's current file; anything else must be the path of one of its records."""
    aliases = {BEST_PT: job.best_checkpoint, LAST_PT: job.last_checkpoint, BEST_ONNX: job.onnx_path}
    if name in aliases:
        return aliases[name]
    records = repo.list_checkpoints(session, job_id=job.id, include_superseded=True)
    return next((record.path for record in records if record.path == name), None)

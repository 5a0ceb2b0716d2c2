"""``POST /evaluations``: the model and data a request names → paths confined to their roots.

A model is an upload (under the model root), a file under the model root, or a job's artifact
(``best``, ``last``, ``onnx``, ``stage:N``, ``epoch:N``; under the runs root); data is an upload or a
folder under the data root. Every refusal is a 422 naming the field (``model.upload``, ``data.path``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session

from api.errors import invalid_field
from api.paths import PathError, PathKind, confine, inside
from api.schemas.evaluations import DataSource, ModelSource
from jobstore import repo
from jobstore.artifacts import BEST_ONNX
from jobstore.errors import InvalidSelectorError, JobNotFoundError
from jobstore.repo.evaluations import ModelRoot
from jobstore.repo.uploads import UploadKind, get_upload


@dataclass(frozen=True)
class Resolved:
    root: ModelRoot
    path: str  # relative to the root


def _one_of(field: str, given: dict[str, object]) -> str:
    named = [name for name, value in given.items() if value is not None]
    if len(named) != 1:
        raise invalid_field(field, f"name exactly one of {', '.join(given)}", "one_source")
    return named[0]


def _upload_path(session: Session, kind: UploadKind, upload_id: str, field: str) -> str:
    upload = get_upload(session, kind=kind, upload_id=upload_id)
    if upload is None:
        raise invalid_field(field, f"no {kind.value} upload with id {upload_id!r}", PathError.MISSING)
    return upload.path


def resolve_model(session: Session, model: ModelSource, model_root: Path, runs_root: Path) -> Resolved:
    which = _one_of("model", {"upload": model.upload, "path": model.path, "job": model.job})
    if which == "job":
        assert model.job is not None
        return Resolved(ModelRoot.RUNS, _artifact(session, model.job, model.artifact, runs_root))
    if which == "upload":
        assert model.upload is not None
        path = _upload_path(session, UploadKind.MODEL, model.upload, "model.upload")
        return Resolved(ModelRoot.MODEL, confine(model_root, path, field="model.upload", kind=PathKind.FILE))
    assert model.path is not None
    return Resolved(ModelRoot.MODEL, confine(model_root, model.path, field="model.path", kind=PathKind.FILE))


def _artifact(session: Session, job_id: str, artifact: str, runs_root: Path) -> str:
    try:
        job = repo.get_job(session, job_id)
    except JobNotFoundError as exc:
        raise invalid_field("model.job", f"no job with id {job_id!r}", PathError.MISSING) from exc
    if artifact == "best":
        relative = job.best_checkpoint
    elif artifact == "last":
        relative = job.last_checkpoint
    elif artifact == "onnx":
        relative = job.onnx_path
    else:
        try:
            record = repo.find_checkpoint(session, job_id=job.id, selector=artifact)
        except InvalidSelectorError as exc:
            raise invalid_field("model.artifact", str(exc), PathError.INVALID) from exc
        relative = record.path if record is not None else None
    if relative is None or inside(runs_root, relative) is None:
        what = BEST_ONNX if artifact == "onnx" else artifact
        detail = f"job {job.id} has no {what} file yet (state {job.state})"
        raise invalid_field("model.artifact", detail, PathError.MISSING)
    return relative


def resolve_data(session: Session, data: DataSource, data_root: Path) -> str:
    which = _one_of("data", {"upload": data.upload, "path": data.path})
    if which == "upload":
        assert data.upload is not None
        path = _upload_path(session, UploadKind.DATASET, data.upload, "data.upload")
        return confine(data_root, path, field="data.upload", kind=PathKind.DIRECTORY)
    assert data.path is not None
    return confine(data_root, data.path, field="data.path", kind=PathKind.DIRECTORY)


def check_threshold(rule: str, target: float | None) -> None:
    """``f1`` takes no target; the other rules need one (``fixed``: the threshold itself)."""
    if rule == "f1" and target is not None:
        raise invalid_field("threshold.target", "the f1 rule picks its own threshold: omit target", "extra")
    if rule != "f1" and target is None:
        raise invalid_field("threshold.target", f"the {rule} rule needs a target in [0, 1]", "missing")

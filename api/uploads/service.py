"""The upload service behind ``/models`` and ``/datasets`` (``api.routes.uploads``): stage and hash
the bytes, check them (a checkpoint loadable with ``weights_only=True`` holding weights; a dataset
with both classes, decodable images, usable splits), move them into the model or data root and
record them; the same bytes uploaded again give the first upload. Nothing is kept of a refused
upload (422 naming ``file``). A delete removes the row, then the folder, unless a job that is not
finished names the upload (409).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from fastapi import Request
from sqlalchemy import Engine

from api.errors import ApiError, ProblemType, invalid_field
from api.paging import page_size
from api.schemas.uploads import UploadPublic, UploadsPage
from api.settings import ApiSettings
from api.uploads import store
from api.uploads.checkpoint import check_checkpoint
from api.uploads.datasets import DatasetLimits, DatasetRejectedError, Rejection
from api.uploads.parquet_data import check_parquet
from api.uploads.receive import FILE_FIELD, Received, receive
from api.uploads.rejected import RejectedError
from api.uploads.zip_data import check_zip
from jobstore.artifacts import PARQUET_NAME
from jobstore.db import read_session, write_transaction
from jobstore.disk import remove_tree
from jobstore.models import Job, Upload, new_id
from jobstore.repo import uploads as repo
from jobstore.repo.uploads import NewUpload, UploadKind

MODELS, DATASETS = "/models", "/datasets"
MULTIPART_SLACK = 64 << 10  # boundaries and part headers around the file
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
PARQUET_MAGIC = b"PAR1"
DEFAULT_MODEL_NAME = "model.pt"


@dataclass(frozen=True)
class Collection:
    """Models or datasets: the kind, its URL path and the job spec field that names one."""

    kind: UploadKind
    collection: str  # URL path
    field: str  # the job spec field that names it

    def root(self, settings: ApiSettings) -> Path:
        return settings.model_root if self.kind is UploadKind.MODEL else settings.data_root


MODEL = Collection(UploadKind.MODEL, MODELS, "pretrain")
DATASET = Collection(UploadKind.DATASET, DATASETS, "data_root")


def body_limits(settings: ApiSettings) -> dict[str, int]:
    """Request-body limits of the upload paths (``api.security.BodyLimitMiddleware``)."""
    return {path: settings.max_upload_bytes + MULTIPART_SLACK for path in (MODELS, DATASETS)}


def public(upload: Upload) -> UploadPublic:
    kind = MODEL if upload.kind == UploadKind.MODEL else DATASET
    return UploadPublic(
        id=upload.id,
        kind=kind.kind,
        filename=upload.filename,
        path=upload.path,
        use_as={kind.field: upload.path},
        sha256=upload.sha256,
        size_bytes=upload.size_bytes,
        meta=upload.meta,
        created_at=upload.created_at,
        link=f"{kind.collection}/{upload.id}",
    )


async def upload(
    kind: Collection,
    request: Request,
    settings: ApiSettings,
    engine: Engine,
    owner: str,
    filename: str | None,
) -> tuple[Upload, bool]:
    """Receive, check and record one upload: the upload, and whether it is new (else the same bytes
    were uploaded before)."""
    staged = store.staging_file(settings.upload_root)
    try:
        received = await receive(request, staged, limit=settings.max_upload_bytes, filename=filename)
        upload, created = await anyio.to_thread.run_sync(_accept, kind, received, settings, engine, owner)
    finally:
        store.discard(staged)  # already moved when accepted
    return upload, created


def _accept(
    kind: Collection, received: Received, settings: ApiSettings, engine: Engine, owner: str
) -> tuple[Upload, bool]:
    """Check, place and record the staged file (blocking: runs in a worker thread)."""
    root = kind.root(settings)
    earlier = _earlier(engine, kind, received.sha256, root)
    if earlier is not None:
        return earlier, False
    upload_id = new_id()
    partial = store.partial_dir(root, upload_id)
    try:
        name, meta = _place(kind, received, partial, settings)
        folder = store.finish(partial, root, upload_id)
    except RejectedError as exc:
        what = "checkpoint" if kind.kind is UploadKind.MODEL else "dataset"
        raise invalid_field(FILE_FIELD, f"not an acceptable {what}: {exc}", str(exc.kind)) from exc
    finally:
        store.discard(partial)  # gone after a successful rename
    path = f"{folder}/{name}" if name else folder
    new = NewUpload(
        id=upload_id, kind=kind.kind, filename=received.filename or name or "", path=path,
        sha256=received.sha256, size_bytes=received.size, owner=owner, meta=meta,
    )  # fmt: skip
    try:
        with write_transaction(engine) as tx:
            return repo.record_upload(tx, new=new), True
    except Exception:
        store.discard(root / folder)  # no row names it: do not leave an orphan behind
        raise


def _place(
    kind: Collection, received: Received, partial: Path, settings: ApiSettings
) -> tuple[str, dict[str, Any]]:
    """Check the staged file and build the upload's folder; the file name inside it ("" for folders)."""
    if kind.kind is UploadKind.MODEL:
        report = check_checkpoint(received.path)
        name = store.safe_name(received.filename, DEFAULT_MODEL_NAME)
        store.move_into(received.path, partial, name)
        return name, {"checkpoint": report.to_dict()}
    limits = DatasetLimits(
        max_files=settings.upload_max_files,
        max_extracted_bytes=settings.upload_max_extracted_bytes,
        max_image_pixels=settings.upload_max_image_pixels,
    )
    magic = _magic(received.path)
    if magic.startswith(ZIP_MAGIC):
        dataset = check_zip(received.path, partial, limits)
    elif magic.startswith(PARQUET_MAGIC):
        dataset = check_parquet(received.path, limits)
        store.move_into(received.path, partial, PARQUET_NAME)
    else:
        raise DatasetRejectedError(Rejection.FORMAT, "neither a parquet file nor a zip archive")
    return "", {"dataset": dataset.to_dict()}


def _magic(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(4)


def _earlier(engine: Engine, kind: Collection, sha256: str, root: Path) -> Upload | None:
    with read_session(engine) as session:
        rows = repo.find_by_hash(session, kind=kind.kind, sha256=sha256)
    return next((row for row in rows if store.still_there(root, row.path)), None)


def list_page(
    engine: Engine, settings: ApiSettings, kind: UploadKind, limit: int | None, cursor: str | None
) -> UploadsPage:
    with read_session(engine) as session:
        page = repo.list_uploads(session, kind=kind, limit=page_size(settings, limit), cursor=cursor)
    return UploadsPage(data=[public(u) for u in page.items], next_cursor=page.next_cursor)


def one(engine: Engine, kind: Collection, upload_id: str) -> UploadPublic:
    with read_session(engine) as session:
        upload = repo.get_upload(session, kind=kind.kind, upload_id=upload_id)
    if upload is None:
        raise _not_found(kind, upload_id)
    return public(upload)


def delete(engine: Engine, settings: ApiSettings, kind: Collection, upload_id: str) -> None:
    """Remove the upload's row, then its folder; 409 while a job not finished names it."""
    with write_transaction(engine) as tx:
        upload = repo.get_upload(tx, kind=kind.kind, upload_id=upload_id)
        if upload is None:
            raise _not_found(kind, upload_id)
        users = repo.jobs_using(tx, field=kind.field, path=upload.path)
        if users:
            raise _in_use(kind, upload, users)
        repo.delete_upload(tx, upload)
    remove_tree(kind.root(settings) / store.UPLOADS_DIR / upload_id)


def _in_use(kind: Collection, upload: Upload, users: list[Job]) -> ApiError:
    named = ", ".join(f"{job.id} ({job.state})" for job in users[:10])
    more = f" and {len(users) - 10} more" if len(users) > 10 else ""
    detail = (
        f"{kind.kind.value} upload {upload.id} is the {kind.field} of job(s) not finished: {named}{more}; "
        "delete it once they succeeded, failed or were cancelled"
    )
    return ApiError(409, ProblemType.IN_USE, detail, "Upload in use", jobs=[job.id for job in users])


def _not_found(kind: Collection, upload_id: str) -> ApiError:
    detail = f"no {kind.kind.value} upload with id {upload_id!r}"
    return ApiError(404, ProblemType.NOT_FOUND, detail, "Upload not found")

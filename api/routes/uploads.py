"""Uploads for curl users who cannot reach the server's disk: models (checkpoints) and datasets.

``POST /models`` and ``POST /datasets`` take the file as ``multipart/form-data`` (``-F file=@…``) or
as the raw body (``--data-binary @…``), up to ``OCEC_MAX_UPLOAD_BYTES``. The bytes are staged and
hashed, checked (``api.uploads``: a checkpoint loadable with ``weights_only=True`` holding weights; a
dataset with both classes, decodable images, usable splits), then moved into the model or data
root; the answer (201) says how a job names it (``use_as``). The same bytes uploaded again answer
200 with the first upload. Nothing is kept of a refused upload (422 naming ``file``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Query, Request, Response, status
from pydantic import BaseModel, Field
from sqlalchemy import Engine

from api.deps import ActorDep, EngineDep, SettingsDep
from api.errors import ApiError, ProblemType, invalid_field, problems
from api.settings import ApiSettings
from api.uploads import store
from api.uploads.checkpoint import check_checkpoint
from api.uploads.datasets import DatasetLimits, DatasetRejectedError, Rejection
from api.uploads.parquet_data import check_parquet
from api.uploads.receive import FILE_FIELD, Received, receive
from api.uploads.rejected import RejectedError
from api.uploads.zip_data import check_zip
from jobstore.db import read_session, write_transaction
from jobstore.models import Upload, new_id
from jobstore.repo import uploads as repo
from jobstore.repo.uploads import NewUpload, UploadKind
from jobstore.spec import SafeText

router = APIRouter(tags=["uploads"])

MODELS, DATASETS = "/models", "/datasets"
MULTIPART_SLACK = 64 << 10  # boundaries and part headers around the file
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
PARQUET_MAGIC = b"PAR1"
DEFAULT_MODEL_NAME = "model.pt"
UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [FILE_FIELD],
                    "properties": {FILE_FIELD: {"type": "string", "format": "binary"}},
                }
            },
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}
UPLOAD_RESPONSES = {
    200: {"description": "the same bytes were uploaded before: that upload"},
    **problems(400, 413, 422),
}


class UploadPublic(BaseModel):
    id: str
    kind: UploadKind
    filename: str = Field(description="the name the client gave the file")
    path: str = Field(description="relative to the server's model root (models) or data root (datasets)")
    use_as: dict[str, str] = Field(
        description='how a job names it: {"pretrain": path} or {"data_root": path}'
    )
    sha256: str
    size_bytes: int = Field(description="bytes uploaded")
    meta: dict[str, Any] = Field(
        description="what the check found: checkpoint format and tensors, or dataset counts"
    )
    created_at: datetime
    link: str


class UploadsPage(BaseModel):
    data: list[UploadPublic]
    next_cursor: str | None


FilenameQuery = Annotated[
    SafeText | None,
    Query(min_length=1, max_length=255, description="the file's name for a raw (non-multipart) body"),
]


@dataclass(frozen=True)
class _Kind:
    kind: UploadKind
    collection: str  # URL path
    field: str  # the job spec field that names it

    def root(self, settings: ApiSettings) -> Path:
        return settings.model_root if self.kind is UploadKind.MODEL else settings.data_root


MODEL = _Kind(UploadKind.MODEL, MODELS, "pretrain")
DATASET = _Kind(UploadKind.DATASET, DATASETS, "data_root")


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


# ---- POST -----------------------------------------------------------------------------------------
def _upload_route(kind: _Kind, summary: str) -> Any:
    async def upload(
        request: Request,
        response: Response,
        settings: SettingsDep,
        engine: EngineDep,
        actor: ActorDep,
        filename: FilenameQuery = None,
    ) -> UploadPublic:
        return await _upload(kind, request, response, settings, engine, actor.owner, filename)

    upload.__doc__ = summary
    router.add_api_route(
        kind.collection,
        upload,
        methods=["POST"],
        name=f"upload_{kind.kind.value}",
        status_code=201,
        response_model=UploadPublic,
        responses=UPLOAD_RESPONSES,
        openapi_extra=UPLOAD_BODY,
    )
    return upload


upload_model = _upload_route(
    MODEL, "Upload a model checkpoint (a job's `pretrain`); it must load with torch's weights_only=True."
)
upload_dataset = _upload_route(
    DATASET,
    "Upload a dataset (a job's `data_root`): an OCEC parquet file, or a zip of open/ and closed/ folders.",
)


async def _upload(
    kind: _Kind,
    request: Request,
    response: Response,
    settings: ApiSettings,
    engine: Engine,
    owner: str,
    filename: str | None,
) -> UploadPublic:
    staged = store.staging_file(settings.upload_root)
    try:
        received = await receive(request, staged, limit=settings.max_upload_bytes, filename=filename)
        upload, created = await anyio.to_thread.run_sync(_accept, kind, received, settings, engine, owner)
    finally:
        store.discard(staged)  # already moved when accepted
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    response.headers["Location"] = f"{kind.collection}/{upload.id}"
    return public(upload)


def _accept(
    kind: _Kind, received: Received, settings: ApiSettings, engine: Engine, owner: str
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
    kind: _Kind, received: Received, partial: Path, settings: ApiSettings
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
        store.move_into(received.path, partial, store.PARQUET_NAME)
    else:
        raise DatasetRejectedError(Rejection.FORMAT, "neither a parquet file nor a zip archive")
    return "", {"dataset": dataset.to_dict()}


def _magic(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(4)


def _earlier(engine: Engine, kind: _Kind, sha256: str, root: Path) -> Upload | None:
    with read_session(engine) as session:
        rows = repo.find_by_hash(session, kind=kind.kind, sha256=sha256)
    return next((row for row in rows if store.still_there(root, row.path)), None)


# ---- GET ------------------------------------------------------------------------------------------
def _list(
    engine: Engine, settings: ApiSettings, kind: UploadKind, limit: int | None, cursor: str | None
) -> UploadsPage:
    size = min(limit or settings.default_page_size, settings.max_page_size)
    with read_session(engine) as session:
        page = repo.list_uploads(session, kind=kind, limit=size, cursor=cursor)
    return UploadsPage(data=[public(u) for u in page.items], next_cursor=page.next_cursor)


def _one(engine: Engine, kind: _Kind, upload_id: str) -> UploadPublic:
    with read_session(engine) as session:
        upload = repo.get_upload(session, kind=kind.kind, upload_id=upload_id)
    if upload is None:
        detail = f"no {kind.kind.value} upload with id {upload_id!r}"
        raise ApiError(404, ProblemType.NOT_FOUND, detail, "Upload not found")
    return public(upload)


Limit = Annotated[int | None, Query(ge=1, description="page size (bounded by the server's maximum)")]
Cursor = Annotated[str | None, Query(max_length=512, description="next_cursor of the previous page")]


@router.get(MODELS, response_model=UploadsPage, responses=problems(422))
def list_models(
    engine: EngineDep, settings: SettingsDep, limit: Limit = None, cursor: Cursor = None
) -> UploadsPage:
    """List uploaded models, newest first."""
    return _list(engine, settings, UploadKind.MODEL, limit, cursor)


@router.get(DATASETS, response_model=UploadsPage, responses=problems(422))
def list_datasets(
    engine: EngineDep, settings: SettingsDep, limit: Limit = None, cursor: Cursor = None
) -> UploadsPage:
    """List uploaded datasets, newest first."""
    return _list(engine, settings, UploadKind.DATASET, limit, cursor)


@router.get(f"{MODELS}/{{upload_id}}", response_model=UploadPublic, responses=problems(404))
def get_model(engine: EngineDep, upload_id: str) -> UploadPublic:
    """One uploaded model: its path for a job's `pretrain`, hash, size and what the check found."""
    return _one(engine, MODEL, upload_id)


@router.get(f"{DATASETS}/{{upload_id}}", response_model=UploadPublic, responses=problems(404))
def get_dataset(engine: EngineDep, upload_id: str) -> UploadPublic:
    """One uploaded dataset: its path for a job's `data_root`, hash, size and class counts."""
    return _one(engine, DATASET, upload_id)

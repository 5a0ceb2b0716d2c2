"""Uploads for curl users who cannot reach the server's disk: models (checkpoints) and datasets.

``POST /models`` and ``POST /datasets`` take the file as ``multipart/form-data`` (``-F file=@…``) or
as the raw body (``--data-binary @…``), up to ``OCEC_MAX_UPLOAD_BYTES``. The bytes are staged and
hashed, checked (``api.uploads.service``: a checkpoint loadable with ``weights_only=True`` holding weights; a
dataset with both classes, decodable images, usable splits), then moved into the model or data
root; the answer (201) says how a job names it (``use_as``). The same bytes uploaded again answer
200 with the first upload. Nothing is kept of a refused upload (422 naming ``file``). ``DELETE``
removes one (204), refused with 409 while a job that is not finished uses it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status

from api.deps import ActorDep, EngineDep, SettingsDep
from api.errors import problems
from api.paging import PageCursor, PageLimit
from api.schemas.uploads import UploadPublic, UploadsPage
from api.uploads import service
from api.uploads.receive import FILE_FIELD
from api.uploads.service import DATASET, DATASETS, MODEL, MODELS, Collection, list_page, one, public
from jobstore.repo.uploads import UploadKind
from jobstore.spec import SafeText

router = APIRouter(tags=["uploads"])

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


FilenameQuery = Annotated[
    SafeText | None,
    Query(min_length=1, max_length=255, description="the file's name for a raw (non-multipart) body"),
]


# ---- POST -----------------------------------------------------------------------------------------
def _upload_route(kind: Collection, summary: str) -> Any:
    async def upload(
        request: Request,
        response: Response,
        settings: SettingsDep,
        engine: EngineDep,
        actor: ActorDep,
        filename: FilenameQuery = None,
    ) -> UploadPublic:
        upload, created = await service.upload(kind, request, settings, engine, actor.owner, filename)
        response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        response.headers["Location"] = f"{kind.collection}/{upload.id}"
        return public(upload)

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


@router.get(MODELS, response_model=UploadsPage, responses=problems(422))
def list_models(
    engine: EngineDep, settings: SettingsDep, limit: PageLimit = None, cursor: PageCursor = None
) -> UploadsPage:
    """List uploaded models, newest first."""
    return list_page(engine, settings, UploadKind.MODEL, limit, cursor)


@router.get(DATASETS, response_model=UploadsPage, responses=problems(422))
def list_datasets(
    engine: EngineDep, settings: SettingsDep, limit: PageLimit = None, cursor: PageCursor = None
) -> UploadsPage:
    """List uploaded datasets, newest first."""
    return list_page(engine, settings, UploadKind.DATASET, limit, cursor)


@router.get(f"{MODELS}/{{upload_id}}", response_model=UploadPublic, responses=problems(404))
def get_model(engine: EngineDep, upload_id: str) -> UploadPublic:
    """One uploaded model: its path for a job's `pretrain`, hash, size and what the check found."""
    return one(engine, MODEL, upload_id)


@router.get(f"{DATASETS}/{{upload_id}}", response_model=UploadPublic, responses=problems(404))
def get_dataset(engine: EngineDep, upload_id: str) -> UploadPublic:
    """One uploaded dataset: its path for a job's `data_root`, hash, size and class counts."""
    return one(engine, DATASET, upload_id)


@router.delete(f"{MODELS}/{{upload_id}}", status_code=204, responses=problems(404, 409))
def delete_model(engine: EngineDep, settings: SettingsDep, upload_id: str) -> None:
    """Delete an uploaded model (an operator key): its row and file. 409 while a job that is not
    finished (queued, running, paused, awaiting a decision, interrupted) names it as `pretrain`."""
    service.delete(engine, settings, MODEL, upload_id)


@router.delete(f"{DATASETS}/{{upload_id}}", status_code=204, responses=problems(404, 409))
def delete_dataset(engine: EngineDep, settings: SettingsDep, upload_id: str) -> None:
    """Delete an uploaded dataset (an operator key): its row and folder. 409 while a job that is not
    finished names it (or a folder inside it) as `data_root`."""
    service.delete(engine, settings, DATASET, upload_id)

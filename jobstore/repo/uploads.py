"""Uploaded models and datasets: one ``Upload`` row per accepted file, found by id or content hash.

The API writes the row after the file has been checked and moved to its final place, so a row
always names a usable file; an identical upload (same kind and SHA-256) answers with the existing
row instead of storing the bytes twice.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlmodel import Session, and_, col, or_, select

from jobstore.models import Job, Upload
from jobstore.repo.jobs import decode_cursor
from jobstore.states import TERMINAL


class UploadKind(StrEnum):
    MODEL = "model"  # a checkpoint under the model root: a job's ``pretrain``
    DATASET = "dataset"  # a dataset folder under the data root: a job's ``data_root``


@dataclass(frozen=True)
class NewUpload:
    id: str
    kind: UploadKind
    filename: str
    path: str  # relative to the model root (models) or the data root (datasets)
    sha256: str
    size_bytes: int
    owner: str
    meta: dict[str, Any]


@dataclass(frozen=True)
class UploadPage:
    items: list[Upload]
    next_cursor: str | None


def record_upload(session: Session, *, new: NewUpload) -> Upload:
    upload = Upload(
        id=new.id,
        kind=new.kind.value,
        filename=new.filename[:255],
        path=new.path,
        sha256=new.sha256,
        size_bytes=new.size_bytes,
        owner=new.owner,
        meta=new.meta,
    )
    session.add(upload)
    session.flush()
    return upload


def find_by_hash(session: Session, *, kind: UploadKind, sha256: str) -> list[Upload]:
    """Earlier uploads of the same bytes, oldest first (the caller checks their files still exist)."""
    query = select(Upload).where(Upload.kind == kind.value, Upload.sha256 == sha256)
    return list(session.exec(query.order_by(col(Upload.created_at), col(Upload.id))).all())


def get_upload(session: Session, *, kind: UploadKind, upload_id: str) -> Upload | None:
    upload = session.get(Upload, upload_id)
    return upload if upload is not None and upload.kind == kind.value else None


def delete_upload(session: Session, upload: Upload) -> None:
    session.delete(upload)
    session.flush()


def jobs_using(session: Session, *, field: str, path: str) -> list[Job]:
    """Jobs not finished (queued, running, or stopped but resumable) whose spec ``field`` names
    ``path`` or something inside it: a delete of that upload would pull the files from under them."""
    active = session.exec(select(Job).where(col(Job.state).not_in(list(TERMINAL)))).all()
    inside = path.rstrip("/") + "/"
    return [
        job
        for job in active
        if isinstance(named := job.spec.get(field), str) and (named == path or named.startswith(inside))
    ]


def list_uploads(session: Session, *, kind: UploadKind, limit: int, cursor: str | None = None) -> UploadPage:
    """Newest first, keyset-paginated on ``(created_at, id)`` like the jobs list."""
    if limit < 1:
        raise ValueError("limit must be >= 1")
    query = select(Upload).where(Upload.kind == kind.value)
    if cursor:
        created_at, upload_id = decode_cursor(cursor)
        query = query.where(
            or_(
                col(Upload.created_at) < created_at,
                and_(col(Upload.created_at) == created_at, col(Upload.id) < upload_id),
            )
        )
    rows = list(
        session.exec(query.order_by(col(Upload.created_at).desc(), col(Upload.id).desc()).limit(limit + 1))
    )
    more = len(rows) > limit
    items = rows[:limit]
    return UploadPage(items=items, next_cursor=upload_cursor(items[-1]) if more else None)


def upload_cursor(upload: Upload) -> str:
    raw = json.dumps([upload.created_at.isoformat(), upload.id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

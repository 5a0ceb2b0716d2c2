"""What the upload routes answer: an uploaded model or dataset, and the list page."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from jobstore.repo.uploads import UploadKind


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

"""Files both ways: a download written to a ``.partial`` file and moved into place only when whole;
an upload streamed from disk with a read timeout long enough for the server's checks."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from ocec_jobs.client.http import json_of

if TYPE_CHECKING:
    from ocec_jobs.client.http import Connection

UPLOAD_READ_TIMEOUT = 3600.0  # the server checks every image of a dataset before it answers
CHUNK = 1 << 16


@dataclass(frozen=True)
class Downloaded:
    path: Path
    bytes: int
    sha256: str


@dataclass(frozen=True)
class Uploaded:
    upload: dict[str, Any]  # the server's answer: id, kind, path, sha256, use_as …
    created: bool  # False: the same bytes were uploaded before, and this is that upload

    @property
    def path(self) -> str:
        """What a job names: its ``pretrain`` (a model) or ``data_root`` (a dataset)."""
        return str(self.upload["path"])


def download_to(response: httpx.Response, target: Path, *, overwrite: bool) -> Downloaded:
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists: pass overwrite=True, or another file")
    partial = target.with_name(f".{target.name}.partial")
    digest, size = hashlib.sha256(), 0
    try:
        with partial.open("wb") as out:
            for chunk in response.iter_bytes(CHUNK):
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
    except BaseException:
        partial.unlink(missing_ok=True)  # never leave half a file behind
        raise
    os.replace(partial, target)
    return Downloaded(target, size, digest.hexdigest())


def upload_file(connection: Connection, collection: str, file: Path) -> Uploaded:
    if not file.is_file():
        raise FileNotFoundError(f"{file}: no such file")
    timeout = httpx.Timeout(connection.timeout, read=max(connection.timeout, UPLOAD_READ_TIMEOUT))
    with file.open("rb") as handle:
        files = {"file": (file.name, handle, "application/octet-stream")}
        response = connection.request("POST", collection, files=files, timeout=timeout)
    return Uploaded(json_of(response), created=response.status_code == 201)

"""Where uploads live: staged under the upload root, then moved whole into the model or data root.

- staging: ``<upload_root>/staging/<random>.part`` while the bytes arrive and are checked;
- a model: ``<model_root>/uploads/<id>/<name>`` — a job names it as ``"pretrain": "uploads/<id>/<name>"``;
- a dataset: ``<data_root>/uploads/<id>/`` holding ``dataset.parquet`` or the extracted
  ``open/``, ``closed/`` (or ``train/``, ``val/``) folders — a job names it as
  ``"data_root": "uploads/<id>"``.

The final folder appears by one rename of a hidden ``.<id>.partial`` folder next to it, so a job
never sees half an upload. Names are reduced to a safe basename (letters, digits, ``._-``).
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path, PurePosixPath, PureWindowsPath

UPLOADS_DIR = "uploads"
STAGING_DIR = "staging"
MAX_NAME = 100
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def staging_file(upload_root: Path) -> Path:
    folder = upload_root / STAGING_DIR
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{uuid.uuid4().hex}.part"


def safe_name(filename: str, default: str) -> str:
    """A basename fit for the file system: no folders, no leading dot, only ``[A-Za-z0-9._-]``."""
    base = PureWindowsPath(PurePosixPath(filename or "").name).name  # drop folders of either kind
    cleaned = _UNSAFE.sub("_", base).lstrip(".")[-MAX_NAME:].lstrip(".")
    return cleaned or default


def partial_dir(root: Path, upload_id: str) -> Path:
    """A new hidden folder to build the upload in (``finish`` renames it into place)."""
    folder = root / UPLOADS_DIR / f".{upload_id}.partial"
    folder.parent.mkdir(parents=True, exist_ok=True)
    return folder


def finish(partial: Path, root: Path, upload_id: str) -> str:
    """Rename the built folder into place; the path relative to ``root`` a job names."""
    final = root / UPLOADS_DIR / upload_id
    os.rename(partial, final)  # same parent: atomic, and fails rather than merge into an existing one
    return f"{UPLOADS_DIR}/{upload_id}"


def move_into(staged: Path, folder: Path, name: str) -> Path:
    """Move the staged file into ``folder`` (created) as ``name``; across file systems it is copied."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    shutil.move(staged, target)
    return target


def discard(path: Path) -> None:
    """Remove a staged file or a partial folder; a leftover is harmless, so errors are ignored."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def still_there(root: Path, relative: str) -> bool:
    """Whether an earlier upload's file or folder still exists (a duplicate may reuse it)."""
    return (root / relative).exists()

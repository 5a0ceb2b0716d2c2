"""Disk use of run folders and uploads, and removing them: the file side of retention and delete.

Sizes are what the files hold (``lstat``: a link counts as itself, never what it points to), walked
without following links, so a link planted in a run folder cannot make a delete leave its root.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def folder_bytes(folder: Path) -> int:
    """Bytes of the files under ``folder`` (0 when it does not exist)."""
    total = 0
    for top, dirs, files in os.walk(folder, followlinks=False):
        for name in (*files, *(d for d in dirs if os.path.islink(os.path.join(top, d)))):
            try:
                total += os.lstat(os.path.join(top, name)).st_size
            except OSError:  # removed while we walked
                continue
    return total


def usage_by_folder(root: Path) -> dict[str, int]:
    """Bytes under each folder directly inside ``root`` (a run folder per job), by folder name."""
    try:
        entries = list(os.scandir(root))
    except OSError:
        return {}
    return {e.name: folder_bytes(Path(e.path)) for e in entries if e.is_dir(follow_symlinks=False)}


def file_bytes(path: Path) -> int:
    try:
        return os.lstat(path).st_size
    except OSError:
        return 0


def remove_file(path: Path) -> int:
    """Remove one file; the bytes it held (0 if it was already gone)."""
    size = file_bytes(path)
    try:
        path.unlink()
    except FileNotFoundError:
        return 0
    return size


def remove_tree(folder: Path) -> int:
    """Remove a folder and everything in it (links removed, not followed); the bytes it held."""
    if folder.is_symlink():
        return remove_file(folder)
    size = folder_bytes(folder)
    if not folder.exists():
        return 0
    shutil.rmtree(folder)
    return size

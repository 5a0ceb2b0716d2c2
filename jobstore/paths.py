"""A client-named path kept inside a configured root: the one confinement rule of the API (at
submission, for downloads) and of the worker (again at run time: links may change in between)."""

from __future__ import annotations

from pathlib import Path, PurePosixPath


def within(root: Path, path: str, *, absolute_ok: bool = True) -> Path | None:
    """``root / path`` resolved (symlinks followed), or None when it would leave ``root``: a ``..``
    part, an absolute path outside it (any absolute path unless ``absolute_ok``), a link pointing out.
    Raises what ``Path.resolve`` raises: OSError (a name too long...), RuntimeError (Python 3.11 on a
    loop of links), ValueError (an embedded NUL byte)."""
    candidate = PurePosixPath(path)
    if ".." in candidate.parts or (candidate.is_absolute() and not absolute_ok):
        return None
    real_root = root.resolve()
    resolved = (real_root / candidate).resolve()
    return resolved if resolved.is_relative_to(real_root) else None

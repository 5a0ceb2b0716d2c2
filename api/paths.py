"""Client paths confined to a configured root: no ``..``, no absolute paths elsewhere, no symlink
that leaves the root, and a file must be a regular file (a FIFO or device would hang or feed the
loader forever). Every failure names the field it came from (422). The worker checks again
(``worker.engine_config``): links may change between submission and run."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path, PurePosixPath

from api.errors import ApiError, invalid_field
from jobstore.paths import within


class PathKind(StrEnum):
    DIRECTORY = "directory"
    FILE = "file"


class PathError(StrEnum):
    OUTSIDE = "path_outside_root"
    MISSING = "path_not_found"
    WRONG_KIND = "path_wrong_kind"
    INVALID = "path_invalid"


def confine(root: Path, value: str, *, field: str, kind: PathKind) -> str:
    """The path relative to ``root`` (POSIX form) once it is known to stay inside and to exist."""
    try:
        return _confine(root, value, field=field, kind=kind)
    except OSError as exc:  # a name too long for the file system...
        raise _error(field, f"cannot be used as a path ({exc.strerror})", PathError.INVALID) from exc
    except RuntimeError as exc:  # Python 3.11's Path.resolve() on a loop of links
        raise _error(field, "cannot be used as a path (a loop of links)", PathError.INVALID) from exc
    except ValueError as exc:  # an embedded NUL byte (the spec refuses it first; belt and braces)
        raise _error(field, "cannot be used as a path (invalid characters)", PathError.INVALID) from exc


def _confine(root: Path, value: str, *, field: str, kind: PathKind) -> str:
    candidate = PurePosixPath(value)
    if ".." in candidate.parts:
        raise _error(field, "must not contain '..'", PathError.OUTSIDE)
    resolved = within(root, value)  # follows symlinks: a link inside the root may point out of it
    if resolved is None:
        raise _error(field, f"must stay inside the configured {kind_label(field)} root", PathError.OUTSIDE)
    if not resolved.exists():
        raise _error(field, f"{value!r} does not exist under the {kind_label(field)} root", PathError.MISSING)
    if not (resolved.is_dir() if kind is PathKind.DIRECTORY else resolved.is_file()):
        raise _error(field, f"{value!r} is not a {_kind_label(kind)}", PathError.WRONG_KIND)
    if candidate.is_absolute():
        return resolved.relative_to(root.resolve()).as_posix()
    return candidate.as_posix()


def inside(root: Path, relative: str) -> Path | None:
    """``root / relative`` if it resolves to an existing file inside ``root`` (artifact downloads)."""
    try:
        resolved = within(root, relative)
        return resolved if resolved is not None and resolved.is_file() else None
    except (OSError, RuntimeError, ValueError):  # too long, a loop of links, an embedded NUL byte
        return None


def _kind_label(kind: PathKind) -> str:
    return "directory" if kind is PathKind.DIRECTORY else "regular file"


def kind_label(field: str) -> str:
    return "model" if field.endswith("pretrain") or field.startswith("model.") else "data"


def _error(field: str, message: str, kind: PathError) -> ApiError:
    return invalid_field(field, message, kind)

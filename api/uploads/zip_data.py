"""An uploaded zip of image folders, checked and extracted safely.

Layouts (optionally inside one top folder, which is dropped): ``open/…`` + ``closed/…`` (the engine
makes a seeded stratified train/val split), or ``{train,val}/{open,closed}/…`` (split names as the
engine knows them). Only image files are extracted (by extension, as the engine lists them); other
entries, folders and hidden files (``.DS_Store``, ``__MACOSX/``) are counted and skipped.

Refused before anything is written: more entries than the file limit, a declared total over the
extraction limit, a name that is absolute, has ``..``, a backslash, a drive or a NUL (zip slip), a
symlink entry, an encrypted entry, or a compression ratio over ``MAX_RATIO`` (a zip bomb).
While extracting, bytes are counted against each entry's declared size (headers can lie), and each
file is opened with ``O_EXCL`` under the destination, which this code created empty.
"""

from __future__ import annotations

import os
import stat
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from api.uploads.datasets import (
    CLASS_DIRS,
    IMAGE_EXTENSIONS,
    LABEL_OF_NAME,
    SPLIT_DIRS,
    DatasetLimits,
    DatasetRejectedError,
    DatasetReport,
    Rejection,
    check_image,
    check_trainable,
    named_counts,
)

MAX_RATIO = 200  # uncompressed / compressed, for entries over RATIO_MIN_BYTES
RATIO_MIN_BYTES = 1 << 20
CHUNK = 1 << 16
HIDDEN_PREFIXES = (".", "__MACOSX")


@dataclass(frozen=True)
class Member:
    info: zipfile.ZipInfo
    target: PurePosixPath  # relative path under the destination: [split/]class/…/file
    split: str  # "all" when the layout has no split folders
    label: int


def check_zip(path: Path, destination: Path, limits: DatasetLimits) -> DatasetReport:
    """Check the archive, extract its images into ``destination`` (created here), decode each one."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            _check_entries(infos, limits)
            members, ignored, layout = _members(infos)
            counts = _counts(members)
            check_trainable(counts, "zip")
            written = _extract(archive, members, destination, limits)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError) as exc:
        raise DatasetRejectedError(Rejection.FORMAT, f"unreadable zip archive ({exc})") from exc
    for member in members:
        check_image(destination / member.target, member.info.filename, limits.max_image_pixels)
    return DatasetReport(
        format="folders",
        counts=named_counts(counts),
        images=len(members),
        ignored=dict(ignored),
        extracted_bytes=written,
        layout=layout,
    )


def _check_entries(infos: list[zipfile.ZipInfo], limits: DatasetLimits) -> None:
    if len(infos) > limits.max_files:
        raise DatasetRejectedError(Rejection.LIMIT, f"{len(infos)} entries; at most {limits.max_files}")
    declared = sum(info.file_size for info in infos)
    if declared > limits.max_extracted_bytes:
        raise DatasetRejectedError(
            Rejection.LIMIT, f"{declared} bytes once extracted; at most {limits.max_extracted_bytes}"
        )
    for info in infos:
        _check_name(info.filename)
        if info.flag_bits & 0x1:
            raise DatasetRejectedError(
                Rejection.UNSAFE, f"{info.filename!r}: encrypted entries are not supported"
            )
        if stat.S_ISLNK(info.external_attr >> 16):
            raise DatasetRejectedError(Rejection.UNSAFE, f"{info.filename!r}: symbolic links are not allowed")
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > RATIO_MIN_BYTES and ratio > MAX_RATIO:
            raise DatasetRejectedError(
                Rejection.UNSAFE, f"{info.filename!r}: compression ratio {ratio:.0f} (a zip bomb?)"
            )


def _check_name(name: str) -> None:
    parts = PurePosixPath(name).parts
    bad = (
        not name
        or name.startswith("/")
        or "\\" in name
        or "\x00" in name
        or ".." in parts
        or (len(name) > 1 and name[1] == ":")  # a Windows drive
    )
    if bad:
        raise DatasetRejectedError(Rejection.UNSAFE, f"entry name {name!r} would leave the dataset folder")


def _members(infos: list[zipfile.ZipInfo]) -> tuple[list[Member], Counter[str], str]:
    """The image entries with their split and label, what was skipped, and the layout found."""
    files = [i for i in infos if not i.is_dir()]
    ignored: Counter[str] = Counter()
    visible = []
    for info in files:
        parts = PurePosixPath(info.filename).parts
        if any(p.startswith(HIDDEN_PREFIXES) for p in parts):
            ignored["hidden"] += 1
        elif PurePosixPath(info.filename).suffix.lower() not in IMAGE_EXTENSIONS:
            ignored["not an image"] += 1
        else:
            visible.append((info, parts))
    prefix = _root_prefix([parts for _, parts in visible])
    split_layout = any(len(parts) > prefix and parts[prefix] in SPLIT_DIRS for _, parts in visible)
    members = []
    for info, parts in visible:
        member = _member(info, parts[prefix:], split_layout)
        if member is None:
            ignored["outside the class folders"] += 1
        else:
            members.append(member)
    layout = "{train,val}/{open,closed}" if split_layout else "{open,closed}"
    return members, ignored, layout


def _root_prefix(all_parts: list[tuple[str, ...]]) -> int:
    """0 if class or split folders are at the top; 1 if they sit inside one common top folder."""
    known = CLASS_DIRS | set(SPLIT_DIRS)
    if any(len(parts) > 1 and parts[0] in known for parts in all_parts):
        return 0
    tops = {parts[0] for parts in all_parts if len(parts) > 2}
    if len(tops) == 1 and any(parts[1] in known for parts in all_parts if len(parts) > 2):
        return 1
    raise DatasetRejectedError(
        Rejection.FORMAT,
        "no image folders found: expected open/ and closed/ (or train/ and val/ holding them) at the top "
        "of the zip or inside one top folder",
    )


def _member(info: zipfile.ZipInfo, rel: tuple[str, ...], split_layout: bool) -> Member | None:
    if split_layout:
        if len(rel) < 3 or rel[0] not in SPLIT_DIRS or rel[1] not in CLASS_DIRS:
            return None
        return Member(info, PurePosixPath(*rel), SPLIT_DIRS[rel[0]].value, LABEL_OF_NAME[rel[1]])
    if len(rel) < 2 or rel[0] not in CLASS_DIRS:
        return None
    return Member(info, PurePosixPath(*rel), "all", LABEL_OF_NAME[rel[0]])


def _counts(members: list[Member]) -> dict[str, Counter[int]]:
    counts: dict[str, Counter[int]] = {}
    for member in members:
        counts.setdefault(member.split, Counter())[member.label] += 1
    return counts


def _extract(
    archive: zipfile.ZipFile, members: list[Member], destination: Path, limits: DatasetLimits
) -> int:
    destination.mkdir(parents=True, exist_ok=False)  # ours and empty: no link planted inside
    written = 0
    for member in members:
        target = destination.joinpath(*member.target.parts)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            written += _copy(archive, member.info, target)
        except (FileExistsError, NotADirectoryError) as exc:  # a name twice, or a file and a folder
            raise DatasetRejectedError(
                Rejection.UNSAFE, f"{member.info.filename!r}: duplicate entry"
            ) from exc
        if written > limits.max_extracted_bytes:
            raise DatasetRejectedError(
                Rejection.LIMIT, f"over {limits.max_extracted_bytes} bytes once extracted"
            )
    return written


def _copy(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path) -> int:
    """Stream one entry to a new file, refusing more bytes than its header declared."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    copied = 0
    with os.fdopen(fd, "wb") as out, archive.open(info) as source:
        while chunk := source.read(CHUNK):
            copied += len(chunk)
            if copied > info.file_size:
                raise DatasetRejectedError(
                    Rejection.UNSAFE, f"{info.filename!r}: more data than its header declares"
                )
            out.write(chunk)
    return copied

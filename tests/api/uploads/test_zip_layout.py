"""Parser-differential tricks on the checkpoint's zip (issue 13 point 2). Each hostile archive below
is built from a tiny real checkpoint; without the layout check every one but the NUL-name trick
passed as a valid checkpoint (zipfile read one from it), while torch's reader (miniz) could read
another, or fail."""

from __future__ import annotations

import io
import struct
import warnings
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import torch

from api.settings import ApiSettings
from api.uploads.checkpoint import CheckpointRejectedError, Rejection, check_checkpoint
from api.uploads.zip_layout import LOCAL, LOCAL_MAGIC
from tests.api.uploads.test_routes import EVIL, leftovers


def good() -> bytes:
    buffer = io.BytesIO()
    torch.save({"model_state": {"w": torch.ones(2)}}, buffer)
    return buffer.getvalue()


def rezipped(data: bytes, before: dict[str, bytes] | None = None, **options: int) -> bytes:
    """The same entries written again by Python's zipfile, after the ``before`` entries."""
    out = io.BytesIO()
    source = zipfile.ZipFile(io.BytesIO(data))
    with source as old, zipfile.ZipFile(out, "w", **options) as new, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name": the point
        for name, content in (before or {}).items():
            new.writestr(name, content)
        for info in old.infolist():
            new.writestr(info.filename, old.read(info))
    return out.getvalue()


def duplicate_hostile_first(data: bytes) -> bytes:
    """The probe's find: torch reads the first archive/data.pkl, zipfile kept the last."""
    return rezipped(data, {"archive/data.pkl": EVIL})


def overlapping(data: bytes) -> bytes:
    """A directory entry for data.pkl that points inside another entry's data, where a complete local
    record hides; the real data.pkl's own record is left unlisted."""
    with zipfile.ZipFile(io.BytesIO(data)) as old:
        entries = {i.filename: old.read(i) for i in old.infolist()}
    pickle = entries.pop("archive/data.pkl")
    name = b"archive/data.pkl"
    crc = zlib.crc32(pickle)
    hidden = (
        LOCAL.pack(LOCAL_MAGIC, 20, 0, 0, 0, 0, crc, len(pickle), len(pickle), len(name), 0) + name + pickle
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as new:
        for entry, content in entries.items():
            new.writestr(entry, content)
        new.writestr("archive/padding", hidden)
        carrier = new.getinfo("archive/padding")
        info = zipfile.ZipInfo("archive/data.pkl")
        info.header_offset = carrier.header_offset + LOCAL.size + len(b"archive/padding")
        info.CRC, info.compress_size, info.file_size = crc, len(pickle), len(pickle)
        new.filelist.append(info)
    return out.getvalue()


def local_name_differs(data: bytes) -> bytes:
    """The storage record's local header names data/1; the directory says data/0 (zipfile never
    reads that record, it only compares sizes: the local name went unchecked)."""
    return data.replace(b"archive/data/0", b"archive/data/1", 1)


def nul_in_name(data: bytes) -> bytes:
    """Directory name "archive/data.pkl\\0" (17 bytes, in place of archive/byteorder): zipfile cuts
    the NUL and sees two data.pkl entries; miniz sees two different names."""
    cut = data.rindex(b"archive/byteorder")  # the directory's copy comes last
    return data[:cut] + b"archive/data.pkl\x00" + data[cut + 17 :]


def end_record_undercounts(data: bytes) -> bytes:
    """The end record counts one entry fewer than the directory holds (zipfile ignores the count)."""
    end = len(data) - 22
    total = struct.unpack_from("<H", data, end + 10)[0]
    return data[:end] + data[end : end + 8] + struct.pack("<HH", total - 1, total - 1) + data[end + 12 :]


def descriptor_disagrees(data: bytes) -> bytes:
    """torch.save writes a data descriptor after each record; this one's CRC is wrong."""
    at = data.index(b"PK\x07\x08")
    return data[: at + 4] + b"\x00\x00\x00\x00" + data[at + 8 :]


def with_comment(data: bytes) -> bytes:
    out = io.BytesIO(rezipped(data))
    with zipfile.ZipFile(out, "a") as archive:
        archive.comment = b"x"
    return out.getvalue()


TRICKS: dict[str, Callable[[bytes], bytes]] = {
    "duplicate entries, hostile first": duplicate_hostile_first,
    "overlapping entries": overlapping,
    "concatenated zips": lambda d: rezipped(d) + d,
    "junk before the first entry": lambda d: b"MZ" * 32 + d,
    "data after the end record": lambda d: d + b"\x00" * 8,
    "an archive comment": with_comment,
    "local name differs from the directory's": local_name_differs,
    "NUL byte in a directory name": nul_in_name,
    "end record undercounts": end_record_undercounts,
    "data descriptor disagrees": descriptor_disagrees,
    "compressed entries": lambda d: rezipped(d, compression=zipfile.ZIP_DEFLATED),
}


def test_the_base_checkpoint_and_a_python_rezip_are_accepted(tmp_path: Path) -> None:
    for index, data in enumerate((good(), rezipped(good()))):
        path = tmp_path / f"{index}.pt"
        path.write_bytes(data)
        assert check_checkpoint(path).tensors == 1


@pytest.mark.parametrize("trick", list(TRICKS))
def test_parser_differential_tricks_are_refused(tmp_path: Path, trick: str) -> None:
    path = tmp_path / "trick.pt"
    path.write_bytes(TRICKS[trick](good()))

    with pytest.raises(CheckpointRejectedError) as refused:
        check_checkpoint(path)

    assert refused.value.kind == Rejection.AMBIGUOUS, refused.value


def test_the_probes_duplicate_upload_is_refused_and_nothing_kept(
    http: httpx.Client, api_settings: ApiSettings
) -> None:
    response = http.post("/models", content=duplicate_hostile_first(good()), params={"filename": "a.pt"})

    assert response.status_code == 422
    assert response.json()["errors"][0]["type"] == "checkpoint_ambiguous"
    assert "two entries named 'archive/data.pkl'" in response.json()["detail"]
    assert leftovers(api_settings) == []

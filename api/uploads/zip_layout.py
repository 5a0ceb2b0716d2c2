"""Is this zip laid out so that every reader reads the same entries? Else it is refused.

torch reads a checkpoint with miniz (C++), the check reads it with Python's ``zipfile``, and the two
differ wherever the format leaves room: which of two entries of the same name wins, bytes before
the first entry or after the end record (Python shifts every offset by them, miniz does not), an
entry whose local header names another file than the central directory, entries that overlap, an
end record that counts fewer entries than the directory holds. ``torch.save`` writes none of
that: entries back to back from byte 0, each stored (not compressed) with a data descriptor, then
the central directory, then the end record as the file's last 22 bytes. Only that layout passes.
"""

from __future__ import annotations

import struct
import zipfile
from collections import Counter
from typing import BinaryIO

LOCAL = struct.Struct("<4sHHHHHIIIHH")  # local file header, without its name and extra field
LOCAL_MAGIC = b"PK\x03\x04"
DESCRIPTOR_MAGIC = b"PK\x07\x08"
END = struct.Struct("<4sHHHHIIH")  # end of central directory record, without its comment
END_MAGIC = b"PK\x05\x06"
UTF8_NAMES = 0x800
HAS_DESCRIPTOR = 0x08
ENCRYPTED = 0x01
ZIP64_COUNT = 0xFFFF


class AmbiguousZipError(ValueError):
    """Readers could disagree on what this archive holds."""


def raw_name(info: zipfile.ZipInfo) -> bytes:
    """The name's bytes as stored (miniz compares bytes; ``zipfile`` decodes them)."""
    return info.orig_filename.encode("utf-8" if info.flag_bits & UTF8_NAMES else "cp437")


def check_layout(handle: BinaryIO, archive: zipfile.ZipFile) -> None:
    infos = archive.infolist()
    cut = next((i for i in infos if i.filename != i.orig_filename), None)
    if cut is not None:  # zipfile cuts a name at a NUL byte; miniz does not
        raise AmbiguousZipError(f"entry name {cut.orig_filename!r:.80} holds a NUL byte")
    twice = [name for name, n in Counter(raw_name(i) for i in infos).items() if n > 1]
    if twice:
        raise AmbiguousZipError(f"two entries named {twice[0].decode('utf-8', 'replace')!r}")
    end = 0
    for info in sorted(infos, key=lambda i: i.header_offset):
        if info.header_offset != end:
            where = "overlaps the entry before it" if info.header_offset < end else "follows unlisted bytes"
            raise AmbiguousZipError(f"entry {info.filename!r} {where} (at byte {info.header_offset})")
        end = _entry_end(handle, info)
    if end != archive.start_dir:
        raise AmbiguousZipError(f"unlisted bytes between the last entry and the directory (at byte {end})")
    _check_end_record(handle, len(infos))


def _entry_end(handle: BinaryIO, info: zipfile.ZipInfo) -> int:
    """Where the entry's record (local header, name, extra field, data, descriptor) ends."""
    handle.seek(info.header_offset)
    header = handle.read(LOCAL.size)
    if len(header) != LOCAL.size:
        raise AmbiguousZipError(f"entry {info.filename!r} points past the end of the file")
    magic, _version, flags, method, _time, _date, crc, size, _usize, name_len, extra_len = LOCAL.unpack(
        header
    )
    if magic != LOCAL_MAGIC or handle.read(name_len) != raw_name(info):
        raise AmbiguousZipError(f"entry {info.filename!r}: its local header names another file")
    stored = method == info.compress_type == zipfile.ZIP_STORED and info.compress_size == info.file_size
    if flags != info.flag_bits or flags & ENCRYPTED or not stored:
        raise AmbiguousZipError(f"entry {info.filename!r}: not stored as torch.save stores it")
    data_end: int = info.header_offset + LOCAL.size + name_len + extra_len + info.compress_size
    if not flags & HAS_DESCRIPTOR:
        if (crc, size) != (info.CRC, info.compress_size):
            raise AmbiguousZipError(f"entry {info.filename!r}: local header and directory disagree")
        return data_end
    return data_end + _descriptor_length(handle, info, data_end)


def _descriptor_length(handle: BinaryIO, info: zipfile.ZipInfo, at: int) -> int:
    """Length of the data descriptor after the entry's data, which must repeat the directory's CRC and
    sizes (4-byte sizes, or 8-byte ones for zip64; the signature is optional)."""
    handle.seek(at)
    raw = handle.read(24)
    body = raw[4:] if raw.startswith(DESCRIPTOR_MAGIC) else raw
    skip = len(raw) - len(body)
    for fmt in ("<III", "<IQQ"):
        size = struct.calcsize(fmt)
        if len(body) >= size and struct.unpack(fmt, body[:size]) == (
            info.CRC,
            info.compress_size,
            info.file_size,
        ):
            return skip + size
    raise AmbiguousZipError(f"entry {info.filename!r}: its data descriptor disagrees with the directory")


def _check_end_record(handle: BinaryIO, entries: int) -> None:
    """The end record is the file's last bytes (no comment, nothing appended) and counts every entry."""
    handle.seek(-END.size, 2)
    magic, _disk, _cd_disk, _here, total, _size, _offset, comment = END.unpack(handle.read(END.size))
    if magic != END_MAGIC or comment:
        raise AmbiguousZipError("bytes after the archive's end record (an appended file or a comment)")
    if total not in (entries, ZIP64_COUNT):
        raise AmbiguousZipError(f"the end record counts {total} entries, the directory holds {entries}")

"""Stream an upload's bytes to a staging file, hashing as they arrive; never the whole file in memory.

Two request shapes, for curl users:

- ``multipart/form-data`` with one file part named ``file`` (``curl -F file=@ocec_A.pt``); other
  small form fields are ignored;
- any other body is the file itself (``curl --data-binary @ocec_A.pt -H 'Content-Type:
  application/octet-stream'``), named by the ``filename`` query parameter.

More than ``limit`` file bytes is a 413 problem (the body-size middleware cuts the request off too);
an empty file or a malformed multipart body is a 422 naming ``file``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

import anyio
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from api.errors import ApiError, ProblemType, invalid_field
from jobstore.text import first_unsafe

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

FILE_FIELD = "file"
MAX_FORM_BYTES = 64 << 10  # non-file form fields and part headers together


@dataclass(frozen=True)
class Received:
    path: Path
    filename: str  # as the client named it ("" when it did not)
    size: int
    sha256: str


class _Sink:
    """The staging file and its running hash; blocking work runs in a thread."""

    def __init__(self, handle: IO[bytes], limit: int) -> None:
        self.handle = handle
        self.limit = limit
        self.digest = hashlib.sha256()
        self.size = 0

    async def write(self, chunks: list[bytes]) -> None:
        for chunk in chunks:
            self.size += len(chunk)
        if self.size > self.limit:
            raise too_large(self.limit)
        if chunks:
            await anyio.to_thread.run_sync(self._write_now, chunks)

    def _write_now(self, chunks: list[bytes]) -> None:
        for chunk in chunks:
            self.digest.update(chunk)
            self.handle.write(chunk)


def unsafe_filename() -> ApiError:
    message = "must not contain control or bidirectional-formatting characters"
    return invalid_field("filename", message, "value_error")


def too_large(limit: int) -> ApiError:
    return ApiError(413, ProblemType.HTTP, f"the upload is larger than {limit} bytes (OCEC_MAX_UPLOAD_BYTES)")


async def receive(request: Request, target: Path, *, limit: int, filename: str | None) -> Received:
    """Write the request's file to ``target`` (a new file); its name, size and SHA-256."""
    content_type = request.headers.get("content-type", "")
    with target.open("xb") as handle:
        sink = _Sink(handle, limit)
        if content_type.lower().startswith("multipart/form-data"):
            name = await _multipart(request, content_type, sink)
        else:
            name = await _raw(request, sink)
            name = filename or name
    if sink.size == 0:
        raise invalid_field(FILE_FIELD, "the uploaded file is empty", "upload_empty")
    return Received(path=target, filename=name, size=sink.size, sha256=sink.digest.hexdigest())


async def _raw(request: Request, sink: _Sink) -> str:
    async for chunk in request.stream():
        await sink.write([chunk])
    return ""


@dataclass
class _Parts:
    """Multipart callbacks' state: which part we are in, and the file bytes parsed but not yet written."""

    header_name: bytes = b""
    header_value: bytes = b""
    disposition: bytes = b""
    in_file: bool = False
    files: int = 0
    filename: str = ""
    form_bytes: int = 0
    pending: list[bytes] = field(default_factory=list)
    error: ApiError | None = None


async def _multipart(request: Request, content_type: str, sink: _Sink) -> str:
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise invalid_field(FILE_FIELD, "multipart body without a boundary", "multipart_invalid")
    parts = _Parts()
    parser = MultipartParser(boundary, _callbacks(parts))
    try:
        async for chunk in request.stream():
            parser.write(chunk)
            if parts.error is not None:
                raise parts.error
            await sink.write(parts.pending)
            parts.pending = []
        parser.finalize()
    except MultipartParseError as exc:
        raise invalid_field(FILE_FIELD, f"malformed multipart body ({exc})", "multipart_invalid") from exc
    if parts.files == 0:
        raise invalid_field(FILE_FIELD, "no file part named 'file' (curl -F file=@path)", "missing")
    return parts.filename


def _callbacks(parts: _Parts) -> MultipartCallbacks:
    def on_part_begin() -> None:
        parts.disposition, parts.in_file = b"", False

    def on_header_field(data: bytes, start: int, end: int) -> None:
        parts.header_name += data[start:end]
        count(end - start)

    def on_header_value(data: bytes, start: int, end: int) -> None:
        parts.header_value += data[start:end]
        count(end - start)

    def on_header_end() -> None:
        if parts.header_name.lower() == b"content-disposition":
            parts.disposition = parts.header_value
        parts.header_name, parts.header_value = b"", b""

    def on_headers_finished() -> None:
        _, options = parse_options_header(parts.disposition)
        if options.get(b"name") == FILE_FIELD.encode():  # `-F file=@x.pt`, or `-F file=<x.pt` (no name)
            parts.files += 1
            if parts.files > 1:
                fail(invalid_field(FILE_FIELD, "send exactly one file part", "multipart_invalid"))
            parts.in_file = True
            parts.filename = options.get(b"filename", b"").decode("utf-8", "replace")
            if first_unsafe(parts.filename) is not None:
                fail(unsafe_filename())

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if parts.in_file and parts.error is None:
            parts.pending.append(bytes(data[start:end]))
        else:
            count(end - start)

    def count(n: int) -> None:
        parts.form_bytes += n
        if parts.form_bytes > MAX_FORM_BYTES:
            fail(invalid_field(FILE_FIELD, f"form fields over {MAX_FORM_BYTES} bytes", "multipart_invalid"))

    def fail(error: ApiError) -> None:
        parts.error = parts.error or error

    return {
        "on_part_begin": on_part_begin,
        "on_header_field": on_header_field,
        "on_header_value": on_header_value,
        "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished,
        "on_part_data": on_part_data,
    }

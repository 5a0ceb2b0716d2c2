"""The HTTP side of the client: one ``httpx.Client`` with the key, every failure turned into an
``ApiError`` (problem details) or ``UnreachableError``, and paths built from ids (quoted, so an id with a
``/`` cannot reach another route)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import httpx

from ocec_jobs.client.errors import ApiError, UnexpectedAnswerError, UnreachableError

URL_ENV, KEY_ENV = "OCEC_URL", "OCEC_API_KEY"
DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT = 30.0
STREAM_READ_TIMEOUT = 120.0  # an SSE stream sends a keep-alive every 15 s by default


def path_of(template: str, ids: Mapping[str, str]) -> str:
    """``/jobs/{job_id}/stage`` with each ``{name}`` (or ``{name:path}``) filled in, quoted."""
    path = template
    for name, value in ids.items():
        safe = "/" if f"{{{name}:path}}" in path else ""
        path = path.replace(f"{{{name}:path}}", "{" + name + "}")
        path = path.replace(f"{{{name}}}", quote(str(value).strip(), safe=safe))
    return path


class Connection:
    """A connection to one server; ``url`` and ``key`` default to ``$OCEC_URL`` and ``$OCEC_API_KEY``."""

    def __init__(
        self, url: str | None = None, key: str | None = None, *, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self.url = (url or os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")
        self.key = key or os.environ.get(KEY_ENV) or None
        self.timeout = timeout
        headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    # ---- plain requests -----------------------------------------------------------------------------
    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Any request; raises ``ApiError`` for a 4xx/5xx and ``UnreachableError`` for no answer."""
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise self.unreachable(exc) from exc
        if response.status_code >= 400:
            raise ApiError.from_response(response)
        return response

    # ---- streams (SSE, downloads) -------------------------------------------------------------------
    @contextmanager
    def open_stream(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        kwargs.setdefault("timeout", httpx.Timeout(self.timeout, read=STREAM_READ_TIMEOUT))
        try:
            with self.http.stream(method, path, **kwargs) as response:
                if response.status_code >= 400:
                    response.read()
                    raise ApiError.from_response(response)
                yield response
        except httpx.HTTPError as exc:
            raise self.unreachable(exc) from exc

    def unreachable(self, exc: httpx.HTTPError) -> UnreachableError:
        return UnreachableError(self.url, _transport_reason(exc))


def json_of(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise UnexpectedAnswerError(
            f"unexpected answer from {response.request.url} ({response.status_code}, not JSON): "
            "is the URL an ocec-jobs server?"
        ) from exc


def present(values: Mapping[str, Any]) -> dict[str, Any]:
    """Query parameters less the ones not given (None, or an empty list)."""
    return {k: v for k, v in values.items() if v is not None and v != []}


def _transport_reason(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "connection refused" if "refused" in str(exc).lower() else f"cannot connect: {exc}"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the connection was cut"
    return f"{type(exc).__name__}: {exc}"

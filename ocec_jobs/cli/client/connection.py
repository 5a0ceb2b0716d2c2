"""The HTTP side of the client: the server URL and key from flags or the environment, one httpx client
per command, and every failure turned into a one-line ``ClientError`` with its exit code.

Problem details (RFC 9457) from the server become ``<status> <title>: <detail>`` plus the fields a
422 names; a server that does not answer becomes "cannot reach …" (exit 3), a refused key exit 4.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jobstore.text import visible
from ocec_jobs.cli.client.exitcodes import ClientError, Exit

if TYPE_CHECKING:
    import httpx

URL_ENV, KEY_ENV = "OCEC_URL", "OCEC_API_KEY"
DEFAULT_URL = "http://127.0.0.1:8000"
# A 429 for too many wrong keys from this address is about the key, not the request (docs/security.md).
FAILED_KEYS = "urn:ocec-jobs:problem:too-many-failed-keys"
STREAM_READ_TIMEOUT = 120.0  # an SSE stream sends a keep-alive every 15 s by default


@dataclass(frozen=True)
class Target:
    url: str
    key: str | None
    timeout: float


def target_of(args: argparse.Namespace) -> Target:
    url = (args.url or os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")
    key = args.key or os.environ.get(KEY_ENV) or None
    return Target(url=url, key=key, timeout=args.timeout)


class Api:
    """A connection to one server; use as a context manager."""

    def __init__(self, target: Target) -> None:
        import httpx  # here, not at import: `ocec-jobs --help` stays fast

        self.target = target
        headers = {"Authorization": f"Bearer {target.key}"} if target.key else {}
        self.http = httpx.Client(base_url=target.url, headers=headers, timeout=target.timeout)

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    # ---- JSON requests ---------------------------------------------------------------------------
    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return _json(self.request("GET", path, params=params))

    def post(self, path: str, body: Any = None, headers: Mapping[str, str] | None = None) -> Any:
        return _json(self.request("POST", path, json=body, headers=headers))

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        import httpx

        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise self.unreachable(exc) from exc
        self.check(response)
        return response

    # ---- streams (SSE, downloads) -------------------------------------------------------------
    @contextmanager
    def stream(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        import httpx

        kwargs.setdefault("timeout", httpx.Timeout(self.target.timeout, read=STREAM_READ_TIMEOUT))
        try:
            with self.http.stream(method, path, **kwargs) as response:
                if response.status_code >= 400:
                    response.read()
                    self.check(response)
                yield response
        except httpx.HTTPError as exc:
            raise self.unreachable(exc) from exc

    # ---- errors -----------------------------------------------------------------------------------
    def unreachable(self, exc: httpx.HTTPError) -> ClientError:
        reason = _transport_reason(exc)
        return ClientError(
            Exit.UNREACHABLE,
            f"cannot reach the ocec-jobs server at {self.target.url} ({reason}): is it running? "
            f"Set --url or {URL_ENV}",
        )

    def check(self, response: httpx.Response) -> None:
        status = response.status_code
        if status < 400:
            return
        message = problem_message(response)
        if status == 401:
            hint = "pass --key or set" if self.target.key is None else "check --key /"
            raise ClientError(Exit.AUTH, f"{message} ({hint} {KEY_ENV})")
        if status == 403 or _problem_type(response) == FAILED_KEYS:
            raise ClientError(Exit.AUTH, message)
        raise ClientError(Exit.SERVER_ERROR if status >= 500 else Exit.REFUSED, message)


def problem_message(response: httpx.Response) -> str:
    """``404 Not Found: no job with id 'x'`` (+ ``[field: message; …]`` for a 422)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        text = (
            response.text.strip().splitlines()[0][:200] if response.text.strip() else response.reason_phrase
        )
        return f"{response.status_code} {text}"
    detail = str(body.get("detail") or body.get("title") or response.reason_phrase)
    errors = body.get("errors") or []
    fields = "; ".join(f"{e.get('field') or e.get('location')}: {e.get('message')}" for e in errors[:5])
    shown = f" [{fields}]" if fields and fields not in detail else ""
    message = f"{response.status_code} {body.get('title') or response.reason_phrase}: {detail}{shown}"
    return visible(" ".join(message.split()))  # one line, whatever the detail held; no escapes


def _problem_type(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("type", "")) if isinstance(body, dict) else ""


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise ClientError(
            Exit.SERVER_ERROR,
            f"unexpected answer from {response.request.url} ({response.status_code}, not JSON): "
            "is --url an ocec-jobs server?",
        ) from exc


def _transport_reason(exc: httpx.HTTPError) -> str:
    import httpx

    if isinstance(exc, httpx.ConnectError):
        return "connection refused" if "refused" in str(exc).lower() else f"cannot connect: {exc}"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the connection was cut"
    return f"{type(exc).__name__}: {exc}"

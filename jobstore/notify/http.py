"""Delivery attempts over HTTP: POSTs with short timeouts, no redirects, a capped read of the answer."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import TracebackType

import httpx

from jobstore.repo.notifications import RESPONSE_MAX, AttemptResult

Post = Callable[[str, bytes, Mapping[str, str]], AttemptResult]


class Sender:
    """``Post`` over one HTTP client for a whole pass (a client is costly to make: TLS context, pool)."""

    def __init__(self, timeout: float) -> None:
        self._client = httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False)

    def __enter__(self) -> Sender:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._client.close()

    def __call__(self, url: str, body: bytes, headers: Mapping[str, str]) -> AttemptResult:
        """POST ``body`` to ``url``; any answer is a result (2xx: delivered), a transport error too."""
        try:
            with self._client.stream("POST", url, content=body, headers=dict(headers)) as response:
                return AttemptResult(status_code=response.status_code, response=_head(response))
        except httpx.HTTPError as exc:
            return AttemptResult(error=f"{type(exc).__name__}: {exc}")


def _head(response: httpx.Response) -> str:
    """At most ``RESPONSE_MAX`` bytes of the answer's body: a receiver cannot make us read or keep more."""
    chunk = b""
    for part in response.iter_bytes():
        chunk += part
        if len(chunk) >= RESPONSE_MAX:
            break
    return chunk[:RESPONSE_MAX].decode("utf-8", errors="replace")

"""Follow a job as Server-Sent Events: replay after a cursor, poll for more, end on a terminal state.

FastAPI's native SSE (``fastapi.sse``) does the wire format; this module decides *what* to send.
Each poll runs in a worker thread with its own short-lived DB session, so an open stream never
holds a pooled connection between polls. The stream is finite: after the job reaches succeeded,
failed or cancelled and everything before that has been sent, a final ``end`` event carries the
terminal state and the response closes (clients must not treat a closed socket as "finished").
The credentials that opened the stream are re-checked every ``auth_recheck_s``: once the key is
revoked, the session signed out or expired, the stream closes without an ``end`` event (a
reconnecting client then gets its 401).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from fastapi.sse import ServerSentEvent

from jobstore.states import TERMINAL, JobState

END_EVENT = "end"


@dataclass(frozen=True)
class FeedItem:
    id: str  # opaque, ordered cursor: a client resumes after it with Last-Event-ID
    event: str
    data: dict[str, Any]


@dataclass(frozen=True)
class FeedPage:
    """Items after a cursor, with the job state read *before* them (so an end is never early)."""

    items: list[FeedItem]
    state: str
    state_reason: str
    more: bool = False  # the page was full: poll again at once
    extra: dict[str, Any] = field(default_factory=dict)


Poll = Callable[[str | None], FeedPage]


Allowed = Callable[[], bool]
REVOKED_COMMENT = "credentials revoked, signed out or expired: stream closed"


@dataclass(frozen=True)
class StreamTiming:
    poll_s: float
    keepalive_s: float
    retry_ms: int
    auth_recheck_s: float = 5.0


def _always() -> bool:
    return True


async def follow(
    job_id: str, poll: Poll, cursor: str | None, timing: StreamTiming, allowed: Allowed = _always
) -> AsyncIterator[ServerSentEvent]:
    yield ServerSentEvent(comment=f"job {job_id}", retry=timing.retry_ms)
    quiet_since = checked = time.monotonic()
    while True:
        if time.monotonic() - checked >= timing.auth_recheck_s:
            if not await anyio.to_thread.run_sync(allowed):
                yield ServerSentEvent(comment=REVOKED_COMMENT)
                return
            checked = time.monotonic()
        page = await anyio.to_thread.run_sync(poll, cursor)
        for item in page.items:
            yield ServerSentEvent(id=item.id, event=item.event, data=item.data)
            cursor = item.id
        if page.items:
            quiet_since = time.monotonic()
        if page.more:
            continue
        if JobState(page.state) in TERMINAL:
            yield ServerSentEvent(event=END_EVENT, data=end_payload(job_id, page, cursor))
            return
        if time.monotonic() - quiet_since >= timing.keepalive_s:
            yield ServerSentEvent(comment="keep-alive")
            quiet_since = time.monotonic()
        await anyio.sleep(timing.poll_s)


def end_payload(job_id: str, page: FeedPage, cursor: str | None) -> dict[str, Any]:
    return {"job_id": job_id, "state": page.state, "state_reason": page.state_reason, "last_event_id": cursor}

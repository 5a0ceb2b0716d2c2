"""A job's live feed as Server-Sent Events, replayable with Last-Event-ID."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query
from fastapi.sse import EventSourceResponse, ServerSentEvent
from sqlalchemy import Engine

from api.auth import Actor, ActorDep
from api.auth.identity import still_valid
from api.deps import EngineDep, JobDep, SettingsDep
from api.errors import PROBLEM_RESPONSES, invalid_field
from api.schemas import CURSOR_MAX, EventPublic, MetricPublic
from api.sse import FeedItem, FeedPage, StreamTiming, follow
from jobstore import repo
from jobstore.db import read_session
from jobstore.events import EventKind

router = APIRouter(prefix="/jobs", tags=["stream"])

METRIC_EVENT = "metric"


def stream_cursor(
    last_event_id: Annotated[
        str | None, Header(alias="Last-Event-ID", max_length=32, description="resume after this event id")
    ] = None,
    after: Annotated[
        int | None,
        Query(
            ge=0,
            le=CURSOR_MAX,
            description="resume after this event id (for clients that cannot set headers)",
        ),
    ] = None,
) -> str | None:
    """Where to resume; the header wins over the query (a browser's EventSource sets it on reconnect).
    Checked before the stream starts, so a bad id is a 422 problem, not a broken stream."""
    if last_event_id is not None and last_event_id.strip():
        value = last_event_id.strip()
        if not (value.isascii() and value.isdigit()) or int(value) > CURSOR_MAX:  # "²".isdigit() too
            raise invalid_field(
                "Last-Event-ID", "must be an event id from this stream", "int_parsing", "header"
            )
        return last_event_id.strip()
    return None if after is None else str(after)


@router.get("/{job_id}/stream", response_class=EventSourceResponse, responses=PROBLEM_RESPONSES)
async def stream_job(
    job: JobDep,
    engine: EngineDep,
    settings: SettingsDep,
    cursor: Annotated[str | None, Depends(stream_cursor)],
    actor: ActorDep,
) -> AsyncIterator[ServerSentEvent]:
    """Stream a job's metrics and events as they are recorded; a final `end` event carries the end state.
    The stream closes (no `end`) soon after its key is revoked or its session signed out."""
    timing = StreamTiming(
        settings.stream_poll_seconds,
        settings.stream_keepalive_seconds,
        settings.stream_retry_ms,
        settings.stream_auth_recheck_seconds,
    )
    poll = _poller(engine, job.id, settings.stream_page_size)
    allowed = partial(_still_valid, engine, actor)
    async for message in follow(job.id, poll, cursor, timing, allowed):
        yield message


def _still_valid(engine: Engine, actor: Actor) -> bool:
    return still_valid(engine, actor, datetime.now(UTC))


def _poller(engine: Engine, job_id: str, page_size: int) -> Callable[[str | None], FeedPage]:
    def poll(cursor: str | None) -> FeedPage:
        # A short session per poll: the stream holds no connection while it waits.
        with read_session(engine) as session:
            job = repo.get_job(session, job_id)  # the state first: items read after it are complete
            items = repo.feed(session, job_id=job_id, after_seq=int(cursor or 0), limit=page_size)
            return FeedPage(
                items=[_item(item) for item in items],
                state=job.state,
                state_reason=job.state_reason,
                more=len(items) == page_size,
            )

    return poll


def _item(item: repo.FeedItem) -> FeedItem:
    event = EventPublic.model_validate(item.event).model_dump(mode="json")
    if item.event.kind == EventKind.EPOCH and item.metric is not None:
        metric = MetricPublic.model_validate(item.metric).model_dump(mode="json")
        return FeedItem(id=str(item.seq), event=METRIC_EVENT, data={"seq": item.seq, **metric})
    return FeedItem(id=str(item.seq), event=item.event.kind, data=event)

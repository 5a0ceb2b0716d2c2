"""A job's audit trail: state changes, stage transitions, gate checks, commands, resumes."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from api.deps import EngineDep, SettingsDep
from api.errors import PROBLEM_RESPONSES
from api.paging import page_size
from api.schemas import CURSOR_MAX, EventsPage
from jobstore import repo
from jobstore.db import read_session
from jobstore.events import EventKind

router = APIRouter(prefix="/jobs", tags=["events"])


@router.get("/{job_id}/events", response_model=EventsPage, responses=PROBLEM_RESPONSES)
async def list_events(
    job_id: str,
    engine: EngineDep,
    settings: SettingsDep,
    after: Annotated[int, Query(ge=0, le=CURSOR_MAX, description="events with seq > after")] = 0,
    limit: Annotated[int | None, Query(ge=1, description="events per page (bounded by the server)")] = None,
    kind: Annotated[list[EventKind] | None, Query(description="repeat for several kinds")] = None,
) -> EventsPage:
    """List a job's events in order, each with its actor, reason and evidence."""
    size = page_size(settings, limit, whole=True)
    read = partial(events_page, engine, job_id, after, size, kind)
    return await run_in_threadpool(read)  # the blocking read in one thread hop (see api.routes.jobs)


def events_page(
    engine: Engine, job_id: str, after: int, size: int, kinds: list[EventKind] | None
) -> EventsPage:
    with read_session(engine) as session:
        job = repo.get_job(session, job_id)  # 404 for an unknown id
        rows = repo.event_rows(session, job_id=job.id, after_seq=after, limit=size + 1, kinds=kinds)
    more = len(rows) > size
    data = [dict(row._mapping) for row in rows[:size]]  # validated once, by the page model
    return EventsPage.model_validate({"data": data, "next_after": data[-1]["seq"] if more else None})

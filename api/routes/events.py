"""A job's audit trail: state changes, stage transitions, gate checks, commands, resumes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import JobDep, SessionDep, SettingsDep
from api.errors import PROBLEM_RESPONSES
from api.paging import page_size
from api.schemas import CURSOR_MAX, EventPublic, EventsPage
from jobstore import repo
from jobstore.events import EventKind

router = APIRouter(prefix="/jobs", tags=["events"])


@router.get("/{job_id}/events", response_model=EventsPage, responses=PROBLEM_RESPONSES)
def list_events(
    session: SessionDep,
    settings: SettingsDep,
    job: JobDep,
    after: Annotated[int, Query(ge=0, le=CURSOR_MAX, description="events with seq > after")] = 0,
    limit: Annotated[int | None, Query(ge=1, description="events per page (bounded by the server)")] = None,
    kind: Annotated[list[EventKind] | None, Query(description="repeat for several kinds")] = None,
) -> EventsPage:
    """List a job's events in order, each with its actor, reason and evidence."""
    size = page_size(settings, limit, whole=True)
    rows = repo.list_events(session, job_id=job.id, after_seq=after, limit=size + 1, kinds=kind)
    more = len(rows) > size
    data = [EventPublic.model_validate(row) for row in rows[:size]]
    return EventsPage(data=data, next_after=data[-1].seq if more else None)

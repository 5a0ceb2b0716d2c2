"""A job's webhook delivery log: every notification sent for it, to each URL, with its attempts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import JobDep, SessionDep, SettingsDep
from api.errors import PROBLEM_RESPONSES
from api.paging import PageLimit, page_size
from api.schemas import CURSOR_MAX, NotificationPublic, NotificationsPage
from jobstore import repo

router = APIRouter(prefix="/jobs", tags=["notifications"])


@router.get("/{job_id}/notifications", response_model=NotificationsPage, responses=PROBLEM_RESPONSES)
def list_notifications(
    session: SessionDep,
    settings: SettingsDep,
    job: JobDep,
    limit: PageLimit = None,
    after: Annotated[int, Query(ge=0, le=CURSOR_MAX, description="deliveries with id > after")] = 0,
) -> NotificationsPage:
    """List a job's webhook deliveries in order: URL, status, attempts (status code, error), next try."""
    size = page_size(settings, limit)
    rows = repo.list_deliveries(session, job_id=job.id, after_id=after, limit=size + 1)
    more = len(rows) > size
    data = [NotificationPublic.model_validate(row) for row in rows[:size]]
    return NotificationsPage(data=data, next_after=data[-1].id if more else None)

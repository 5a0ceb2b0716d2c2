"""Helpers shared by the repository modules: the clock, row locks and the attempt fence.

Every function that changes a job first takes its row lock (``SELECT … FOR UPDATE`` on PostgreSQL;
on SQLite the write transaction's ``BEGIN IMMEDIATE`` already excludes other writers) and re-reads
it, so decisions are made on the committed state, never on a stale copy held by the caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection
from sqlalchemy.orm import configure_mappers
from sqlmodel import Session, SQLModel

from jobstore.errors import FencedOutError, JobNotFoundError
from jobstore.models import Job, utcnow
from jobstore.states import JobState

REASON_MAX = 2000

Reader = Session | Connection  # hot reads take either: a plain connection skips the ORM session


Model = TypeVar("Model", bound=SQLModel)


def connection_of(reader: Reader) -> Connection:
    """The connection a plain-row read runs on (a session's own, inside its transaction)."""
    return reader.connection() if isinstance(reader, Session) else reader


def detached(model: type[Model], columns: Mapping[str, Any]) -> Model:
    """A plain row as its model, read-only: built without validation (these are the database's own
    values) and without an ORM load, which costs more than the statement on a hot read. Never add
    it to a session."""
    configure_mappers()  # its attributes read through the mapper, set up on first ORM use (a no-op after)
    # sqlmodel types what model_construct returns as its base class
    built: Model = model.model_construct(**columns)  # type: ignore[assignment]
    return built


def now_or(now: datetime | None) -> datetime:
    """``now`` (must be timezone-aware) or the current UTC time."""
    if now is None:
        return utcnow()
    if now.tzinfo is None:
        raise ValueError("naive datetime: pass an aware one, e.g. datetime.now(UTC)")
    return now


def clip(text: str, limit: int = REASON_MAX) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def lock_job(session: Session, job_id: str) -> Job:
    """The job's row, locked for this transaction and freshly read (pending changes are flushed)."""
    job = session.get(Job, job_id, with_for_update=True, populate_existing=True)
    if job is None:
        raise JobNotFoundError(job_id)
    return job


def fence(session: Session, *, job_id: str, attempt: int) -> Job:
    """Lock the job and check that ``attempt`` still owns it: same attempt number and running.

    Raises ``FencedOutError`` otherwise (a stale or duplicate worker); nothing has been written.
    """
    job = session.get(Job, job_id, with_for_update=True, populate_existing=True)
    if job is None or job.attempt != attempt or job.state != JobState.RUNNING:
        raise FencedOutError(job_id, attempt, job.attempt if job else None, job.state if job else None)
    return job

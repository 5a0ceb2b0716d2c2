"""Jobs: create (idempotent per owner and key), read, list with a keyset cursor, queue position."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import load_only
from sqlmodel import Session, col, select

from jobstore.errors import IdempotencyConflictError, InvalidCursorError, JobNotFoundError, QuotaExceededError
from jobstore.events import Actor, EventKind
from jobstore.models import Job
from jobstore.repo._base import clip, now_or
from jobstore.repo.events import append_event
from jobstore.repo.transitions import mark_dispatched
from jobstore.spec import JobCreate, spec_dict
from jobstore.states import JobState


@dataclass(frozen=True)
class CreateResult:
    job: Job
    created: bool  # False: an earlier request with the same Idempotency-Key; nothing was created


@dataclass(frozen=True)
class JobPage:
    items: list[Job]
    next_cursor: str | None  # None on the last page


def request_hash(payload: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a request (what an Idempotency-Key is bound to)."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def create_job(
    session: Session,
    *,
    create: JobCreate,
    owner: str = "",
    idempotency_key: str | None = None,
    actor: str | None = None,
    max_queued: int | None = None,
    parent_job_id: str | None = None,
    fork_from: Mapping[str, Any] | None = None,
    resume_from: Mapping[str, Any] | None = None,
    request: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> CreateResult:
    """Create a queued job (attempt 1, marked dispatched) or return the one this key already made.

    Same ``(owner, idempotency_key)`` and same request → the original job, ``created=False``; same
    key with a different request → ``IdempotencyConflictError``. ``max_queued`` caps the owner's
    queued jobs (``QuotaExceededError``). The caller dispatches ``(job.id, job.attempt)`` after
    commit, only when ``created``. ``request``: what the key is bound to besides ``create``, when
    the stored job is derived from a bigger request (a race's stage 1).
    """
    now = now_or(now)
    digest = request_hash(
        {
            "create": create.model_dump(mode="json"),
            "parent": parent_job_id,
            "fork_from": dict(fork_from or {}),
            **({"request": dict(request)} if request else {}),
        }
    )
    if idempotency_key is not None:
        existing = _by_key(session, owner, idempotency_key)
        if existing is not None:
            return _replay(existing, idempotency_key, digest)
    if max_queued is not None and _queued_count(session, owner) >= max_queued:
        raise QuotaExceededError(owner, max_queued)
    job = Job(
        name=create.name,
        spec=spec_dict(create),
        priority=create.priority,
        owner=owner,
        idempotency_key=idempotency_key,
        request_hash=digest,
        parent_job_id=parent_job_id,
        fork_from=dict(fork_from or {}),
        resume_from=dict(resume_from or {}),
        stage=create.stage,
        epochs=create.epochs,
        state=JobState.QUEUED.value,
        queued_at=now,
        created_at=now,
        updated_at=now,
    )
    mark_dispatched(job, now)
    try:
        with session.begin_nested():
            session.add(job)
    except IntegrityError:
        # A concurrent request with the same key committed first (PostgreSQL): answer as a replay.
        existing = _by_key(session, owner, idempotency_key) if idempotency_key is not None else None
        if existing is None or idempotency_key is None:
            raise
        return _replay(existing, idempotency_key, digest)
    append_event(
        session,
        job,
        EventKind.CREATED,
        actor=actor or owner or Actor.SYSTEM,
        reason=clip(f"created{' as a fork of ' + parent_job_id if parent_job_id else ''}"),
        evidence={"parent_job_id": parent_job_id, "fork_from": dict(fork_from or {})}
        if parent_job_id
        else {},
        now=now,
        to_state=JobState.QUEUED.value,
    )
    return CreateResult(job, True)


def _by_key(session: Session, owner: str, key: str) -> Job | None:
    return session.exec(select(Job).where(Job.owner == owner, Job.idempotency_key == key)).first()


def _replay(existing: Job, key: str, digest: str) -> CreateResult:
    if existing.request_hash != digest:
        raise IdempotencyConflictError(key, existing.id)
    return CreateResult(existing, False)


def _queued_count(session: Session, owner: str) -> int:
    query = select(func.count()).select_from(Job).where(Job.owner == owner, Job.state == JobState.QUEUED)
    return int(session.exec(query).one())


def get_job(session: Session, job_id: str) -> Job:
    """The job, or ``JobNotFoundError``."""
    job = session.get(Job, job_id)
    if job is None:
        raise JobNotFoundError(job_id)
    return job


def list_jobs(
    session: Session,
    *,
    limit: int = 50,
    cursor: str | None = None,
    states: Sequence[JobState] | None = None,
    stage: int | None = None,
    name: str | None = None,
    owner: str | None = None,
    parent_job_id: str | None = None,
    include_deleted: bool = False,
    only: Sequence[str] | None = None,
) -> JobPage:
    """Newest first, keyset-paginated on ``(created_at, id)``: stable while jobs are added.

    ``name`` matches a case-insensitive substring (``%`` and ``_`` are literal). ``cursor`` is the
    opaque ``next_cursor`` of the previous page (``InvalidCursorError`` if it is not one). Deleted
    jobs (tombstones) are left out unless ``include_deleted``. ``only``: load just these columns
    (a page shows a few of a job's; reading another one after the session raises).
    """
    if limit < 1:
        raise ValueError("limit must be >= 1")
    query = select(Job) if only is None else select(Job).options(load_only(*(getattr(Job, c) for c in only)))
    if not include_deleted:
        query = query.where(col(Job.deleted_at).is_(None))
    if states:
        query = query.where(col(Job.state).in_([JobState(state).value for state in states]))
    if stage is not None:
        query = query.where(Job.stage == stage)
    if name:
        query = query.where(col(Job.name).icontains(name, autoescape=True))
    if owner is not None:
        query = query.where(Job.owner == owner)
    if parent_job_id is not None:
        query = query.where(Job.parent_job_id == parent_job_id)
    if cursor:
        created_at, job_id = decode_cursor(cursor)
        query = query.where(
            or_(
                col(Job.created_at) < created_at,
                and_(col(Job.created_at) == created_at, col(Job.id) < job_id),
            )
        )
    query = query.order_by(col(Job.created_at).desc(), col(Job.id).desc()).limit(limit + 1)
    rows = list(session.exec(query).all())
    more = len(rows) > limit
    items = rows[:limit]
    return JobPage(items, encode_cursor(items[-1]) if more else None)


FORK_COLUMNS = ("id", "name", "state", "stage", "epoch", "epochs", "best_f1", "fork_from")


def fork_rows(session: Session, *, parent_job_id: str, limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` live jobs forked from ``parent_job_id``: only the columns a status shows
    of them (``FORK_COLUMNS``), not whole rows, since every status read asks."""
    columns = [getattr(Job, name) for name in FORK_COLUMNS]
    query = (
        select(*columns)
        .where(Job.parent_job_id == parent_job_id, col(Job.deleted_at).is_(None))
        .order_by(col(Job.created_at).desc(), col(Job.id).desc())
        .limit(limit)
    )
    return [dict(zip(FORK_COLUMNS, row, strict=True)) for row in session.exec(query).all()]


def encode_cursor(job: Job) -> str:
    raw = json.dumps([job.created_at.isoformat(), job.id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, job_id = json.loads(raw)
        when = datetime.fromisoformat(created_at)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise InvalidCursorError(f"invalid cursor {cursor!r}") from exc
    if when.tzinfo is None or not isinstance(job_id, str):
        raise InvalidCursorError(f"invalid cursor {cursor!r}")
    return when, job_id


def queue_position(session: Session, job: Job) -> int | None:
    """1-based place among queued jobs (higher priority first, then longest queued); None if not queued.

    The order workers take them in across priorities (``leases.next_claimable``); within one
    priority an estimate, as the broker hands out messages in the order they were sent.
    """
    if job.state != JobState.QUEUED or job.queued_at is None:
        return None
    ahead = (
        select(func.count())
        .select_from(Job)
        .where(
            Job.state == JobState.QUEUED,
            or_(
                col(Job.priority) > job.priority,
                and_(
                    col(Job.priority) == job.priority,
                    or_(
                        col(Job.queued_at) < job.queued_at,
                        and_(col(Job.queued_at) == job.queued_at, col(Job.id) < job.id),
                    ),
                ),
            ),
        )
    )
    return int(session.exec(ahead).one()) + 1

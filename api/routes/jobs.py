"""Submit, list, read and delete jobs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api.created import REPLAY, answer_created
from api.deps import (
    JOB_ID_PATTERN,
    Actor,
    ActorDep,
    DispatcherDep,
    EngineDep,
    IdempotencyKey,
    SessionDep,
    SettingsDep,
    TransactionDep,
)
from api.dispatch import Dispatcher, dispatch_after_commit
from api.errors import PROBLEM_RESPONSES, with_problems
from api.paging import PageCursor, PageLimit, page_size
from api.paths import PathKind, confine
from api.schemas import JobsPage, JobStatus
from api.settings import ApiSettings
from api.status import PUBLIC_COLUMNS, load_status, public, read_status
from jobstore import repo
from jobstore.db import TransactionFactory, read_session
from jobstore.disk import folder_bytes, remove_tree
from jobstore.repo import deletion
from jobstore.spec import JobCreate, SafeText
from jobstore.states import JobState

router = APIRouter(prefix="/jobs", tags=["jobs"])


def confined(create: JobCreate, settings: ApiSettings) -> JobCreate:
    """The spec with ``data_root`` / ``retention_data_root`` / ``pretrain`` checked against their roots
    and made relative."""
    changes = {
        "data_root": confine(settings.data_root, create.data_root, field="data_root", kind=PathKind.DIRECTORY)
    }
    if create.retention_data_root is not None:  # the source domain A, only evaluated
        changes["retention_data_root"] = confine(
            settings.data_root,
            create.retention_data_root,
            field="retention_data_root",
            kind=PathKind.DIRECTORY,
        )
    if create.pretrain is not None:
        changes["pretrain"] = confine(
            settings.model_root, create.pretrain, field="pretrain", kind=PathKind.FILE
        )
    return create.model_copy(update=changes)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=JobStatus,
    responses=with_problems(REPLAY),
)
def create_job(
    body: JobCreate,
    response: Response,
    settings: SettingsDep,
    transaction: TransactionDep,
    session: SessionDep,
    dispatcher: DispatcherDep,
    actor: ActorDep,
    idempotency_key: IdempotencyKey = None,
) -> JobStatus:
    """Create a fine-tuning job and queue it for a worker; with ``race``, a race of stage-2 recipes
    (docs/race.md): this job runs stage 1, then one child job per candidate."""
    create = confined(body, settings)
    if create.race is not None:
        return create_race(
            create, response, settings, transaction, session, dispatcher, actor, idempotency_key
        )
    with transaction() as tx:
        result = repo.create_job(
            tx,
            create=create,
            owner=actor.owner,
            idempotency_key=idempotency_key,
            actor=actor.name,
            max_queued=settings.max_queued_jobs_per_key if actor.owner else None,  # a quota per API key
        )
    if result.created:
        dispatch_after_commit(dispatcher, result.job.id, result.job.attempt)
    answer_created(response, result.job, created=result.created)
    return load_status(session, repo.get_job(session, result.job.id), settings)


def create_race(
    create: JobCreate,
    response: Response,
    settings: ApiSettings,
    transaction: TransactionFactory,
    session: Session,
    dispatcher: Dispatcher,
    actor: Actor,
    idempotency_key: str | None,
) -> JobStatus:
    with transaction() as tx:
        change = repo.create_race(
            tx, create=create, owner=actor.owner, idempotency_key=idempotency_key, actor=actor.name,
            max_queued=settings.max_queued_jobs_per_key if actor.owner else None,
        )  # fmt: skip
    for job_id, attempt in change.sends:
        dispatch_after_commit(dispatcher, job_id, attempt)
    answer_created(response, change.parent, created=change.created)
    return load_status(session, repo.get_job(session, change.parent.id), settings)


@router.get("", response_model=JobsPage, responses=PROBLEM_RESPONSES)
async def list_jobs(
    engine: EngineDep,
    settings: SettingsDep,
    state: Annotated[list[JobState] | None, Query(description="repeat for several states")] = None,
    stage: Annotated[int | None, Query(ge=1, le=3)] = None,
    name: Annotated[
        SafeText | None, Query(min_length=1, max_length=200, description="substring, any case")
    ] = None,
    parent: Annotated[
        str | None, Query(pattern=JOB_ID_PATTERN, description="jobs forked from this one")
    ] = None,
    include_deleted: Annotated[bool, Query(description="also deleted jobs (their tombstones)")] = False,
    limit: PageLimit = None,
    cursor: PageCursor = None,
) -> JobsPage:
    """List jobs, newest first, one page at a time (deleted jobs only with include_deleted)."""
    filters = {
        "limit": page_size(settings, limit), "cursor": cursor, "states": state, "stage": stage,
        "name": name, "parent_job_id": parent, "include_deleted": include_deleted,
    }  # fmt: skip
    return await run_in_threadpool(jobs_page, engine, filters)  # one thread hop, as get_job


def jobs_page(engine: Engine, filters: dict[str, Any]) -> JobsPage:
    with read_session(engine) as session:
        page = repo.list_jobs(session, only=PUBLIC_COLUMNS, **filters)
    return JobsPage(data=[public(job) for job in page.items], next_cursor=page.next_cursor)


@router.get("/{job_id}", response_model=JobStatus, responses=PROBLEM_RESPONSES)
async def get_job(job_id: str, engine: EngineDep, settings: SettingsDep) -> JobStatus:
    """Show a job's status: state, stage, progress, ETA, best F1, latest metrics and next gate, and
    whether its worker lives and how old its last heartbeat is."""
    # Every open job page polls this: the blocking read goes to a worker thread in one hop (not one
    # per dependency, plus one for the response's validation, as a sync route would take).
    return await run_in_threadpool(read_status, engine, job_id, settings)


@router.delete("/{job_id}", response_model=JobStatus, responses=PROBLEM_RESPONSES)
def delete_job(
    job_id: str,
    session: SessionDep,
    settings: SettingsDep,
    transaction: TransactionDep,
    actor: ActorDep,
    reason: Annotated[SafeText, Query(max_length=2000, description="why, for the audit trail")] = "",
) -> JobStatus:
    """Delete a succeeded, failed or cancelled job (an operator key): its run folder is removed, the
    job stays as a tombstone (``deleted_at``, a ``deleted`` event) and leaves the default list.
    409 while it is not finished, or while a fork still restores from its checkpoints."""
    with transaction() as tx:
        folder = settings.runs_root / repo.get_job(tx, job_id).id  # 404 for an unknown id
        deletion.delete_job(tx, job_id, actor=actor.name, reason=reason, disk_bytes=folder_bytes(folder))
    remove_tree(folder)  # after the commit; again on a repeat, should an earlier removal have failed
    return load_status(session, repo.get_job(session, job_id), settings)

"""The rows one job status shows, in one statement: every ``GET /jobs/{id}`` reads them (a job page
polls it), so the job, its current attempt, its worker's presence row, whether any job was forked
from it and, for a race's parent, the race's state come in one round trip instead of five. They are
read as plain rows and built without validation (they are the database's own rows): an ORM load
would cost more than the statement."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, Table, and_, bindparam, exists, select
from sqlmodel import SQLModel

from jobstore.errors import JobNotFoundError
from jobstore.models import Attempt, Job, Race, WorkerPresence
from jobstore.repo._base import Model, Reader, connection_of, detached


@dataclass(frozen=True)
class RaceRow:
    """A race's parent: its race's state, winner (a candidate's name) and why."""

    state: str
    winner: str | None
    reason: str


@dataclass(frozen=True)
class StatusRows:
    job: Job
    attempt: Attempt | None  # the job's current attempt (``job.attempt``), if it was claimed
    worker: WorkerPresence | None  # the presence row of the node holding its lease, if any
    forked: bool  # some live job was forked from it (only then are the forks read)
    race: RaceRow | None = None  # it is a race's parent: its own state covers stage 1 only


def _table(model: type[SQLModel]) -> Table:
    table: Table = model.__table__  # type: ignore[attr-defined]
    return table


_JOB, _ATTEMPT, _WORKER, _RACE = _table(Job), _table(Attempt), _table(WorkerPresence), _table(Race)
_child = _JOB.alias("child")
_FORKED = exists().where(_child.c.parent_job_id == _JOB.c.id, _child.c.deleted_at.is_(None))
# Built once: only the job id changes between reads, so the statement is not rebuilt per request.
_STATUS = (
    select(_JOB, _ATTEMPT, _WORKER, _FORKED.label("forked"), _RACE.c.state, _RACE.c.winner, _RACE.c.reason)
    .outerjoin(_ATTEMPT, and_(_ATTEMPT.c.job_id == _JOB.c.id, _ATTEMPT.c.number == _JOB.c.attempt))
    .outerjoin(_WORKER, _WORKER.c.name == _JOB.c.lease_owner)
    .outerjoin(_RACE, _RACE.c.job_id == _JOB.c.id)
    .where(_JOB.c.id == bindparam("job_id"))
)


def _spans(models: tuple[type[SQLModel], ...]) -> dict[type[SQLModel], slice]:
    """Where each model's columns sit in a row of ``_STATUS`` (names repeat across tables)."""
    spans, start = {}, 0
    for model in models:
        end = start + len(_table(model).c)
        spans[model], start = slice(start, end), end
    return spans


_SPANS = _spans((Job, Attempt, WorkerPresence))
_FORKED_AT = _SPANS[WorkerPresence].stop


def status_rows(reader: Reader, job_id: str) -> StatusRows:
    """The job ``job_id`` and what its status shows of other tables (``JobNotFoundError``)."""
    row = connection_of(reader).execute(_STATUS, {"job_id": job_id}).first()
    if row is None:
        raise JobNotFoundError(job_id)
    forked, race_state, winner, reason = row[_FORKED_AT:]
    return StatusRows(
        job=_built(Job, row),
        attempt=_built(Attempt, row),
        worker=_built(WorkerPresence, row),
        forked=bool(forked),
        race=RaceRow(race_state, winner, reason) if race_state is not None else None,
    )


def _built(model: type[Model], row: Row[Any]) -> Any:
    """The ``model`` whose columns sit at its span of ``row``; ``None`` where the outer join found
    none (its primary key is null)."""
    columns = dict(zip(_table(model).c.keys(), row[_SPANS[model]], strict=True))
    if all(columns[key.name] is None for key in _table(model).primary_key):
        return None
    return detached(model, columns)

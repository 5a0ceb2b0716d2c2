"""Worker presence: which workers live, and why none does (``/readyz``, a job's status).

A worker's companion process beats for its Celery node every ``heartbeat_seconds`` (``beat_worker``)
and marks it stopped when the node stops or dies (``mark_stopped``). A worker killed together with
its companion simply stops beating: it counts as live for ``lease_seconds`` after its last beat, as
its job's lease does. ``ocec-jobs up`` leaves a note when it stops restarting its worker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import func
from sqlmodel import Session, col, select

from jobstore.models import Attempt, Job, WorkerPresence
from jobstore.repo._base import clip, now_or
from jobstore.repo.leases import QUEUE_ORDER
from jobstore.resend import QueueView
from jobstore.states import JobState

OK = "ok"
NOTES = 3  # the most recent reasons /readyz shows when no worker lives


class PresenceRole(StrEnum):
    WORKER = "worker"
    SUPERVISOR = "supervisor"


def beat_worker(
    session: Session,
    *,
    name: str,
    pid: int,
    started_at: datetime | None = None,
    now: datetime | None = None,
) -> None:
    """The node ``name`` (main process ``pid``, started at ``started_at``) is alive."""
    now = now_or(now)
    row = session.get(WorkerPresence, name, with_for_update=True)
    if row is None or row.pid != pid or row.stopped_at is not None:  # a new life of the node
        row = row or WorkerPresence(name=name)
        row.role, row.pid, row.stopped_at, row.reason = PresenceRole.WORKER, pid, None, ""
        row.started_at = started_at or now
    row.seen_at = now
    session.add(row)


def mark_stopped(session: Session, *, name: str, reason: str, now: datetime | None = None) -> None:
    row = session.get(WorkerPresence, name, with_for_update=True)
    if row is not None:
        row.stopped_at, row.reason = now_or(now), clip(reason)
        session.add(row)


def record_supervisor_note(
    session: Session, *, name: str, pid: int, reason: str, now: datetime | None = None
) -> None:
    """A supervisor's word on the workers it runs (``reason`` empty: withdraw it)."""
    now = now_or(now)
    row = session.get(WorkerPresence, name, with_for_update=True) or WorkerPresence(name=name, started_at=now)
    row.role, row.pid, row.seen_at, row.reason = PresenceRole.SUPERVISOR, pid, now, clip(reason)
    row.stopped_at = now if reason else None
    session.add(row)


@dataclass
class Presence:
    live: list[str] = field(default_factory=list)  # node names
    notes: list[str] = field(default_factory=list)  # why the others are not live, newest first

    def check(self) -> str:
        """``ok`` when a worker lives, else why not (the ``workers`` check of ``/readyz``)."""
        if self.live:
            return OK
        return "; ".join(["no live worker: queued jobs wait", *self.notes[:NOTES]])


def presence(session: Session, *, fresh_seconds: float, now: datetime | None = None) -> Presence:
    """Live workers: beat within ``fresh_seconds`` and not stopped since."""
    now = now_or(now)
    rows = session.exec(select(WorkerPresence).order_by(col(WorkerPresence.seen_at).desc())).all()
    found = Presence()
    for row in rows:
        if row.role == PresenceRole.SUPERVISOR:
            if row.reason:
                found.notes.append(row.reason)
        elif _live(row, now, fresh_seconds):
            found.live.append(row.name)
        else:
            found.notes.append(_not_live(row, now))
    return found


def worker_live(
    session: Session, *, name: str, since: datetime, fresh_seconds: float, now: datetime | None = None
) -> bool:
    """Whether the node ``name`` lives, in the life that was already running at ``since`` (a node
    restarted after a job's claim does not run that job)."""
    return row_live(session.get(WorkerPresence, name), since=since, fresh_seconds=fresh_seconds, now=now)


def row_live(
    row: WorkerPresence | None, *, since: datetime, fresh_seconds: float, now: datetime | None = None
) -> bool:
    """``worker_live`` of a presence row already read (``repo.status_rows``)."""
    if row is None or row.role != PresenceRole.WORKER or row.started_at > since:
        return False
    return _live(row, now_or(now), fresh_seconds)


def queue_view(session: Session, *, now: datetime, after: timedelta, fresh: float) -> QueueView:
    """The queue as ``jobstore.resend`` sees it: the latest claim or attempt end, the live workers
    (beat within ``fresh`` seconds) and those of them live for ``after`` that run no job."""
    # One subquery per max: each is one index lookup on both databases (SQLite's min/max shortcut
    # takes a lone aggregate only; ``max(a), max(b)`` in one select scans every attempt).
    latest = [select(func.max(column)).scalar_subquery() for column in (Attempt.started_at, Attempt.ended_at)]
    claimed, ended = session.exec(select(*latest)).one()
    rows = session.exec(select(WorkerPresence).where(WorkerPresence.role == PresenceRole.WORKER)).all()
    live = [row for row in rows if _live(row, now, fresh)]
    running = select(Job.lease_owner).where(Job.state == JobState.RUNNING)
    busy = {owner for owner in session.exec(running).all() if owner}
    idle = [row for row in live if row.name not in busy and row.started_at <= now - after]
    last = max((t for t in (claimed, ended) if t is not None), default=None)
    first = select(Job.id).where(Job.state == JobState.QUEUED).order_by(*QUEUE_ORDER).limit(1)
    return QueueView(last, len(live), len(idle), head=session.exec(first).first())


def _live(row: WorkerPresence, now: datetime, fresh_seconds: float) -> bool:
    return row.stopped_at is None and row.seen_at >= now - timedelta(seconds=fresh_seconds)


def _not_live(row: WorkerPresence, now: datetime) -> str:
    ago = (now - (row.stopped_at or row.seen_at)).total_seconds()
    why = f"stopped {ago:.0f} s ago: {row.reason}" if row.stopped_at else f"last seen {ago:.0f} s ago"
    return f"worker {row.name} (pid {row.pid}) {why}"

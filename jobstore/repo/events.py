"""The audit log: append events with a gap-free per-job sequence, list them, replay them with metrics.

``seq`` is taken with ``UPDATE job SET event_seq = event_seq + 1 … RETURNING`` in the writer's
transaction: the job row stays locked until commit, so concurrent writers get 1, 2, 3 … in commit
order, and a rolled-back writer leaves no gap (its increment rolls back with it).

Replay cursor: the SSE stream uses ``seq`` alone. Metrics join the same sequence through ``EPOCH``
events (``evidence["metric_id"]``), so ``feed(after_seq=N)`` returns every event after N with the
metrics row each ``EPOCH`` event announced — one integer resumes both (``Last-Event-ID: N``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, insert, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from jobstore.events import Actor, EventKind
from jobstore.models import EpochMetric, Job, JobEvent
from jobstore.repo._base import clip, fence, now_or

_job = Job.__table__  # type: ignore[attr-defined]
_event = JobEvent.__table__  # type: ignore[attr-defined]
_NEXT_SEQ = (
    update(_job)
    .where(_job.c.id == bindparam("job"))
    .values(event_seq=_job.c.event_seq + 1, updated_at=bindparam("now"))
    .returning(_job.c.event_seq)
)
_INSERT = insert(_event).returning(_event.c.id)


def append_event(
    session: Session,
    job: Job,
    kind: EventKind,
    *,
    actor: str = Actor.SYSTEM,
    reason: str = "",
    evidence: Mapping[str, Any] | None = None,
    now: datetime | None = None,
    attempt: int | None = None,
    epoch: int | None = None,
    stage: int | None = None,
    from_state: str | None = None,
    to_state: str | None = None,
    from_stage: int | None = None,
    to_stage: int | None = None,
    command_id: str | None = None,
) -> JobEvent:
    """Append one event to ``job``'s log. ``attempt``/``epoch``/``stage`` default to the job's own.

    Plain statements built once, not an ORM insert: an event is written every epoch, on the
    training thread (``benchmarks/epoch_overhead.py``). The returned event is not in the session."""
    now = now_or(now)
    session.flush()  # the job row must exist and carry the caller's changes
    connection = session.connection()
    seq = connection.execute(_NEXT_SEQ, {"job": job.id, "now": now}).scalar_one()
    set_committed_value(job, "event_seq", seq)
    set_committed_value(job, "updated_at", now)
    values = {
        "job_id": job.id,
        "seq": seq,
        "kind": kind.value,
        "at": now,
        "actor": clip(actor, 255),
        "reason": clip(reason),
        "attempt": job.attempt if attempt is None else attempt,
        "epoch": job.epoch if epoch is None else epoch,
        "stage": job.stage if stage is None else stage,
        "from_state": from_state,
        "to_state": to_state,
        "from_stage": from_stage,
        "to_stage": to_stage,
        "command_id": command_id,
        "evidence": dict(evidence or {}),
    }
    event_id = connection.execute(_INSERT, values).scalar_one()
    return JobEvent(id=event_id, **values)


def record_note(
    session: Session,
    *,
    job_id: str,
    attempt: int,
    reason: str,
    actor: str,
    evidence: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> JobEvent:
    """A worker's free-form ``NOTE`` event, fenced by attempt."""
    job = fence(session, job_id=job_id, attempt=attempt)
    return append_event(session, job, EventKind.NOTE, actor=actor, reason=reason, evidence=evidence, now=now)


def list_events(
    session: Session,
    *,
    job_id: str,
    after_seq: int = 0,
    limit: int = 100,
    kinds: Iterable[EventKind] | None = None,
) -> list[JobEvent]:
    """Events with ``seq > after_seq`` in ``seq`` order, at most ``limit``."""
    return list(session.exec(_in_seq(select(JobEvent), job_id, after_seq, limit, kinds)).all())


def event_rows(
    session: Session, *, job_id: str, after_seq: int, limit: int, kinds: Iterable[EventKind] | None = None
) -> list[Row[Any]]:
    """``list_events`` as plain rows (the columns of ``JobEvent``): a page of the API reads
    hundreds, and an ORM object per row costs more than the row's read."""
    query = _in_seq(select(*JobEvent.__table__.c), job_id, after_seq, limit, kinds)  # type: ignore[attr-defined]
    return list(session.exec(query).all())


def _in_seq(query: Any, job_id: str, after_seq: int, limit: int, kinds: Iterable[EventKind] | None) -> Any:
    query = query.where(JobEvent.job_id == job_id, JobEvent.seq > after_seq)
    if kinds is not None:
        query = query.where(col(JobEvent.kind).in_([kind.value for kind in kinds]))
    return query.order_by(col(JobEvent.seq)).limit(limit)


@dataclass(frozen=True)
class FeedItem:
    """One entry of the replay feed: an event, plus the metrics row when it is an ``EPOCH`` event."""

    event: JobEvent
    metric: EpochMetric | None = None

    @property
    def seq(self) -> int:
        return self.event.seq


def feed(session: Session, *, job_id: str, after_seq: int = 0, limit: int = 100) -> list[FeedItem]:
    """Events after ``after_seq`` in order, each ``EPOCH`` event joined with its metrics row.

    A superseded row is still returned with the event that announced it (``metric.superseded``
    is true); the later ``METRICS_SUPERSEDED`` event says which epochs were rolled back.
    """
    events = list_events(session, job_id=job_id, after_seq=after_seq, limit=limit)
    ids = [_metric_id(event) for event in events if event.kind == EventKind.EPOCH]
    wanted = [metric_id for metric_id in ids if metric_id is not None]
    rows = session.exec(select(EpochMetric).where(col(EpochMetric.id).in_(wanted))).all() if wanted else []
    by_id = {row.id: row for row in rows}
    return [FeedItem(event, by_id.get(_metric_id(event))) for event in events]


def _metric_id(event: JobEvent) -> int | None:
    value = event.evidence.get("metric_id") if event.kind == EventKind.EPOCH else None
    return value if isinstance(value, int) else None

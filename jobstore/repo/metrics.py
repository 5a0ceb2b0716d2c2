"""Per-epoch metrics: one live row per (job, epoch), written idempotently, rolled back by superseding.

``record_epoch`` inserts with ``ON CONFLICT (job_id, epoch) WHERE NOT superseded DO NOTHING`` on the
live partial unique index, so a replayed epoch (a duplicate delivery, a retried write, a worker
re-recording its history after a restore) never makes a second live row: the first write wins.
On resume, ``supersede_after`` marks live rows past the restored checkpoint as superseded — kept for
audit, never deleted — and the new attempt's rows for those epochs become the live ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Row, bindparam, update
from sqlmodel import Session, col, select

from jobstore.dialect import insert_ignore
from jobstore.downsample import keep_columns
from jobstore.events import Actor, EventKind
from jobstore.models import CheckpointRecord, EpochMetric, Job
from jobstore.records import CheckpointRow, EpochRow
from jobstore.repo._base import fence, lock_job, now_or
from jobstore.repo.checkpoints import store_checkpoints
from jobstore.repo.events import append_event

_metric = EpochMetric.__table__  # type: ignore[attr-defined]
_checkpoint = CheckpointRecord.__table__  # type: ignore[attr-defined]

_LATEST_KEYS = set(EpochRow(epoch=0, stage=0).columns())
CHARTED = ("train_loss", "val_loss", "val_f1", "val_precision", "val_recall", "fisher_ratio")
HEADLINE = ("train_loss", "val_loss", "val_f1", "val_precision", "val_recall", "val_accuracy", "fisher_ratio")


def record_epoch(
    session: Session,
    *,
    job_id: str,
    attempt: int,
    row: EpochRow,
    now: datetime | None = None,
    checkpoints: Sequence[CheckpointRow] = (),
) -> bool:
    """Fenced: store an epoch's metrics and advance the job's position. False if already recorded.

    In the same transaction: ``checkpoints`` first (the epoch's checkpoint records, which the engine
    wrote before it reported the epoch: ``checkpoints.store_checkpoints``), ``job.epoch`` (never
    backwards), ``stage``, ``latest_metrics``, ``best_f1``/``best_epoch`` (highest val F1 among live
    rows; a tie goes to the lower val loss, as the engine's ``best.pt``, then to the earlier epoch),
    ``progress_at``, and an ``EPOCH`` event carrying the row id. The row goes in as a plain insert
    of a reused statement, not an ORM object: this runs every epoch on the training thread.
    """
    now = now_or(now)
    job = fence(session, job_id=job_id, attempt=attempt)
    store_checkpoints(session, job, checkpoints)
    values = {"job_id": job_id, "attempt": attempt, "superseded": False, "superseded_at": None,
              "recorded_at": now, **row.columns()}  # fmt: skip
    metric_id = session.connection().execute(_insert(session.get_bind().dialect.name), values).scalar()
    job.progress_at = now
    if metric_id is None:
        session.add(job)
        return False
    _advance(session, job, row)
    session.add(job)
    append_event(
        session,
        job,
        EventKind.EPOCH,
        actor=Actor.worker(job.lease_owner or ""),
        reason=f"epoch {row.epoch} recorded",
        evidence={"metric_id": metric_id, **{name: _finite(getattr(row, name)) for name in HEADLINE}},
        epoch=row.epoch,
        stage=row.stage,
        now=now,
    )
    return True


@cache
def _insert(dialect: str) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING RETURNING id`` on the live (job, epoch) index."""
    return insert_ignore(
        dialect, _metric, None, index_elements=["job_id", "epoch"], where_false_column="superseded"
    ).returning(_metric.c.id)


def _advance(session: Session, job: Job, row: EpochRow) -> None:
    if row.epoch >= job.epoch:
        job.epoch = row.epoch
        job.stage = row.stage
        job.latest_metrics = row.columns()
    f1 = _finite(row.val_f1)
    if f1 is None:
        return
    best_loss = _live_val_loss(session, job.id, job.best_epoch) if f1 == job.best_f1 else None
    if _wins(f1, _finite(row.val_loss), row.epoch, job.best_f1, best_loss, job.best_epoch):
        job.best_f1 = f1
        job.best_epoch = row.epoch


def _wins(
    f1: float,
    loss: float | None,
    epoch: int,
    best_f1: float | None,
    best_loss: float | None,
    best_epoch: int | None,
) -> bool:
    """The engine's rule (higher val F1; at equal F1 the lower val loss), then the earlier epoch."""
    if best_f1 is None or f1 != best_f1:
        return best_f1 is None or f1 > best_f1
    if loss is not None and best_loss is not None and loss != best_loss:
        return loss < best_loss
    return best_epoch is None or epoch < best_epoch


def _live_val_loss(session: Session, job_id: str, epoch: int | None) -> float | None:
    query = select(EpochMetric.val_loss).where(
        EpochMetric.job_id == job_id, EpochMetric.epoch == epoch, col(EpochMetric.superseded).is_(False)
    )
    return _finite(session.exec(query).first())


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def supersede_after(
    session: Session,
    *,
    job_id: str,
    epoch: int,
    actor: str = Actor.SYSTEM,
    reason: str = "",
    keep_checkpoint: str | None = None,
    now: datetime | None = None,
) -> int:
    """Mark live rows with ``epoch > epoch`` superseded, and checkpoint records past it (except
    ``keep_checkpoint``); reset the job's epoch, latest metrics and best to the live rows.

    Not fenced: callers are (``record_restore``). Returns the number of metric rows superseded; an
    event is written when anything changed.
    """
    now = now_or(now)
    job = lock_job(session, job_id)
    rows = session.exec(
        update(_metric)
        .where(_metric.c.job_id == job_id, _metric.c.epoch > epoch, _metric.c.superseded.is_(False))
        .values(superseded=True, superseded_at=now)
        .returning(_metric.c.epoch)
    ).all()
    checkpoints = session.exec(
        update(_checkpoint)
        .where(
            _checkpoint.c.job_id == job_id,
            _checkpoint.c.epoch > epoch,
            _checkpoint.c.superseded.is_(False),
            _checkpoint.c.path != (keep_checkpoint or ""),
        )
        .values(superseded=True)
        .returning(_checkpoint.c.path)
    ).all()
    _reset_position(session, job, epoch)
    if rows or checkpoints:
        epochs = sorted(r[0] for r in rows)
        append_event(
            session,
            job,
            EventKind.METRICS_SUPERSEDED,
            actor=actor,
            reason=reason or f"rolled back to epoch {epoch}: {len(epochs)} later epoch rows superseded",
            evidence={
                "after_epoch": epoch,
                "epochs": epochs,
                "checkpoints": sorted(c[0] for c in checkpoints),
            },
            epoch=epoch,
            now=now,
        )
    return len(rows)


def _reset_position(session: Session, job: Job, epoch: int) -> None:
    live = list_metrics(session, job_id=job.id, before_epoch=epoch + 1)
    job.epoch = epoch
    job.latest_metrics = live[-1].model_dump(include=_LATEST_KEYS) if live else {}
    job.best_f1, job.best_epoch = None, None
    best_loss: float | None = None
    for metric in live:
        f1, loss = _finite(metric.val_f1), _finite(metric.val_loss)
        if f1 is not None and _wins(f1, loss, metric.epoch, job.best_f1, best_loss, job.best_epoch):
            job.best_f1, job.best_epoch, best_loss = f1, metric.epoch, loss
    session.add(job)


def list_metrics(
    session: Session,
    *,
    job_id: str,
    after_epoch: int = 0,
    limit: int | None = 1000,
    include_superseded: bool = False,
    before_epoch: int | None = None,
) -> list[EpochMetric]:
    """Rows with ``after_epoch < epoch [< before_epoch]`` by epoch (an epoch's superseded rows after
    its live one). ``limit=None``: all of them."""
    query = _in_order(select(EpochMetric), job_id, after_epoch, include_superseded, before_epoch)
    return list(session.exec(query if limit is None else query.limit(limit)).all())


def metric_rows(
    session: Session, *, job_id: str, after_epoch: int, limit: int, include_superseded: bool = False
) -> list[Row[Any]]:
    """``list_metrics`` as plain rows (the columns of ``EpochMetric``): a page of the API reads
    hundreds, and an ORM object per row costs more than the row's read."""
    query = _in_order(select(*_metric.c), job_id, after_epoch, include_superseded, None)  # type: ignore[call-overload]
    return list(session.exec(query.limit(limit)).all())


def _in_order(
    query: Any, job_id: str, after_epoch: int, include_superseded: bool, before_epoch: int | None
) -> Any:
    """``query`` of a job's rows with ``after_epoch < epoch [< before_epoch]``, by epoch."""
    query = query.where(EpochMetric.job_id == job_id, EpochMetric.epoch > after_epoch)
    if before_epoch is not None:
        query = query.where(EpochMetric.epoch < before_epoch)
    if not include_superseded:
        query = query.where(col(EpochMetric.superseded).is_(False))
    return query.order_by(col(EpochMetric.epoch), col(EpochMetric.superseded), col(EpochMetric.id))


def recent_epoch_seconds(session: Session, *, job_id: str, after_epoch: int, limit: int) -> list[float]:
    """The epoch times of the live rows after ``after_epoch`` (at most ``limit``, by epoch): one
    column, not whole rows, since every status read asks for it (the ETA)."""
    params = {"job_id": job_id, "after_epoch": after_epoch, "limit": limit}
    return [seconds for seconds in session.exec(_RECENT_SECONDS, params=params).all() if seconds is not None]


_RECENT_SECONDS = (  # built once: the status read runs it per request
    select(EpochMetric.epoch_seconds)
    .where(EpochMetric.job_id == bindparam("job_id"), EpochMetric.epoch > bindparam("after_epoch"))
    .where(col(EpochMetric.superseded).is_(False))
    .order_by(col(EpochMetric.epoch), col(EpochMetric.superseded), col(EpochMetric.id))
    .limit(bindparam("limit"))
)


def chart_metrics(
    session: Session, *, job_id: str, points: int, after_epoch: int = 0
) -> Sequence[EpochMetric | Row[Any]]:
    """Live rows after ``after_epoch``, thinned to about ``points`` (``jobstore.downsample``): each
    bucket keeps its first and last row and the min and max of every charted value (the losses, F1,
    precision, recall, Fisher ratio), every stage keeps its first and last row. The lr of each group
    is not searched: a schedule is monotone within a stage, so its extremes are a bucket's ends.

    Only the charted columns of every row are read; the kept rows are then read whole, as plain rows
    (the columns of ``EpochMetric``, without the ORM's per-object cost).
    """
    light = charted_columns(session, job_id, after_epoch)
    columns = list(zip(*light, strict=True))  # id, stage, then one column per charted value
    kept = keep_columns(columns[1], columns[2:], points) if light else []
    if len(kept) == len(light):  # nothing to thin: the plain read, without a long IN list
        return list_metrics(session, job_id=job_id, after_epoch=after_epoch, limit=None)
    ids = [columns[0][i] for i in kept]
    query = select(*_metric.c).where(_metric.c.id.in_(ids)).order_by(_metric.c.epoch)  # rows, not objects
    return list(session.exec(query).all())  # type: ignore[call-overload]


def charted_columns(session: Session, job_id: str, after_epoch: int) -> list[tuple[Any, ...]]:
    """The live rows' id, stage and charted values, by epoch, as the driver's tuples: these columns
    (integers, floats) have no result processing, and a long run has thousands of rows, so building
    a result row object for each would cost more than reading them."""
    params = {"job_id": job_id, "after_epoch": after_epoch}
    result = session.connection().execute(_CHARTED_COLUMNS, params)
    try:
        return list(result.cursor.fetchall())
    finally:
        result.close()


_CHARTED_COLUMNS = (  # built once; the live rows' id, stage and charted values, by epoch
    select(_metric.c.id, _metric.c.stage, *(_metric.c[name] for name in CHARTED))
    .where(_metric.c.job_id == bindparam("job_id"), _metric.c.epoch > bindparam("after_epoch"))
    .where(_metric.c.superseded.is_(False))
    .order_by(_metric.c.epoch)
)

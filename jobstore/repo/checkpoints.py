"""Checkpoint records: upserted by (job, path) as the worker writes files; found by selector.

Selectors (the ``from`` of /resume and /fork): ``last`` — the most advanced training state (highest
epoch, then batch) of any kind; ``best`` — the best-kind record with the highest val F1;
``stage:N`` — the latest stage-entry checkpoint of stage N; ``epoch:N`` — the state at the end of
epoch N (an end-of-epoch file before a mid-epoch one, and before a stage entry written at the
boundary after it: that one is ``stage:N``). Only live records count: those of a timeline abandoned
by an earlier resume are superseded, and those whose file the retention policy removed are pruned
(``jobstore.retention``; a selector that names only a pruned one says when it went). ONNX exports
are records too but never a resume point.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import case
from sqlmodel import Session, col, select

from jobstore.dialect import upsert
from jobstore.errors import CheckpointPrunedError, InvalidSelectorError, NoCheckpointError
from jobstore.kinds import CheckpointKind
from jobstore.models import CheckpointRecord, Job
from jobstore.records import CheckpointRow
from jobstore.repo._base import fence, now_or

_table = CheckpointRecord.__table__  # type: ignore[attr-defined]
_SELECTOR = re.compile(r"^(last|best)$|^(stage|epoch):(\d{1,6})$")
_UPDATED = (
    "kind",
    "epoch",
    "stage",
    "batch",
    "attempt",
    "val_f1",
    "size_bytes",
    "sha256",
    "superseded",
    "created_at",
    "pruned_at",  # a file written again (a resumed timeline reaching that epoch) is there again
)


@dataclass(frozen=True)
class Selector:
    name: str  # last | best | stage | epoch
    number: int | None = None

    def __str__(self) -> str:
        return self.name if self.number is None else f"{self.name}:{self.number}"


def parse_selector(text: str) -> Selector:
    """``last``, ``best``, ``stage:N`` or ``epoch:N``; ``InvalidSelectorError`` for anything else."""
    match = _SELECTOR.match(text.strip())
    if match is None:
        raise InvalidSelectorError(
            f"checkpoint selector must be last, best, stage:N or epoch:N, not {text!r}"
        )
    if match.group(1):
        return Selector(match.group(1))
    return Selector(match.group(2), int(match.group(3)))


def record_checkpoint(
    session: Session, *, job_id: str, attempt: int, row: CheckpointRow, now: datetime | None = None
) -> CheckpointRecord:
    """Fenced: insert or update the record of ``row.path``; point the job's last/best/onnx at it."""
    job = fence(session, job_id=job_id, attempt=attempt)
    store_checkpoints(session, job, [row], now=now)
    return session.exec(
        select(CheckpointRecord)
        .where(CheckpointRecord.job_id == job_id, CheckpointRecord.path == row.path)
        .execution_options(populate_existing=True)
    ).one()


def record_checkpoints(session: Session, *, job_id: str, attempt: int, rows: Sequence[CheckpointRow]) -> None:
    """Fenced: ``store_checkpoints`` (several records, one fence, one statement)."""
    store_checkpoints(session, fence(session, job_id=job_id, attempt=attempt), rows)


def store_checkpoints(
    session: Session, job: Job, rows: Sequence[CheckpointRow], *, now: datetime | None = None
) -> None:
    """Insert or update the records of ``rows`` in order for ``job``'s attempt, and point the job's
    last/best/onnx at them. Not fenced: the caller fenced ``job`` in this transaction.

    Plain rows in one reused statement, not ORM objects: an epoch's records are written every epoch,
    on the training thread (``benchmarks/epoch_overhead.py``)."""
    if not rows:
        return
    values = [_values(job.id, job.attempt, row, now_or(now)) for row in rows]
    session.connection().execute(_upsert(session.get_bind().dialect.name), values)
    for row in rows:
        kind = CheckpointKind(row.kind)
        if kind in (CheckpointKind.LAST, CheckpointKind.INTERRUPT):
            job.last_checkpoint = row.path
        elif kind == CheckpointKind.BEST:
            job.best_checkpoint = row.path
        elif kind == CheckpointKind.ONNX:
            job.onnx_path = row.path
    session.add(job)


def _values(job_id: str, attempt: int, row: CheckpointRow, now: datetime) -> dict[str, Any]:
    return {
        "job_id": job_id, "kind": CheckpointKind(row.kind).value, "path": row.path, "epoch": row.epoch,
        "stage": row.stage, "batch": row.batch, "attempt": attempt, "val_f1": row.val_f1,
        "size_bytes": row.size_bytes, "sha256": row.sha256, "superseded": False, "created_at": now,
        "pruned_at": None,
    }  # fmt: skip


@cache
def _upsert(dialect: str) -> Any:
    return upsert(dialect, _table, None, index_elements=["job_id", "path"], update=_UPDATED)


def list_checkpoints(
    session: Session, *, job_id: str, include_superseded: bool = True
) -> list[CheckpointRecord]:
    """By epoch, then batch, then time written."""
    query = select(CheckpointRecord).where(CheckpointRecord.job_id == job_id)
    if not include_superseded:
        query = query.where(col(CheckpointRecord.superseded).is_(False))
    order = (col(CheckpointRecord.epoch), col(CheckpointRecord.batch), col(CheckpointRecord.created_at))
    return list(session.exec(query.order_by(*order, col(CheckpointRecord.id))).all())


def find_checkpoint(
    session: Session, *, job_id: str, selector: str | Selector, pruned: bool = False
) -> CheckpointRecord | None:
    """The live record ``selector`` names, or None (``pruned``: the pruned record it would name)."""
    chosen = parse_selector(selector) if isinstance(selector, str) else selector
    gone = col(CheckpointRecord.pruned_at)
    query = select(CheckpointRecord).where(
        CheckpointRecord.job_id == job_id,
        col(CheckpointRecord.superseded).is_(False),
        CheckpointRecord.kind != CheckpointKind.ONNX,
        gone.is_not(None) if pruned else gone.is_(None),
    )
    epoch, batch, written = (
        col(CheckpointRecord.epoch),
        col(CheckpointRecord.batch),
        col(CheckpointRecord.created_at),
    )
    if chosen.name == "last":
        query = query.order_by(epoch.desc(), batch.desc(), written.desc())
    elif chosen.name == "best":
        query = query.where(CheckpointRecord.kind == CheckpointKind.BEST).order_by(
            col(CheckpointRecord.val_f1).desc().nulls_last(), epoch.desc(), written.desc()
        )
    elif chosen.name == "stage":
        query = query.where(
            CheckpointRecord.kind == CheckpointKind.STAGE_ENTRY, CheckpointRecord.stage == chosen.number
        ).order_by(epoch.desc(), written.desc())
    else:  # the state at the end of epoch N: an epoch file before last/best, a stage entry last
        kind = col(CheckpointRecord.kind)
        entry_last = case((kind == CheckpointKind.EPOCH, 0), (kind == CheckpointKind.STAGE_ENTRY, 2), else_=1)
        query = query.where(CheckpointRecord.epoch == chosen.number).order_by(
            batch, entry_last, written.desc()
        )
    return session.exec(query.order_by(col(CheckpointRecord.id).desc()).limit(1)).first()


def require_checkpoint(session: Session, *, job_id: str, selector: str | Selector) -> CheckpointRecord:
    """``find_checkpoint``, else ``CheckpointPrunedError`` if it named a file since pruned, else
    ``NoCheckpointError``; both list what there is."""
    record = find_checkpoint(session, job_id=job_id, selector=selector)
    if record is not None:
        return record
    available = [
        f"{c.kind}@epoch{c.epoch}" + (f"+{c.batch}" if c.batch else "")
        for c in list_checkpoints(session, job_id=job_id, include_superseded=False)
        if c.pruned_at is None
    ]
    gone = find_checkpoint(session, job_id=job_id, selector=selector, pruned=True)
    if gone is not None and gone.pruned_at is not None:
        raise CheckpointPrunedError(job_id, str(selector), gone.path, gone.pruned_at, available)
    raise NoCheckpointError(job_id, str(selector), available)

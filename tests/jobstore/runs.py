"""What a worker records of a run, played through jobstore: checkpoint files on disk and their
records, epoch rows, the end of the attempt (the retention and gc tests build runs with it)."""

from __future__ import annotations

from sqlalchemy import Engine

from jobstore import repo
from jobstore.db import write_transaction
from jobstore.records import CheckpointRow, EpochRow
from jobstore.settings import Settings
from jobstore.states import AttemptOutcome
from tests.jobstore.conftest import _at


def write(
    settings: Settings, engine: Engine, job_id: str, attempt: int, name: str, kind: str, epoch: int
) -> str:
    path = f"{job_id}/{name}"
    (settings.runs_root / path).parent.mkdir(parents=True, exist_ok=True)
    (settings.runs_root / path).write_bytes(b"x" * (100 + epoch))
    with write_transaction(engine) as session:
        row = CheckpointRow(path=path, kind=kind, epoch=epoch, stage=1, size_bytes=100 + epoch, val_f1=0.5)
        repo.record_checkpoint(session, job_id=job_id, attempt=attempt, row=row)
    return path


def train(settings: Settings, engine: Engine, job_id: str, attempt: int, epochs: range) -> None:
    """What a worker records: a stage entry once, then per epoch its file, last, best and metrics."""
    with write_transaction(engine) as session:
        repo.record_restore(session, job_id=job_id, attempt=attempt, stage=1, epoch=epochs.start - 1)
    if epochs.start == 1:
        write(settings, engine, job_id, attempt, "stage1_entry.pt", "stage_entry", 0)
    for epoch in epochs:
        write(settings, engine, job_id, attempt, f"epochs/epoch_{epoch:04d}.pt", "epoch", epoch)
        write(settings, engine, job_id, attempt, "last.pt", "last", epoch)
        write(settings, engine, job_id, attempt, "best.pt", "best", epoch)
        with write_transaction(engine) as session:
            row = EpochRow(epoch=epoch, stage=1, val_f1=0.5)
            repo.record_epoch(session, job_id=job_id, attempt=attempt, row=row, now=_at(epoch))


def finish(engine: Engine, job_id: str, attempt: int) -> None:
    with write_transaction(engine) as session:
        repo.finish_attempt(
            session, job_id=job_id, attempt=attempt, outcome=AttemptOutcome.COMPLETED, reason="done"
        )

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
from sqlalchemy import Engine

from jobstore import repo
from jobstore.db import read_session, write_transaction
from jobstore.errors import FencedOutError
from jobstore.events import EventKind
from jobstore.records import CheckpointRow, EpochRow

Start = Callable[..., tuple[str, int]]


def row(epoch: int, f1: float | None, stage: int = 1) -> EpochRow:
    return EpochRow(epoch=epoch, stage=stage, train_loss=1.0 / epoch, val_f1=f1, lrs={"head": 1e-4})


def record(engine: Engine, job_id: str, attempt: int, *rows: EpochRow) -> list[bool]:
    with write_transaction(engine) as session:
        return [repo.record_epoch(session, job_id=job_id, attempt=attempt, row=r) for r in rows]


def test_recording_an_epoch_twice_keeps_one_row(engine: Engine, start_job: Start) -> None:
    job_id, attempt = start_job()
    assert record(engine, job_id, attempt, row(1, 0.70)) == [True]
    assert record(engine, job_id, attempt, row(1, 0.99)) == [False]  # first write wins
    with read_session(engine) as session:
        [metric] = repo.list_metrics(session, job_id=job_id)
        job = repo.get_job(session, job_id)
        assert len(repo.list_events(session, job_id=job_id, kinds=[EventKind.EPOCH])) == 1
    assert (metric.epoch, metric.val_f1, metric.attempt, metric.lrs) == (1, 0.70, attempt, {"head": 1e-4})
    assert (job.epoch, job.best_f1, job.best_epoch) == (1, 0.70, 1)


def test_job_position_and_best_advance(engine: Engine, start_job: Start) -> None:
    job_id, attempt = start_job()
    record(
        engine, job_id, attempt, row(1, 0.70), row(2, 0.80, stage=2), row(3, 0.80, stage=2), row(4, 0.75, 2)
    )
    record(engine, job_id, attempt, row(2, 0.1))  # an old epoch again: ignored, position unchanged
    with read_session(engine) as session:
        job = repo.get_job(session, job_id)
    assert (job.epoch, job.stage, job.best_f1, job.best_epoch) == (4, 2, 0.80, 2)
    assert job.latest_metrics["epoch"] == 4 and job.latest_metrics["val_f1"] == 0.75


def test_an_f1_tie_goes_to_the_lower_val_loss(engine: Engine, start_job: Start) -> None:
    """As the engine's best.pt: a later epoch with the same F1 and a lower val loss is the best."""
    job_id, attempt = start_job()
    losses = {1: 0.5, 2: 0.4, 3: 0.45, 4: 0.4}
    rows = [EpochRow(epoch=e, stage=1, val_f1=0.8, val_loss=loss) for e, loss in losses.items()]
    record(engine, job_id, attempt, *rows)
    with read_session(engine) as session:
        assert repo.get_job(session, job_id).best_epoch == 2  # 4 ties 2 on loss too: the earlier
    with write_transaction(engine) as session:
        repo.supersede_after(session, job_id=job_id, epoch=3, actor="t")
    with read_session(engine) as session:
        job = repo.get_job(session, job_id)
    assert (job.best_f1, job.best_epoch) == (0.8, 2)  # recomputed from the live rows by the same rule


def test_nan_metrics_are_stored_but_never_best(engine: Engine, start_job: Start) -> None:
    job_id, attempt = start_job()
    record(
        engine, job_id, attempt, row(1, math.nan), EpochRow(epoch=2, stage=1, val_f1=0.5, train_loss=math.inf)
    )
    with read_session(engine) as session:
        job = repo.get_job(session, job_id)
        assert len(repo.list_metrics(session, job_id=job_id)) == 2
    assert (job.best_f1, job.best_epoch, job.latest_metrics["train_loss"]) == (0.5, 2, None)


def test_supersede_then_rerecord(engine: Engine, start_job: Start) -> None:
    job_id, attempt = start_job()
    record(engine, job_id, attempt, row(1, 0.6), row(2, 0.9), row(3, 0.7))
    with write_transaction(engine) as session:
        assert repo.supersede_after(session, job_id=job_id, epoch=1, actor="t") == 2
    with read_session(engine) as session:
        job = repo.get_job(session, job_id)
        assert (job.epoch, job.best_f1, job.best_epoch, job.latest_metrics["epoch"]) == (1, 0.6, 1, 1)
    record(engine, job_id, attempt, row(2, 0.65))
    with read_session(engine) as session:
        live = repo.list_metrics(session, job_id=job_id)
        every = repo.list_metrics(session, job_id=job_id, include_superseded=True)
        [event] = repo.list_events(session, job_id=job_id, kinds=[EventKind.METRICS_SUPERSEDED])
    assert [(m.epoch, m.val_f1) for m in live] == [(1, 0.6), (2, 0.65)]
    assert [(m.epoch, m.val_f1, m.superseded) for m in every] == [
        (1, 0.6, False), (2, 0.65, False), (2, 0.9, True), (3, 0.7, True)
    ]  # fmt: skip
    assert event.evidence["epochs"] == [2, 3]


def test_stale_attempt_writes_nothing(engine: Engine, start_job: Start) -> None:
    job_id, attempt = start_job()
    with pytest.raises(FencedOutError):
        record(engine, job_id, attempt - 1, row(1, 0.5))
    with read_session(engine) as session:
        job = repo.get_job(session, job_id)
        assert repo.list_metrics(session, job_id=job_id) == []
    assert (job.epoch, job.best_f1) == (0, None)


def test_list_metrics_window(engine: Engine, start_job: Start) -> None:
    job_id, attempt = start_job()
    record(engine, job_id, attempt, *(row(e, 0.5) for e in range(1, 8)))
    with read_session(engine) as session:
        assert [m.epoch for m in repo.list_metrics(session, job_id=job_id, after_epoch=2, limit=3)] == [
            3,
            4,
            5,
        ]


def test_an_epoch_row_carries_its_checkpoint_records(engine: Engine, start_job: Start) -> None:
    """The worker's one commit per epoch: the epoch's records, in order, then its row; fenced once."""
    job_id, attempt = start_job()
    kinds = {"epochs/epoch_0001.pt": "epoch", "last.pt": "last", "best.pt": "best"}
    files = [
        CheckpointRow(path=f"{job_id}/{name}", kind=kind, epoch=1, stage=1, size_bytes=5, sha256="ab")
        for name, kind in kinds.items()
    ]
    with pytest.raises(FencedOutError), write_transaction(engine) as session:
        repo.record_epoch(session, job_id=job_id, attempt=attempt + 1, row=row(1, 0.7), checkpoints=files)
    with write_transaction(engine) as session:
        assert repo.record_epoch(session, job_id=job_id, attempt=attempt, row=row(1, 0.7), checkpoints=files)
    with read_session(engine) as session:
        records = repo.list_checkpoints(session, job_id=job_id)
        job = repo.get_job(session, job_id)
        [metric] = repo.list_metrics(session, job_id=job_id)
    assert [(r.path, r.kind, r.attempt, r.size_bytes, r.sha256) for r in records] == [
        (f.path, f.kind, attempt, 5, "ab") for f in files
    ]
    assert (job.last_checkpoint, job.best_checkpoint, job.epoch) == (files[1].path, files[2].path, 1)
    assert (metric.epoch, metric.val_f1, metric.superseded, metric.lrs) == (1, 0.7, False, {"head": 1e-4})

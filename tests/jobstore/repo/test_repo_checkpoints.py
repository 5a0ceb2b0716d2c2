from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Engine

from jobstore import repo
from jobstore.db import read_session, write_transaction
from jobstore.errors import FencedOutError, InvalidSelectorError, NoCheckpointError
from jobstore.records import CheckpointRow

Start = Callable[..., tuple[str, int]]


def save(engine: Engine, job_id: str, attempt: int, path: str, kind: str, epoch: int, stage: int = 1, **kw):  # type: ignore[no-untyped-def]
    with write_transaction(engine) as session:
        return repo.record_checkpoint(
            session, job_id=job_id, attempt=attempt,
            row=CheckpointRow(path=path, kind=kind, epoch=epoch, stage=stage, **kw),
        )  # fmt: skip


def test_upsert_by_path_and_job_pointers(engine: Engine, start_job: Start) -> None:
    job_id, attempt = start_job()
    save(engine, job_id, attempt, "j/last.pt", "last", 1, size_bytes=10)
    updated = save(engine, job_id, attempt, "j/last.pt", "last", 2, size_bytes=3_000_000_000)
    save(engine, job_id, attempt, "j/best_e2.pt", "best", 2, val_f1=0.8)
    save(engine, job_id, attempt, "j/model.onnx", "onnx", 2)
    assert (updated.epoch, updated.size_bytes) == (2, 3_000_000_000)
    with read_session(engine) as session:
        records = repo.list_checkpoints(session, job_id=job_id)
        job = repo.get_job(session, job_id)
    assert sorted(r.path for r in records) == ["j/best_e2.pt", "j/last.pt", "j/model.onnx"]
    assert (job.last_checkpoint, job.best_checkpoint, job.onnx_path) == (
        "j/last.pt",
        "j/best_e2.pt",
        "j/model.onnx",
    )


def test_selectors(engine: Engine, start_job: Start) -> None:
    job_id, attempt = start_job()
    save(engine, job_id, attempt, "e1.pt", "epoch", 1)
    save(engine, job_id, attempt, "best_a.pt", "best", 1, val_f1=0.7)
    save(engine, job_id, attempt, "s2.pt", "stage_entry", 2, stage=2)
    save(engine, job_id, attempt, "best_b.pt", "best", 3, stage=2, val_f1=0.85)
    save(engine, job_id, attempt, "last.pt", "last", 4, stage=2)
    save(engine, job_id, attempt, "int.pt", "interrupt", 4, stage=2, batch=7)
    save(engine, job_id, attempt, "m.onnx", "onnx", 9)

    def path(selector: str) -> str | None:
        with read_session(engine) as session:
            found = repo.find_checkpoint(session, job_id=job_id, selector=selector)
        return found.path if found else None

    assert path("last") == "int.pt"  # the most advanced state, mid-epoch included; never the ONNX file
    assert path("best") == "best_b.pt"
    assert path("stage:2") == "s2.pt"
    assert path("stage:3") is None
    assert path("epoch:4") == "last.pt"  # end of epoch before a mid-epoch state
    assert path("epoch:1") in {"e1.pt", "best_a.pt"}
    with pytest.raises(NoCheckpointError, match="stage_entry@epoch2"), read_session(engine) as session:
        repo.require_checkpoint(session, job_id=job_id, selector="stage:1")


@pytest.mark.parametrize("bad", ["latest", "stage:", "epoch:x", "stage:1:2", ""])
def test_bad_selector(bad: str) -> None:
    with pytest.raises(InvalidSelectorError):
        repo.parse_selector(bad)


def test_stale_attempt_cannot_record(engine: Engine, start_job: Start) -> None:
    job_id, attempt = start_job()
    with pytest.raises(FencedOutError):
        save(engine, job_id, attempt + 1, "x.pt", "last", 1)
    with read_session(engine) as session:
        assert repo.list_checkpoints(session, job_id=job_id) == []

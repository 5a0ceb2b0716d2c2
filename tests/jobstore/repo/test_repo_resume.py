from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest
from sqlalchemy import Engine

from jobstore import repo
from jobstore.db import read_session, write_transaction
from jobstore.errors import InvalidResumeError, InvalidSelectorError, NoCheckpointError
from jobstore.events import EventKind
from jobstore.records import CheckpointRow
from jobstore.states import AttemptOutcome, IllegalTransitionError, JobState

Clock = Callable[[float], datetime]
Start = Callable[..., tuple[str, int]]


@pytest.fixture
def paused(engine: Engine, start_job: Start) -> tuple[str, int]:
    """A job paused after epoch 4, with last/best/stage-entry checkpoints."""
    job_id, attempt = start_job()
    rows = [
        ("s1.pt", "stage_entry", 0, 1, None),
        ("best.pt", "best", 3, 1, 0.78),
        ("last.pt", "last", 4, 1, 0.7),
    ]
    with write_transaction(engine) as session:
        for path, kind, epoch, stage, f1 in rows:
            repo.record_checkpoint(
                session, job_id=job_id, attempt=attempt,
                row=CheckpointRow(path=path, kind=kind, epoch=epoch, stage=stage, val_f1=f1),
            )  # fmt: skip
        repo.finish_attempt(
            session, job_id=job_id, attempt=attempt, outcome=AttemptOutcome.PAUSED, reason="op"
        )
    return job_id, attempt


def resume(engine: Engine, job_id: str, selector: str = "last", **overrides: object) -> tuple[str, int]:
    with write_transaction(engine) as session:
        job, attempt = repo.request_resume(
            session, repo.get_job(session, job_id), selector=selector, overrides=overrides, actor="alice",
            reason="more epochs",
        )  # fmt: skip
        return job.id, attempt


def test_resume_requeues_a_new_attempt_at_the_checkpoint(
    engine: Engine, paused: tuple[str, int], load
) -> None:  # type: ignore[no-untyped-def]
    job_id, attempt = paused
    _, new_attempt = resume(engine, job_id, "best", stage=2, epochs=20, lr=5e-5, stage2={"lr_factor": 0.1})
    job = load(job_id)
    assert new_attempt == attempt + 1 == job.attempt
    assert (job.state, job.epochs, job.spec["epochs"], job.spec["lr"]) == ("queued", 20, 20, 5e-5)
    assert job.spec["stage2"]["lr_factor"] == 0.1 and job.spec["stage2"]["gate_f1"] == 0.8
    point = job.resume_from
    assert (point["from"], point["checkpoint"], point["epoch"], point["stage"]) == ("best", "best.pt", 3, 1)
    assert point["overrides"]["stage"] == 2
    with read_session(engine) as session:
        [event] = repo.list_events(session, job_id=job_id, kinds=[EventKind.RESUME_REQUESTED])
    assert (event.actor, event.reason, event.evidence["checkpoint"]) == ("alice", "more epochs", "best.pt")


def test_stage_entry_selector(engine: Engine, paused: tuple[str, int], load) -> None:  # type: ignore[no-untyped-def]
    job_id, _ = paused
    resume(engine, job_id, "stage:1")
    assert load(job_id).resume_from["checkpoint"] == "s1.pt"


def test_resume_errors(engine: Engine, paused: tuple[str, int], new_job: Callable[..., object], load) -> None:  # type: ignore[no-untyped-def]
    job_id, attempt = paused
    with pytest.raises(NoCheckpointError, match="available"):
        resume(engine, job_id, "stage:2")
    with pytest.raises(InvalidSelectorError):
        resume(engine, job_id, "latest")
    with pytest.raises(InvalidResumeError, match="exceed"):
        resume(engine, job_id, "last", epochs=4)
    with pytest.raises(InvalidResumeError, match="unknown"):
        resume(engine, job_id, "last", optimizer="sgd")
    with pytest.raises(InvalidResumeError) as caught:
        resume(engine, job_id, "last", lr=5.0)
    assert caught.value.errors and caught.value.errors[0]["loc"] == ("lr",)
    with pytest.raises(InvalidResumeError, match="unfreeze_backbone_epoch") as caught:
        resume(engine, job_id, "last", stage2={"epoch": 3})  # would be ignored: refused
    assert caught.value.errors[0]["loc"] == ("stage2", "epoch")
    assert (load(job_id).state, load(job_id).attempt) == ("paused", attempt)  # nothing changed
    queued = new_job()
    with pytest.raises(IllegalTransitionError):
        resume(engine, queued.id)  # type: ignore[attr-defined]


def test_fork_links_the_child_to_the_parent(engine: Engine, paused: tuple[str, int], load) -> None:  # type: ignore[no-untyped-def]
    parent_id, _ = paused
    with write_transaction(engine) as session:
        result = repo.fork_job(
            session, parent_id=parent_id, selector="best", overrides={"stage2": {"unfreeze_ratio": 0.25}},
            actor="bob", reason="try a shallower unfreeze", idempotency_key="f1", owner="k",
        )  # fmt: skip
        again = repo.fork_job(
            session, parent_id=parent_id, selector="best", overrides={"stage2": {"unfreeze_ratio": 0.25}},
            actor="bob", reason="try a shallower unfreeze", idempotency_key="f1", owner="k",
        )  # fmt: skip
    child = load(result.job.id)
    assert result.created and not again.created and again.job.id == child.id
    assert (child.parent_job_id, child.state, child.attempt, child.epoch, child.stage) == (
        parent_id,
        "queued",
        1,
        3,
        1,
    )
    assert child.spec["stage2"]["unfreeze_ratio"] == 0.25
    assert child.resume_from["checkpoint"] == "best.pt" and child.fork_from["job_id"] == parent_id
    with read_session(engine) as session:
        [forked] = repo.list_events(session, job_id=parent_id, kinds=[EventKind.FORKED])
        assert repo.list_jobs(session, parent_job_id=parent_id).items[0].id == child.id
    assert forked.evidence["child_job_id"] == child.id and forked.actor == "bob"
    assert load(parent_id).state == JobState.PAUSED


def fork(engine: Engine, parent_id: str, **overrides: object) -> None:
    with write_transaction(engine) as session:
        repo.fork_job(session, parent_id=parent_id, overrides=overrides, actor="bob", reason="")


def test_a_fork_refuses_a_spec_it_cannot_run_and_names_the_field(
    engine: Engine, paused: tuple[str, int], load
) -> None:  # type: ignore[no-untyped-def]
    parent_id, _ = paused
    with pytest.raises(InvalidResumeError) as caught:
        fork(engine, parent_id, stage2={"gate_f1": 2.0})
    assert [e["loc"] for e in caught.value.errors] == [("stage2", "gate_f1")]
    with pytest.raises(InvalidResumeError, match="stage 3 is not configured"):
        fork(engine, parent_id, stage=3)
    with write_transaction(engine) as session:
        repo.get_job(session, parent_id).name = "n" * 200  # the child's default name would be too long
    with pytest.raises(InvalidResumeError) as caught:
        fork(engine, parent_id)
    assert [e["loc"] for e in caught.value.errors] == [("name",)]
    with read_session(engine) as session:
        assert repo.list_jobs(session, parent_job_id=parent_id).items == []

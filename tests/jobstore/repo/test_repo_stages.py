from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Engine

from jobstore import repo
from jobstore.db import read_session, write_transaction
from jobstore.errors import FencedOutError
from jobstore.events import EventKind
from jobstore.records import GateCheckRow, StageChange

Start = Callable[..., tuple[str, int]]

CHANGE = StageChange(
    from_stage=1, to_stage=2, epoch=11, trigger="gate", reason="val F1 0.81 >= 0.80",
    evidence={"val_f1": 0.81, "gate_f1": 0.8}, lrs={"head": 5e-6}, unfrozen=["features.2.w"],
    trainable_params=99,
)  # fmt: skip
GATE = GateCheckRow(
    epoch=11, stage=2, f1=0.81, threshold=0.8, passed=True, policy="keep-trying", action="enter", reason="ok"
)


def test_stage_change_moves_the_job_and_is_logged(engine: Engine, start_job: Start, load) -> None:  # type: ignore[no-untyped-def]
    job_id, attempt = start_job()
    with write_transaction(engine) as session:
        repo.record_gate_check(session, job_id=job_id, attempt=attempt, check=GATE)
        repo.record_stage_change(session, job_id=job_id, attempt=attempt, change=CHANGE)
    job = load(job_id)
    assert (job.stage, job.stage_since_epoch, job.stage_reason) == (2, 11, "val F1 0.81 >= 0.80")
    assert job.gate["passed"] is True and job.gate["threshold"] == 0.8
    with read_session(engine) as session:
        [gate, stage] = repo.list_events(
            session, job_id=job_id, kinds=[EventKind.GATE_CHECK, EventKind.STAGE_CHANGE]
        )
    assert (gate.kind, gate.evidence["f1"]) == ("gate_check", 0.81)
    assert (stage.from_stage, stage.to_stage, stage.epoch, stage.actor) == (1, 2, 11, "worker:w1")
    assert stage.evidence["unfrozen"] == ["features.2.w"] and stage.evidence["trigger"] == "gate"


def test_forced_stage_names_the_operator(engine: Engine, start_job: Start) -> None:
    job_id, attempt = start_job()
    forced = StageChange(
        from_stage=1, to_stage=2, epoch=4, trigger="forced", reason="op", actor="alice", command_id="c1"
    )
    with write_transaction(engine) as session:
        event = repo.record_stage_change(session, job_id=job_id, attempt=attempt, change=forced)
    assert (event.actor, event.command_id) == ("alice", "c1")


def test_stale_attempt_cannot_change_stage(engine: Engine, start_job: Start, load) -> None:  # type: ignore[no-untyped-def]
    job_id, attempt = start_job()
    with pytest.raises(FencedOutError), write_transaction(engine) as session:
        repo.record_stage_change(session, job_id=job_id, attempt=attempt - 1, change=CHANGE)
    assert load(job_id).stage == 1

"""Gate decisions, merged and refused force-stage requests, and the checkpoint a resume or fork
starts from (jobstore only; tests/steering drives the same through HTTP and a real worker)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine

from jobstore import repo
from jobstore.db import read_session, write_transaction
from jobstore.errors import InvalidResumeError
from jobstore.events import EventKind
from jobstore.kinds import CommandKind, CommandStatus
from jobstore.models import Job
from jobstore.records import CheckpointRow, GateCheckRow
from jobstore.repo.decisions import Decision, DecisionAction
from jobstore.states import AttemptOutcome, IllegalTransitionError

Start = Callable[..., tuple[str, int]]
Load = Callable[[str], Job]
CHECKPOINTS = [  # path, kind, epoch, stage
    ("s1.pt", "stage_entry", 0, 1),
    ("e1.pt", "epoch", 1, 1),
    ("e2.pt", "epoch", 2, 1),
    ("last.pt", "last", 2, 1),
    ("best.pt", "best", 2, 1),
    ("s2.pt", "stage_entry", 2, 2),
]


def _checkpoints(engine: Engine, job_id: str, attempt: int, rows: list[tuple[str, str, int, int]]) -> None:
    with write_transaction(engine) as session:
        for path, kind, epoch, stage in rows:
            repo.record_checkpoint(
                session, job_id=job_id, attempt=attempt,
                row=CheckpointRow(path=path, kind=kind, epoch=epoch, stage=stage, val_f1=0.6),
            )  # fmt: skip


@pytest.fixture
def awaiting(engine: Engine, start_job: Start, new_job: Callable[..., Job]) -> str:
    """A job whose stage-2 gate failed at the boundary before epoch 3 (policy pause)."""
    job = new_job(epochs=10, unfreeze_backbone_epoch=3, stage2={"on_gate_fail": "pause"})
    job_id, attempt = start_job(job)
    _checkpoints(engine, job_id, attempt, CHECKPOINTS[:4])
    gate = GateCheckRow(epoch=3, stage=2, f1=0.7, threshold=0.8, passed=False, policy="pause",
                        action="pause", reason="stage 2 gate at epoch 3: val F1 0.7000 < 0.8")  # fmt: skip
    with write_transaction(engine) as session:
        repo.finish_attempt(
            session, job_id=job_id, attempt=attempt, outcome=AttemptOutcome.AWAITING_DECISION,
            reason=gate.reason, gate=gate.as_dict(),
        )  # fmt: skip
    return job_id


def decide(engine: Engine, job_id: str, action: DecisionAction, **values: Any) -> Job:
    with write_transaction(engine) as session:
        job, _ = repo.decide(
            session, repo.get_job(session, job_id), decision=Decision(action, **values), actor="alice",
            reason=f"{action.value} it",
        )  # fmt: skip
        return job


@pytest.mark.parametrize(
    ("action", "values", "selector", "overrides", "epochs"),
    [
        (DecisionAction.PROCEED, {}, "last", {"stage": 2}, 10),
        (DecisionAction.EXTEND, {"epochs": 4}, "last", {"unfreeze_backbone_epoch": 7, "epochs": 14}, 14),
        (DecisionAction.RETRY, {"lr": 5e-5}, "stage:1", {"lr": 5e-5}, 10),
        (DecisionAction.STOP, {}, "last", {}, 10),
    ],
)
def test_each_decision_is_a_logged_resume(
    engine: Engine,
    awaiting: str,
    load: Load,
    action: DecisionAction,
    values: dict[str, Any],
    selector: str,
    overrides: dict[str, Any],
    epochs: int,
) -> None:
    decide(engine, awaiting, action, **values)

    job = load(awaiting)
    assert (job.state, job.attempt, job.epochs, job.gate) == ("queued", 2, epochs, {})
    assert (job.resume_from["from"], job.resume_from["overrides"]) == (selector, overrides)
    assert job.resume_from["decision"]["action"] == action.value
    with read_session(engine) as session:
        events = repo.list_events(session, job_id=awaiting)
    kinds = [e.kind for e in events]
    at = kinds.index(EventKind.DECISION)
    assert kinds[at + 1 : at + 3] == [EventKind.RESUME_REQUESTED, EventKind.STATE_CHANGE]
    evidence = events[at].evidence
    assert (evidence["action"], evidence["gate_stage"], evidence["gate_epoch"], evidence["f1"]) == (
        action.value, 2, 3, 0.7,
    )  # fmt: skip
    assert evidence["budget"] == [10, epochs] and events[at].actor == "alice"


def test_a_decision_needs_its_value_and_an_awaiting_job(
    engine: Engine, awaiting: str, start_job: Start
) -> None:
    with pytest.raises(InvalidResumeError, match="epochs"):
        decide(engine, awaiting, DecisionAction.EXTEND)
    with pytest.raises(InvalidResumeError, match="lr"):
        decide(engine, awaiting, DecisionAction.RETRY)
    running, _ = start_job()
    with pytest.raises(IllegalTransitionError):
        decide(engine, running, DecisionAction.PROCEED)


def test_a_second_request_is_merged_and_an_impossible_force_refused(engine: Engine, start_job: Start) -> None:
    job_id, _ = start_job()

    def force(stage: int, actor: str, key: str | None = None) -> repo.CommandRequest:
        with write_transaction(engine) as session:
            return repo.request_command(
                session, job_id=job_id, kind=CommandKind.FORCE_STAGE, params={"stage": stage}, actor=actor,
                reason=f"{actor} wants {stage}", command_key=key,
            )  # fmt: skip

    first, replay, merged = force(2, "alice", "k"), force(2, "alice", "k"), force(2, "bob")
    unconfigured = force(3, "bob")

    assert first.created and not replay.created and not replay.merged
    assert (merged.created, merged.merged, merged.command.id) == (False, True, first.command.id)
    assert unconfigured.refused and unconfigured.command.status == CommandStatus.REFUSED
    assert "stage 3 is not configured" in unconfigured.command.result["reason"]
    with read_session(engine) as session:
        events = repo.list_events(session, job_id=job_id)
    [merge] = [e for e in events if e.kind == EventKind.COMMAND_MERGED]
    assert (merge.actor, merge.reason, merge.evidence["merged_into"]) == (
        "bob",
        "bob wants 2",
        first.command.id,
    )
    [refusal] = [e for e in events if e.kind == EventKind.COMMAND_REFUSED]
    assert (refusal.actor, refusal.command_id) == ("bob", unconfigured.command.id)


def test_epoch_selects_the_end_of_epoch_state_and_a_fork_pins_mutable_files(
    engine: Engine, start_job: Start, load: Load
) -> None:
    job_id, attempt = start_job()
    _checkpoints(engine, job_id, attempt, CHECKPOINTS)
    with read_session(engine) as session:
        assert repo.find_checkpoint(session, job_id=job_id, selector="epoch:2").path == "e2.pt"  # type: ignore[union-attr]
        assert repo.find_checkpoint(session, job_id=job_id, selector="stage:2").path == "s2.pt"  # type: ignore[union-attr]
    with write_transaction(engine) as session:
        fork = repo.fork_job(session, parent_id=job_id, selector="best", actor="bob", reason="compare")
    child = load(fork.job.id)
    assert child.resume_from["checkpoint"] == "e2.pt" and child.fork_from["checkpoint"] == "e2.pt"
    assert child.resume_from["drop_queued_commands"] is True  # the parent's commands stay the parent's

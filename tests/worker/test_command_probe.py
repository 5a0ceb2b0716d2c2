"""Operator commands land at the next boundary whatever the heartbeat period (issue 12.1).

The runner (without Celery, on SQLite and PostgreSQL) beats only every 120 s here, so only the
engine's own checks can bring a command in. The fake engine waits inside a chosen batch while the
test commits a command as the API does: the command is committed during exactly that batch.
"""

from __future__ import annotations

import threading
from typing import Any

import fake_engine
from sqlalchemy import Engine
from worker_harness import Harness, wait_for

from jobstore.db import read_session, write_transaction
from jobstore.kinds import CommandKind
from jobstore.models import Command
from jobstore.repo.commands import list_commands, request_command
from worker.command_probe import CommandProbe
from worker.runner import Identity, run_attempt

SLOW_HEARTBEAT = {"heartbeat_seconds": 120.0, "lease_seconds": 300.0}


def test_a_force_in_epoch_2_applies_at_epoch_3_and_a_pause_stops_in_its_batch(harness: Harness) -> None:
    # Held in epoch 2's last batch: the engine checks no more before the boundary, so only the
    # boundary check can see the force; then held in batch 2 of epoch 3 for the pause.
    harness.dataset("setB", epoch_seconds=0.1, batches=4, hold=[[2, 4], [3, 2]])
    job_id = harness.create(epochs=8, dispatch=False)
    runner = _start(harness, job_id)
    _during(harness, job_id, (2, 4), CommandKind.FORCE_STAGE, {"stage": 2})
    _during(harness, job_id, (3, 2), CommandKind.PAUSE)
    runner.join(timeout=60)

    force, pause = _commands(harness, job_id)
    assert (force.status, force.applied_epoch, pause.status) == ("applied", 3, "applied")
    [change] = harness.events(job_id, "stage_change")
    assert (change.from_stage, change.to_stage, change.epoch) == (1, 2, 3)
    assert [(row.epoch, row.stage) for row in harness.metrics(job_id)] == [(1, 1), (2, 1)]
    assert harness.job(job_id).state == "paused"
    assert _interrupted_at(harness, job_id) == (2, 2)  # after epoch 2, batch 2 of epoch 3 done


def test_a_cancel_stops_in_the_batch_it_arrived_in(harness: Harness) -> None:
    harness.dataset("setB", epoch_seconds=0.1, batches=4, hold=[[1, 2]])
    job_id = harness.create(epochs=8, dispatch=False)
    runner = _start(harness, job_id)
    _during(harness, job_id, (1, 2), CommandKind.CANCEL)
    runner.join(timeout=60)

    [cancel] = _commands(harness, job_id)
    assert (cancel.status, harness.job(job_id).state) == ("applied", "cancelled")
    assert _interrupted_at(harness, job_id) == (0, 2)
    assert harness.metrics(job_id) == []


def test_the_probe_reads_at_every_boundary_and_between_batches_at_its_rate(
    harness: Harness, migrated_engine: Engine
) -> None:
    job_id = harness.create(dispatch=False)
    now, delivered = [0.0], []
    probe = CommandProbe(migrated_engine, job_id, every=0.5, deliver=lambda: delivered.append(now[0]),
                         clock=lambda: now[0])  # fmt: skip
    try:
        probe(False)  # the first check always reads
        probe(False)  # too soon: no read
        probe(True)  # a boundary always reads
        now[0] = 0.6
        with write_transaction(harness.db) as session:  # a queued job takes a force, as one carried over
            request_command(session, job_id=job_id, kind=CommandKind.FORCE_STAGE, actor="op", reason="",
                            params={"stage": 2}, allow_queued=True)  # fmt: skip
        probe(False)  # due again, and a command is pending: handed over
    finally:
        probe.close()
    assert (probe.reads, delivered) == (3, [0.6])


# ---- helpers ---------------------------------------------------------------------------------------
def _start(h: Harness, job_id: str) -> threading.Thread:
    settings = h.settings.model_copy(update=SLOW_HEARTBEAT)
    runner = threading.Thread(
        target=run_attempt,
        args=(job_id, 1),
        kwargs={"settings": settings, "dispatch": lambda *_: None, "identity": Identity("t@h", 1, None),
                "engine": fake_engine.train},
    )  # fmt: skip
    runner.start()
    return runner


def _during(
    h: Harness, job_id: str, at: tuple[int, int], kind: CommandKind, params: dict[str, Any] | None = None
) -> None:
    """Commit the command while the run is held inside batch ``at[1]`` of epoch ``at[0]``."""
    run_dir = h.settings.runs_root / job_id
    wait_for(lambda: fake_engine.held(run_dir, *at).exists(), 60, f"the run to reach {at}")
    _commit(h, job_id, kind, params)
    fake_engine.release(run_dir, *at).touch()


def _commit(h: Harness, job_id: str, kind: CommandKind, params: dict[str, Any] | None = None) -> None:
    with write_transaction(h.db) as session:
        request_command(session, job_id=job_id, kind=kind, actor="op", reason="test", params=params)


def _commands(h: Harness, job_id: str) -> list[Command]:
    with read_session(h.db) as session:
        return list_commands(session, job_id=job_id)


def _interrupted_at(h: Harness, job_id: str) -> tuple[int, int]:
    [interrupt] = [c for c in h.checkpoints(job_id) if c.kind == "interrupt"]
    return interrupt.epoch, interrupt.batch

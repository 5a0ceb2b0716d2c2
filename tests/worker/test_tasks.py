"""The Celery task on a real worker process and the real broker: a fake-engine job end to end."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from worker_harness import Harness, make_harness, wait_for

from jobstore.db import write_transaction
from jobstore.kinds import CommandKind
from jobstore.repo.commands import request_command
from jobstore.repo.resume import request_resume


def test_job_runs_end_to_end(harness: Harness) -> None:
    harness.dataset("setB", f1=[0.6, 0.82, 0.85, 0.86, 0.9], epoch_seconds=0.05)
    harness.start_worker()
    job_id = harness.create(epochs=5, unfreeze_backbone_epoch=3)

    job = harness.wait_state(job_id, "succeeded")

    assert job.epoch == 5 and job.stage == 2
    rows = harness.metrics(job_id)
    assert [r.epoch for r in rows] == [1, 2, 3, 4, 5]
    assert [r.stage for r in rows] == [1, 1, 2, 2, 2]
    stage_events = harness.events(job_id, "stage_change")
    assert [(e.from_stage, e.to_stage, e.epoch) for e in stage_events] == [(1, 2, 3)]
    kinds = {c.kind for c in harness.checkpoints(job_id)}
    assert {"last", "best", "stage_entry", "onnx"} <= kinds
    assert job.best_checkpoint == f"{job_id}/best.pt" and job.onnx_path == f"{job_id}/best.onnx"
    assert (harness.settings.runs_root / job.onnx_path).is_file()
    [attempt] = harness.attempts(job_id)
    assert attempt.outcome == "completed" and attempt.worker.startswith(harness.workers[0].name)


def test_commands_reach_a_running_job(harness: Harness) -> None:
    harness.dataset("setB", epoch_seconds=0.4, batches=4)
    harness.start_worker()
    job_id = harness.create(epochs=40)
    harness.wait_epoch(job_id, 1)

    _command(harness, job_id, CommandKind.FORCE_STAGE, {"stage": 2})
    [change] = wait_for(lambda: harness.events(job_id, "stage_change"), 15, "the forced stage change")
    assert change.evidence["trigger"] == "forced" and change.to_stage == 2
    # the command's own event may land in a later transaction than the stage change
    [applied_at] = wait_for(lambda: harness.events(job_id, "command_applied"), 15, "the applied command")
    assert applied_at.epoch == change.epoch  # at the epoch boundary it starts

    _command(harness, job_id, CommandKind.PAUSE)
    job = harness.wait_state(job_id, "paused", timeout=15)
    paused_at = job.epoch
    assert any(c.kind == "interrupt" for c in harness.checkpoints(job_id))  # checkpointed at a batch boundary

    with write_transaction(harness.db) as session:
        _, attempt = request_resume(session, harness.job(job_id), selector="last", actor="op", reason="go on")
    harness.dispatch(job_id, attempt)
    harness.wait_state(job_id, "running")
    harness.wait_epoch(job_id, paused_at + 1)
    _command(harness, job_id, CommandKind.CANCEL)
    job = harness.wait_state(job_id, "cancelled", timeout=15)

    [resumed] = [a for a in harness.attempts(job_id) if a.number == attempt]
    assert (resumed.restored_stage, resumed.restored_epoch, resumed.outcome) == (2, paused_at, "cancelled")
    epochs = [m.epoch for m in harness.metrics(job_id)]
    assert epochs == list(range(1, job.epoch + 1))  # one live row per epoch across the pause
    kinds = [e.evidence["kind"] for e in harness.events(job_id, "command_applied")]
    assert kinds == ["force_stage", "pause", "cancel"]


def test_duplicate_message_runs_once(harness: Harness) -> None:
    harness.dataset("setB", epoch_seconds=0.3)
    first, second = harness.start_worker(), harness.start_worker()
    job_id = harness.create(epochs=3)
    harness.dispatch(job_id, 1)  # the same (job, attempt) again, as a Redis redelivery would

    harness.wait_state(job_id, "succeeded")
    wait_for(lambda: all("succeeded in" in w.log() for w in (first, second)), 15, "both messages consumed")

    assert len(harness.attempts(job_id)) == 1
    assert sum("not claimable" in w.log() for w in (first, second)) == 1
    assert [m.epoch for m in harness.metrics(job_id)] == [1, 2, 3]


def test_two_workers_share_one_queue(harness: Harness) -> None:
    harness.dataset("setB", epoch_seconds=0.4)
    workers = [harness.start_worker(f"spread{i}-{uuid.uuid4().hex[:6]}") for i in range(2)]
    jobs = [harness.create(name=f"j{i}", epochs=3) for i in range(4)]

    ran_on = {
        job_id: harness.attempts(harness.wait_state(job_id, "succeeded").id)[0].worker for job_id in jobs
    }

    nodes = {node.split("@")[0] for node in ran_on.values()}
    assert nodes == {w.name for w in workers}, ran_on  # no worker hoarded the queue


def test_bad_dataset_fails_once_and_other_jobs_run(harness: Harness) -> None:
    (harness.settings.data_root / "broken").mkdir()
    (harness.settings.data_root / "broken" / "fake_engine.json").write_text("{not json")
    harness.start_worker()
    bad = harness.create(data_root="broken")
    good = harness.create(epochs=2)

    assert "broken/fake_engine.json" in harness.wait_state(bad, "failed").state_reason
    harness.wait_state(good, "succeeded")
    assert len(harness.attempts(bad)) == 1  # not retried


def test_cancel_ignored_past_the_deadline_ends_the_process(harness: Harness) -> None:
    harness.dataset("setB", epoch_seconds=0.5, ignore_commands=True)
    worker = harness.start_worker(OCEC_CANCEL_DEADLINE_SECONDS="1")
    job_id = harness.create(epochs=50)
    harness.wait_epoch(job_id, 1)
    pid = harness.attempts(job_id)[0].pid

    _command(harness, job_id, CommandKind.CANCEL)

    job = harness.wait_state(job_id, "cancelled", timeout=20)
    assert "not honoured" in job.state_reason
    wait_for(
        lambda: f"pid:{pid} exited with 'exitcode 79'" in worker.log(), 15, "the child to exit by itself"
    )
    [command] = harness.events(job_id, "command_applied")
    assert command.evidence["kind"] == "cancel"


def _command(h: Harness, job_id: str, kind: CommandKind, params: dict[str, Any] | None = None) -> None:
    with write_transaction(h.db) as session:
        request_command(session, job_id=job_id, kind=kind, actor="op", reason="test", params=params)


def test_embedded_sqlite_broker(
    tmp_path: Path, db_url: str, migrated_engine: Engine, unique_queue: str
) -> None:
    """The embedded default: kombu's SQLAlchemy transport over a SQLite file, no broker server."""
    broker = f"sqla+sqlite:///{tmp_path / 'broker.db'}"
    h = make_harness(tmp_path, db_url, broker, unique_queue, migrated_engine)
    try:
        h.dataset("setB", epoch_seconds=0.05)
        worker = h.start_worker()
        job_id = h.create(epochs=3)
        job = h.wait_state(job_id, "succeeded", timeout=60)
        assert [m.epoch for m in h.metrics(job_id)] == [1, 2, 3] and job.onnx_path
        assert "sqla+sqlite" in worker.log()
    finally:
        h.stop_workers()

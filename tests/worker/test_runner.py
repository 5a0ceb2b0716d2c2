"""The runner without Celery: claim, restore confirmation, outcomes, failures, fencing, duplicates.

Layer 1 of service_practices.md §1.10: ``run_attempt`` on the real database (SQLite and PostgreSQL)
with the fake engine; ``dispatch`` records what would be sent (the Celery path is in test_tasks.py).
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import fake_engine
import pytest
from sqlalchemy import delete
from worker_harness import Harness, wait_for

from jobstore.db import transaction_factory, write_transaction
from jobstore.kinds import CommandKind
from jobstore.models import EpochMetric
from jobstore.reaper import reap
from jobstore.repo.commands import request_command
from jobstore.repo.resume import request_resume
from worker import preemption
from worker.runner import Identity, RunStatus, run_attempt

IDENTITY = Identity("test@host", 4242, None)


class Sent(list[tuple[str, int]]):
    def __call__(self, job_id: str, attempt: int) -> None:
        self.append((job_id, attempt))


def _run(h: Harness, job_id: str, attempt: int = 1, sent: Sent | None = None) -> RunStatus:
    return run_attempt(
        job_id,
        attempt,
        settings=h.settings,
        dispatch=Sent() if sent is None else sent,
        identity=IDENTITY,
        engine=fake_engine.train,
    )


def test_completed_job_records_everything(harness: Harness) -> None:
    harness.dataset("setB", f1=[0.7, 0.81, 0.83], epoch_seconds=0)
    job_id = harness.create(epochs=3, unfreeze_backbone_epoch=2, dispatch=False)

    assert _run(harness, job_id) == RunStatus.FINISHED

    job = harness.job(job_id)
    assert (job.state, job.epoch, job.stage, job.best_epoch) == ("succeeded", 3, 2, 3)
    assert [m.epoch for m in harness.metrics(job_id)] == [1, 2, 3]
    gate = harness.events(job_id, "gate_check")
    assert [(e.epoch, e.evidence["passed"]) for e in gate] == [(2, False), (3, True)]
    assert [(e.from_stage, e.to_stage, e.epoch) for e in harness.events(job_id, "stage_change")] == [
        (1, 2, 3)
    ]
    [restored] = harness.events(job_id, "restored")
    assert restored.evidence["matches"] and restored.evidence["checkpoint"] is None
    records = {c.path: c for c in harness.checkpoints(job_id)}
    assert records[f"{job_id}/last.pt"].epoch == 3 and records[f"{job_id}/last.pt"].sha256
    assert records[f"{job_id}/best.onnx"].kind == "onnx"


def test_duplicate_delivery_runs_once(harness: Harness) -> None:
    harness.dataset("setB", epoch_seconds=0.2)
    job_id = harness.create(epochs=2, dispatch=False)
    results: list[RunStatus] = []
    threads = [threading.Thread(target=lambda: results.append(_run(harness, job_id))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert sorted(results) == sorted([RunStatus.FINISHED, RunStatus.SKIPPED])
    assert len(harness.attempts(job_id)) == 1
    events_before = len(harness.events(job_id))
    assert _run(harness, job_id) == RunStatus.SKIPPED  # a late third copy: still nothing written
    assert len(harness.events(job_id)) == events_before


def test_stale_attempt_cannot_write(harness: Harness) -> None:
    harness.dataset("setB", epoch_seconds=0.3, batches=3)
    job_id = harness.create(epochs=30, dispatch=False)
    sent = Sent()
    outcome: list[RunStatus] = []
    runner = threading.Thread(target=lambda: outcome.append(_run(harness, job_id, sent=sent)))
    runner.start()
    first_beat = harness.wait_epoch(job_id, 1).heartbeat_at
    assert first_beat is not None
    renewed = wait_for(lambda: (j := harness.job(job_id)).heartbeat_at > first_beat and j, 10, "a renewal")
    assert renewed.lease_expires_at is not None and renewed.lease_expires_at > renewed.heartbeat_at

    # The reaper decides this worker is lost (as if its lease had run out) and re-queues the job.
    later = datetime.now(UTC) + timedelta(hours=1)
    report = reap(transaction_factory(harness.db), now=later, settings=harness.settings, dispatch=sent)
    assert report.requeued == 1
    rows_at_reap = [(m.epoch, m.attempt) for m in harness.metrics(job_id, live=False)]
    runner.join(timeout=30)

    assert outcome == [RunStatus.FENCED]
    assert [(m.epoch, m.attempt) for m in harness.metrics(job_id, live=False)] == rows_at_reap
    assert not (harness.settings.runs_root / job_id / "interrupt.pt").exists()  # no checkpoint either
    job = harness.job(job_id)
    assert (job.state, job.attempt) == ("queued", 2) and sent == [(job_id, 2)]


def test_bad_dataset_fails_naming_the_file(harness: Harness) -> None:
    (harness.settings.data_root / "broken").mkdir()
    (harness.settings.data_root / "broken" / "fake_engine.json").write_text("{not json")
    job_id = harness.create(data_root="broken", dispatch=False)
    other = harness.create(dispatch=False)

    assert _run(harness, job_id) == RunStatus.FINISHED

    job = harness.job(job_id)
    assert job.state == "failed" and "broken/fake_engine.json" in job.state_reason
    assert harness.job(other).state == "queued" and len(harness.events(other)) == 1


@pytest.mark.parametrize(
    ("fail", "expected"),
    [
        ("nan", "training diverged: loss is NaN at epoch 2"),
        ("enospc", "disk full writing"),
        ("data", "train.parquet: row 7"),
        ("crash", "RuntimeError: scripted crash at epoch 2 (internal error"),
    ],
)
def test_errors_fail_the_job_with_an_actionable_reason(harness: Harness, fail: str, expected: str) -> None:
    harness.dataset("setB", epoch_seconds=0, fail={"kind": fail, "epoch": 2})
    job_id = harness.create(epochs=4, dispatch=False)
    sent = Sent()

    assert _run(harness, job_id, sent=sent) == RunStatus.FINISHED

    job = harness.job(job_id)
    assert job.state == "failed" and expected in job.state_reason
    assert [m.epoch for m in harness.metrics(job_id)] == [1]  # epoch 1 is kept
    assert sent == []  # never retried automatically
    assert harness.attempts(job_id)[0].outcome == "failed"


def test_path_outside_the_root_fails_before_training(harness: Harness) -> None:
    job_id = harness.create(data_root="../../etc", dispatch=False)
    _run(harness, job_id)
    job = harness.job(job_id)
    assert job.state == "failed" and "leaves its configured root" in job.state_reason


def test_gate_pause_awaits_a_decision_with_the_gate(harness: Harness) -> None:
    harness.dataset("setB", f1=[0.6, 0.7], epoch_seconds=0)
    job_id = harness.create(
        epochs=5, unfreeze_backbone_epoch=3, stage2={"on_gate_fail": "pause"}, dispatch=False
    )

    _run(harness, job_id)

    job = harness.job(job_id)
    assert job.state == "awaiting_decision" and job.epoch == 2
    assert job.gate["f1"] == pytest.approx(0.7) and job.gate["threshold"] == pytest.approx(0.8)
    assert job.gate["action"] == "pause"


def test_gate_stop_succeeds_keeping_the_reason(harness: Harness) -> None:
    harness.dataset("setB", f1=[0.6, 0.7], epoch_seconds=0)
    job_id = harness.create(
        epochs=5, unfreeze_backbone_epoch=2, stage2={"on_gate_fail": "stop"}, dispatch=False
    )
    _run(harness, job_id)
    job = harness.job(job_id)
    assert job.state == "succeeded" and "gate not passed" in job.state_reason
    assert harness.attempts(job_id)[0].outcome == "stopped"


def test_preempted_job_is_requeued_and_redispatched(harness: Harness) -> None:
    harness.dataset("setB", epoch_seconds=0.2, batches=4)
    job_id = harness.create(epochs=20, dispatch=False)
    sent = Sent()
    runner = threading.Thread(target=lambda: _run(harness, job_id, sent=sent))
    runner.start()
    try:
        harness.wait_epoch(job_id, 1)
        preemption.request_preempt("test: worker shutting down")
        runner.join(timeout=30)
    finally:
        preemption.clear_preempt()

    job = harness.job(job_id)
    assert (job.state, job.attempt) == ("queued", 2) and sent == [(job_id, 2)]
    assert (
        job.resume_from["kind"] == "interrupt" and job.resume_from["checkpoint"] == f"{job_id}/interrupt.pt"
    )
    assert harness.attempts(job_id)[0].outcome == "preempted"


def test_resume_refills_rows_lost_between_checkpoint_and_commit(harness: Harness) -> None:
    harness.dataset("setB", epoch_seconds=0, fail={"kind": "crash", "epoch": 4})
    job_id = harness.create(epochs=5, dispatch=False)
    _run(harness, job_id)
    assert [m.epoch for m in harness.metrics(job_id)] == [1, 2, 3]
    with write_transaction(harness.db) as session:  # as if the worker died after last.pt, before the commit
        session.exec(delete(EpochMetric).where(EpochMetric.job_id == job_id, EpochMetric.epoch == 3))
    script = harness.settings.data_root / "setB" / "fake_engine.json"
    script.write_text(json.dumps({**json.loads(script.read_text()), "fail": None}))
    with write_transaction(harness.db) as session:
        _, attempt = request_resume(session, harness.job(job_id), selector="last", actor="op", reason="retry")

    _run(harness, job_id, attempt)

    job = harness.job(job_id)
    assert job.state == "succeeded"
    assert [m.epoch for m in harness.metrics(job_id)] == [1, 2, 3, 4, 5]
    restored = harness.attempts(job_id)[-1]
    assert restored.restored_epoch == 3 and restored.resumed_from in (
        f"{job_id}/last.pt",
        f"{job_id}/best.pt",
    )


def test_commands_apply_at_the_next_safe_point(harness: Harness) -> None:
    harness.dataset("setB", epoch_seconds=0.3, batches=3)
    job_id = harness.create(epochs=30, dispatch=False)
    runner = threading.Thread(target=lambda: _run(harness, job_id))
    runner.start()
    harness.wait_epoch(job_id, 1)
    _command(harness, job_id, CommandKind.FORCE_STAGE, {"stage": 2})
    [change] = wait_for(lambda: harness.events(job_id, "stage_change"), 10, "the forced stage change")
    _command(harness, job_id, CommandKind.PAUSE)
    runner.join(timeout=30)

    assert change.evidence["trigger"] == "forced" and change.actor == "op"
    job = harness.job(job_id)
    assert job.state == "paused" and job.stage == 2
    applied = harness.events(job_id, "command_applied")
    assert [e.evidence["kind"] for e in applied] == ["force_stage", "pause"]
    assert any(c.kind == "interrupt" for c in harness.checkpoints(job_id))


def _command(h: Harness, job_id: str, kind: CommandKind, params: dict[str, Any] | None = None) -> None:
    with write_transaction(h.db) as session:
        request_command(session, job_id=job_id, kind=kind, actor="op", reason="test", params=params)


def test_a_real_job_carries_its_before_after_evaluation(harness: Harness) -> None:
    """The real engine on tiny data: job.result["evaluation"] holds the table on B's held-out test
    split and on the source domain A, and the reports lie in the run folder."""
    import ocec_engine
    from ocec_engine.synthetic import make_dataset

    root = harness.settings.data_root
    make_dataset(root / "realB", domain="B", n=80, seed=1)
    make_dataset(root / "realA", domain="A", n=40, seed=2)
    job_id = harness.create(
        data_root="realB", retention_data_root="realA", test_fraction=0.25, epochs=2, batch_size=32,
        base_channels=8, num_blocks=2, augment="none", unfreeze_backbone_epoch=2,
        stage2={"gate_f1": 0.0}, dispatch=False,
    )  # fmt: skip
    status = run_attempt(
        job_id, 1, settings=harness.settings, dispatch=Sent(), identity=IDENTITY, engine=ocec_engine.train
    )
    job = harness.job(job_id)
    assert status == RunStatus.FINISHED and job.state == "succeeded", job.state_reason
    evaluation = job.result["evaluation"]
    assert evaluation["split"] == "test" and evaluation["rule"] == "f1"
    rows = {row["tag"]: row for row in evaluation["table"]}
    assert {"before_B", "after_B", "before_A", "after_A"} <= set(rows)
    assert rows["before_B"]["model"] == "A" and rows["after_B"]["model"] == "best"
    assert rows["after_B"]["split"] == "test" and rows["before_A"]["domain"] == "A"
    assert evaluation["forgetting"] == pytest.approx(rows["before_A"]["f1"] - rows["after_A"]["f1"])
    run = harness.settings.runs_root / job_id
    for path in evaluation["reports"].values():
        report = json.loads((run / path).read_text())
        assert report["schema"] == 1
    b_test = json.loads((run / evaluation["reports"]["after_B"]).read_text())["data"]
    assert b_test["samples"] == 20  # 25 % of 80, held out of train and val

"""The Celery task on a real worker process and the real broker: a fake-engine job end to end."""

from __future__ import annotations

from worker_harness import Harness


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

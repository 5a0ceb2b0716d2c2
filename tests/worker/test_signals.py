"""Clean shutdown: SIGTERM checkpoints the running job at a batch boundary and re-queues it."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

from worker_harness import REPO, Harness


def test_sigterm_requeues_and_another_worker_finishes_from_the_checkpoint(harness: Harness) -> None:
    harness.dataset("setB", epoch_seconds=0.4, batches=4)
    first = harness.start_worker()
    job_id = harness.create(epochs=6)
    harness.wait_epoch(job_id, 2)

    assert first.stop(timeout=30) == 0  # warm shutdown: waits for the job, which yields at once

    job = harness.job(job_id)
    assert (job.state, job.attempt) == ("queued", 2)
    assert job.resume_from["kind"] == "interrupt"
    second = harness.start_worker()
    job = harness.wait_state(job_id, "succeeded")

    preempted, finished = harness.attempts(job_id)
    assert preempted.outcome == "preempted" and "SIGTERM" in preempted.reason
    assert preempted.worker.startswith(first.name) and finished.worker.startswith(second.name)
    assert finished.resumed_from == f"{job_id}/interrupt.pt" and finished.restored_epoch >= 2
    assert [m.epoch for m in harness.metrics(job_id)] == [1, 2, 3, 4, 5, 6]
    assert harness.metrics(job_id, live=False) == harness.metrics(job_id)  # nothing replayed or lost


def test_child_handler_first_sigterm_preempts_second_kills() -> None:
    code = textwrap.dedent(
        """
        import os, signal, sys, time
        from worker import preemption, signals
        signals.install_child_handlers(os.getppid())
        with preemption.preempt_on_sigterm():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.1)
            print(preemption.preempt_reason(), flush=True)
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
            print("survived", flush=True)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "worker shutting down (SIGTERM)"
    assert proc.returncode == -signal.SIGTERM

"""The same task delivered twice, a stale attempt that wakes up, and a stale attempt's message.

- Two workers receive the same ``run_job(job, 1)``: one claims the job, the other finds it claimed
  and returns without writing anything.
- The running attempt's process is frozen (SIGSTOP) past its lease: the reaper gives the job to a
  new attempt on the other worker. When the old process is thawed (SIGCONT) it is fenced: its next
  heartbeat or write is refused and it stops without writing a row.
- A message for the old attempt, sent again afterwards, is refused at the claim.

The job ends like the uninterrupted reference; nothing carries the stale attempt's number after the
takeover.
"""

from __future__ import annotations

import os
import signal

from tests.faults.checks import assert_like_reference
from tests.faults.harness import FaultHarness, WorkerProcess, wait_for

SKIPPED = "not claimable (duplicate or stale message)"


def test_duplicate_delivery_and_stale_attempt_touch_nothing(fx: FaultHarness) -> None:
    workers = [fx.start_worker("w1", reaper=True), fx.start_worker("w2")]
    job_id = fx.submit("duplicates", dispatch=False)
    fx.record("duplicate-delivery", job_id, "before the claim")
    fx.dispatch(job_id, 1)
    fx.dispatch(job_id, 1)
    wait_for(lambda: _skips(workers) == 1, 60, "the second delivery to be refused")

    where = fx.mid_epoch(job_id, 2, 0.5).where
    zombie = fx.pool_pid(job_id)
    fx.record("sigstop-stale-attempt", job_id, where)
    os.kill(zombie, signal.SIGSTOP)
    wait_for(lambda: (j := fx.job(job_id)).attempt == 2 and j.state == "running", 60, "the takeover")
    [requeued] = [e for e in fx.events(job_id, "state_change") if e.to_state == "queued"]

    fx.record("stale-message", job_id, "attempt 1 after the takeover")
    fx.dispatch(job_id, 1)  # a stale attempt's message
    os.kill(zombie, signal.SIGCONT)
    wait_for(lambda: _skips(workers) == 2, 120, "the stale message to be refused")
    fx.wait_state(job_id, "succeeded", "failed", timeout=180)

    assert_like_reference(fx, job_id)
    first, second = fx.attempts(job_id)
    assert (first.outcome, second.outcome) == ("lost", "completed")
    assert any("fenced out" in w.log() for w in workers), "the thawed attempt learnt it was fenced"
    late = requeued.at
    assert not [e for e in fx.events(job_id) if e.attempt == 1 and e.at > late], "events after takeover"
    assert not [m for m in fx.metrics(job_id, live=False) if m.attempt == 1 and m.recorded_at > late]
    assert not [c for c in fx.checkpoints(job_id) if c.attempt == 1 and c.created_at > late]


def _skips(workers: list[WorkerProcess]) -> int:
    return sum(w.log().count(SKIPPED) for w in workers)

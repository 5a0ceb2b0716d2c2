"""Retry budgets, with the fake engine (training is irrelevant here; a fast, torch-free child).

- Infrastructure failures (a lost worker) are retried automatically within ``infra_retry_budget``;
  the next loss fails the job with "infrastructure retry budget exhausted".
- Clean preemptions do not use that budget, but a preemption loop is bounded: more than
  ``preempt_budget`` preemptions in a row without a completed epoch fail the job.
- Errors in the job itself are never retried (``test_bad_runs``).
"""

from __future__ import annotations

from tests.faults.checks import assert_consistent_end, tally_failed
from tests.faults.harness import FaultHarness, wait_for

FAKE = {"OCEC_ENGINE": "fake_engine:train"}
SLOW_EPOCHS = {"epoch_seconds": 20.0, "batches": 40}  # 0.5 s a batch: no epoch completes in these tests


def _running(fx: FaultHarness, job_id: str, attempt: int) -> None:
    wait_for(
        lambda: (j := fx.job(job_id)).attempt == attempt and j.state == "running", 60, f"attempt {attempt}"
    )


def test_lost_workers_past_the_infra_budget_fail_the_job(fx: FaultHarness) -> None:
    fx.base.dataset("fake", **SLOW_EPOCHS)
    fx.start_worker("w1", reaper=True, **FAKE, OCEC_INFRA_RETRY_BUDGET="2")
    job_id = fx.base.create(name="infra-budget", data_root="fake", epochs=5)
    for attempt in (1, 2, 3):
        _running(fx, job_id, attempt)
        fx.kill_pool_child(job_id, f"attempt {attempt}")
    job = fx.wait_state(job_id, "failed", timeout=60)

    assert "infrastructure retry budget exhausted (2 of 2" in job.state_reason, job.state_reason
    assert [a.outcome for a in fx.attempts(job_id)] == ["lost"] * 3
    assert job.infra_retries == 2
    assert_consistent_end(fx, job_id)
    tally_failed(fx, job_id)


def test_a_preemption_loop_is_bounded_by_the_preempt_budget(fx: FaultHarness) -> None:
    fx.base.dataset("fake", **SLOW_EPOCHS)
    job_id = fx.base.create(name="preempt-loop", data_root="fake", epochs=5)
    for attempt in (1, 2, 3):
        worker = fx.start_worker(f"w{attempt}", **FAKE, OCEC_PREEMPT_BUDGET="2")
        _running(fx, job_id, attempt)
        fx.record("sigterm-worker", job_id, f"attempt {attempt}, before an epoch")
        assert worker.stop(timeout=60) == 0
    job = fx.job(job_id)

    assert job.state == "failed", (job.state, job.state_reason)
    assert "preempted 3 times in a row without completing an epoch (preempt budget 2)" in job.state_reason
    assert [a.outcome for a in fx.attempts(job_id)] == ["preempted"] * 3
    assert job.infra_retries == 0, "clean preemptions never use the infrastructure budget"
    assert_consistent_end(fx, job_id)
    tally_failed(fx, job_id)

"""kill -9 mid-epoch: the pool process three times in one job, then the whole worker (main process,
pool child and reaper companion at once, as when a host or container is lost).

The reaper notices each expired lease (within lease + reaper interval), marks the job interrupted,
re-queues it as a new attempt from its last checkpoint, and a worker resumes it. The job ends as if
nothing had happened: one live row per epoch, the reference's stage history and F1.
"""

from __future__ import annotations

from tests.faults.checks import assert_like_reference
from tests.faults.harness import FaultHarness


def test_kill_9_pool_child_three_times_then_the_whole_worker(fx: FaultHarness) -> None:
    first = fx.start_worker("w1", reaper=True)
    job_id = fx.submit("killed")
    killed_after: list[int] = []  # the last epoch recorded before each kill

    target = 1
    for fraction in (0.3, 0.6, 0.45):  # three kills, each in a later epoch, at another point of it
        spot = fx.mid_epoch(job_id, target, fraction)
        fx.kill_pool_child(job_id, spot.where)
        killed_after.append(spot.epoch)
        target = spot.epoch + 1  # reaped, re-queued, resumed: the next row comes from a new attempt

    spot = fx.mid_epoch(job_id, target, 0.5)
    fx.kill_worker_tree(first, job_id, spot.where)
    killed_after.append(spot.epoch)
    fx.start_worker("w2", reaper=True)  # a replacement host: its reaper finds the expired lease

    fx.wait_state(job_id, "succeeded", "failed", timeout=240)
    assert_like_reference(fx, job_id)
    attempts = fx.attempts(job_id)
    assert [a.outcome for a in attempts] == ["lost"] * 4 + ["completed"]
    assert all(a.restored_at is not None for a in attempts[1:]), "each resume confirmed its restore"
    assert [a.restored_epoch for a in attempts[1:]] == killed_after, "resumed from the last checkpoint"
    assert len(set(killed_after)) == 4, "the kills hit four different epochs"
    assert fx.job(job_id).infra_retries == 4
    states = [e.to_state for e in fx.events(job_id, "state_change")]
    assert states == ["running"] + ["interrupted", "queued", "running"] * 4 + ["succeeded"]

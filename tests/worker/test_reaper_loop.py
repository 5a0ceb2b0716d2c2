"""The reaper loop: a worker killed with SIGKILL loses its lease; the job is re-queued and finished."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import redis
from worker_harness import REPO, Harness, wait_for

from jobstore.db import write_transaction
from jobstore.models import Job
from worker.dispatch import make_dispatch, publisher
from worker.reaper import ReaperLoop


def test_kill_9_mid_epoch_is_reaped_and_resumed(harness: Harness) -> None:
    harness.dataset("setB", epoch_seconds=0.4, batches=4)
    worker = harness.start_worker(reaper=True)
    job_id = harness.create(epochs=6)
    harness.wait_epoch(job_id, 2)
    [running] = harness.attempts(job_id)
    assert running.pid is not None

    os.kill(running.pid, signal.SIGKILL)  # the pool child dies mid-epoch; the parent forks a new one

    job = harness.wait_state(job_id, "succeeded", timeout=45)
    lost, resumed = harness.attempts(job_id)
    assert lost.outcome == "lost" and resumed.outcome == "completed"
    assert resumed.worker == lost.worker == worker.node.replace("%h", resumed.worker.split("@")[1])
    assert resumed.restored_epoch is not None and resumed.restored_epoch >= 2
    assert job.infra_retries == 1
    states = [e.to_state for e in harness.events(job_id, "state_change")]
    assert states == ["running", "interrupted", "queued", "running", "succeeded"]
    assert [m.epoch for m in harness.metrics(job_id)] == [1, 2, 3, 4, 5, 6]


def test_one_pass_requeues_an_expired_lease_and_sends_the_message(harness: Harness) -> None:
    job_id = harness.create(epochs=2, dispatch=False)
    _expire(harness, job_id)
    app = publisher(harness.settings.broker_url)

    report = ReaperLoop(make_dispatch(app, harness.settings.queue), harness.settings).run_once()

    assert report is not None and report.requeued == 1 and report.dispatched == [(job_id, 2)]
    client = redis.Redis.from_url(harness.settings.broker_url)
    wait_for(lambda: client.llen(harness.settings.queue) == 1, 5, "the message in the queue")
    client.delete(harness.settings.queue)
    app.close()


def test_standalone_reaper_process_reaps_and_stops_on_sigterm(harness: Harness) -> None:
    job_id = harness.create(epochs=2, dispatch=False)
    _expire(harness, job_id)
    argv = [sys.executable, "-m", "worker.reaper", "--parent-pid", str(os.getpid())]
    proc = subprocess.Popen(argv, env=harness.env, cwd=REPO, stderr=subprocess.PIPE, text=True)
    try:
        job = harness.wait_state(job_id, "queued", timeout=30)
        assert job.attempt == 2 and job.infra_retries == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert proc.stderr is not None and "interrupted" in proc.stderr.read()
    redis.Redis.from_url(harness.settings.broker_url).delete(harness.settings.queue)


def test_companion_reaper_exits_when_its_parent_is_gone(harness: Harness) -> None:
    argv = [sys.executable, "-m", "worker.reaper", "--parent-pid", "1"]  # not our parent: "it died"
    proc = subprocess.run(argv, env=harness.env, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "is gone; exiting" in proc.stderr


def _expire(h: Harness, job_id: str) -> None:
    with write_transaction(h.db) as session:  # a running job whose worker stopped beating
        job = session.get(Job, job_id)
        assert job is not None
        job.state, job.lease_owner = "running", "gone@host"
        job.lease_expires_at = datetime.now(UTC) - timedelta(seconds=5)
        session.add(job)

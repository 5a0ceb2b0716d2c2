"""``ocec-jobs worker``: one Celery worker per GPU, pinned with CUDA_VISIBLE_DEVICES; signals forwarded."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import select
from worker_harness import REPO, Harness, wait_for

from jobstore.db import read_session
from jobstore.models import WorkerPresence
from ocec_jobs.cli.worker import (
    WorkerCommandError,
    celery_argv,
    count_gpus,
    parse_gpus,
    plan_slots,
    positive_jobs,
    slot_env,
    supervise,
)
from tests.ocec_jobs.up_process import wait_all_gone
from tests.process_leaks import descendants


def _fake_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gpus: int) -> None:
    """An ``nvidia-smi -L`` stand-in on PATH (this host has no GPU); it only prints the listing."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    lines = "\n".join(f"GPU {i}: NVIDIA H100 (UUID: GPU-{i:08d})" for i in range(gpus))
    script = bin_dir / "nvidia-smi"
    script.write_text(f"#!/bin/sh\n[ \"$1\" = -L ] || exit 2\necho '{lines}'\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def test_explicit_gpus_one_worker_each() -> None:
    slots = plan_slots("0,2", None)
    assert [(s.node, s.cuda_visible_devices) for s in slots] == [("gpu0@%h", "0"), ("gpu2@%h", "2")]
    env = slot_env(slots[1], reaper=False)
    assert (env["CUDA_VISIBLE_DEVICES"], env["CUDA_DEVICE_ORDER"], env["OCEC_WORKER_REAPER"]) == (
        "2",
        "PCI_BUS_ID",
        "0",
    )
    argv = celery_argv(slots[0], "gpu", "info")
    for flag, value in [("--pool", "prefork"), ("--concurrency", "1"), ("--max-tasks-per-child", "1"),
                        ("--queues", "gpu"), ("--hostname", "gpu0@%h")]:  # fmt: skip
        assert argv[argv.index(flag) + 1] == value


def test_jobs_per_gpu_sizes_each_workers_pool() -> None:
    slots = plan_slots("0,1", None, jobs_per_gpu=4)
    assert [(s.node, s.cuda_visible_devices, s.jobs) for s in slots] == [
        ("gpu0@%h", "0", 4),
        ("gpu1@%h", "1", 4),
    ]
    argv = celery_argv(slots[0], "gpu", "info")
    assert argv[argv.index("--concurrency") + 1] == "4"
    assert argv[argv.index("--max-tasks-per-child") + 1] == "1"  # still a fresh process per job
    for bad in ("0", "-2", "x", "65"):
        with pytest.raises(argparse.ArgumentTypeError):
            positive_jobs(bad)


def test_cpu_device_sees_no_gpu() -> None:
    [slot] = plan_slots(None, "cpu")
    assert (slot.node, slot.cuda_visible_devices) == ("cpu@%h", "")


@pytest.mark.parametrize("bad", ["", "a", "0,,x", "0,0", "-1", "1.5"])
def test_bad_gpu_lists_are_refused(bad: str) -> None:
    with pytest.raises(WorkerCommandError):
        parse_gpus(bad)


def test_all_counts_with_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_nvidia_smi(tmp_path, monkeypatch, 3)
    assert count_gpus() == 3
    assert [s.node for s in plan_slots("all", None)] == ["gpu0@%h", "gpu1@%h", "gpu2@%h"]


def test_all_without_gpus_is_an_error_and_default_falls_back_to_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(WorkerCommandError, match="--device cpu"):
        plan_slots("all", None)
    assert [s.node for s in plan_slots(None, None)] == ["cpu@%h"]


def test_two_pinned_workers_run_jobs_side_by_side_and_stop_on_sigterm(harness: Harness) -> None:
    harness.dataset("setB", epoch_seconds=0.5, batches=5)
    log = (harness.settings.home / "cli.log").open("wb")
    argv = [sys.executable, "-m", "ocec_jobs.cli.main", "worker", "--gpus", "0,1", "--loglevel", "info"]
    cli = subprocess.Popen(argv, env=harness.env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        jobs = [harness.create(name=f"j{i}", epochs=100) for i in range(2)]
        for job_id in jobs:
            harness.wait_state(job_id, "running", timeout=60)
        attempts = [harness.attempts(job_id)[0] for job_id in jobs]
        assert sorted(a.gpu or "" for a in attempts) == ["0", "1"]
        for a in attempts:
            assert a.worker.startswith(f"gpu{a.gpu}@")
        # the reaper companion is a process of its own: on a busy host it may still be importing
        cli_log = harness.settings.home / "cli.log"
        wait_for(lambda: "reaper loop started" in cli_log.read_text(), 60, "the first worker's reaper")

        cli.send_signal(signal.SIGTERM)
        assert cli.wait(timeout=60) == 0
    finally:
        if cli.poll() is None:
            cli.kill()
        log.close()
    for job_id in jobs:  # each job checkpointed and went back to the queue
        job = harness.job(job_id)
        assert (job.state, job.attempt) == ("queued", 2), (harness.settings.home / "cli.log").read_text()
    output = (harness.settings.home / "cli.log").read_text()
    assert "2 worker(s)" in output
    assert output.count("reaper loop started") == 1  # only the first worker hosts the reaper


def test_jobs_per_gpu_runs_two_jobs_at_once_on_one_device_and_a_killed_one_leaves_the_other(
    harness: Harness,
) -> None:
    harness.dataset("setB", epoch_seconds=0.5, batches=5)
    log = (harness.settings.home / "cli.log").open("wb")
    argv = [sys.executable, "-m", "ocec_jobs.cli.main", "worker", "--gpus", "0", "--jobs-per-gpu", "2",
            "--no-reaper"]  # fmt: skip
    cli = subprocess.Popen(argv, env=harness.env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        jobs = [harness.create(name=f"j{i}", epochs=100) for i in range(2)]
        for job_id in jobs:
            harness.wait_state(job_id, "running", timeout=60)
        attempts = [harness.attempts(job_id)[0] for job_id in jobs]
        # placement: both on the device they were placed on, in one worker, each in its own process
        assert [a.gpu for a in attempts] == ["0", "0"]
        assert attempts[0].worker == attempts[1].worker and attempts[0].worker.startswith("gpu0@")
        assert attempts[0].pid != attempts[1].pid
        rows = [harness.job(job_id) for job_id in jobs]  # each its own lease, renewed on its own
        assert all(r.lease_owner and r.lease_expires_at for r in rows)

        assert attempts[0].pid is not None
        os.kill(attempts[0].pid, signal.SIGKILL)  # isolation: the other job goes on, same attempt
        survivor = harness.job(jobs[1])
        after = harness.wait_epoch(jobs[1], survivor.epoch + 2, timeout=60)
        assert (after.state, after.attempt) == ("running", 1)
        assert harness.attempts(jobs[1])[0].pid == attempts[1].pid

        cli.send_signal(signal.SIGTERM)
        assert cli.wait(timeout=60) == 0
    finally:
        if cli.poll() is None:
            cli.kill()
        log.close()
    job = harness.job(jobs[1])
    assert (job.state, job.attempt) == ("queued", 2), (harness.settings.home / "cli.log").read_text()


def test_kill_9_of_the_command_stops_its_workers_which_hand_their_job_back(harness: Harness) -> None:
    harness.dataset("setB", epoch_seconds=0.5, batches=5)
    log = (harness.settings.home / "cli.log").open("wb")
    argv = [sys.executable, "-m", "ocec_jobs.cli.main", "worker", "--device", "cpu", "--no-reaper"]
    cli = subprocess.Popen(argv, env=harness.env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        job_id = harness.create(name="orphaned", epochs=100)
        harness.wait_epoch(job_id, 1, timeout=90)
        wait_for(lambda: _presence(harness), 60, "the companion's first beat")
        tree = descendants(cli.pid)  # Celery's main process, its pool child, the companion
        cli.kill()
        cli.wait()
        wait_all_gone(tree)
    finally:
        if cli.poll() is None:
            cli.kill()
        log.close()

    assert len(tree) == 3, tree
    job = harness.job(job_id)
    assert (job.state, job.attempt) == ("queued", 2), "the job was checkpointed and handed back"
    [presence] = _presence(harness)
    assert presence.stopped_at is not None and presence.reason == "stopped"


def _presence(harness: Harness) -> list[WorkerPresence]:
    with read_session(harness.db) as session:
        return list(session.exec(select(WorkerPresence)).all())


def test_a_worker_that_ignores_sigterm_is_killed_after_the_grace() -> None:
    deaf = "import signal as s, time; s.signal(s.SIGTERM, s.SIG_IGN); print(flush=True); time.sleep(300)"
    stubborn = subprocess.Popen([sys.executable, "-c", deaf], stdout=subprocess.PIPE)
    assert stubborn.stdout is not None and stubborn.stdout.readline() == b"\n"  # its handler is in place
    quitter = subprocess.Popen([sys.executable, "-c", "pass"])  # one worker exits: the others are stopped

    code = supervise([quitter, stubborn], grace=1.0)

    assert stubborn.returncode == -signal.SIGKILL and code == signal.SIGKILL
    stubborn.stdout.close()

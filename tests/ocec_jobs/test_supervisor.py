"""``ocec-jobs up`` supervises its children: a dead worker is restarted with a backoff while the
reaper, a child of its own, re-queues its job; after repeated crashes the worker is left down and
the log and ``/readyz`` say why. Real ``up`` process trees, the fake engine, short leases."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from tests.faults.processes import kill_tree_9
from tests.ocec_jobs.up_jobs import FAKE, client, epochs_recorded, fake_dataset, submit, wait_job
from tests.ocec_jobs.up_process import wait_all_gone
from tests.ocec_jobs.up_server import running_up
from tests.process_leaks import alive, descendants

pytestmark = pytest.mark.slow
EPOCHS = 10


def child_running(up_pid: int, marker: str) -> int:
    """The pid of ``up``'s child whose command line holds ``marker``."""
    for pid in descendants(up_pid):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in command and Path(f"/proc/{pid}/stat").read_text().split()[3] == str(up_pid):
            return pid
    raise AssertionError(f"no child of ocec-jobs up runs {marker!r}")


def kill_worker(http: httpx.Client, up_pid: int, job_id: str, after_epoch: int) -> tuple[int, datetime]:
    """kill -9 every worker process (wrapper, Celery main, pool child, companion) mid-epoch."""
    job = wait_job(
        http, job_id, lambda j: j["state"] == "running" and j["epoch"] >= after_epoch, 180, "a running epoch"
    )
    killed_at = datetime.now().astimezone()
    kill_tree_9(child_running(up_pid, "ocec_jobs.cli.main worker"))
    return int(job["epoch"]), killed_at


def test_kill_9_of_every_worker_process_twice_the_job_resumes_and_succeeds(
    tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    fake_dataset(tmp_path, epoch_seconds=0.5, batches=5)
    with running_up(tmp_path, FAKE) as server, client(server) as http:
        job_id = submit(http, "twice-killed", epochs=EPOCHS)
        reaper = child_running(server.process.pid, "worker.reaper")
        kills = []
        for after in (2, 0):
            epoch, at = kill_worker(http, server.process.pid, job_id, after or kills[-1][0] + 1)
            kills.append((epoch, at))
            # running with a stale heartbeat (the dashboard's warning) until the reaper re-queues it
            wait_job(http, job_id, lambda j: j["heartbeat_stale"] is not False, 60, "a stale heartbeat")
        job = wait_job(http, job_id, lambda j: j["state"] in ("succeeded", "failed"), 240, "the job's end")
        epochs = epochs_recorded(http, job_id)
        rows = http.get(f"/jobs/{job_id}/metrics", params={"limit": 500}).json()["data"]
        events = http.get(f"/jobs/{job_id}/events", params={"limit": 500}).json()["data"]
        log = server.log.read_text()
        reaper_survived = alive(reaper)

    assert job["state"] == "succeeded", job
    assert epochs == list(range(1, EPOCHS + 1)), "exactly one metrics row per epoch"
    lost = [e for e in events if e["kind"] == "state_change" and e["to_state"] == "interrupted"]
    assert len(lost) == 2 and all("worker lost" in e["reason"] for e in lost), lost
    assert log.count("worker exited with code") == 2 and log.count("worker restarted (pid") == 2
    assert "reaper exited" not in log and reaper_survived, "one reaper ran through both outages"
    for (epoch, at), event in zip(kills, lost, strict=True):  # the recovery time, printed
        next_row = min(datetime.fromisoformat(r["recorded_at"]) for r in rows if r["epoch"] > epoch)
        noticed = (datetime.fromisoformat(event["at"]) - at).total_seconds()
        recovered = (next_row - at).total_seconds()
        record_property(f"recovery_s_epoch_{epoch + 1}", round(recovered, 1))  # in --junitxml reports
        print(
            f"kill -9 of every worker process in epoch {epoch + 1}: lost worker noticed after "
            f"{noticed:.1f} s, next epoch row after {recovered:.1f} s"
        )


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="needs a host without GPUs")
def test_a_worker_that_keeps_crashing_is_left_down_and_readyz_says_why(tmp_path: Path) -> None:
    # --device cuda on a host without GPUs: `ocec-jobs worker --gpus all` exits 2 at once, every time
    args = ("--device", "cuda", "--max-restarts", "2")
    with running_up(tmp_path, FAKE, args=args) as server, client(server) as http:
        gave_up = "stopped restarting the worker after 3 crashes in a row (last exit code 2)"
        deadline_log = wait_log(server.log, gave_up)
        ready = http.get("/readyz")
        reaper = child_running(server.process.pid, "worker.reaper")
        tree = descendants(server.process.pid)

    assert "restarting the worker in 1 s (restart 1 of 2)" in deadline_log
    assert "restarting the worker in 2 s (restart 2 of 2)" in deadline_log
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["status"] == "degraded"
    assert body["checks"]["workers"].startswith("no live worker: queued jobs wait; ocec-jobs up " + gave_up)
    assert reaper in tree, "the reaper keeps running while the worker is left down"
    wait_all_gone(tree)


def wait_log(log: Path, text: str, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while text not in (content := log.read_text()):
        assert time.monotonic() < deadline, f"{text!r} not in the log after {timeout:.0f}s:\n{content}"
        time.sleep(0.3)
    return content

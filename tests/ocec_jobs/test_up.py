"""``ocec-jobs up`` end to end: a real process tree on a free port, probed over HTTP, stopped by SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.ocec_jobs.up_jobs import (
    FAKE,
    client,
    epochs_recorded,
    fake_dataset,
    submit,
    wait_job,
    wait_workers_ok,
)
from tests.ocec_jobs.up_process import (
    DISTRIBUTED_ENV,
    free_port,
    port_free,
    stop_group,
    wait_all_gone,
    wait_ready,
)
from tests.ocec_jobs.up_server import Server, running_up, start_up
from tests.process_leaks import alive, descendants


@pytest.fixture
def up_command(tmp_path: Path) -> Iterator[tuple[list[str], dict[str, str], Path]]:
    env = {k: v for k, v in os.environ.items() if k not in DISTRIBUTED_ENV}
    home = tmp_path / "home"
    yield [sys.executable, "-m", "ocec_jobs.cli.main", "up", "--home", str(home)], env, home


def start(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        argv,
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


@pytest.mark.slow
def test_up_serves_the_api_and_a_worker_then_stops_them_on_sigterm(
    up_command: tuple[list[str], dict[str, str], Path], tmp_path: Path
) -> None:
    argv, env, home = up_command
    port = free_port()
    proc = start([*argv, "--port", str(port), "--device", "cpu", "--grace", "30"], env, tmp_path)
    try:
        base = f"http://127.0.0.1:{port}"
        ready = wait_ready(base, proc)
        with httpx.Client(base_url=base) as http:
            workers = wait_workers_ok(http)
        tree = descendants(proc.pid)

        assert (ready["checks"]["database"], ready["checks"]["broker"]) == ("ok", "ok")
        assert workers == {"status": "ok", "checks": {"database": "ok", "broker": "ok", "workers": "ok"}}
        assert len(tree) >= 6, (
            "the API, the reaper, the worker's wrapper, Celery, its pool child and companion"
        )
        assert (home / "ocec.db").is_file()
        assert (home / "broker.db").is_file()
        assert all((home / name).is_dir() for name in ("data", "models", "runs"))

        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=90)
    finally:
        stop_group(proc)

    assert proc.returncode == 0, output
    assert f"http://127.0.0.1:{port}" in output
    assert f"sqla+sqlite:///{home / 'broker.db'}" in output
    assert str(home / "data") in output
    assert [pid for pid in tree if alive(pid)] == [], "every child and grandchild has exited"


@pytest.mark.slow
def test_up_exits_with_an_error_when_the_api_cannot_start(
    up_command: tuple[list[str], dict[str, str], Path], tmp_path: Path
) -> None:
    argv, env, _home = up_command
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = start([*argv, "--port", str(port), "--no-worker"], env, tmp_path)
        try:
            output, _ = proc.communicate(timeout=90)
        finally:
            stop_group(proc)

    assert proc.returncode != 0
    assert "api exited" in output
    assert "not started (--no-worker)" in output


@pytest.mark.slow
def test_kill_9_of_up_mid_job_leaves_no_process_and_a_second_up_resumes_the_job(tmp_path: Path) -> None:
    fake_dataset(tmp_path, epoch_seconds=0.5, batches=5)
    first = start_up(tmp_path, FAKE)
    try:
        with client(first) as http:
            job_id = submit(http, "survivor", epochs=8)
            wait_job(http, job_id, lambda j: j["state"] == "running" and j["epoch"] >= 2, 120, "epoch 2")
        tree = descendants(first.process.pid)  # API, reaper, worker wrapper, Celery, pool child, companion
        first.process.kill()
        first.process.wait()
        wait_all_gone(tree)
    finally:
        stop_group(first.process)

    assert len(tree) >= 6, "the API, the reaper and the worker's four processes were running"
    deadline = time.monotonic() + 30
    while not port_free(first.port):
        assert time.monotonic() < deadline, f"port {first.port} still taken 30 s after the kill"
        time.sleep(0.2)
    with start_up_again(tmp_path, first) as second, client(second) as http:
        job = wait_job(http, job_id, lambda j: j["state"] in ("succeeded", "failed"), 180, "the job's end")
        assert job["state"] == "succeeded", job
        assert epochs_recorded(http, job_id) == list(range(1, 9)), "every epoch once: nothing lost or twice"
        assert job["attempt"] >= 2, "the attempt that `up` took with it ended; a new one resumed"


@contextmanager
def start_up_again(folder: Path, earlier: Server) -> Iterator[Server]:
    """``ocec-jobs up`` once more on ``earlier``'s home and port (its key was printed the first time)."""
    with running_up(folder, FAKE, port=earlier.port, key=earlier.key) as server:
        yield server

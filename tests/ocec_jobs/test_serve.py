"""``ocec-jobs api`` started on its own: uvicorn's worker processes die with it, even on SIGKILL."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from jobstore.migrate import upgrade_to_head
from tests.ocec_jobs.up_process import DISTRIBUTED_ENV, free_port, port_free, wait_all_gone
from tests.process_leaks import descendants


@pytest.mark.slow
def test_kill_9_of_the_api_stops_its_uvicorn_workers_and_frees_the_port(tmp_path: Path) -> None:
    home = tmp_path / "home"
    upgrade_to_head(f"sqlite:///{home / 'ocec.db'}")
    env = {k: v for k, v in os.environ.items() if k not in DISTRIBUTED_ENV} | {"OCEC_HOME": str(home)}
    port = free_port()
    argv = [sys.executable, "-m", "ocec_jobs.cli.main", "api", "--port", str(port), "--workers", "2"]
    api = subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while len(tree := descendants(api.pid)) < 2 or not _healthy(port):
            assert api.poll() is None and time.monotonic() < deadline, f"api not up: {tree}"
            time.sleep(0.3)
        api.kill()
        api.wait()
        wait_all_gone(tree)
    finally:
        if api.poll() is None:
            api.kill()
            api.wait()

    assert len(tree) >= 2, "two uvicorn workers ran"
    deadline = time.monotonic() + 30
    while not port_free(port):
        assert time.monotonic() < deadline, f"port {port} still taken 30 s after the kill"
        time.sleep(0.2)


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False

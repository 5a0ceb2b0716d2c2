"""Process control for the fault tests: the API as a real ``ocec-jobs api`` subprocess, process trees,
and the ways a process can die (kill -9 of one process or of a whole tree)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from worker_harness import WorkerProcess

from tests.faults.services import free_port
from tests.process_leaks import alive, descendants

REPO = Path(__file__).resolve().parents[2]


def kill_9(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def kill_tree_9(pid: int) -> list[int]:
    """kill -9 a process and everything below it at once (a host or container lost); returns pids."""
    doomed = [pid, *sorted(descendants(pid))]
    for each in doomed:
        kill_9(each)
    return doomed


def wait_gone(pid: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            raise AssertionError(f"process {pid} still alive after {timeout:.0f}s")
        time.sleep(0.05)


class ApiProcess(WorkerProcess):
    """``python -m ocec_jobs.cli.main api`` on a port (the same port across restarts); the log,
    signal and stop helpers are the worker harness's."""

    def __init__(self, env: dict[str, str], log_path: Path, port: int | None = None) -> None:
        super().__init__("api", "", env, log_path)
        self.port = port or free_port()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        argv = [sys.executable, "-m", "ocec_jobs.cli.main", "api", "--port", str(self.port)]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(argv, env=self.env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not self._ready():
            if time.monotonic() > deadline:
                raise AssertionError(f"api not ready after {timeout:.0f}s:\n{self.log()}")
            time.sleep(0.1)

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"api exited ({self.proc.returncode}):\n{self.log()}")
        try:
            return httpx.get(f"{self.base}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def crash(self) -> None:
        """kill -9 (no shutdown at all)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

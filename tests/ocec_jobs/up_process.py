"""Helpers for tests that run ``ocec-jobs up`` as a process: its environment, a free port, waiting
until it is ready, stopping it and everything below it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

import httpx

from tests.process_leaks import alive, descendants

# The embedded default must not pick up a developer's (or CI's) distributed settings.
DISTRIBUTED_ENV = (
    "DATABASE_URL",
    "REDIS_URL",
    "OCEC_HOME",
    "OCEC_DATABASE_URL",
    "OCEC_BROKER_URL",
    "OCEC_QUEUE",
)
START_TIMEOUT_S = 120


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(base: str, proc: subprocess.Popen[str]) -> dict[str, object]:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"ocec-jobs up exited early:\n{proc.communicate()[0]}"
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                ready = httpx.get(f"{base}/readyz", timeout=10)
                if ready.status_code == 200:
                    return dict(ready.json())
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise AssertionError("ocec-jobs up did not become ready")


def stop_group(proc: subprocess.Popen[str], grace: float = 90.0) -> None:
    """Stop ``ocec-jobs up`` as a user does (SIGTERM: it stops its children in order), SIGKILL after
    ``grace`` seconds; then wait until every process below it has gone."""
    tree = descendants(proc.pid)
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    wait_all_gone(tree)


def wait_all_gone(pids: set[int], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while left := [pid for pid in pids if alive(pid)]:
        assert time.monotonic() < deadline, f"still alive {timeout:.0f}s later: {left}"
        time.sleep(0.2)


def port_free(port: int) -> bool:
    """Whether a server could listen on ``port`` now (as uvicorn binds: with SO_REUSEADDR)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True

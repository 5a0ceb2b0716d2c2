"""``ocec-jobs up`` end to end: a real process tree on a free port, probed over HTTP, stopped by SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

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


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (children, grandchildren...), from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its parent's wait is missing


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


def stop_group(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.mark.slow
def test_up_serves_the_api_and_a_worker_then_stops_them_on_sigterm(
    up_command: tuple[list[str], dict[str, str], Path], tmp_path: Path
) -> None:
    argv, env, home = up_command
    port = free_port()
    proc = start([*argv, "--port", str(port), "--device", "cpu", "--grace", "30"], env, tmp_path)
    try:
        ready = wait_ready(f"http://127.0.0.1:{port}", proc)
        tree = descendants(proc.pid)

        assert ready["checks"] == {"database": "ok", "broker": "ok"}
        assert len(tree) >= 2, "the API and the worker run as child processes"
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

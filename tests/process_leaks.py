"""The suite checks itself: no process a test started may outlive the session.

Every pytest process (the plain run, or each xdist worker) marks its environment with a session id
(``OCEC_TEST_SESSION``) and, per test phase, with the test's node id (``OCEC_TEST_OWNER``), so every
process a test starts with the usual environment carries both, even once orphaned and re-parented.
After the last test's teardown (every fixture, the session-wide ones included, has stopped what it
started) the processes of this session still alive are looked up in ``/proc``: those with the mark,
and any descendant of this process. A few seconds are allowed for processes already stopping; what
is left fails that teardown, naming the test that started each process, and is killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import pytest

SESSION = "OCEC_TEST_SESSION"
OWNER = "OCEC_TEST_OWNER"
# processes that are stopping get this long to be gone
SETTLE_S = float(os.environ.get("OCEC_TEST_LEAK_SETTLE_S", "15"))


@dataclass(frozen=True)
class Leak:
    pid: int
    owner: str
    command: str

    def line(self) -> str:
        return f"pid {self.pid} started by {self.owner}: {self.command[:200]}"


def pytest_configure(config: pytest.Config) -> None:
    os.environ[SESSION] = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, object, object]:
    os.environ[OWNER] = f"{item.nodeid} (setup)"
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    os.environ[OWNER] = item.nodeid
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Generator[None, object, object]:
    os.environ[OWNER] = f"{item.nodeid} (teardown)"
    result = yield
    if nextitem is None:  # the session's fixtures are gone too: whatever still runs was leaked
        fail_on_leaks(settled_leaks(os.environ[SESSION]))
    return result


def fail_on_leaks(leaks: list[Leak]) -> None:
    for leak in leaks:
        _kill(leak.pid)
    if leaks:
        lines = "\n".join(leak.line() for leak in leaks)
        message = f"{len(leaks)} process(es) started by the tests outlived them (killed):\n{lines}"
        pytest.fail(message, pytrace=False)


def settled_leaks(session: str, settle: float = SETTLE_S) -> list[Leak]:
    deadline = time.monotonic() + settle
    while (leaks := find_leaks(session)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return leaks


def find_leaks(session: str) -> list[Leak]:
    """Live processes marked with ``session`` or below this one (this process excluded)."""
    me = os.getpid()
    below = descendants(me)
    found = []
    for pid, proc in _processes():
        if pid == me or _zombie(proc):
            continue
        env = _environ(proc)
        if env.get(SESSION) == session or pid in below:
            found.append(Leak(pid, env.get(OWNER, "an unknown test (no mark)"), _command(proc)))
    return found


def _processes() -> list[tuple[int, Path]]:
    return [(int(p.name), p) for p in Path("/proc").iterdir() if p.name.isdigit()]


def _environ(proc: Path) -> dict[str, str]:
    try:
        raw = (proc / "environ").read_bytes()
    except OSError:  # gone, or another user's
        return {}
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


def _stat(proc: Path) -> list[str]:
    try:
        return (proc / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def _zombie(proc: Path) -> bool:
    fields = _stat(proc)
    return not fields or fields[0] in ("Z", "X")  # a zombie has exited; only its parent's wait is missing


def alive(pid: int) -> bool:
    return not _zombie(Path(f"/proc/{pid}"))


def descendants(root: int) -> set[int]:
    """Every live process below ``root`` (children, grandchildren...), from /proc."""
    parents = {pid: int(fields[1]) for pid, proc in _processes() if (fields := _stat(proc))}
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _command(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def _kill(pid: int) -> None:
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)

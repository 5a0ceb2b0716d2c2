"""The children of ``ocec-jobs up``: started, watched, restarted with a backoff, stopped in order.

Each child gets SIGTERM as its parent-death signal, so it stops even when ``up`` is killed with
SIGKILL (and its own children stop with it in turn). An essential child (the API) that exits ends
``up``. Any other (the worker, the reaper) is restarted after 1, 2, 4 … ``BACKOFF_MAX_S`` seconds;
a run of ``STABLE_S`` seconds clears its crash count; after ``max_restarts`` crashes in a row it
is left down and ``on_give_up`` says why (``up`` prints it and records it for ``/readyz``).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from jobstore.parent_death import preexec_dies_with_parent

POLL_S = 0.5
BACKOFF_S = 1.0
BACKOFF_MAX_S = 30.0
STABLE_S = 60.0  # a child that ran this long before dying starts its crash count afresh


@dataclass
class Child:
    name: str
    argv: list[str]
    essential: bool  # the service is down without it: up exits when it does
    process: subprocess.Popen[bytes]
    started_at: float
    crashes: int = 0  # in a row, each within STABLE_S of its start
    restart_at: float | None = None
    gave_up: str | None = None


def spawn(name: str, argv: Sequence[str], *, essential: bool) -> Child:
    return Child(name, list(argv), essential, _popen(argv), time.monotonic())


def _popen(argv: Sequence[str]) -> subprocess.Popen[bytes]:
    # A session of their own: a terminal's Ctrl-C reaches only us, and we stop them in order.
    return subprocess.Popen(argv, start_new_session=True, preexec_fn=preexec_dies_with_parent(signal.SIGTERM))


def say(text: str) -> None:
    print(f"ocec-jobs up: {text}", file=sys.stderr, flush=True)


@dataclass
class Supervisor:
    children: list[Child]
    max_restarts: int
    on_give_up: Callable[[Child], None]

    def run(self, stopping: list[int]) -> int:
        """Until a signal arrives or an essential child exits (its code is returned)."""
        while not stopping:
            for child in self.children:
                code = self._check(child)
                if code is not None:
                    return code
            time.sleep(POLL_S)
        say(f"{signal.Signals(stopping[0]).name}, stopping")
        return 0

    def _check(self, child: Child) -> int | None:
        if child.gave_up:
            return None
        if child.restart_at is not None:
            if time.monotonic() >= child.restart_at:
                child.process, child.started_at, child.restart_at = _popen(child.argv), time.monotonic(), None
                say(f"{child.name} restarted (pid {child.process.pid})")
            return None
        code = child.process.poll()
        if code is None:
            return None
        say(f"{child.name} exited with code {code}")
        if child.essential:
            return code or 1
        self._schedule_restart(child, code)
        return None

    def _schedule_restart(self, child: Child, code: int) -> None:
        if time.monotonic() - child.started_at >= STABLE_S:
            child.crashes = 0
        child.crashes += 1
        if child.crashes > self.max_restarts:
            child.gave_up = (
                f"ocec-jobs up stopped restarting the {child.name} after {child.crashes} crashes in a row "
                f"(last exit code {code}); see its log, fix the cause and restart ocec-jobs up"
            )
            say(child.gave_up)
            self.on_give_up(child)
            return
        delay = min(BACKOFF_MAX_S, BACKOFF_S * 2 ** (child.crashes - 1))
        child.restart_at = time.monotonic() + delay
        say(f"restarting the {child.name} in {delay:g} s (restart {child.crashes} of {self.max_restarts})")


def stop(children: Sequence[Child], grace: float) -> None:
    """SIGTERM every child, wait up to ``grace`` seconds in all, then SIGKILL what is left."""
    alive = [c for c in children if c.process.poll() is None]
    for child in alive:
        child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for child in alive:
        try:
            child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"{child.name} did not stop in {grace:g}s, killing it")
            child.process.kill()
            child.process.wait()

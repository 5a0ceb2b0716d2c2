"""The reaper loop: ``jobstore.reaper.reap`` every ``reaper_interval_seconds``, dispatching via Celery.

A Celery worker starts it on ``worker_ready`` as a small companion process of its main process
(``python -m worker.reaper --parent-pid …``; stopped on shutdown, and it exits by itself if its
parent dies). Not a thread: the worker's main process forks a fresh pool child for every job, and a
fork taken while another thread holds a database or broker lock can leave the child deadlocked.
Set ``OCEC_WORKER_REAPER=0`` to leave reaping to another host; run ``python -m worker.reaper`` to
host it anywhere. Any number of reapers may run at once: every change is a compare-and-set under the
job's row lock.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime

from celery import Celery

from jobstore.db import transaction_factory
from jobstore.reaper import ReapReport, reap
from jobstore.settings import Settings, get_settings
from worker.database import get_engine
from worker.dispatch import make_dispatch

log = logging.getLogger(__name__)

REAPER_ENV = "OCEC_WORKER_REAPER"


def reaper_enabled() -> bool:
    return os.environ.get(REAPER_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


class ReaperLoop:
    def __init__(self, app: Celery, settings: Settings, *, parent_pid: int | None = None) -> None:
        self.settings = settings
        self._parent_pid = parent_pid
        self._dispatch = make_dispatch(app, settings.queue)
        self._halt = threading.Event()

    def halt(self) -> None:
        self._halt.set()

    def run_forever(self) -> None:
        log.info("reaper loop started (every %.1fs)", self.settings.reaper_interval_seconds)
        while not self._halt.is_set() and self._parent_alive():
            self.run_once()
            self._halt.wait(self.settings.reaper_interval_seconds)

    def _parent_alive(self) -> bool:
        if self._parent_pid is None or os.getppid() == self._parent_pid:
            return True
        log.warning("reaper: worker process %d is gone; exiting", self._parent_pid)
        return False

    def run_once(self) -> ReapReport | None:
        """One pass; errors are logged (the next pass retries), never raised."""
        try:
            sessions = transaction_factory(get_engine(self.settings))
            report = reap(sessions, now=datetime.now(UTC), settings=self.settings, dispatch=self._dispatch)
        except Exception:
            log.exception("reaper pass failed")
            return None
        changed = {k: v for k, v in report.counts().items() if v}
        if changed:
            log.info("reaper: %s", changed)
        return report


def start_companion() -> subprocess.Popen[bytes]:
    """Start the reaper as a companion process of this (the worker's main) process."""
    argv = [sys.executable, "-m", "worker.reaper", "--parent-pid", str(os.getpid())]
    return subprocess.Popen(argv, env={**os.environ, REAPER_ENV: "0"})


def stop_companion(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)


def main(argv: list[str] | None = None) -> None:
    """``python -m worker.reaper [--parent-pid PID]``: the loop in the foreground."""
    from worker.app import create_app

    parser = argparse.ArgumentParser(prog="python -m worker.reaper", description=__doc__.splitlines()[0])
    parser.add_argument("--parent-pid", type=int, help="exit when this process is no longer the parent")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s: %(levelname)s/reaper] %(message)s")
    settings = get_settings()
    loop = ReaperLoop(create_app(settings), settings, parent_pid=args.parent_pid)
    signal.signal(signal.SIGTERM, lambda *_: loop.halt())
    with contextlib.suppress(KeyboardInterrupt):
        loop.run_forever()


if __name__ == "__main__":
    main()

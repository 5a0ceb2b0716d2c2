"""The reaper loop: ``jobstore.reaper.reap`` every ``reaper_interval_seconds``, sending via a publisher,
then the evaluations' pass (``jobstore.evaluation_reaper``: lost runs re-queued, lost messages sent
again), then the retention pass (``jobstore.retention.prune``: epoch checkpoints beyond each job's
keep count); where it reaps it also runs the webhook notifier (``worker.notifier``, a thread of this process).

A Celery worker starts it on ``worker_ready`` as a small companion process of its main process
(``python -m worker.reaper --parent-pid … --node …``; stopped on shutdown). The companion also beats
the node's presence every ``heartbeat_seconds`` (``jobstore.repo.workers``: ``/readyz`` and a job's
status say whether its worker lives) and marks it stopped when the node stops. It dies with its
parent: a parent-death signal (SIGTERM), then it records that the node's main process is gone. Not
a thread: the worker's main process forks a fresh pool child for every job, and a fork taken while
another thread holds a database or broker lock can leave the child deadlocked.
Set ``OCEC_WORKER_REAPER=0`` to leave reaping to another host (the companion then only beats);
run ``python -m worker.reaper`` to host the reaper anywhere (``ocec-jobs up`` runs it as its own
child, so it keeps reaping while the worker is down). Any number of reapers may run at once: every
change is a compare-and-set under the job's row lock.
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
import time
from datetime import UTC, datetime
from pathlib import Path

from jobstore.db import transaction_factory, write_transaction
from jobstore.evaluation_reaper import EvaluationReapReport, SendEvaluation, reap_evaluations
from jobstore.parent_death import die_with_parent
from jobstore.race_service import advance_races
from jobstore.reaper import ReapReport, reap
from jobstore.repo.workers import beat_worker, mark_stopped
from jobstore.retention import PruneReport, prune
from jobstore.settings import Settings, get_settings
from jobstore.tasknames import REAPER_ENV, Dispatch
from jobstore.text import escape_log_records
from worker.database import get_engine
from worker.dispatch import make_dispatch, make_evaluation_dispatch, publisher
from worker.notifier import NotifierLoop
from worker.passes import logged_pass

log = logging.getLogger(__name__)


def reaper_enabled() -> bool:
    return os.environ.get(REAPER_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


class ReaperLoop:
    """Reaps every ``reaper_interval_seconds`` (``reap``), sending with ``dispatch``, and beats
    ``node``'s presence (if given)."""

    def __init__(
        self,
        dispatch: Dispatch,
        settings: Settings,
        *,
        parent_pid: int | None = None,
        node: str | None = None,
        reap: bool = True,
        send_evaluation: SendEvaluation | None = None,
    ) -> None:
        self.settings = settings
        self._send_evaluation = send_evaluation  # None: leave evaluations to another reaper
        self._parent_pid = parent_pid
        self._node = node if parent_pid is not None else None
        self._reap = reap
        self._dispatch = dispatch
        self._halt = threading.Event()

    def halt(self) -> None:
        self._halt.set()

    def run_forever(self) -> None:
        tick = self._tick()
        if self._reap:
            log.info("reaper loop started (every %.1fs)", self.settings.reaper_interval_seconds)
        notifier = NotifierLoop(self.settings) if self._reap else None
        if notifier is not None:
            notifier.start()
        next_reap = 0.0
        while self._parent_alive() and not self._halt.is_set():
            self._beat()
            if self._reap and time.monotonic() >= next_reap:
                next_reap = time.monotonic() + self.settings.reaper_interval_seconds
                self.run_once()
                self.run_races()
            self._halt.wait(tick)
        if notifier is not None:  # an attempt in flight is bounded by notify_timeout_seconds
            notifier.halt(timeout=self.settings.notify_timeout_seconds + 1)
        self._stopped()

    def _tick(self) -> float:
        beat = self.settings.heartbeat_seconds if self._node else None
        reap = self.settings.reaper_interval_seconds if self._reap else None
        return min(t for t in (beat, reap, 60.0) if t is not None)

    def _parent_alive(self) -> bool:
        if self._parent_pid is None or os.getppid() == self._parent_pid:
            return True
        log.warning("reaper: worker process %d is gone; exiting", self._parent_pid)
        return False

    def run_races(self) -> None:
        """The race service's pass (``jobstore.race_service``, docs/race.md) on the reaper's schedule;
        errors are logged (the next pass retries), never raised."""
        try:
            sessions = transaction_factory(get_engine(self.settings))
            races = advance_races(sessions, now=datetime.now(UTC), dispatch=self._dispatch)
        except Exception:
            log.exception("race pass failed")
            return
        if races.dispatched or races.errors:
            log.info("races: %d advanced, %d errors, sent %s", races.advanced, races.errors, races.dispatched)

    def _beat(self) -> None:
        if self._node is None or self._parent_pid is None:
            return
        started = process_started_at(self._parent_pid)
        try:
            with write_transaction(get_engine(self.settings)) as session:
                beat_worker(session, name=self._node, pid=self._parent_pid, started_at=started)
        except Exception:  # the database is down: the presence goes stale, as the lease would
            log.exception("presence beat for %s failed", self._node)

    def _stopped(self) -> None:
        if self._node is None:
            return
        gone = os.getppid() != self._parent_pid
        reason = f"its main process {self._parent_pid} died" if gone else "stopped"
        try:
            with write_transaction(get_engine(self.settings)) as session:
                mark_stopped(session, name=self._node, reason=reason)
        except Exception:
            log.exception("could not mark %s stopped", self._node)

    def run_once(self) -> ReapReport | None:
        """One pass; errors are logged (the next pass retries), never raised."""
        report = logged_pass("reaper", self._reap_pass)
        self.evaluations_once()
        self.prune_once()
        return report

    def evaluations_once(self) -> EvaluationReapReport | None:
        """The evaluations' pass (``jobstore.evaluation_reaper``), when this loop can send their messages."""
        send = self._send_evaluation
        if send is None:
            return None
        sessions = transaction_factory(get_engine(self.settings))
        return logged_pass(
            "evaluation reaper",
            lambda: reap_evaluations(sessions, now=datetime.now(UTC), settings=self.settings, send=send),
        )

    def _reap_pass(self) -> ReapReport:
        sessions = transaction_factory(get_engine(self.settings))
        return reap(sessions, now=datetime.now(UTC), settings=self.settings, dispatch=self._dispatch)

    def prune_once(self) -> PruneReport | None:
        """The retention pass (``jobstore.retention``), here so it never runs on a training path."""
        return logged_pass("retention", self._prune_pass)

    def _prune_pass(self) -> PruneReport:
        sessions = transaction_factory(get_engine(self.settings))
        return prune(sessions, settings=self.settings, now=datetime.now(UTC))


def process_started_at(pid: int) -> datetime | None:
    """When process ``pid`` started (Linux /proc), so that its presence predates any job it claimed."""
    try:
        ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
        boot = next(
            int(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime")
        )
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return datetime.fromtimestamp(boot + ticks / os.sysconf("SC_CLK_TCK"), UTC)


def start_companion(node: str, *, reap: bool) -> subprocess.Popen[bytes]:
    """Start the companion (presence of ``node``, and the reaper if ``reap``) of this main process."""
    argv = [sys.executable, "-m", "worker.reaper", "--parent-pid", str(os.getpid()), "--node", node]
    return subprocess.Popen([*argv, *([] if reap else ["--no-reap"])], env={**os.environ, REAPER_ENV: "0"})


def stop_companion(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)


def main(argv: list[str] | None = None) -> None:
    """``python -m worker.reaper [--parent-pid PID --node NODE] [--no-reap]``: the loop in the foreground."""
    parser = argparse.ArgumentParser(prog="python -m worker.reaper", description=__doc__.splitlines()[0])
    parser.add_argument("--parent-pid", type=int, help="exit when this process is no longer the parent")
    parser.add_argument("--node", help="with --parent-pid: beat this Celery node's presence for it")
    parser.add_argument("--no-reap", action="store_true", help="only beat the presence")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s: %(levelname)s/reaper] %(message)s")
    escape_log_records()  # job names and reasons in log lines show escapes (jobstore.text)
    settings = get_settings()
    broker = publisher(settings.broker_url)
    dispatch = make_dispatch(broker, settings.queue)
    loop = ReaperLoop(
        dispatch, settings, parent_pid=args.parent_pid, node=args.node, reap=not args.no_reap,
        send_evaluation=make_evaluation_dispatch(broker, settings.queue),
    )  # fmt: skip
    signal.signal(signal.SIGTERM, lambda *_: loop.halt())
    if args.parent_pid is not None:
        die_with_parent(signal.SIGTERM, args.parent_pid)
    with contextlib.suppress(KeyboardInterrupt):
        loop.run_forever()
    broker.close()


if __name__ == "__main__":
    main()

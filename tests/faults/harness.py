"""One fault test's world: a fresh database on the private PostgreSQL, a queue on the private Redis,
roots holding dataset B and model A, real ``celery -A worker.app worker`` processes running the real
engine, an optional real API process, and the fault log.

Built on the worker suite's harness (``tests/worker/worker_harness.py``): jobs are created with
jobstore and sent with a real Celery publisher, or submitted over HTTP to the API process.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from worker_harness import Harness, WorkerProcess, wait_for

from jobstore.models import Job
from tests.faults.figures import FIGURES, Fault
from tests.faults.processes import ApiProcess, kill_9, kill_tree_9, wait_gone
from tests.faults.world import SPEC, World

# Short leases so a lost worker is noticed in seconds; the default lease/heartbeat/reaper are 30/10/15 s.
FAST_LEASE = {
    "OCEC_HEARTBEAT_SECONDS": "0.5",
    "OCEC_LEASE_SECONDS": "4",
    "OCEC_REAPER_INTERVAL_SECONDS": "0.5",
}
# For tests that must show a job is *not* interrupted (a broker, database or API restart): a lease
# that comfortably outlasts the fault, so a slow CI box cannot make it expire by accident.
LONG_LEASE = {
    "OCEC_HEARTBEAT_SECONDS": "1",
    "OCEC_LEASE_SECONDS": "30",
    "OCEC_REAPER_INTERVAL_SECONDS": "0.5",
}


@dataclass(frozen=True)
class Spot:
    """Where a fault is injected: during the epoch after ``epoch`` (the last one recorded)."""

    epoch: int
    where: str


@dataclass
class FaultHarness:
    base: Harness
    world: World
    scenario: str
    apis: list[ApiProcess] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)

    # ---- delegation --------------------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        return getattr(self.base, name)

    @property
    def settings(self) -> Any:
        return self.base.settings

    # ---- jobs ----------------------------------------------------------------------------------
    def submit(self, name: str = "job", *, dispatch: bool = True, **overrides: Any) -> str:
        """A job of the suite's spec (``world.SPEC``), created with jobstore and sent to the queue."""
        return self.base.create(name=name, dispatch=dispatch, **{**SPEC, **overrides})

    def running_attempt(self, job_id: str, timeout: float = 60.0) -> Job:
        return self.base.wait_state(job_id, "running", timeout=timeout)

    def pool_pid(self, job_id: str) -> int:
        """The pid of the pool process running the job's current attempt."""
        job = self.running_attempt(job_id)
        attempt = next(a for a in self.base.attempts(job_id) if a.number == job.attempt)
        assert attempt.pid is not None
        return attempt.pid

    def mid_epoch(self, job_id: str, after_epoch: int, fraction: float, timeout: float = 180.0) -> Spot:
        """Return once the job is about ``fraction`` of the way through the epoch after ``after_epoch``.

        Timed from the moment the previous epoch's row was recorded, with that epoch's length or the
        reference's longest epoch, whichever is longer. On a
        busy machine the job may outrun the test; then it aims at the following epoch instead. On
        return the job had not finished the epoch it is in (checked just before returning).
        """
        target = after_epoch
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.base.wait_epoch(job_id, target, timeout=timeout)
            assert job.epoch < job.epochs, f"no epoch left after {job.epoch} to inject a fault into"
            row = self.base.metrics(job_id)[-1]
            # A resumed epoch's row times only the part after the resume: never aim by less than a
            # whole epoch of the reference, or the fault lands before the next epoch's first batch.
            seconds = max(float(row.epoch_seconds or 0.0), self.world.epoch_seconds)
            due = row.recorded_at.timestamp() + fraction * seconds
            time.sleep(max(0.0, due - time.time()))
            if self.base.job(job_id).epoch == job.epoch:
                return Spot(job.epoch, f"epoch {job.epoch + 1}, ~{fraction:.0%} in")
            target = job.epoch + 1  # too late for this one
        raise AssertionError(f"could not catch job {job_id} mid-epoch within {timeout:.0f}s")

    # ---- faults --------------------------------------------------------------------------------
    def record(self, kind: str, job_id: str, where: str = "", *, bad_input: bool = False) -> Fault:
        fault = Fault(self.scenario, kind, job_id, datetime.now(UTC), where, bad_input)
        self.faults.append(fault)
        return FIGURES.fault(fault)

    def kill_pool_child(self, job_id: str, where: str) -> int:
        pid = self.pool_pid(job_id)
        self.record("kill-9-pool-child", job_id, where)
        kill_9(pid)
        wait_gone(pid)
        return pid

    def kill_worker_tree(self, worker: WorkerProcess, job_id: str, where: str) -> list[int]:
        """kill -9 a worker's main process, its pool child and its reaper companion at once."""
        self.record("kill-9-worker-tree", job_id, where)
        pids = kill_tree_9(worker.pid)
        assert worker.proc is not None
        worker.proc.wait(timeout=10)
        for pid in pids:
            wait_gone(pid)
        return pids

    def start_worker(self, name: str | None = None, *, reaper: bool = False, **env: str) -> WorkerProcess:
        return self.base.start_worker(name, reaper=reaper, **env)

    # ---- the API process -----------------------------------------------------------------------
    def start_api(self, port: int | None = None, **env: str) -> ApiProcess:
        log = self.settings.home / f"api-{len(self.apis)}.log"
        api = ApiProcess({**self.base.env, "OCEC_AUTH": "off", **env}, log, port)
        self.apis.append(api)
        api.start()
        return api

    # ---- after the job -------------------------------------------------------------------------
    def measure_recoveries(self) -> None:
        """Per fault: seconds to the job's next epoch row, and (before the job's next fault) to its
        ``interrupted`` state and to the next attempt's confirmed restore."""
        infra = [f for f in self.faults if not f.bad_input]
        for fault in infra:
            later = [f.at for f in infra if f.job_id == fault.job_id and f.at > fault.at]
            until = min(later, default=None)
            rows = self.base.metrics(fault.job_id, live=False)
            fault.recovery_s = _first_after(fault.at, [r.recorded_at for r in rows], until)
            events = self.base.events(fault.job_id)
            lost = [e.at for e in events if e.kind == "state_change" and e.to_state == "interrupted"]
            fault.detected_s = _first_after(fault.at, lost, until)
            restored = [e.at for e in events if e.kind == "restored"]
            fault.resumed_s = _first_after(fault.at, restored, until)

    def stop_all(self) -> None:
        """After the test: kill -9 every API and worker process tree (the test has checked what it
        wanted; a graceful stop would only cost time), including anything a failed test left frozen."""
        for api in self.apis:
            api.crash()
        for worker in self.base.workers:
            if worker.proc is not None and worker.proc.poll() is None:
                kill_tree_9(worker.pid)
                worker.proc.wait(timeout=10)

    def logs(self) -> str:
        parts = [f"--- {w.name} ---\n{w.log()[-3000:]}" for w in self.base.workers]
        parts += [f"--- api {i} ---\n{a.log()[-2000:]}" for i, a in enumerate(self.apis)]
        return "\n".join(parts)


def _first_after(at: datetime, times: list[datetime], until: datetime | None = None) -> float | None:
    later = sorted(t for t in times if t > at and (until is None or t < until))
    return (later[0] - at).total_seconds() if later else None


def wait_log(worker: WorkerProcess, text: str, timeout: float = 60.0) -> None:
    wait_for(lambda: text in worker.log(), timeout, f"{text!r} in the log of {worker.name}")

"""Restart PostgreSQL mid-job: the private cluster is stopped (fast shutdown: every session is cut,
open transactions roll back) for a few seconds, then started again.

While it is down the worker keeps training; the epoch's checkpoint records and metrics row wait and
are retried (``worker.dbwrite``) until the database is back, so the next epoch only starts once they
are committed. The lease outlasts the outage, so the job is not interrupted: one attempt, nothing lost.
"""

from __future__ import annotations

import time

from tests.faults.checks import assert_like_reference
from tests.faults.harness import LONG_LEASE, FaultHarness
from tests.faults.services import PrivatePostgres

OUTAGE_SECONDS = 4.0  # several epochs' worth: epoch ends must wait for the database


def test_postgres_restart_mid_job_loses_nothing(fx: FaultHarness, private_pg: PrivatePostgres) -> None:
    worker = fx.start_worker("w1", reaper=True, **LONG_LEASE)
    job_id = fx.submit("pg-restart")
    where = fx.mid_epoch(job_id, 2, 0.3).where

    fx.record("postgres-restart", job_id, where)
    private_pg.stop("fast")
    time.sleep(OUTAGE_SECONDS)
    private_pg.start()

    fx.wait_state(job_id, "succeeded", "failed", timeout=180)
    assert_like_reference(fx, job_id)
    assert len(fx.attempts(job_id)) == 1, "the lease outlasted the outage: no re-queue"
    assert "database unavailable" in worker.log(), "writes waited and were retried"

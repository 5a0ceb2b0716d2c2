"""The queue benchmark at a small size (PostgreSQL + Redis, two real Celery workers, the fake engine):
every job ran exactly once, in priority order, and the report says so. No figure is asserted."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from benchmarks import queue_scale as bench
from tests.conftest import PG_ADMIN_URL, REDIS_URL

pytestmark = [pytest.mark.slow]
JOBS = 8


def test_quick_run_claims_every_job_once_in_priority_order(capsys: pytest.CaptureFixture[str]) -> None:
    outcome = bench.main(["--quick", "--jobs", str(JOBS), "--pg", PG_ADMIN_URL, "--redis", REDIS_URL])
    out = capsys.readouterr().out

    assert len(outcome.claims) == JOBS and not outcome.unfinished, out
    assert (outcome.extra_attempts, outcome.bad_metrics) == (0, 0), out
    assert len({job_id for *_, job_id in outcome.claims}) == JOBS
    assert bench.inversions(outcome.claims, outcome.workers)[0] == 0, out
    assert re.search(r"^\| claims per second \| \d+\.\d\d ", out, re.MULTILINE), out
    assert re.search(r"^\| queue latency p50 / p99 / max \| [\d.]+ / [\d.]+ / [\d.]+ s \|$", out, re.M), out
    assert "| priority order (≤ 1 higher-priority jobs waiting at any claim) | respected: 0 inversions" in out
    assert f"| starvation | none: {JOBS} of {JOBS} jobs ran" in out
    assert "| lost or run twice | none: 0 lost, 0 extra attempts, 0 jobs with wrong metrics rows |" in out
    assert len(outcome.spans) == JOBS  # one gap per job after each worker's first
    assert JOBS - outcome.workers <= len(outcome.turnovers) <= JOBS - 1
    assert re.search(
        r"^\| one attempt, claim → end, p50 / p99 / max \| [\d.]+ / [\d.]+ / [\d.]+ s \|$", out, re.M
    )


def test_inversions_count_claims_passing_waiting_higher_priorities() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    at = [t0 + timedelta(seconds=s) for s in range(5)]
    # (claimed, priority, queued, id): two low jobs claimed while two high ones queued earlier wait
    claims = [(at[1], 0, at[0], "a"), (at[2], 0, at[0], "b"), (at[3], 5, at[0], "c"), (at[4], 5, at[0], "d")]
    assert bench.inversions(claims, workers=2) == (2, 2)
    assert bench.inversions(claims, workers=3) == (0, 2)
    in_order = [(at[1 + i], p, q, j) for i, (_, p, q, j) in enumerate(sorted(claims, key=lambda c: -c[1]))]
    assert bench.inversions(in_order, workers=1) == (0, 0)
